"""Layout metrics of a model on a dataset split, as one table (the layout targets table).

For the mode layout, a sampled layout, the ground-truth boxes (the ceiling) and the class-mean
boxes of the training split (the graph-blind baseline), prints:

* box-size fidelity: mean |log(pred area / true area)| over all objects, and the worst class
  (classes with at least ``--min-class-count`` objects);
* relation satisfaction: the fraction of the graph's geometric triples the boxes satisfy
  under the dataset's own rule (``spatial_predicate``, box centres);
* layout recall R@0.3 / R@0.5 of all objects and of small objects (< 5 % of the image);
* layout diversity: mean IoU between two sampled layouts of each graph (seeds s and s + 1);
* with ``--per-class``, each class's geometric-mean area ratio (pred / true);
* with ``--diagnose``, where the mode's small-object misses come from: its R@0.3 when one part
  of each predicted box (size, horizontal or vertical centre) is replaced by the truth's, and
  when every other object is pinned to its true box before the small ones are placed.

Nothing is rendered: boxes come from ``GALSGenerator.layout_boxes`` with no box pinned. The
figures are :func:`sg2img.eval.score_layouts`'s; ``sg2img evaluate --metrics layout`` gives the
same kinds of figures per batch (the ``layout`` metric, whose ``layout_diagnostics`` option is
this script's ``--diagnose``).

Usage::

    python scripts/eval_layout.py sg2img/assets/default_model.pt --data data/shapes64 --per-class
    python scripts/eval_layout.py runs/layout/sample_k5_seq.pt --data data/shapes64 --json out.json
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from dataclasses import replace
from pathlib import Path


def format_report(report: dict, per_class: bool, diagnose: bool = False) -> str:
    """The table :func:`sg2img.eval.score_layouts`'s report prints as."""
    rows = ["mode", "sample", "class-mean boxes", "ground truth"]
    head = (f"{'':18s} {'worst class |log A|':>26s} {'all |log A|':>11s} {'rel.sat.':>9s} "
            f"{'R@0.3':>6s} {'R@0.5':>6s} {'small R@0.3':>11s} {'small R@0.5':>11s}")
    lines = [head]
    for r in rows:
        v = report[r]
        worst = f"{v['worst_class']} {v['worst_class_abs_log_area']:.3f}"
        lines.append(f"{r:18s} {worst:>26s} {v['all_abs_log_area']:11.3f} "
                     f"{v['relation_satisfaction']:9.3f} {v['R@0.3']:6.3f} {v['R@0.5']:6.3f} "
                     f"{v['small_R@0.3']:11.3f} {v['small_R@0.5']:11.3f}")
    d = report["diversity"]
    lines.append(f"layout diversity: mean IoU between two samples of a graph "
                 f"{d['mean_iou_between_samples']:.3f} over {d['num_objects']} objects "
                 f"({'sampling head' if report['samples_layout'] else 'deterministic head'}); "
                 f"{report['num_graphs']} graphs, {report['num_triples']} geometric triples, "
                 f"{report['mode']['num_small']} small objects")
    if diagnose:
        lines.append("")
        lines.append("small objects, mode layout, R@0.3 with one part of each box from the "
                     "truth, or with the other objects' true boxes given:")
        for name, v in report["small_swap"].items():
            lines.append(f"  {name:27s} {v:.3f}")
    if per_class:
        lines.append("")
        lines.append(f"{'class':14s} {'n':>5s} {'mode area x':>11s} {'mode |log|':>10s} "
                     f"{'sample area x':>13s} {'mean-box area x':>15s}")
        by = report["mode"]["by_class"]
        for name in sorted(by, key=lambda k: -by[k]["mean_abs_log_area_ratio"]):
            m, s = by[name], report["sample"]["by_class"][name]
            c = report["class-mean boxes"]["by_class"][name]
            lines.append(f"{name:14s} {m['num_objects']:5d} {m['area_ratio']:11.2f} "
                         f"{m['mean_abs_log_area_ratio']:10.3f} {s['area_ratio']:13.2f} "
                         f"{c['area_ratio']:15.2f}")
        lines.append("")
        lines.append("relation satisfaction by predicate (mode / ground truth):")
        for p, v in report["mode"]["by_predicate"].items():
            g = report["ground truth"]["by_predicate"][p]
            if v["num_triples"]:
                lines.append(f"  {p:12s} {v['satisfied']:.3f} / {g['satisfied']:.3f} "
                             f"({v['num_triples']})")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("checkpoint", type=Path, help="training checkpoint or inference export")
    p.add_argument("--data", type=Path, required=True)
    p.add_argument("--split", default="val")
    p.add_argument("--seed", type=int, default=0, help="seed of the first layout sample")
    p.add_argument("--min-class-count", type=int, default=10)
    p.add_argument("--per-class", action="store_true")
    p.add_argument("--diagnose", action="store_true",
                   help="also print where the small objects' misses come from (size, "
                        "horizontal or vertical place)")
    p.add_argument("--json", type=Path, default=None, help="also write the report here")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--ignore-relations", action="store_true",
                   help="lay out without checking the geometric triples during placement "
                        "(as model.layout.respect_relations=false)")
    args = p.parse_args(argv)

    import torch

    from sg2img.checkpoint import build_generator
    from sg2img.data import build_dataset
    from sg2img.eval import mean_class_boxes, score_layouts

    torch.set_num_threads(args.threads)
    gen, cfg, vocab = build_generator(args.checkpoint)
    if args.ignore_relations:
        gen.pred_codes = None
    data_cfg = replace(cfg.data, root=str(args.data))
    val = build_dataset(data_cfg, args.split, cfg.model.renderer.image_size,
                        cfg.model.layout.mask_size)
    train = build_dataset(data_cfg, "train", cfg.model.renderer.image_size,
                          cfg.model.layout.mask_size)
    val.with_images = train.with_images = False
    if tuple(val.vocab.object_names) != tuple(vocab.object_names):
        raise SystemExit(f"{args.data} has another vocabulary than {args.checkpoint}")
    class_boxes = mean_class_boxes(train, vocab.num_objects)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(args.seed)   # datasets that draw relations per item use torch's RNG
        report = score_layouts(gen, val, class_boxes, seed=args.seed,
                               min_class_count=args.min_class_count)
    checks = gen.pred_codes is not None and gen.samples_layout
    print(f"{args.checkpoint} (layout_head={cfg.model.layout.head}, K="
          f"{cfg.model.layout.num_components}, sequential={cfg.model.layout.sequential}, "
          f"relation checks={checks}) on {args.data} {args.split}:")
    print(format_report(report, args.per_class, args.diagnose))
    if args.json is not None:
        args.json.write_text(json.dumps(report, indent=1, default=lambda x: None
                                        if isinstance(x, float) and math.isnan(x) else x))
    return 0


if __name__ == "__main__":
    sys.exit(main())
