"""Ship a trained run as the bundled default model, with its provenance and evaluation figures.

Copies the export (config, vocab and the EMA generator; ``RUN/export.pt`` or ``--export``) to
``sg2img/assets/default_model.pt`` (``--name default-128``: ``default_model_128.pt``, its
reports in ``docs/reports/model-128/``), evaluates it on the dataset's validation split and writes:

* ``sg2img/assets/default_model.json``: where the model came from (every training command,
  the data command, steps, dataset) and its headline figures;
* ``docs/reports/bundled-model/default_model_eval.{json,md}``: every metric, with images
  rendered from the layouts
  ``generate()`` draws (sampled when the layout head samples), layout recall next to the
  mean-class-box baseline;
* ``docs/reports/bundled-model/default_model_eval_gt.{json,md}``: FID, object and attribute
  accuracy with images
  rendered from the ground-truth layout (the renderer alone).

Usage::

    python scripts/bundle_model.py runs/bundled64 --data data/shapes64 \
        --export runs/bundled64_layout/export.pt

``--vocab-from-data`` re-exports the shipped model instead, without a run: its vocabulary
gets the class table counted from the training split of ``--data`` (which attributes each
class takes, as ``sg2img train`` now stores it), and its weights, config and format version
stay as they are::

    python data_tools/make_shapes.py --out data/shapes64 --size 64
    python scripts/bundle_model.py --vocab-from-data --data data/shapes64

``--export`` also takes a training checkpoint (it ships as its inference export), and ``--set``
puts settings that change how the weights are used on the shipped config (the card lists them)::

    python scripts/bundle_model.py runs/render128 --name default-128 --data data/shapes128 \
        --export runs/render128/checkpoints/ckpt_00002000.pt \
        --set model.layout.partition_size=64 --continues sg2img/assets/default_model.json

``--continues CARD`` ships a run that fine-tuned an earlier shipped model (``train.init_from``):
that model's card (its ``default_model.json``) gives the commands that made the start, and the
new card lists them before the run's own, with where the start came from::

    python scripts/bundle_model.py runs/render_stage/render_gt --data data/shapes64 \
        --continues second_edition.json --path-alias runs/second_edition.pt=second_edition.pt
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

from sg2img.bundled import BUNDLED_MODELS

ROOT = Path(__file__).resolve().parents[1]
MAX_BYTES = 25 * 1024 * 1024


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("run", type=Path, nargs="?",
                   help="training run folder (holds export.pt); not with --vocab-from-data")
    p.add_argument("--data", type=Path, required=True, help="dataset it was trained on")
    p.add_argument("--export", type=Path, default=None,
                   help="the export to ship (default: RUN/export.pt), e.g. the output of "
                        "a train.stage=layout run; a training checkpoint ships as its "
                        "inference export (the EMA generator)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", dest="settings",
                   help="a setting that changes how the weights are used, put on the shipped "
                        "config and listed in the card (e.g. model.layout.partition_size=64); "
                        "one that changes the weights is refused")
    p.add_argument("--name", default="default", choices=sorted(BUNDLED_MODELS),
                   help="which bundled model to write: default (64 px, "
                        "ASSETS/default_model.pt) or default-128 (ASSETS/default_model_128.pt)")
    p.add_argument("--assets", type=Path, default=ROOT / "sg2img" / "assets")
    p.add_argument("--docs", type=Path, default=None,
                   help="folder of the evaluation reports (default: docs/reports/bundled-model, "
                        "docs/reports/model-128 for default-128)")
    p.add_argument("--samples-per-graph", type=int, default=1)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--path-alias", action="append", default=[], metavar="LOCAL=SHOWN",
                   help="write the path LOCAL as SHOWN in the recorded commands and reports, "
                        "e.g. /scratch/shapes64=data/shapes64 when the data there is what the "
                        "recipe writes to data/shapes64; the model card lists the aliases")
    p.add_argument("--vocab-from-data", action="store_true",
                   help="re-export ASSETS/default_model.pt with the class table of --data's "
                        "training split in its vocabulary; nothing else changes")
    p.add_argument("--continues", type=Path, default=None, metavar="CARD",
                   help="the model card (default_model.json) of the shipped model this run "
                        "was started from; its training commands come first in the new card")
    args = p.parse_args(argv)
    asset = BUNDLED_MODELS[args.name].path.name           # default_model.pt, ..._128.pt
    shown = f"sg2img/assets/{asset}"
    if args.docs is None:
        args.docs = ROOT / "docs" / "reports" / ("bundled-model" if args.name == "default"
                                                 else "model-" + args.name.split("-")[-1])
    stem = Path(asset).stem
    if args.vocab_from_data:
        if args.run is not None:
            p.error("--vocab-from-data re-exports the shipped model; give no run folder")
        return _vocab_from_data(args.assets, args.data)
    if args.run is None:
        p.error("give the training run folder (or --vocab-from-data)")
    aliases = dict(_parse_alias(a) for a in args.path_alias)

    import torch

    from sg2img.checkpoint import load_checkpoint, save_checkpoint
    from sg2img.eval import evaluate_checkpoint, write_report

    source = args.export or args.run / "export.pt"
    scratch = tempfile.TemporaryDirectory()
    export = _inference_export(source, args.settings, Path(scratch.name) / "export.pt")
    size = export.stat().st_size
    if size > MAX_BYTES:
        raise SystemExit(f"{export} is {size / 2**20:.1f} MiB; the package ships at most 25 MiB")
    ckpt = load_checkpoint(export)
    if "step" not in ckpt:   # exports written before they recorded it: the run's last step
        from sg2img.train import list_checkpoints

        ckpt["step"] = int(load_checkpoint(list_checkpoints(args.run)[-1])["step"])
    torch.set_num_threads(max(torch.get_num_threads(), 1))
    t0 = time.time()
    samples = ckpt["config"]["model"]["layout"]["head"] == "sample"
    layout_mode = "sample" if samples else "mode"
    report = evaluate_checkpoint(export, args.data, "val", layout_baseline=True,
                                 samples_per_graph=args.samples_per_graph, seed=args.seed,
                                 layout_mode=layout_mode)
    report["evaluation_seconds"] = round(time.time() - t0, 1)
    report["checkpoint"] = shown
    report["data"] = _alias(report["data"], aliases)
    json_path, md_path = write_report(report, args.docs / f"{stem}_eval.json")
    m = report["metrics"]
    gt_metrics = ["fid", "obj_acc"] + (["attr_acc"] if "attr_acc" in m else [])
    gt = evaluate_checkpoint(export, args.data, "val", metrics=gt_metrics, seed=args.seed,
                             use_gt_layout=True)
    gt["checkpoint"], gt["data"] = report["checkpoint"], report["data"]
    write_report(gt, args.docs / f"{stem}_eval_gt.json")

    start = json.loads(args.continues.read_text()) if args.continues else None
    commands = list(start["training_commands"]) if start else []
    for folder in _stage_folders(args.run, source):       # the run, then each stage after it
        if (folder / "command.txt").exists():
            commands += (folder / "command.txt").read_text().splitlines()
    data_info = json.loads((args.data / "info.json").read_text()) \
        if (args.data / "info.json").exists() else {}
    size_px = data_info.get("image_size", ckpt["config"]["model"]["renderer"]["image_size"])
    stats = [json.loads(line) for line in (args.run / "stats.jsonl").read_text().splitlines()]
    docs = _alias(str(args.docs.resolve().relative_to(ROOT)) if args.docs.resolve()
                  .is_relative_to(ROOT) else str(args.docs), aliases)
    meta = {
        "description": _description(args.name, size_px),
        "training_commands": commands + ([ckpt["layout_finetune"]["command"]]
                                         if "layout_finetune" in ckpt else []),
        "layout_finetune": ckpt.get("layout_finetune"),
        **({"shipped_settings": list(args.settings)} if args.settings else {}),
        **({"continues": {"card": str(args.continues), "step": start.get("step"),
                          "description": start.get("description"),
                          "training_commands": len(start["training_commands"])}}
           if start else {}),
        "data_command": f"python data_tools/make_shapes.py --out {args.data} --size {size_px}",
        "dataset": {k: data_info.get(k) for k in ("description", "version", "seed",
                                                    "image_size", "num_images",
                                                    "objects_per_image")},
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
            "object_accuracy_own_boxes": m["obj_acc"].get("own_boxes_accuracy"),
            "diversity_mean_pixel_distance": m["diversity"]["mean_pixel_distance"],
            "layout_mode": layout_mode,
            "fid_gt_layout": gt["metrics"]["fid"]["fid"],
            "object_accuracy_gt_layout": gt["metrics"]["obj_acc"]["accuracy"],
            **_layout_figures(m.get("layout")),
            **_attribute_figures(m.get("attr_acc"), gt["metrics"].get("attr_acc")),
            "report": f"{docs}/{stem}_eval.md",
            "report_gt_layout": f"{docs}/{stem}_eval_gt.md",
            "command": f"sg2img evaluate --checkpoint {args.name} --data "
                       f"{args.data} --split val --layout-baseline --layout-mode {layout_mode} "
                       f"--out {docs}/{stem}_eval",
            "command_gt_layout": f"sg2img evaluate --checkpoint {args.name} "
                                 f"--data {args.data} --split val --gt-layout --metrics "
                                 f"{' '.join(gt_metrics)} "
                                 f"--out {docs}/{stem}_eval_gt",
        },
    }
    if aliases:
        meta = json.loads(_alias(json.dumps(meta), aliases))
        meta["path_aliases"] = aliases
    args.assets.mkdir(parents=True, exist_ok=True)
    save_checkpoint(args.assets / asset, ckpt)     # atomic
    meta["size_bytes"] = size = (args.assets / asset).stat().st_size
    (args.assets / f"{stem}.json").write_text(json.dumps(meta, indent=2) + "\n")
    print(md_path.read_text())
    print(f"wrote {args.assets / asset} ({size / 2**20:.2f} MiB), "
          f"{args.assets / (stem + '.json')}, {json_path}, {md_path}")
    return 0


def _inference_export(source: Path, settings: list[str], scratch: Path) -> Path:
    """``source`` itself when it is an inference export and nothing is set; else the
    inference export of its EMA generator, with ``settings`` on its config, written to
    ``scratch``. A setting the weights no longer fit is refused (``build_generator``)."""
    from sg2img.checkpoint import (
        CheckpointError,
        build_generator,
        export_inference,
        generator_state,
        load_checkpoint,
        save_checkpoint,
    )
    from sg2img.config import ConfigError

    ckpt = load_checkpoint(source)
    if ckpt.get("kind") == "inference" and not settings:
        return source
    try:
        _, cfg, vocab = build_generator(ckpt, overrides=settings)
    except (CheckpointError, ConfigError) as e:
        raise SystemExit(f"--set {' '.join(settings)}: {e}") from None
    if ckpt.get("kind") == "inference":      # what else it records (layout_finetune) stays
        return save_checkpoint(scratch, {**ckpt, "config": cfg.to_dict()})
    return export_inference(scratch, cfg, vocab, generator_state(ckpt), step=ckpt.get("step"))


def _vocab_from_data(assets: Path, data: Path) -> int:
    """Give the shipped model the class table of ``data``'s training split (the dataset
    read with the model's own data settings); weights, config and format version unchanged."""
    import dataclasses

    from sg2img.checkpoint import CheckpointError, upgrade_checkpoint, with_vocabulary
    from sg2img.config import Config
    from sg2img.data import build_dataset
    from sg2img.files import atomic_torch_save, load_torch_file

    path = assets / "default_model.pt"
    raw = load_torch_file(path, "checkpoint", CheckpointError)   # as stored: format kept
    cfg = Config.from_dict(upgrade_checkpoint(raw)["config"])
    data_cfg = dataclasses.replace(cfg.data, root=str(data))
    dataset = build_dataset(data_cfg, "train", cfg.model.renderer.image_size,
                            cfg.model.layout.mask_size)
    atomic_torch_save(with_vocabulary(raw, dataset.vocab), path)
    card = assets / "default_model.json"
    if card.exists():
        meta = json.loads(card.read_text())
        meta["size_bytes"] = path.stat().st_size
        meta["vocabulary"] = ("class table (which attributes each class takes) counted from "
                              "the training split by: python scripts/bundle_model.py "
                              "--vocab-from-data --data data/shapes64")
        card.write_text(json.dumps(meta, indent=2) + "\n")
    table = dataset.vocab.class_attributes or {}
    print(f"wrote {path} ({path.stat().st_size / 2**20:.2f} MiB): the class table of "
          f"{len(dataset)} training images, {sum(map(len, table.values()))} (class, attribute) "
          f"pairs over {len(table)} classes")
    return 0


