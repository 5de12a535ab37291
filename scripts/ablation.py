"""The ablation table on the procedural scenes (issue 7): which parts of GALS-GAN earn their keep.

Variants (the shape of GALS-GAN's Table 6 and LGGAN's ablation), each trained from scratch
with the same preset, seed, batch size and number of steps:

    global_only   global-affine generator alone        (GALS-GAN "w/o local"; LGGAN "global")
    local_only    local class-specific generator alone (GALS-GAN "w/o global")
    avg_no_cls    both, averaged, no classification loss      (LGGAN "+ local")
    avg_cls       both, averaged, with the classification loss (LGGAN "+ class loss")
    full          both, fused by the weight map, class loss    (GALS-GAN full; LGGAN "+ weight map")
    c2f           full, trained coarse-to-fine as in pix2pixHD: the first half of the steps at
                  H/2, then ``model.coarse_to_fine`` at H (an enhancer stage on the H/2
                  generator) initialised from it with ``train.init_from``. Against ``full``,
                  which ends directly at H, this answers "coarse-to-fine or direct?".
    narrow_up     full with ``model.narrow_upsample=true``
    narrow_half   narrow_up with the global generator at half the preset's width
                  (``model.gen_channels=8`` against the ``small`` preset's 16)

Renderer variants (issue 14; not run by default, name them with ``--variants``), each the
full model with one option changed:

    cc            CC-FPSE's conditional-convolution global generator
    dp_gen        DP-GAN's dual-pyramid global generator
    fpse_d        CC-FPSE's feature-pyramid semantics-embedding discriminator
    dp_d          DP-GAN's scale-enhancement discriminator
    spatial       OASIS-style spatial noise
    spatial_ms    spatial noise + the mode-seeking term (loss.mode_seek_weight=1)
    spatial_ms01  the same at loss.mode_seek_weight=0.1 (at 1 the images collapse: FID 108)
    spatial_ms001 the same at loss.mode_seek_weight=0.01
    spatial_ms0001 the same at loss.mode_seek_weight=0.001
    spatial_no_l1 spatial noise without the image L1 terms (l1 and local_l1 pull every sample
                  towards the one real image, which works against diversity)
    edges         pix2pixHD instance boundary map
    texture       spatial noise + per-pixel texture noise made from it
                  (``model.texture_noise=4``), without the image L1 terms: the data's own
                  variety at a fixed layout is mostly texture, which per-object vectors
                  constant over a region cannot draw
    recon0        spatial noise; l1, local_l1 and feature matching score a second, noise-free
                  sample (``loss.recon_noise=zero``, BicycleGAN's split), so the random
                  samples answer only to the discriminators
    recon0_ms001  the same + mode seeking at 0.01 against the noise-free sample
    recon0_texture recon0 + per-pixel texture noise (``model.texture_noise=4``)

Since issue 15 every preset turns the attribute options on, so on data with attributes
``full`` and every variant run with them (``attr_layout_d`` below is then ``full``).

Attribute variant (issue 15; needs a dataset with attributes):

    attr_layout   each object's multi-hot attributes also painted into the layout as
                  channels (``model.attribute_layout=true``)
    attr_layout_d attr_layout, and the object discriminator also names each crop's
                  attributes (``model.object_disc_attributes=true``, ``loss.obj_attr``)

Each variant is trained with ``sg2img train`` (``--resume auto``, so an interrupted ablation
picks up where it stopped) and scored with :func:`sg2img.eval.evaluate_checkpoint` on
the validation split, by default through its EMA generator (the export, what users get), with
``--generator raw`` through the raw generator of its last checkpoint:

* FID (our procedural feature network) and object classification accuracy (overall and for
  small objects, box area < 5 % of the image) on images generated from the **ground-truth
  layout**: the variants differ only in how they render a layout, so this isolates them;
* FID from the **predicted layout** (the full scene-graph-to-image path);
* layout recall R@0.5 (the graph network is the same architecture in every variant, but it is
  trained jointly with each renderer, so its boxes differ too);
* diversity: mean pixel distance (``mean |a - b| / 2``) between two samples of each graph
  from the ground-truth layout, and the generator's parameter count.

Writes ``OUT/ablation.json``, ``OUT/ablation.md`` (the table) and ``OUT/ablation.png`` (the
same validation graphs rendered by every variant from the ground-truth layout); with
``--generator raw``, ``ablation_raw.*``; ``OUT/ablation_samples.png`` shows four samples of one
graph per variant. Usage::

    python scripts/ablation.py --data data/shapes64 --steps 1500 --out runs/ablation
    python scripts/ablation.py --data data/shapes64 --steps 1500 --out runs/ablation \
        --docs docs/reports/ablation  # also copy ablation.json, ablation_table.md, ablation.png
    python scripts/ablation.py --data data/shapes64 --steps 1500 --out runs/ablation \
        --variants full cc dp_gen fpse_d dp_d spatial spatial_ms spatial_no_l1 edges
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path

VARIANTS: dict[str, tuple[str, list[str]]] = {
    "global_only": ("global-affine only", ["model.use_local=false"]),
    "local_only": ("local class-specific only", ["model.use_global=false"]),
    "avg_no_cls": ("global + local, averaged, no class loss",
                   ["model.fusion=average", "model.use_class_loss=false"]),
    "avg_cls": ("global + local, averaged, class loss", ["model.fusion=average"]),
    "full": ("full: weight-map fusion + class loss", []),
    "c2f": ("full, coarse-to-fine (32 then 64)", ["model.coarse_to_fine=true"]),
    # Renderers of the seed papers (issue 14), each on top of the full model.
    "cc": ("CC-FPSE generator (conditional convolutions)", ["model.global_generator=cc"]),
    "dp_gen": ("DP-GAN generator (dual pyramid)", ["model.global_generator=dp"]),
    "fpse_d": ("CC-FPSE discriminator (feature pyramid)", ["model.discriminator=fpse"]),
    "dp_d": ("DP-GAN discriminator (scale enhancement)", ["model.discriminator=dp"]),
    "spatial": ("spatial noise (OASIS 3-D)", ["model.noise=spatial"]),
    "spatial_ms": ("spatial noise + mode seeking",
                   ["model.noise=spatial", "loss.mode_seek_weight=1"]),
    "spatial_ms01": ("spatial noise + mode seeking at 0.1",
                     ["model.noise=spatial", "loss.mode_seek_weight=0.1"]),
    "spatial_no_l1": ("spatial noise, no image L1",
                      ["model.noise=spatial", "loss.l1_weight=0", "loss.local_l1_weight=0"]),
    "edges": ("instance edges (pix2pixHD)", ["model.instance_edges=true"]),
    "spatial_ms001": ("spatial noise + mode seeking at 0.01",
                      ["model.noise=spatial", "loss.mode_seek_weight=0.01"]),
    "spatial_ms0001": ("spatial noise + mode seeking at 0.001",
                       ["model.noise=spatial", "loss.mode_seek_weight=0.001"]),
    "texture": ("spatial + texture noise, no image L1",
                ["model.noise=spatial", "model.texture_noise=4", "loss.l1_weight=0",
                 "loss.local_l1_weight=0"]),
    "recon0": ("spatial noise, reconstruction on a noise-free sample",
               ["model.noise=spatial", "loss.recon_noise=zero"]),
    "recon0_ms001": ("spatial noise, reconstruction on a noise-free sample, mode seeking 0.01",
                     ["model.noise=spatial", "loss.recon_noise=zero",
                      "loss.mode_seek_weight=0.01"]),
    "recon0_texture": ("spatial + texture noise, reconstruction on a noise-free sample",
                       ["model.noise=spatial", "model.texture_noise=4",
                        "loss.recon_noise=zero"]),
    # Issue 15: attributes painted into the layout as channels, besides the GCN embedding.
    "attr_layout": ("full, attributes also painted into the layout",
                    ["model.attribute_layout=true"]),
    "attr_layout_d": ("full, attributes in the layout and named by the object discriminator",
                      ["model.attribute_layout=true", "model.object_disc_attributes=true"]),
    # The width change before upsampling (the paper-scale presets' setting), against "full".
    "narrow_up": ("full, width change before the upsampling", ["model.narrow_upsample=true"]),
    # The global generator at half the `small` preset's width (16 -> 8), on top of narrow_up:
    # the scaled-down form of `vg128` with model.gen_channels=32 (64 -> 32), the one option
    # measured to clear 1.5x sg2im's speed at 128 px.
    "narrow_half": ("full, narrow upsampling, global generator at half width",
                    ["model.narrow_upsample=true", "model.gen_channels=8"]),
}
# What runs without --variants: the issue-7 ablation.
DEFAULT_VARIANTS = ["global_only", "local_only", "avg_no_cls", "avg_cls", "full", "c2f"]
# Variants trained in two phases: the overrides of the first, half-size phase.
COARSE_PHASE: dict[str, list[str]] = {"c2f": ["model.image_size=32"]}


def train_variant(name: str, args: argparse.Namespace) -> Path:
    overrides, steps = list(VARIANTS[name][1]), args.steps
    if name in COARSE_PHASE:   # same total step budget, split between the two phases
        coarse_steps = args.steps // 2
        coarse = _train(f"{name}_coarse", COARSE_PHASE[name], coarse_steps, args)
        ckpts = sorted((coarse.parent / "checkpoints").glob("ckpt_*.pt"))
        overrides.append(f"train.init_from={ckpts[-1]}")
        steps = args.steps - coarse_steps
    return _train(name, overrides, steps, args)


def _train(name: str, overrides: list[str], steps: int, args: argparse.Namespace) -> Path:
    run = args.out / name
    export = run / "export.pt"
    done = run / "DONE"
    if done.exists() and export.exists():
        print(f"[{name}] already trained ({export})", flush=True)
        return export
    cmd = [sys.executable, "-m", "sg2img", "train", "--preset", args.preset, "--data",
           str(args.data), "--out", str(run), "--resume", "auto", "--device", "cpu",
           "--set", f"train.num_steps={steps}", "--set", f"train.seed={args.seed}",
           "--set", f"train.sample_every={max(steps // 2, 1)}",
           "--set", "data.num_workers=1"]
    for override in overrides:
        cmd += ["--set", override]
    print(f"[{name}] {' '.join(cmd)}", flush=True)
    env = dict(os.environ)
    if args.jobs > 1:   # parallel runs share the cores: one thread each
        env.update(OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    t0 = time.time()
    with open(run.parent / f"{name}.log", "a") as log:
        subprocess.run(cmd, check=True, stdout=log, stderr=subprocess.STDOUT, env=env)
    done.write_text(f"{time.time() - t0:.0f} s\n")
    print(f"[{name}] trained in {time.time() - t0:.0f} s", flush=True)
    return export


def raw_generator(name: str, args: argparse.Namespace) -> Path:
    """An inference export of the variant's raw (non-EMA) generator at its last checkpoint."""
    from sg2img.checkpoint import export_inference, load_checkpoint

    last = sorted((args.out / name / "checkpoints").glob("ckpt_*.pt"))[-1]
    path = args.out / name / "raw_generator.pt"
    if not path.exists() or path.stat().st_mtime < last.stat().st_mtime:
        ck = load_checkpoint(last)
        export_inference(path, ck["config"], ck["vocab"], ck["generator"], step=ck["step"])
    return path


