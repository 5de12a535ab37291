"""What diversity the procedural data itself allows at a fixed layout (issue 14's reference).

For each validation scene of the procedural renderer (``sg2img.data.shapes``), the scene's plan
(template, stuff edges, thing boxes) is kept and drawn twice with independently redrawn *looks*,
and the two renders are compared with the same ``mean_pixel_distance`` the evaluation uses for
two samples of one graph (``mean |a - b| / 2`` on images in [-1, 1], i.e. in [0, 1]).

Three levels of look, each including the previous:

* ``texture``: new random seeds for every stuff texture and every thing's jitter and pattern,
  and a new global light tint: what varies with the layout (and the masks) held exactly fixed;
* ``colour``: also a new colour from the class's palette for things that have one (car, boat,
  house, person, umbrella), which the scene graph does not name today;
* ``facing``: also a new left/right facing. This mirrors the thing inside its box, so its mask
  changes too: not a fixed layout at mask level, only at box level.

Each level also reports the fraction of pixels whose annotation (layout label) differs between
the two renders (0 means the layout is identical). Usage::

    python scripts/bench_data_diversity.py                  # 200 validation scenes at 64 px
    python scripts/bench_data_diversity.py --num 500 --size 64 --seed 0 --json out.json
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from dataclasses import replace

import numpy as np
import torch

from sg2img.data.shapes import generate_scene, render_scene
from sg2img.data.shapes.classes import PALETTES
from sg2img.eval import mean_pixel_distance

LEVELS = ("texture", "colour", "facing")


def redraw_looks(plan, rng: np.random.Generator, level: str):
    """The plan with its looks redrawn up to ``level`` (boxes and stuff edges unchanged)."""
    stuff = tuple(replace(r, seed=int(rng.integers(2**31))) for r in plan.stuff)
    things = []
    for t in plan.things:
        new = replace(t, seed=int(rng.integers(2**31)))
        palette = PALETTES.get(t.name)
        if level in ("colour", "facing") and palette and t.attributes:
            colour = list(palette)[int(rng.integers(len(palette)))]
            new = replace(new, attributes=(colour, *t.attributes[1:]))
        if level == "facing":
            new = replace(new, flip=bool(rng.random() < 0.5))
        things.append(new)
    light = tuple(float(v) for v in 1.0 + rng.uniform(-0.06, 0.06, 3))
    return replace(plan, stuff=stuff, things=tuple(things), light=light)


def to_tensor(image: np.ndarray) -> torch.Tensor:
    """(S, S, 3) uint8 -> (1, 3, S, S) in [-1, 1]."""
    return torch.from_numpy(image).permute(2, 0, 1)[None].float() / 127.5 - 1.0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--num", type=int, default=200, help="validation scenes")
    p.add_argument("--size", type=int, default=64)
    p.add_argument("--seed", type=int, default=0, help="dataset seed (the shapes64 data: 0)")
    p.add_argument("--look-seed", type=int, default=1, help="seed of the redrawn looks")
    p.add_argument("--json", default=None, help="also write the figures here")
    args = p.parse_args(argv)
    if not 1 <= args.num <= 10_000:
        p.error("--num must be in [1, 10000]")

    rng = np.random.default_rng(args.look_seed)
    dist = {k: [] for k in LEVELS}
    relabel = {k: [] for k in LEVELS}
    for i in range(args.num):
        plan = generate_scene(args.seed, "val", i, args.size).plan
        for level in LEVELS:
            a = render_scene(redraw_looks(plan, rng, level), args.size)
            b = render_scene(redraw_looks(plan, rng, level), args.size)
            dist[level].append(float(mean_pixel_distance(to_tensor(a.image),
                                                         to_tensor(b.image))[0]))
            relabel[level].append(float((a.label != b.label).mean()))
    result = {"num_scenes": args.num, "size": args.size, "seed": args.seed,
              "look_seed": args.look_seed, "levels": {}}
    print(f"{args.num} validation scenes at {args.size} px, two look draws each")
    print("| looks redrawn | mean pixel distance | median | std | pixels relabelled |")
    print("|---|---|---|---|---|")
    for level in LEVELS:
        d = dist[level]
        row = {"mean_pixel_distance": statistics.fmean(d), "median": statistics.median(d),
               "std": statistics.pstdev(d), "relabelled": statistics.fmean(relabel[level])}
        result["levels"][level] = row
        print(f"| {level} | {row['mean_pixel_distance']:.4f} | {row['median']:.4f} | "
              f"{row['std']:.4f} | {row['relabelled']:.4f} |")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(result, f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
