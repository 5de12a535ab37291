"""Where a generator forward spends its FLOPs and its time: FLOP shares per module
(``torch.utils.flop_counter``) and the operator table of ``torch.profiler``, for a preset with
random weights on random scenes.

Usage::

    python scripts/bench_profile.py --preset coco64 --threads 1
    python scripts/bench_profile.py --preset vg128 --depth 4 --min-share 1.5 \\
        --set model.renderer.narrow_upsample=true
    python scripts/bench_profile.py --preset coco64 --threads 2 --channels-last 7
        # also: contiguous vs channels-last forward, 7 interleaved rounds
"""

from __future__ import annotations

import argparse
import statistics

import torch
from torch.profiler import ProfilerActivity, profile
from torch.utils.flop_counter import FlopCounterMode

from sg2img.benchmark import interleaved_times, per_round_ratios, set_threads
from sg2img.config import Config
from sg2img.model import GALSGenerator
from sg2img.testing import PRESET_VOCAB_SIZES, numbered_vocab, random_scene_batch


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--preset", default="coco64", choices=list(PRESET_VOCAB_SIZES))
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--depth", type=int, default=3, help="module depth of the FLOP table")
    p.add_argument("--min-share", type=float, default=0.0, help="hide modules below this %%")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    p.add_argument("--channels-last", type=int, default=0, metavar="ROUNDS",
                   help="also time the forward with channels-last weights (oneDNN), "
                        "interleaved with the contiguous one for ROUNDS rounds")
    args = p.parse_args()
    set_threads(args.threads)
    cfg = Config.from_preset(args.preset, args.set)
    mc = cfg.model
    vocab = numbered_vocab(*PRESET_VOCAB_SIZES[args.preset])
    torch.manual_seed(0)
    G = GALSGenerator(mc, vocab.num_objects, vocab.num_preds).eval()
    batch = random_scene_batch(vocab, args.batch, mc.renderer.image_size, mc.layout.mask_size,
                               vg=cfg.data.dataset == "vg")
    with torch.inference_mode():
        with FlopCounterMode(display=False, depth=args.depth) as fc:
            G(batch, training_outputs=False)
        total = fc.get_total_flops()
        print(f"{args.preset} {' '.join(args.set)}: {total / args.batch / 1e9:.2f} GFLOP per "
              f"image; share of FLOPs by module:")
        for name, counts in fc.get_flop_counts().items():
            share = 100 * sum(counts.values()) / total
            if name != "Global" and share >= args.min_share:
                print(f"  {name:55s} {share:5.1f} %")
        for _ in range(2):
            G(batch, training_outputs=False)
        with profile(activities=[ProfilerActivity.CPU]) as prof:
            for _ in range(args.repeats):
                G(batch, training_outputs=False)
    print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=14))
    if args.channels_last:
        compare_channels_last(G, batch, args.channels_last)


def compare_channels_last(G, batch, rounds: int) -> None:
    import copy

    G_cl = copy.deepcopy(G).to(memory_format=torch.channels_last)
    z = torch.randn(batch.num_images, G.noise_dim)
    models = {"contiguous": G, "channels_last": G_cl}
    with torch.inference_mode():
        diff = (G(batch, z=z).images - G_cl(batch, z=z).images).abs().max().item()
        times = interleaved_times({name: lambda m=m: m(batch, z=z, training_outputs=False)
                                   for name, m in models.items()}, rounds)
    ratios = per_round_ratios(times["contiguous"], times["channels_last"])
    print(f"contiguous {statistics.median(times['contiguous']) * 1000:.0f} ms, channels-last "
          f"{statistics.median(times['channels_last']) * 1000:.0f} ms; contiguous / "
          f"channels-last time, median of {rounds} interleaved rounds: "
          f"{statistics.median(ratios):.2f}; max |image difference| {diff:.1e}")


if __name__ == "__main__":
    main()