def wall_seconds(name: str, args: argparse.Namespace) -> float:
    """Training wall time of a variant (both phases of a two-phase one)."""
    runs = [name] + ([f"{name}_coarse"] if name in COARSE_PHASE else [])
    return sum(float((args.out / r / "DONE").read_text().split()[0]) for r in runs)


def score_variant(export: Path, args: argparse.Namespace) -> dict:
    from sg2img.eval import evaluate_checkpoint

    common = dict(split="val", device="cpu", seed=args.seed, samples_per_graph=1,
                  progress=False)
    gt = evaluate_checkpoint(export, args.data, metrics=("fid", "obj_acc"),
                             use_gt_layout=True, **common)
    pred = evaluate_checkpoint(export, args.data, metrics=("layout_recall", "fid"), **common)
    # A separate pass: asking for diversity draws two samples per graph, which would change
    # the FID protocol of the first pass.
    div = evaluate_checkpoint(export, args.data, metrics=("diversity",), use_gt_layout=True,
                              **common)
    from sg2img.checkpoint import build_generator
    from sg2img.model import count_parameters

    gen, _, _ = build_generator(export)
    oa = gt["metrics"]["obj_acc"]
    small = oa["by_size"]["area[0,0.05)"]
    return {
        "fid_gt_layout": gt["metrics"]["fid"]["fid"],
        "obj_acc": oa["accuracy"],
        "obj_acc_small": small["accuracy"],
        "num_small_crops": small["num_crops"],
        "real_crop_accuracy": oa["real_crop_accuracy"],
        "real_crop_accuracy_small": small["real_crop_accuracy"],
        "fid_pred_layout": pred["metrics"]["fid"]["fid"],
        "layout_R@0.5": pred["metrics"]["layout_recall"]["R@0.5"],
        "diversity_pixel": div["metrics"]["diversity"]["mean_pixel_distance"],
        "diversity_lpips": div["metrics"]["diversity"]["lpips"],
        "diversity_feature": div["metrics"]["diversity"]["feature_distance"],
        "diversity_feature_ratio": div["metrics"]["diversity"]["feature_distance_ratio"],
        "generator_params": count_parameters(gen),
        "num_graphs": gt["num_graphs"],
        "image_size": gt["image_size"],
        "feature_network": gt["feature_network"],
    }


