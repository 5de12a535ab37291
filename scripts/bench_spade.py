"""The generator forward with the fused SPADE modulation (``SPADE.forward``: the ``1 +`` in the
conv bias, ``addcmul``, in-place LeakyReLU and residual add) against the plain formulation
``norm(x) * (1 + gamma) + beta`` it replaced, interleaved in one process on random scenes.

Both compute the same thing (``tests/test_fast_paths.py`` checks it in float64); the figure is
the time ratio, plain / fused, median of the per-round ratios (> 1: the fused one is faster).
``--backward`` times a forward and backward of the generator's image instead (a training
step's generator part).

Usage::

    python scripts/bench_spade.py --presets coco64 vg128 --batch 4 --rounds 9 --threads 1
"""

from __future__ import annotations

import argparse
import statistics

import torch

from sg2img.benchmark import interleaved_times, per_round_ratios, set_threads
from sg2img.config import Config
from sg2img.generators import SPADEResBlock
from sg2img.generators.global_affine import spade_block_reference
from sg2img.model import GALSGenerator
from sg2img.testing import PRESET_VOCAB_SIZES, numbered_vocab, random_scene_batch


def run(G, batch, z, backward: bool) -> None:
    """One generator forward (and backward when ``backward``)."""
    if backward:
        out = G(batch, z=z)
        out.images.square().mean().backward()
        G.zero_grad(set_to_none=True)
    else:
        with torch.inference_mode():
            G(batch, z=z, training_outputs=False)


def bench(preset: str, batch_size: int, rounds: int, backward: bool) -> dict:
    cfg = Config.from_preset(preset)
    mc = cfg.model
    vocab = numbered_vocab(*PRESET_VOCAB_SIZES[preset])
    torch.manual_seed(0)
    G = GALSGenerator(mc, vocab.num_objects, vocab.num_preds)
    G.train(backward)
    batch = random_scene_batch(vocab, batch_size, mc.renderer.image_size, mc.layout.mask_size,
                               vg=cfg.data.dataset == "vg")
    z = torch.randn(batch.num_images, G.noise_dim)
    fused = SPADEResBlock.forward
    variants = {"fused": fused, "plain": spade_block_reference}
    with torch.inference_mode():
        outs = {}
        for name, fwd in variants.items():
            SPADEResBlock.forward = fwd
            outs[name] = G(batch, z=z, training_outputs=False).images
    diff = float((outs["fused"] - outs["plain"]).abs().max())

    def with_forward(name):
        def call():
            SPADEResBlock.forward = variants[name]
            run(G, batch, z, backward)
        return call

    try:
        for name in variants:                          # warm-up
            with_forward(name)()
        times = interleaved_times({name: with_forward(name) for name in ("plain", "fused")},
                                  rounds)
    finally:
        SPADEResBlock.forward = fused
    ratios = per_round_ratios(times["plain"], times["fused"])
    return {"preset": preset, "plain_ms": 1000 * statistics.median(times["plain"]),
            "fused_ms": 1000 * statistics.median(times["fused"]),
            "ratio": statistics.median(ratios), "min": min(ratios), "max": max(ratios),
            "max_abs_diff": diff}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--presets", nargs="+", default=["coco64", "vg128"],
                   choices=list(PRESET_VOCAB_SIZES))
    p.add_argument("--batch", type=int, default=4)
    p.add_argument("--rounds", type=int, default=9)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--backward", action="store_true",
                   help="time forward + backward of the generator (training) instead")
    args = p.parse_args()
    set_threads(args.threads)
    what = "forward + backward" if args.backward else "inference forward"
    print(f"generator {what}, batch {args.batch}, {args.threads} thread(s), {args.rounds} "
          f"interleaved rounds; ratio = plain / fused time, median of per-round ratios")
    for preset in args.presets:
        r = bench(preset, args.batch, args.rounds, args.backward)
        print(f"{r['preset']:8s} plain {r['plain_ms']:7.0f} ms  fused {r['fused_ms']:7.0f} ms  "
              f"ratio {r['ratio']:.3f} (range {r['min']:.2f}-{r['max']:.2f})  "
              f"max |image difference| {r['max_abs_diff']:.1e}")


if __name__ == "__main__":
    main()
