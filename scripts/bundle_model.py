"""Ship a trained run as the bundled default model, with its provenance and evaluation figures.

Copies ``RUN/export.pt`` (config, vocab and the EMA generator) to
``sg2img/assets/default_model.pt``, evaluates it on the dataset's validation split (all
metrics, layout recall next to the mean-class-box baseline) and writes:

* ``sg2img/assets/default_model.json``: where the model came from (training command, steps,
  dataset) and its headline figures;
* ``docs/default_model_eval.{json,md}``: the full evaluation report.

Usage (what produced the shipped model)::

    python scripts/bundle_model.py runs/small64 --data data/shapes64 \
        --export runs/small64/export_layout_a1.pt
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MAX_BYTES = 25 * 1024 * 1024


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("run", type=Path, help="training run folder (holds export.pt)")
    p.add_argument("--data", type=Path, required=True, help="dataset it was trained on")
    p.add_argument("--export", type=Path, default=None,
                   help="the export to ship (default: RUN/export.pt), e.g. the output of "
                        "a train.stage=layout run)")
    p.add_argument("--assets", type=Path, default=ROOT / "sg2img" / "assets")
    p.add_argument("--docs", type=Path, default=ROOT / "docs")
    p.add_argument("--samples-per-graph", type=int, default=1)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)

    import torch

    from sg2img.checkpoint import load_checkpoint, save_checkpoint
    from sg2img.evaluate import evaluate_checkpoint, write_report

    export = args.export or args.run / "export.pt"
    size = export.stat().st_size
    if size > MAX_BYTES:
        raise SystemExit(f"{export} is {size / 2**20:.1f} MiB; the package ships at most 25 MiB")
    ckpt = load_checkpoint(export)
    if "step" not in ckpt:   # exports written before they recorded it: the run's last step
        from sg2img.train import list_checkpoints

        ckpt["step"] = int(load_checkpoint(list_checkpoints(args.run)[-1])["step"])
    torch.set_num_threads(max(torch.get_num_threads(), 1))
    t0 = time.time()
    report = evaluate_checkpoint(export, args.data, "val", layout_baseline=True,
                                 samples_per_graph=args.samples_per_graph, seed=args.seed)
    report["evaluation_seconds"] = round(time.time() - t0, 1)
    report["checkpoint"] = "sg2img/assets/default_model.pt"
    json_path, md_path = write_report(report, args.docs / "default_model_eval.json")

    m = report["metrics"]
    commands = (args.run / "command.txt").read_text().splitlines() \
        if (args.run / "command.txt").exists() else []
    data_info = json.loads((args.data / "info.json").read_text()) \
        if (args.data / "info.json").exists() else {}
    stats = [json.loads(line) for line in (args.run / "stats.jsonl").read_text().splitlines()]
    meta = {
        "description": "GALS-GAN, preset 'small', trained on the procedural scenes at 64x64 "
                       "on 2 CPU cores (GAN training, then the graph->layout branch fine-tuned "
                       "on boxes and masks when layout_finetune is set); the model generate() "
                       "and `sg2img generate` use when no checkpoint is given",
        "training_commands": commands + ([ckpt["layout_finetune"]["command"]]
                                         if "layout_finetune" in ckpt else []),
        "layout_finetune": ckpt.get("layout_finetune"),
        "data_command": "python data_tools/make_shapes.py --out data/shapes64 --size 64",
        "dataset": {k: data_info.get(k) for k in ("description", "seed", "image_size",
                                                    "num_images", "objects_per_image")},
        "step": ckpt.get("step"),
        "train_images_per_s_median": sorted(s["images_per_s"] for s in stats)[len(stats) // 2],
        "size_bytes": size,
        "evaluation": {
            "split": report["split"], "num_graphs": report["num_graphs"],
            "layout_R@0.3": m["layout_recall"]["R@0.3"],
            "layout_R@0.5": m["layout_recall"]["R@0.5"],
            "layout_mean_iou": m["layout_recall"]["mean_iou"],
            "baseline_mean_class_box_R@0.3": m["layout_recall_baseline"]["R@0.3"],
            "baseline_mean_class_box_R@0.5": m["layout_recall_baseline"]["R@0.5"],
            "fid": m["fid"]["fid"], "fid_feature_network": m["fid"]["feature_network"],
            "is_mean": m["is"]["is_mean"],
            "object_accuracy": m["obj_acc"]["accuracy"],
            "object_accuracy_real_crops": m["obj_acc"]["real_crop_accuracy"],
            "diversity_mean_pixel_distance": m["diversity"]["mean_pixel_distance"],
            "report": "docs/default_model_eval.md",
            "command": f"sg2img evaluate --checkpoint sg2img/assets/default_model.pt --data "
                       f"{args.data} --split val --layout-baseline --out docs/default_model_eval",
        },
    }
    args.assets.mkdir(parents=True, exist_ok=True)
    save_checkpoint(args.assets / "default_model.pt", ckpt)     # atomic
    meta["size_bytes"] = size = (args.assets / "default_model.pt").stat().st_size
    (args.assets / "default_model.json").write_text(json.dumps(meta, indent=2) + "\n")
    print(md_path.read_text())
    print(f"wrote {args.assets / 'default_model.pt'} ({size / 2**20:.2f} MiB), "
          f"{args.assets / 'default_model.json'}, {json_path}, {md_path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