def step_times(names: list[str], args: argparse.Namespace, rounds: int) -> dict[str, float]:
    """Training-step time of each variant relative to ``full`` (or the first variant).

    Every variant's trainer (its config, fresh weights) takes the same batch of the dataset;
    one G forward + D step + G step per variant per round, the variants in a rotating order,
    ``rounds`` rounds; the figure is the median over rounds of (variant / reference), so that
    a change in the machine's load hits all alike. Two-phase variants are timed at their final
    phase's size.
    """
    import statistics
    import tempfile

    import torch

    from sg2img.config import Config
    from sg2img.train import Trainer

    ref = "full" if "full" in names else names[0]
    steps, batch = {}, None
    with tempfile.TemporaryDirectory() as tmp:
        for name in names:
            cfg = Config.from_preset(args.preset, [*VARIANTS[name][1], f"data.root={args.data}",
                                                   "data.num_workers=0",
                                                   f"train.seed={args.seed}"])
            trainer = Trainer(cfg, Path(tmp) / name, device="cpu")
            if batch is None:
                batch = trainer.sample_batch(trainer.dataset, cfg.train.batch_size)

            def step(trainer=trainer, batch=batch):
                trainer.train_step(batch)

            step()                                                    # warm-up
            steps[name] = step
        times: dict[str, list[float]] = {n: [] for n in names}
        for r in range(rounds):
            order = names[r % len(names):] + names[:r % len(names)]
            for name in order:
                t = time.perf_counter()
                steps[name]()
                times[name].append(time.perf_counter() - t)
    print(f"step times ({rounds} rotating rounds, {torch.get_num_threads()} threads): "
          + ", ".join(f"{n} {statistics.median(v) * 1000:.0f} ms" for n, v in times.items()),
          flush=True)
    return {n: statistics.median(a / b for a, b in zip(times[n], times[ref], strict=True))
            for n in names}


