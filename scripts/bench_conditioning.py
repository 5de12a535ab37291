"""The conditioning map, computed the old way (one 1x1 conv over the concatenated semantic
layout, embedding layout and broadcast noise) and the issue-18 way
(``GALSGenerator.encode_conditioning``), interleaved, on random scenes of a preset.

Usage::

    python scripts/bench_conditioning.py --preset coco64 --batch 8 --rounds 7 --threads 1
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import torch
from bench_model import VOCAB_SIZES, make_batch, make_vocab

from sg2img.config import Config
from sg2img.layout import box_masks, embedding_layout, semantic_layout
from sg2img.model import GALSGenerator


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--preset", default="coco64", choices=list(VOCAB_SIZES))
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--rounds", type=int, default=7)
    p.add_argument("--threads", type=int, default=1)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    cfg = Config.from_preset(args.preset)
    mc = cfg.model
    vocab = make_vocab(*VOCAB_SIZES[args.preset])
    torch.manual_seed(0)
    G = GALSGenerator(mc, vocab.num_objects, vocab.num_preds).eval()
    b = make_batch(vocab, args.batch, mc.image_size, mc.mask_size, vg=cfg.data.dataset == "vg")
    N, H = b.num_images, mc.image_size
    masks = b.masks if b.masks is not None else box_masks(len(b.objs), mc.mask_size)
    with torch.inference_mode():
        obj_vecs, _ = G.encode_graph(b)
        z = torch.randn(N, mc.noise_dim)
        layout = semantic_layout(b.objs, b.boxes, masks, b.obj_to_img, N, vocab.num_objects, H, H)

        def dense():
            parts = [layout, embedding_layout(obj_vecs, b.boxes, masks, b.obj_to_img, N, H, H)]
            if G.noise_proj is not None:
                parts.append(G.noise_proj(z)[:, :, None, None].expand(-1, -1, H, H))
            return G.cond_encoder(torch.cat(parts, dim=1))

        def fast():
            return G.encode_conditioning(layout, obj_vecs, b.boxes, masks, b.obj_to_img, z)

        diff = (dense() - fast()).abs().max().item()
        times = {"dense": [], "fast": []}
        for r in range(args.rounds):
            for name, fn in ((("dense", dense), ("fast", fast)) if r % 2 == 0
                             else (("fast", fast), ("dense", dense))):
                t0 = time.perf_counter()
                fn()
                times[name].append(time.perf_counter() - t0)
    ratios = [a / b for a, b in zip(times["dense"], times["fast"], strict=True)]
    print(f"{args.preset}, batch {args.batch}, {args.threads} thread(s), load average "
          f"{os.getloadavg()[0]:.1f}: dense {statistics.median(times['dense']) * 1000:.0f} ms, "
          f"fast {statistics.median(times['fast']) * 1000:.0f} ms, speed-up (median of "
          f"{args.rounds} interleaved rounds) {statistics.median(ratios):.2f}x; max |diff| "
          f"{diff:.1e}")


if __name__ == "__main__":
    main()
