"""Write the procedural scenes dataset (COCO-Stuff format, optionally raw VG JSON).

    python data_tools/make_shapes.py --out data/shapes64 --size 64 \\
        --num-train 10000 --num-val 500 --num-test 500 --seed 0 --workers 2 [--vg]

    # only a grid of scenes to look at (no dataset):
    python data_tools/make_shapes.py --grid docs/images/shapes_grid.png --size 64 --seed 0

The dataset loads with ``sg2img.data.build_dataset`` (``data.dataset=coco``,
``data.root=OUT``). See docs/datasets.md.
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image

from sg2img.data.shapes import PALETTES, generate_scene, write_dataset


def attribute_panel(seed: int = 0, size: int = 128, cell: int = 96,
                    max_scenes: int = 3000) -> Image.Image:
    """One row per colourable class: a real instance of it in each of its colours, cropped
    from the first train scenes (at ``size`` pixels) that have one."""
    from sg2img.vis import make_sheet

    found: dict[tuple[str, str], Image.Image] = {}
    wanted = {(n, c) for n, p in PALETTES.items() for c in p}
    for index in range(max_scenes):
        if len(found) == len(wanted):
            break
        scene = generate_scene(seed, "train", index, size)
        for a in scene.annotations:
            key = (a.name, a.attributes[0]) if a.isthing and a.attributes else None
            if key in wanted and key not in found and a.box_fraction > 0.04:
                x, y, w, h = (int(v) for v in a.bbox)
                m = max(2, max(w, h) // 8)
                box = (max(0, x - m), max(0, y - m), min(size, x + w + m), min(size, y + h + m))
                found[key] = Image.fromarray(scene.image).crop(box)
    rows = [[found[(n, c)] for c in p if (n, c) in found] for n, p in PALETTES.items()]
    titles = [f"{n}: " + ", ".join(c for c in p if (n, c) in found) for n, p in PALETTES.items()]
    return make_sheet(rows, row_titles=titles, cell_height=cell, pad=4)


def make_grid(path: Path, sizes: list[int], *, seed: int = 0, cols: int = 8,
              rows_per_size: int = 2, cell: int = 128, pad: int = 2) -> None:
    """Save a grid of generated train scenes: ``rows_per_size`` rows per resolution, each
    image upscaled (nearest) to ``cell`` pixels so that the pixels stay visible; below it,
    the colour attributes (:func:`attribute_panel`)."""
    rows = rows_per_size * len(sizes)
    grid = Image.new("RGB", (cols * (cell + pad) + pad, rows * (cell + pad) + pad), "white")
    for r in range(rows):
        size = sizes[r // rows_per_size]
        for c in range(cols):
            index = (r % rows_per_size) * cols + c
            img = Image.fromarray(generate_scene(seed, "train", index, size).image)
            grid.paste(img.resize((cell, cell), Image.NEAREST),
                       (pad + c * (cell + pad), pad + r * (cell + pad)))
    panel = attribute_panel(seed)
    out = Image.new("RGB", (max(grid.width, panel.width), grid.height + panel.height), "white")
    out.paste(grid, (0, 0))
    out.paste(panel, (0, grid.height))
    path.parent.mkdir(parents=True, exist_ok=True)
    out.save(path)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", type=Path, help="output dataset directory")
    p.add_argument("--size", type=int, default=64, help="image side in pixels (64, 128)")
    p.add_argument("--num-train", type=int, default=10000)
    p.add_argument("--num-val", type=int, default=500)
    p.add_argument("--num-test", type=int, default=500)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--workers", type=int, default=2, help="processes (output is identical "
                   "for any number)")
    p.add_argument("--vg", action="store_true", help="also write raw Visual Genome JSON "
                   "in OUT/vg_raw for data_tools/preprocess_vg.py")
    p.add_argument("--grid", type=Path, help="write a PNG grid of scenes (at --size, or at "
                   "64 and 128 with --grid-sizes) instead of / besides a dataset")
    p.add_argument("--grid-sizes", type=int, nargs="+", help="resolutions in the grid")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    if args.out is None and args.grid is None:
        p.error("give --out DIR (a dataset) and/or --grid FILE.png")
    if args.size < 16:
        p.error(f"--size must be >= 16, got {args.size}")
    if args.grid is not None:
        make_grid(args.grid, args.grid_sizes or [args.size], seed=args.seed)
        print(f"wrote {args.grid}")
    if args.out is not None:
        counts = {"train": args.num_train, "val": args.num_val, "test": args.num_test}
        start = time.perf_counter()
        info = write_dataset(args.out, size=args.size, num_images=counts, seed=args.seed,
                             workers=args.workers, vg=args.vg)
        total = sum(counts.values())
        secs = time.perf_counter() - start
        print(f"wrote {total} images ({counts}) to {args.out} in {secs:.1f} s "
              f"({total / max(secs, 1e-9):.0f} images/s); templates {info['templates_drawn']}")
    return 0


if __name__ == "__main__":
    np.seterr(all="ignore")
    sys.exit(main())