def picture(exports: dict[str, Path], args: argparse.Namespace, path: Path, n: int = 8) -> None:
    import torch

    from sg2img.checkpoint import build_generator
    from sg2img.data import build_dataset
    from sg2img.scene_graph import collate_graphs
    from sg2img.vis import colorize_layout, make_sheet, to_pil

    rows, titles = [], []
    batch = None
    for name, export in exports.items():
        gen, cfg, _ = build_generator(export)
        if batch is None:
            data = build_dataset(replace(cfg.data, root=str(args.data)), "val",
                                 cfg.model.renderer.image_size, cfg.model.layout.mask_size)
            batch = collate_graphs([data[i] for i in range(n)])
            rows.append(to_pil(batch.images))
            titles.append("real")
        with torch.no_grad():
            out = gen(batch, use_gt_layout=True,
                      rng=torch.Generator().manual_seed(args.seed))
        if len(rows) == 1:
            rows.append(to_pil(colorize_layout(out.layout)))
            titles.append("ground-truth layout")
        rows.append(to_pil(out.images))
        titles.append(VARIANTS[name][0])
        if out.weight_map is not None:
            rows.append(to_pil(out.weight_map[:, :1] * 2 - 1))
            titles.append(f"{VARIANTS[name][0]}: weight map (white = global, black = local)")
    make_sheet(rows, row_titles=titles, cell_height=96, pad=4).save(path)


