"""How long the faithfulness metric takes, and what it says of the real images (its ceiling).

Scores the real images of a dataset split against their own graphs with the shipped detector
(or ``--detector-weights``) and the colour classifier, as ``sg2img evaluate --metrics
faithfulness`` scores the real side, and prints the seconds it took (images read beforehand,
not timed), the machine's load average before and after, and the figures beside the ground
truth's own relation satisfaction (the boxes the dataset gives, the same rule)::

    python scripts/bench_faithfulness.py --data data/shapes64              # 500 val images
    python scripts/bench_faithfulness.py --data data/shapes64 --threads 2 --json bench.json

Targets on the procedural val split: object recall >= 0.97, triple score within 0.03 of the
ground truth's relation satisfaction, 500 images in under 2 minutes on 2 cores.
"""

from __future__ import annotations

import argparse
import sys
import time


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", required=True, help="dataset folder (COCO-Stuff format)")
    p.add_argument("--split", default="val")
    p.add_argument("--num", type=int, default=500, help="images (the split's first)")
    p.add_argument("--size", type=int, default=64, help="image size the dataset is read at")
    p.add_argument("--detector-weights", default=None,
                   help="detector file (default: the shipped procedural detector)")
    p.add_argument("--threads", type=int, default=2, help="torch threads (0: leave as is)")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--json", default=None, help="also write the figures here")
    args = p.parse_args(argv)
    if args.num < 1:
        p.error("--num must be >= 1")

    import torch

    from sg2img.benchmark import load_average, set_threads, write_json
    from sg2img.config import DataConfig
    from sg2img.data import build_dataset
    from sg2img.eval import (
        dataset_graphs,
        relation_satisfaction,
        resolve_detector,
        score_faithfulness,
    )

    threads = set_threads(args.threads) if args.threads else torch.get_num_threads()
    data = build_dataset(DataConfig(root=args.data), args.split, args.size, 16)
    idx = list(range(min(args.num, len(data))))
    items = [data[i] for i in idx]
    images = torch.stack([it.image for it in items])
    graphs = dataset_graphs(data, idx)
    held = total = 0.0
    for it in items:
        r = relation_satisfaction(it.boxes, it.triples, data.vocab.pred_names)
        if r["num_triples"]:
            held += r["relation_satisfaction"] * r["num_triples"]
            total += r["num_triples"]
    detector = resolve_detector(None, args.detector_weights)
    load_before = load_average()
    start = time.perf_counter()
    result = score_faithfulness(images, graphs, detector, batch_size=args.batch_size,
                                stuff_names=data.vocab.stuff_names)
    seconds = time.perf_counter() - start
    load_after = load_average()
    r = result["generated"]
    truth = held / total if total else float("nan")
    print(f"{len(idx)} {args.split} images of {args.data} at {args.size} px, real images "
          f"against their own graphs; detector: {result['detector']} "
          f"(threshold {result['threshold']:.2f}); {threads} threads")
    print(f"scored in {seconds:.1f} s ({len(idx) / seconds:.1f} images/s); load average "
          f"{load_before[0]:.2f} before, {load_after[0]:.2f} after")
    print("| figure | value | 95 % interval |")
    print("|---|---|---|")
    for name in ("object_recall", "triple_score", "colour_accuracy",
                 "hallucinations_per_image"):
        band = r["ci95"].get(name)
        text = f"[{band[0]:.3f}, {band[1]:.3f}]" if band else "n/a"
        print(f"| {name} | {r[name]:.4f} | {text} |")
    print(f"| ground truth boxes: relation satisfaction | {truth:.4f} | |")
    print(f"triple score - ground truth: {r['triple_score'] - truth:+.4f} "
          f"({r['num_triples']} triples); by class recall, lowest: "
          + ", ".join(f"{k} {v['recall']:.3f}" for k, v in sorted(
              ((k, v) for k, v in r["by_class"].items() if v["num_objects"]),
              key=lambda kv: kv[1]["recall"])[:4]))
    if args.json:
        write_json(args.json, {"seconds": seconds, "images": len(idx), "threads": threads,
                               "load_average_before": load_before,
                               "load_average_after": load_after,
                               "ground_truth_relation_satisfaction": truth,
                               "faithfulness": result})
    return 0


if __name__ == "__main__":
    sys.exit(main())
