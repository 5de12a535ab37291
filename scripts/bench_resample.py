"""How local is "same scene, another sheep"? Pixel change inside versus away from the object.

For random scene graphs of a dataset split (the model's vocabulary), picks one object per
graph at random and generates the scene plus K other looks of that object with
``generate(..., resample_object=i)`` (a model trained with ``model.noise=spatial``). Measures
the mean absolute pixel change (pixels in [0, 1]) between each look and the scene inside the
object's box, outside it, and 3 px or more away from it; two seeds of the same graphs give
the scale of a change that keeps nothing. ``--gt-boxes`` pins each graph's ground-truth boxes
(locality apart from the box head's quality). ``--sheet`` also writes a sheet: per graph the
layout, the scene and the looks.

Usage::

    python scripts/bench_resample.py --checkpoint runs/spatial/export.pt --data data/shapes64 \\
        --graphs 50 --looks 3 --sheet resample_sheet.png
"""

from __future__ import annotations

import argparse
import json
import logging
import random
import statistics
import sys
import time
import warnings
from dataclasses import replace
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_manipulation import sample_to_graph  # noqa: E402


def run(args: argparse.Namespace) -> dict[str, Any]:
    import torch
    import torch.nn.functional as F

    from sg2img import vis
    from sg2img.api import generate, load_model
    from sg2img.config import DataConfig
    from sg2img.data import build_dataset
    from sg2img.manipulation import _region

    torch.set_num_threads(args.threads)
    model = load_model(args.checkpoint, args.device)
    if not model.object_noise_dim:
        raise SystemExit(f"{model.source} has no per-object noise; train one with "
                         f"--set model.noise=spatial")
    cfg = model.config
    data_cfg = replace(cfg.data, root=str(args.data)) if args.data else cfg.data
    if not isinstance(data_cfg, DataConfig) or not data_cfg.root:
        raise SystemExit("give --data DIR (the procedural scenes, e.g. data/shapes64)")
    dataset = build_dataset(data_cfg, args.split, cfg.model.image_size, cfg.model.mask_size)
    vocab = model.vocab
    rng = random.Random(args.seed)
    indices = rng.sample(range(len(dataset)), min(args.graphs, len(dataset)))
    graphs = [sample_to_graph(dataset[i], vocab) for i in indices]
    if args.gt_boxes:
        graphs = [replace(g, boxes=tuple(tuple(float(v) for v in b)
                                         for b in dataset[i].boxes[:-1].tolist()))
                  for g, i in zip(graphs, indices, strict=True)]
    objects = [rng.randrange(len(g.objects)) for g in graphs]

    t0 = time.perf_counter()
    res = generate(graphs, model, seed=args.seed, num_samples=args.looks + 1,
                   resample_object=[[o] for o in objects])
    H = res.tensors.shape[-1]
    rows: dict[str, list[float]] = {"inside": [], "outside": [], "away": [], "box_share": []}
    K = args.looks + 1
    for g, obj in enumerate(objects):
        scene = res.tensors[g * K]
        box = _region([res.boxes[g * K][obj]], H, H)
        near = F.max_pool2d(box[None, None].float(), 7, 1, 3)[0, 0] > 0
        for s in range(1, K):
            diff = (res.tensors[g * K + s] - scene).abs().mean(dim=0) / 2          # (H, W)
            rows["inside"].append(diff[box].mean().item() if box.any() else float("nan"))
            rows["outside"].append(diff[~box].mean().item() if (~box).any() else float("nan"))
            rows["away"].append(diff[~near].mean().item() if (~near).any() else float("nan"))
            rows["box_share"].append(box.float().mean().item())
    seconds = time.perf_counter() - t0
    a = generate(graphs, model, seed=args.seed).tensors
    b = generate(graphs, model, seed=args.seed + 1).tensors

    def mean(xs: list[float]) -> float:
        xs = [x for x in xs if x == x]
        return sum(xs) / len(xs) if xs else float("nan")

    ratios = [i / w for i, w in zip(rows["inside"], rows["away"], strict=True)
              if i == i and w == w and w > 0]
    summary = {
        "checkpoint": model.source, "data": str(data_cfg.root), "split": args.split,
        "graphs": len(graphs), "looks": args.looks, "seed": args.seed,
        "gt_boxes": args.gt_boxes,
        "image_size": model.image_size, "seconds": round(seconds, 1),
        "inside": mean(rows["inside"]), "outside": mean(rows["outside"]),
        "away": mean(rows["away"]), "box_share": mean(rows["box_share"]),
        "median_ratio_inside_away": statistics.median(ratios) if ratios else float("nan"),
        "two_seed_change": ((a - b).abs().mean() / 2).item(),
    }
    if args.sheet:
        n = min(args.sheet_rows, len(graphs))
        sheet_rows, titles = [], []
        for g in range(n):
            k = g * K
            sheet_rows.append([res.draw_layout(k, args.cell), *res.images[k:k + K],
                               change_map(res.tensors[k:k + K], res.boxes[k][objects[g]])])
            titles.append(f"{graphs[g].objects[objects[g]]} ({objects[g]}) of "
                          f"{', '.join(graphs[g].objects)}")
        cols = (["layout", "scene (sample 0)"] + [f"look {s}" for s in range(1, K)]
                + ["where the looks change"])
        vis.make_sheet(sheet_rows, cols, row_titles=titles, cell_height=args.cell).save(
            args.sheet)
        summary["sheet"] = args.sheet
    return summary


