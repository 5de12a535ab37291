"""Benchmark: procedural scene generation speed (images per second, writing the dataset).

    python scripts/bench_shapes.py --num 10000 --size 64 --workers 2 --repeats 3

Writes the whole dataset (PNG images + COCO-Stuff JSON, train split only) into a temporary
folder per repeat and reports the median images/s. Also reports the render-only speed of one
process (no files), which tells how much is drawing versus encoding and writing.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time

from sg2img.benchmark import load_average
from sg2img.data.shapes import generate_scene, write_dataset


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--num", type=int, default=10000, help="images per repeat")
    p.add_argument("--size", type=int, default=64)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--render-only", type=int, default=500,
                   help="images for the single-process render-only timing (0 to skip)")
    args = p.parse_args(argv)
    print(f"cpu cores: {os.cpu_count()}, load average: {load_average()[0]:.2f}")
    if args.render_only:
        start = time.perf_counter()
        for i in range(args.render_only):
            generate_scene(0, "train", i, args.size)
        secs = time.perf_counter() - start
        print(f"render only, 1 process, {args.size}x{args.size}: "
              f"{args.render_only / secs:.0f} images/s")
    rates = []
    for r in range(args.repeats):
        with tempfile.TemporaryDirectory() as tmp:
            start = time.perf_counter()
            write_dataset(tmp, size=args.size, num_images={"train": args.num}, seed=r,
                          workers=args.workers)
            secs = time.perf_counter() - start
        rates.append(args.num / secs)
        print(f"repeat {r}: {args.num} images in {secs:.1f} s = {rates[-1]:.0f} images/s")
    print(f"median: {statistics.median(rates):.0f} images/s ({args.num} images "
          f"{args.size}x{args.size}, {args.workers} workers, {args.repeats} repeats)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