def _description(name: str, size: int) -> str:
    """The model card's one-line description of the bundled model ``name``."""
    if name == "default":
        return ("GALS-GAN, preset 'small', trained on the procedural scenes at 64x64 on 2 CPU "
                "cores (GAN training, then the graph->layout branch trained on boxes and masks "
                "with the renderer frozen, when there is a layout stage; then the renderer "
                "fine-tuned with the layout branch frozen, when there is a renderer stage); the "
                "model generate() and `sg2img generate` use when no checkpoint is given")
    return (f"GALS-GAN at {size}x{size} on the procedural scenes: the bundled 64 px model's "
            f"layout branch, frozen, and its renderer grown by one enhancer stage "
            f"(model.renderer.coarse_to_fine) and trained on at {size} px on 2 CPU cores; "
            f"load_model('{name}'), `sg2img generate --checkpoint {name}`")


def _stage_folders(run: Path, export: Path) -> list[Path]:
    """The run folders that made ``export``, first to last: ``run``, then every stage that
    started from the one before (followed back from ``export`` through ``train.init_from``)."""
    chain, folder = [], export.parent
    while folder.resolve() != run.resolve() and folder not in chain:
        chain.append(folder)
        config = folder / "config.json"
        init = json.loads(config.read_text()).get("train", {}).get("init_from") \
            if config.exists() else None
        if not init:
            break
        folder = Path(init).parent if Path(init).parent.name != "checkpoints" \
            else Path(init).parent.parent
    return [run, *reversed(chain)]


