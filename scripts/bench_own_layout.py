"""What the renderer-stage options cost per training step: the own-layout terms
(``loss.own_layout_weight``) and the layout jitter against ground-truth layouts alone.

Times the ablation's renderer-stage variants with :func:`sg2img.ablation.step_times`: every
variant's trainer (the preset, the starting checkpoint's model settings, the variant's
overrides; fresh weights, which do not change the work) takes the same batch of the dataset,
one G forward + D step + G step per variant per round, in rotating order; it prints each
variant's median step time and its ratio to the first variant. The default is the ``small``
preset at its batch of 16 on one thread, the bundled model's settings:

    render_gt      train.freeze_layout, ground-truth layouts only (the reference)
    render_own     + loss.own_layout_weight=1: a second generator forward from the model's
                   own layout, and those images in both discriminator forwards
    render_jitter  + train.layout_jitter=0.1

Usage::

    python scripts/bench_own_layout.py --data data/shapes64 --rounds 5
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

import torch

from sg2img.ablation import NEEDS_INIT_FROM, AblationSettings, step_times


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", type=Path, required=True, help="procedural dataset (64x64)")
    p.add_argument("--init-from", type=Path, default=Path("sg2img/assets/default_model.pt"),
                   help="the checkpoint whose model settings the variants take")
    p.add_argument("--preset", default="small")
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--variants", nargs="+", default=list(NEEDS_INIT_FROM),
                   help="ablation variants to time; the reference is full if named, else "
                        "the first")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stdout)
    torch.set_num_threads(args.threads)
    try:
        settings = AblationSettings(data=args.data, preset=args.preset, init_from=args.init_from)
    except ValueError as e:
        p.error(str(e))
    ratios = step_times(list(args.variants), settings, args.rounds)
    ref = "full" if "full" in args.variants else args.variants[0]   # step_times' reference
    for name, ratio in ratios.items():
        print(f"{name}: {ratio:.2f}x {ref} ({args.threads} thread(s), "
              f"preset {args.preset}, median over {args.rounds} rounds)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
