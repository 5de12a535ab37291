"""How consistent is image manipulation? Pixel change outside versus inside the edited region.

For random scene graphs of a procedural-scenes split (or any COCO-format dataset with the
model's vocabulary), applies random edits of each kind (add, remove, replace, predicate,
move) with ``sg2img.manipulation.manipulate`` and measures the mean absolute pixel change (pixels in
[0, 1]) between the image before and after the edit, inside the edited region (the boxes of
the touched and removed objects, before and after) and outside it. The same edits are also
run with ``freeze=False`` (same noise, layout predicted afresh) as a baseline, and two seeds
of the unedited graph give the scale of a change that keeps nothing. The measurement is
``sg2img.locality.edit_locality``; this script picks the model and the data and prints it.

Usage::

    python scripts/bench_manipulation.py --data data/shapes64 --edits 100 --out bench.json
    python scripts/bench_manipulation.py --checkpoint runs/small/export.pt --data data/shapes64
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from dataclasses import replace
from typing import Any

from sg2img.benchmark import set_threads, write_json


def run(args: argparse.Namespace) -> dict[str, Any]:
    from sg2img.api import load_model
    from sg2img.config import DataConfig
    from sg2img.data import build_dataset
    from sg2img.locality import edit_locality

    set_threads(args.threads)
    model = load_model(args.checkpoint, args.device)
    cfg = model.config
    data_cfg = replace(cfg.data, root=str(args.data)) if args.data else cfg.data
    if not isinstance(data_cfg, DataConfig) or not data_cfg.root:
        raise SystemExit("give --data DIR (the procedural scenes, e.g. data/shapes64)")
    dataset = build_dataset(data_cfg, args.split, cfg.model.renderer.image_size,
                            cfg.model.layout.mask_size)
    if tuple(dataset.vocab.object_names) != tuple(model.vocab.object_names):
        raise SystemExit(f"the dataset at {data_cfg.root} has another vocabulary than the model")
    t0 = time.perf_counter()
    figures = edit_locality(model, dataset, edits=args.edits, seed=args.seed)
    return {
        "checkpoint": model.source, "data": str(data_cfg.root), "split": args.split,
        "edits_per_kind": args.edits, "seed": args.seed, "image_size": model.image_size,
        "device": str(model.device), "seconds": round(time.perf_counter() - t0, 1),
        **figures,
    }


def markdown(summary: dict[str, Any]) -> str:
    lines = [f"Manipulation consistency: {summary['edits_per_kind']} random edits per kind, "
             f"{summary['image_size']}px, {summary['checkpoint']}, {summary['data']} "
             f"({summary['split']}), seed {summary['seed']}.",
             "Mean absolute pixel change (pixels in [0, 1]) between the image before and after "
             "the edit.", "",
             "| edit | inside region | outside region | outside / inside | outside, layout "
             "not frozen | region share of image |",
             "|---|---|---|---|---|---|"]
    for kind, r in summary["kinds"].items():
        lines.append(f"| {kind} | {r['inside']:.4f} | {r['outside']:.4f} | "
                     f"{r['ratio_outside_inside']:.2f} | {r['outside_unfrozen']:.4f} | "
                     f"{r['region_fraction']:.2f} |")
    lines += ["", f"Two seeds of the same graph differ by {summary['two_seed_change']:.4f} "
                  f"on average (what changing everything looks like).",
              f"Time: {summary['seconds']} s on {summary['device']}."]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter,
                                epilog="example:\n  python scripts/bench_manipulation.py "
                                       "--data data/shapes64 --edits 100 --out bench.json")
    p.add_argument("--checkpoint", default=None,
                   help="checkpoint or export (default: the bundled model)")
    p.add_argument("--data", default=None,
                   help="dataset folder (default: the model config's data.root)")
    p.add_argument("--split", default="val")
    p.add_argument("--edits", type=int, default=100, help="random edits per kind")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="cpu")
    p.add_argument("--threads", type=int, default=2, help="torch CPU threads")
    p.add_argument("--out", default=None, help="write the figures as JSON here")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    summary = run(args)
    print(markdown(summary))
    if args.out:
        write_json(args.out, summary)
        print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