def _parse_alias(text: str) -> tuple[str, str]:
    local, sep, shown = text.partition("=")
    if not sep or not local or not shown:
        raise SystemExit(f"--path-alias wants LOCAL=SHOWN, got {text!r}")
    return local.rstrip("/"), shown.rstrip("/")


def _alias(text: str, aliases: dict[str, str]) -> str:
    """``text`` with every LOCAL path prefix written as its SHOWN alias (longest first)."""
    for local in sorted(aliases, key=len, reverse=True):
        text = text.replace(local, aliases[local])
    return text


def _layout_figures(layout: dict | None) -> dict:
    """The layouts issue's headline figures from the ``layout`` metric (mode layout)."""
    if not layout:
        return {}
    mode, truth = layout["mode"], layout["ground_truth"]
    return {"relation_satisfaction": mode["relation_satisfaction"],
            "relation_satisfaction_ground_truth": truth["relation_satisfaction"],
            "abs_log_area_ratio_all": mode["mean_abs_log_area_ratio"],
            "abs_log_area_ratio_worst_class": [mode["worst_class"],
                                               mode["worst_class_mean_abs_log_area_ratio"]],
            "small_objects_R@0.3": mode["small_R@0.3"],
            "layout_diversity_mean_iou": layout["layout_diversity_mean_iou"]}


def _attribute_figures(pred: dict | None, gt: dict | None) -> dict:
    out = {}
    for name, rep in (("attribute_accuracy", pred), ("attribute_accuracy_gt_layout", gt)):
        if rep:
            out[name] = rep["accuracy"]
            out[name + "_real_crops"] = rep["real_crop_accuracy"]
    return out


if __name__ == "__main__":
    sys.exit(main())