def change_map(images: Any, box: Any) -> Any:
    """Grey map of the mean absolute change of looks 1.. from the scene (images[0]), scaled
    to its maximum, with the resampled object's box in red."""
    from PIL import Image, ImageDraw

    diff = (images[1:] - images[0]).abs().mean(dim=(0, 1))                      # (H, W)
    grey = (diff / diff.max().clamp_min(1e-8) * 255).round().byte().numpy()
    H, W = grey.shape
    scale = 4
    im = Image.fromarray(grey).convert("RGB").resize((W * scale, H * scale), Image.NEAREST)
    x0, y0, x1, y1 = (float(v) for v in box)
    ImageDraw.Draw(im).rectangle([x0 * W * scale, y0 * H * scale, x1 * W * scale - 1,
                                  y1 * H * scale - 1], outline=(230, 40, 40), width=2)
    return im


def markdown(summary: dict[str, Any]) -> str:
    s = summary
    return "\n".join([
        f"Another look: {s['graphs']} graphs x {s['looks']} looks of one random object each, "
        f"{s['image_size']}px, {s['checkpoint']}, {s['data']} ({s['split']}), seed {s['seed']}"
        + (", ground-truth boxes pinned." if s["gt_boxes"] else ", predicted layout."),
        "Mean absolute pixel change (pixels in [0, 1]) between a look and the scene.", "",
        "| inside the box | outside the box | 3 px or more away | median inside / away | "
        "box share of image | two seeds, whole image |",
        "|---|---|---|---|---|---|",
        f"| {s['inside']:.4f} | {s['outside']:.4f} | {s['away']:.4f} | "
        f"{s['median_ratio_inside_away']:.2f} | {s['box_share']:.2f} | "
        f"{s['two_seed_change']:.4f} |", "",
        f"Time for the looks: {s['seconds']} s."])


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--checkpoint", required=True,
                   help="checkpoint or export of a model trained with model.noise=spatial")
    p.add_argument("--data", default=None,
                   help="dataset folder (default: the model config's data.root)")
    p.add_argument("--split", default="val")
    p.add_argument("--graphs", type=int, default=50, help="graphs (one object each)")
    p.add_argument("--looks", type=int, default=3, help="other looks per object")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="cpu")
    p.add_argument("--threads", type=int, default=2, help="torch CPU threads")
    p.add_argument("--gt-boxes", action="store_true",
                   help="pin the ground-truth boxes (default: the model's predicted layout)")
    p.add_argument("--sheet", default=None, help="also write a PNG sheet here")
    p.add_argument("--sheet-rows", type=int, default=6, help="graphs on the sheet")
    p.add_argument("--cell", type=int, default=160, help="sheet cell height in pixels")
    p.add_argument("--out", default=None, help="write the figures as JSON here")
    args = p.parse_args(argv)
    warnings.filterwarnings("ignore", message=r".*torch\.jit\.script.*", category=FutureWarning)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    summary = run(args)
    print(markdown(summary))
    if args.out:
        Path(args.out).write_text(json.dumps(summary, indent=2))
        print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
