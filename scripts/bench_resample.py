"""How local is "same scene, another sheep"? Pixel change inside versus away from the object.

For random scene graphs of a dataset split (the model's vocabulary), picks one object per graph at
random and generates the scene plus K other looks of that object with ``generate(...,
resample_object=i)`` (a model trained with ``model.renderer.noise=spatial``). Measures the mean
absolute pixel change (pixels in [0, 1]) between each look and the scene inside the object's box,
outside it, and 3 px or more away from it; two seeds of the same graphs give the scale of a change
that keeps nothing. ``--gt-boxes`` pins each graph's ground-truth boxes (locality apart from the box
head's quality). ``--sheet`` also writes a sheet: per graph the layout, the scene and the looks. The
measurement is ``sg2img.locality.resample_locality``.

Usage::

    python scripts/bench_resample.py --checkpoint runs/spatial/export.pt --data data/shapes64 \\
        --graphs 50 --looks 3 --sheet resample_sheet.png
"""

from __future__ import annotations

import argparse
import logging
import random
import sys
from dataclasses import replace
from typing import Any

from sg2img.benchmark import set_threads, write_json


def run(args: argparse.Namespace) -> dict[str, Any]:
    from sg2img import vis
    from sg2img.api import load_model
    from sg2img.config import DataConfig
    from sg2img.data import build_dataset
    from sg2img.locality import resample_locality
    from sg2img.scene_graph import SceneGraph

    set_threads(args.threads)
    model = load_model(args.checkpoint, args.device)
    if not model.object_noise_dim:
        raise SystemExit(f"{model.source} has no per-object noise; train one with "
                         f"--set model.renderer.noise=spatial")
    cfg = model.config
    data_cfg = replace(cfg.data, root=str(args.data)) if args.data else cfg.data
    if not isinstance(data_cfg, DataConfig) or not data_cfg.root:
        raise SystemExit("give --data DIR (the procedural scenes, e.g. data/shapes64)")
    dataset = build_dataset(data_cfg, args.split, cfg.model.renderer.image_size,
                            cfg.model.layout.mask_size)
    rng = random.Random(args.seed)
    indices = rng.sample(range(len(dataset)), min(args.graphs, len(dataset)))
    graphs = [SceneGraph.from_sample(dataset[i], model.vocab, boxes=args.gt_boxes)
              for i in indices]
    objects = [rng.randrange(len(g.objects)) for g in graphs]
    figures, res = resample_locality(model, graphs, objects, looks=args.looks, seed=args.seed)
    K = args.looks + 1
    summary = {
        "checkpoint": model.source, "data": str(data_cfg.root), "split": args.split,
        "graphs": len(graphs), "looks": args.looks, "seed": args.seed,
        "gt_boxes": args.gt_boxes, "image_size": model.image_size, **figures,
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
                   help="checkpoint or export of a model trained with model.renderer.noise=spatial")
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
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    summary = run(args)
    print(markdown(summary))
    if args.out:
        write_json(args.out, summary)
        print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