def samples_picture(exports: dict[str, Path], args: argparse.Namespace, path: Path,
                    graph: int = 0, k: int = 4) -> None:
    """Four samples of one validation graph (ground-truth layout) per variant, one row each."""
    import torch

    from sg2img.checkpoint import build_generator
    from sg2img.data import build_dataset
    from sg2img.scene_graph import collate_graphs
    from sg2img.vis import make_sheet, to_pil

    rows, titles, batch = [], [], None
    for name, export in exports.items():
        gen, cfg, _ = build_generator(export)
        if batch is None:
            data = build_dataset(replace(cfg.data, root=str(args.data)), "val",
                                 cfg.model.renderer.image_size, cfg.model.layout.mask_size)
            batch = collate_graphs([data[graph]])
            rows.append(to_pil(batch.images))
            titles.append("real")
        noise = torch.Generator().manual_seed(args.seed)
        with torch.no_grad():
            images = torch.cat([gen(batch, use_gt_layout=True, rng=noise).images
                                for _ in range(k)])
        rows.append(to_pil(images))
        titles.append(VARIANTS[name][0])
    make_sheet(rows, row_titles=titles, cell_height=96, pad=4).save(path)


def table(results: dict[str, dict], args: argparse.Namespace) -> str:
    def f(v: float | None, d: int = 3) -> str:
        return "n/a" if v is None or v != v else f"{v:.{d}f}"

    first = next(iter(results.values()))
    lines = [
        f"Procedural scenes {first['image_size']}x{first['image_size']}, validation split "
        f"({first['num_graphs']} graphs), preset `{args.preset}`, {args.steps} steps of "
        f"batch 16 per variant, seed {args.seed}; "
        + ("each variant's raw generator at its last step (not the EMA copy)"
           if args.generator == "raw" else "each variant's EMA generator (its export)")
        + ". FID uses our procedural feature network "
        "(lower is better); object accuracy is Grid2Im's protocol with our crop "
        "classifier (small: box < 5 % of the image).",
        "",
        "| variant | FID (GT layout) | obj. acc. | obj. acc. small | FID (predicted layout) "
        "| layout R@0.5 | diversity (pixel) | diversity (features, ratio) | G params (M) "
        "| step time (x ref.) |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name, r in results.items():
        params = r.get("generator_params")
        lines.append(f"| {VARIANTS[name][0]} | {f(r['fid_gt_layout'], 2)} | {f(r['obj_acc'])} | "
                     f"{f(r['obj_acc_small'])} | {f(r['fid_pred_layout'], 2)} | "
                     f"{f(r['layout_R@0.5'])} | {f(r.get('diversity_pixel'))} | "
                     f"{f(r.get('diversity_feature'), 2)} ({f(r.get('diversity_feature_ratio'))}) "
                     f"| {f(None if params is None else params / 1e6, 2)} | "
                     f"{f(r.get('step_time_ratio'), 2)} |")
    r = next(iter(results.values()))
    if any(v.get("step_time_ratio") is not None for v in results.values()):
        lines += ["", f"Step time: one training step (G forward, D step, G step; batch 16) of "
                      f"each variant on the same batch, relative to `full` (or the first "
                      f"variant), median over {args.bench_rounds} rotating rounds in one "
                      f"process (`--bench-rounds`)."]
    lines += ["", f"Real images through the same classifier: {f(r['real_crop_accuracy'])} overall, "
                  f"{f(r['real_crop_accuracy_small'])} on small objects "
                  f"({r['num_small_crops']} small crops)."]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", type=Path, required=True, help="procedural dataset (64x64)")
    p.add_argument("--out", type=Path, default=Path("runs/ablation"))
    p.add_argument("--preset", default="small")
    p.add_argument("--steps", type=int, default=1500, help="training steps per variant")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--jobs", type=int, default=1,
                   help="variants trained at once (each with one thread when > 1)")
    p.add_argument("--variants", nargs="+", default=DEFAULT_VARIANTS, choices=list(VARIANTS))
    p.add_argument("--generator", choices=("ema", "raw"), default="ema",
                   help="score the EMA generator (the export) or the raw one of the last "
                        "checkpoint")
    p.add_argument("--bench-rounds", type=int, default=0,
                   help="also time each variant's training step, relative to full, over this "
                        "many interleaved rounds (0: no step-time column)")
    p.add_argument("--docs", type=Path, default=None,
                   help="also copy ablation.md/png/json into this folder")
    args = p.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)

    with ThreadPoolExecutor(max_workers=args.jobs) as pool:
        futures = {name: pool.submit(train_variant, name, args) for name in args.variants}
        for f in futures.values():
            f.result()
    exports = {name: (raw_generator(name, args) if args.generator == "raw"
                      else args.out / name / "export.pt") for name in args.variants}
    results = {}
    for name, export in exports.items():
        # Scores are kept next to the export they measure, so a rerun (one more variant, an
        # interrupted scoring) only scores what changed.
        cache = export.parent / f"scores_{args.generator}.json"
        # "scores": 2 added diversity and parameter counts, 3 the feature-space diversity
        # (older caches are re-scored).
        key = {"export_mtime": export.stat().st_mtime, "seed": args.seed, "scores": 3}
        cached = json.loads(cache.read_text()) if cache.exists() else {}
        if cached.get("key") == key:
            results[name] = cached["scores"]
            print(f"[{name}] scores from {cache}", flush=True)
            continue
        print(f"[{name}] evaluating", flush=True)
        results[name] = score_variant(export, args)
        cache.write_text(json.dumps({"key": key, "scores": results[name]}, indent=2) + "\n")
        print(f"[{name}] {json.dumps(results[name])}", flush=True)
    if args.bench_rounds > 0:
        for name, ratio in step_times(list(args.variants), args, args.bench_rounds).items():
            results[name] = {**results[name], "step_time_ratio": ratio}
    meta = {"command": "python " + " ".join([Path(sys.argv[0]).as_posix(), *sys.argv[1:]]),
            "preset": args.preset, "steps": args.steps, "seed": args.seed,
            "generator": args.generator,
            "variants": {n: {"title": VARIANTS[n][0], "overrides": VARIANTS[n][1],
                             "wall_seconds": wall_seconds(n, args)}
                         for n in args.variants},
            "results": results}
    tag = "" if args.generator == "ema" else "_raw"
    (args.out / f"ablation{tag}.json").write_text(json.dumps(meta, indent=2) + "\n")
    (args.out / f"ablation{tag}.md").write_text(table(results, args))
    picture(exports, args, args.out / f"ablation{tag}.png")
    samples_picture(exports, args, args.out / f"ablation{tag}_samples.png")
    print(table(results, args))
    if args.docs is not None:
        args.docs.mkdir(parents=True, exist_ok=True)
        # docs/reports/ablation/README.md is the written-up page; the generated table sits
        # beside it.
        for ext in ("json", "md", "png"):
            target = f"ablation{tag}_table.md" if ext == "md" else f"ablation{tag}.{ext}"
            shutil.copy(args.out / f"ablation{tag}.{ext}", args.docs / target)
        shutil.copy(args.out / f"ablation{tag}_samples.png", args.docs)
    return 0


if __name__ == "__main__":
    sys.exit(main())
