"""How consistent is image manipulation? Pixel change outside versus inside the edited region.

For random scene graphs of a procedural-scenes split (or any COCO-format dataset with the
model's vocabulary), applies random edits of each kind (add, remove, replace, predicate,
move) with ``sg2img.manipulation.manipulate`` and measures the mean absolute pixel change (pixels in
[0, 1]) between the image before and after the edit, inside the edited region (the boxes of
the touched and removed objects, before and after) and outside it. The same edits are also
run with ``freeze=False`` (same noise, layout predicted afresh) as a baseline, and two seeds
of the unedited graph give the scale of a change that keeps nothing.

Usage::

    python scripts/bench_manipulation.py --data data/shapes64 --edits 100 --out bench.json
    python scripts/bench_manipulation.py --checkpoint runs/small/export.pt --data data/shapes64
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import random
import sys
import time
import warnings
from dataclasses import replace
from pathlib import Path
from typing import Any

KINDS = ("add", "remove", "replace", "predicate", "move")


def sample_to_graph(sample: Any, vocab: Any) -> Any:
    """A dataset item (image node last, ``__in_image__`` triples) as a user ``SceneGraph``."""
    from sg2img.scene_graph import SceneGraph

    objs = [vocab.object_name(int(i)) for i in sample.objs[:-1]]
    rels = [(int(s), vocab.pred_name(int(p)), int(o)) for s, p, o in sample.triples.tolist()
            if p != vocab.in_image_idx]
    return SceneGraph(tuple(objs), tuple(rels))


def random_box(rng: random.Random) -> tuple[float, float, float, float]:
    w, h = rng.uniform(0.15, 0.45), rng.uniform(0.15, 0.45)
    x0, y0 = rng.uniform(0.0, 1.0 - w), rng.uniform(0.0, 1.0 - h)
    return (round(x0, 4), round(y0, 4), round(x0 + w, 4), round(y0 + h, 4))


def random_edit(kind: str, graph: Any, names: list[str], preds: list[str],
                rng: random.Random) -> dict[str, Any] | None:
    """A random edit of ``kind`` that fits ``graph``, or None when none does."""
    n = len(graph.objects)
    if kind == "add":
        rel = ["new", rng.choice(preds), rng.randrange(n)]
        if rng.random() < 0.5:
            rel = [rel[2], rel[1], "new"]
        return {"op": "add", "object": rng.choice(names), "relationship": rel}
    if kind == "remove":
        return {"op": "remove", "index": rng.randrange(n)} if n > 1 else None
    if kind == "replace":
        i = rng.randrange(n)
        return {"op": "replace", "index": i,
                "object": rng.choice([c for c in names if c != graph.objects[i]])}
    if kind == "predicate":
        if not graph.relationships:
            return None
        k = rng.randrange(len(graph.relationships))
        old = graph.relationships[k][1]
        return {"op": "predicate", "relationship": k,
                "predicate": rng.choice([p for p in preds if p != old])}
    if kind == "move":
        return {"op": "move", "index": rng.randrange(n), "box": list(random_box(rng))}
    raise ValueError(kind)


def _mean(xs: list[float]) -> float:
    xs = [x for x in xs if not math.isnan(x)]
    return sum(xs) / len(xs) if xs else float("nan")


def run(args: argparse.Namespace) -> dict[str, Any]:
    import torch

    from sg2img.api import generate, load_model
    from sg2img.config import DataConfig
    from sg2img.data import build_dataset
    from sg2img.manipulation import manipulate

    torch.set_num_threads(args.threads)
    model = load_model(args.checkpoint, args.device)
    cfg = model.config
    data_cfg = replace(cfg.data, root=str(args.data)) if args.data else cfg.data
    if not isinstance(data_cfg, DataConfig) or not data_cfg.root:
        raise SystemExit("give --data DIR (the procedural scenes, e.g. data/shapes64)")
    dataset = build_dataset(data_cfg, args.split, cfg.model.image_size, cfg.model.mask_size)
    vocab = model.vocab
    if tuple(dataset.vocab.object_names) != tuple(vocab.object_names):
        raise SystemExit(f"the dataset at {data_cfg.root} has another vocabulary than the model")
    names = [c for c in vocab.user_object_names() if c != "other"]
    preds = vocab.user_pred_names()
    rng = random.Random(args.seed)
    indices = list(range(len(dataset)))
    rng.shuffle(indices)

    t0 = time.perf_counter()
    rows: dict[str, dict[str, list[float]]] = {}
    for kind in KINDS:
        acc: dict[str, list[float]] = {k: [] for k in ("inside", "outside", "inside_free",
                                                       "outside_free", "region")}
        j = 0
        while len(acc["inside"]) < args.edits:
            graph = sample_to_graph(dataset[indices[j % len(indices)]], vocab)
            j += 1
            edit = random_edit(kind, graph, names, preds, rng)
            if edit is None:
                continue
            seed = rng.randrange(2**31)
            frozen = manipulate(graph, [edit], model, seed=seed)
            free = manipulate(graph, [edit], model, seed=seed, freeze=False)
            inside, outside = frozen.change(0)
            inside_f, outside_f = free.change(0)
            # The baseline's region: the same edit's region in the frozen run.
            diff = (free.tensors[1] - free.tensors[0]).abs().mean(dim=0) / 2
            region = frozen.regions[0]
            inside_f = diff[region].mean().item() if region.any() else float("nan")
            outside_f = diff[~region].mean().item() if (~region).any() else float("nan")
            acc["inside"].append(inside)
            acc["outside"].append(outside)
            acc["inside_free"].append(inside_f)
            acc["outside_free"].append(outside_f)
            acc["region"].append(region.float().mean().item())
        rows[kind] = acc
        logging.info("%s: %d edits, %.1f s so far", kind, args.edits, time.perf_counter() - t0)

    # Scale: two seeds of the same unedited graphs.
    graphs = [sample_to_graph(dataset[indices[i % len(indices)]], vocab)
              for i in range(min(args.edits, len(indices)))]
    a = generate(graphs, model, seed=args.seed).tensors
    b = generate(graphs, model, seed=args.seed + 1).tensors
    seed_change = ((a - b).abs().mean() / 2).item()

    summary = {
        "checkpoint": model.source, "data": str(data_cfg.root), "split": args.split,
        "edits_per_kind": args.edits, "seed": args.seed, "image_size": model.image_size,
        "device": str(model.device), "seconds": round(time.perf_counter() - t0, 1),
        "two_seed_change": seed_change,
        "kinds": {k: {"inside": _mean(v["inside"]), "outside": _mean(v["outside"]),
                      "ratio_outside_inside": _mean(v["outside"]) / _mean(v["inside"]),
                      "inside_unfrozen": _mean(v["inside_free"]),
                      "outside_unfrozen": _mean(v["outside_free"]),
                      "region_fraction": _mean(v["region"]),
                      "count": len(v["inside"])}
                  for k, v in rows.items()},
    }
    return summary


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
