"""The ablation study: named variants of GALS-GAN trained at one budget (same preset, steps and
seed), scored on the validation split, drawn and tabulated.

``run_ablation(AblationSettings(data=...), variants)`` trains each variant with ``sg2img train``
(in a subprocess, ``--resume auto``, so an interrupted study picks up where it stopped), scores
it with :func:`sg2img.eval.evaluate_checkpoint` (by default through its EMA generator, the
export users get; ``generator="raw"`` through the raw generator of its last checkpoint) and
writes ``OUT/ablation.json``, ``OUT/ablation.md`` (the table), ``OUT/ablation.png`` (the same
validation graphs rendered by every variant from the ground-truth layout) and
``OUT/ablation_samples.png`` (four samples of one graph per variant); with ``generator="raw"``
the names end in ``_raw``. ``scripts/ablation.py`` is its command line.

The scores:

* FID (our procedural feature network) and object classification accuracy (overall and for
  small objects) on images generated from the **ground-truth layout**: the variants differ
  only in how they render a layout, so this isolates them;
* FID from the **predicted layout** (the full scene-graph-to-image path): from the mode
  layout, and from the layout drawn as ``generate()`` draws it (``layout_mode="sample"`` for a
  sampling layout head; a regress head has one layout, so the two figures are the same);
* layout recall R@0.5 (the graph network is the same architecture in every variant, but it is
  trained jointly with each renderer, so its boxes differ too);
* diversity (pixel, LPIPS and feature distance between two samples of each graph from the
  ground-truth layout) and the generator's parameter count;
* optionally (``bench_rounds``) each variant's training-step time relative to ``full``.

With ``AblationSettings.init_from`` every variant starts from one checkpoint
(``train.init_from``) with that checkpoint's model settings, so a study can fine-tune a finished
model, e.g. the bundled one's renderer (the ``render_*`` variants, which need it).
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)


@dataclass
class AblationSettings:
    """The budget every variant shares, and where the runs go."""

    data: Path                           # procedural dataset (COCO-Stuff format)
    out: Path = Path("runs/ablation")    # one run folder per variant, and the results
    preset: str = "small"
    steps: int = 1500                    # training steps per variant
    seed: int = 0
    jobs: int = 1                        # variants trained at once (one thread each when > 1)
    generator: str = "ema"               # "ema" (the export) | "raw" (last checkpoint's)
    bench_rounds: int = 0                # > 0: also time each variant's training step
    init_from: Path | None = None        # checkpoint every variant starts from (its model
    #                                      settings too): train.init_from

    def __post_init__(self) -> None:
        self.data, self.out = Path(self.data), Path(self.out)
        if self.generator not in ("ema", "raw"):
            raise ValueError(f"generator must be 'ema' or 'raw', got {self.generator!r}")
        if self.init_from is not None:
            self.init_from = Path(self.init_from)
            if not self.init_from.is_file():
                raise ValueError(f"init_from (--init-from) {self.init_from} is not a file; give a "
                                 f"checkpoint or an export to start every variant from (e.g. "
                                 f"sg2img/assets/default_model.pt)")


VARIANTS: dict[str, tuple[str, list[str]]] = {
    "global_only": ("global-affine only", ["model.renderer.use_local=false"]),
    "local_only": ("local class-specific only", ["model.renderer.use_global=false"]),
    "avg_no_cls": ("global + local, averaged, no class loss",
                   ["model.renderer.fusion=average", "model.renderer.use_class_loss=false"]),
    "avg_cls": ("global + local, averaged, class loss", ["model.renderer.fusion=average"]),
    "full": ("full: weight-map fusion + class loss", []),
    "c2f": ("full, coarse-to-fine (32 then 64)", ["model.renderer.coarse_to_fine=true"]),
    # Renderers of the seed papers, each on top of the full model.
    "cc": ("CC-FPSE generator (conditional convolutions)",
           ["model.renderer.global_generator=cc"]),
    "dp_gen": ("DP-GAN generator (dual pyramid)", ["model.renderer.global_generator=dp"]),
    "fpse_d": ("CC-FPSE discriminator (feature pyramid)", ["model.discriminator.kind=fpse"]),
    "dp_d": ("DP-GAN discriminator (scale enhancement)", ["model.discriminator.kind=dp"]),
    "spatial": ("spatial noise (OASIS 3-D)", ["model.renderer.noise=spatial"]),
    "spatial_ms": ("spatial noise + mode seeking",
                   ["model.renderer.noise=spatial", "loss.mode_seek_weight=1"]),
    "spatial_ms01": ("spatial noise + mode seeking at 0.1",
                     ["model.renderer.noise=spatial", "loss.mode_seek_weight=0.1"]),
    "spatial_no_l1": ("spatial noise, no image L1",
                      ["model.renderer.noise=spatial", "loss.l1_weight=0",
                       "loss.local_l1_weight=0"]),
    "edges": ("instance edges (pix2pixHD)", ["model.renderer.use_instance_edges=true"]),
    "spatial_ms001": ("spatial noise + mode seeking at 0.01",
                      ["model.renderer.noise=spatial", "loss.mode_seek_weight=0.01"]),
    "spatial_ms0001": ("spatial noise + mode seeking at 0.001",
                       ["model.renderer.noise=spatial", "loss.mode_seek_weight=0.001"]),
    "texture": ("spatial + texture noise, no image L1",
                ["model.renderer.noise=spatial", "model.renderer.texture_noise_dim=4",
                 "loss.l1_weight=0", "loss.local_l1_weight=0"]),
    "recon0": ("spatial noise, reconstruction on a noise-free sample",
               ["model.renderer.noise=spatial", "loss.recon_noise=zero"]),
    "recon0_ms001": ("spatial noise, reconstruction on a noise-free sample, mode seeking 0.01",
                     ["model.renderer.noise=spatial", "loss.recon_noise=zero",
                      "loss.mode_seek_weight=0.01"]),
    "recon0_texture": ("spatial + texture noise, reconstruction on a noise-free sample",
                       ["model.renderer.noise=spatial", "model.renderer.texture_noise_dim=4",
                        "loss.recon_noise=zero"]),
    # Attributes painted into the layout as channels, besides the graph network's embedding
    # (both are on in every preset now, so on data with attributes these equal `full`).
    "attr_layout": ("full, attributes also painted into the layout",
                    ["model.renderer.paint_attributes=true"]),
    "attr_layout_d": ("full, attributes in the layout and named by the object discriminator",
                      ["model.renderer.paint_attributes=true",
                       "model.discriminator.classify_attributes=true"]),
    # The width change before upsampling (the paper-scale presets' setting), against "full".
    "narrow_up": ("full, width change before the upsampling",
                  ["model.renderer.narrow_upsample=true"]),
    # The global generator at half the `small` preset's width (16 -> 8), on top of narrow_up:
    # the scaled-down form of `vg128` at half width (64 -> 32), the one option measured to
    # clear 1.5x sg2im's speed at 128 px (it failed its quality gate).
    "narrow_half": ("full, narrow upsampling, global generator at half width",
                    ["model.renderer.narrow_upsample=true", "model.renderer.channels=8"]),
    # Renderer stages on a finished two-stage model (AblationSettings.init_from): the layout
    # branch frozen as the start left it, the renderer and its graph network fine-tuned.
    "render_gt": ("renderer stage, ground-truth layouts only",
                  ["model.layout.use_own_gconv=true", "train.freeze_layout=true"]),
    "render_own": ("renderer stage + its own layouts (adversarial terms)",
                   ["model.layout.use_own_gconv=true", "train.freeze_layout=true",
                    "loss.own_layout_weight=1"]),
    "render_own01": ("renderer stage + its own layouts at a tenth of the weight",
                     ["model.layout.use_own_gconv=true", "train.freeze_layout=true",
                      "loss.own_layout_weight=0.1"]),
    "render_jitter": ("renderer stage, jittered ground-truth layouts",
                      ["model.layout.use_own_gconv=true", "train.freeze_layout=true",
                       "train.layout_jitter=0.1"]),
}
# Variants that fine-tune a finished model: they need AblationSettings.init_from.
NEEDS_INIT_FROM = ("render_gt", "render_own", "render_own01", "render_jitter")
# What runs without naming variants: the generator ablation (GALS-GAN's Table 6).
DEFAULT_VARIANTS = ["global_only", "local_only", "avg_no_cls", "avg_cls", "full", "c2f"]
# Variants trained in two phases: the overrides of the first, half-size phase.
COARSE_PHASE: dict[str, list[str]] = {"c2f": ["model.renderer.image_size=32"]}


def train_variant(name: str, settings: AblationSettings) -> Path:
    overrides, steps = list(VARIANTS[name][1]), settings.steps
    if name in COARSE_PHASE:   # same total step budget, split between the two phases
        coarse_steps = settings.steps // 2
        coarse = _train(f"{name}_coarse", COARSE_PHASE[name], coarse_steps, settings)
        ckpts = sorted((coarse.parent / "checkpoints").glob("ckpt_*.pt"))
        overrides.append(f"train.init_from={ckpts[-1]}")
        steps = settings.steps - coarse_steps
    return _train(name, overrides, steps, settings)


def start_overrides(settings: AblationSettings) -> list[str]:
    """The overrides every variant starts with: with ``settings.init_from``, that checkpoint's
    model settings where they differ from the preset's, then ``train.init_from`` itself (a
    variant's own overrides come after and win)."""
    if settings.init_from is None:
        return []
    from sg2img.checkpoint import load_checkpoint
    from sg2img.config import Config

    model = Config.from_dict(load_checkpoint(settings.init_from)["config"]).model
    preset = Config.from_preset(settings.preset).model
    out = []
    for group in ("layout", "renderer", "discriminator"):
        mine, theirs = asdict(getattr(model, group)), asdict(getattr(preset, group))
        out += [f"model.{group}.{k}={str(v).lower() if isinstance(v, bool) else v}"
                for k, v in mine.items() if v != theirs[k]]
    return [*out, f"train.init_from={settings.init_from}"]


def _train(name: str, overrides: list[str], steps: int, settings: AblationSettings) -> Path:
    run = settings.out / name
    export = run / "export.pt"
    done = run / "DONE"
    if done.exists() and export.exists():
        log.info("[%s] already trained (%s)", name, export)
        return export
    cmd = [sys.executable, "-m", "sg2img", "train", "--preset", settings.preset, "--data",
           str(settings.data), "--out", str(run), "--resume", "auto", "--device", "cpu",
           "--set", f"train.num_steps={steps}", "--set", f"train.seed={settings.seed}",
           "--set", f"train.sample_every={max(steps // 2, 1)}",
           "--set", "data.num_workers=1"]
    for override in [*start_overrides(settings), *overrides]:
        cmd += ["--set", override]
    log.info("[%s] %s", name, " ".join(cmd))
    env = dict(os.environ)
    if settings.jobs > 1:   # parallel runs share the cores: one thread each
        env.update(OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    t0 = time.time()
    with open(run.parent / f"{name}.log", "a") as run_log:
        subprocess.run(cmd, check=True, stdout=run_log, stderr=subprocess.STDOUT, env=env)
    done.write_text(f"{time.time() - t0:.0f} s\n")
    log.info("[%s] trained in %.0f s", name, time.time() - t0)
    return export


def raw_generator(name: str, settings: AblationSettings) -> Path:
    """An inference export of the variant's raw (non-EMA) generator at its last checkpoint."""
    from sg2img.checkpoint import export_inference, load_checkpoint

    last = sorted((settings.out / name / "checkpoints").glob("ckpt_*.pt"))[-1]
    path = settings.out / name / "raw_generator.pt"
    if not path.exists() or path.stat().st_mtime < last.stat().st_mtime:
        ck = load_checkpoint(last)
        export_inference(path, ck["config"], ck["vocab"], ck["generator"], step=ck["step"])
    return path


def wall_seconds(name: str, settings: AblationSettings) -> float:
    """Training wall time of a variant (both phases of a two-phase one)."""
    runs = [name] + ([f"{name}_coarse"] if name in COARSE_PHASE else [])
    return sum(float((settings.out / r / "DONE").read_text().split()[0]) for r in runs)


def score_variant(export: Path, settings: AblationSettings) -> dict:
    from sg2img.eval import evaluate_checkpoint

    common = dict(split="val", device="cpu", seed=settings.seed, samples_per_graph=1,
                  progress=False)
    from sg2img.checkpoint import build_generator
    from sg2img.model import count_parameters

    gen, _, _ = build_generator(export)
    gt = evaluate_checkpoint(export, settings.data, metrics=("fid", "obj_acc"),
                             use_gt_layout=True, **common)
    pred = evaluate_checkpoint(export, settings.data, metrics=("layout_recall", "fid"), **common)
    # The layout generate() draws: a sampling head's is a draw ("sample"), not its mode.
    fid_sampled = pred["metrics"]["fid"]["fid"]
    if getattr(gen, "samples_layout", False):
        fid_sampled = evaluate_checkpoint(export, settings.data, metrics=("fid",),
                                          layout_mode="sample", **common)["metrics"]["fid"]["fid"]
    # A separate pass: asking for diversity draws two samples per graph, which would change
    # the FID protocol of the first pass.
    div = evaluate_checkpoint(export, settings.data, metrics=("diversity",), use_gt_layout=True,
                              **common)
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
        "fid_pred_layout_sampled": fid_sampled,
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


def step_times(names: list[str], settings: AblationSettings, rounds: int) -> dict[str, float]:
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
            start = [o for o in start_overrides(settings) if not o.startswith("train.init_from=")]
            cfg = Config.from_preset(settings.preset,
                                     [*start, *VARIANTS[name][1], f"data.root={settings.data}",
                                      "data.num_workers=0", f"train.seed={settings.seed}"])
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
    log.info("step times (%d rotating rounds, %d threads): %s", rounds, torch.get_num_threads(),
             ", ".join(f"{n} {statistics.median(v) * 1000:.0f} ms" for n, v in times.items()))
    return {n: statistics.median(a / b for a, b in zip(times[n], times[ref], strict=True))
            for n in names}


def picture(exports: dict[str, Path], settings: AblationSettings, path: Path, n: int = 8) -> None:
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
            data = build_dataset(replace(cfg.data, root=str(settings.data)), "val",
                                 cfg.model.renderer.image_size, cfg.model.layout.mask_size)
            batch = collate_graphs([data[i] for i in range(n)])
            rows.append(to_pil(batch.images))
            titles.append("real")
        with torch.no_grad():
            out = gen(batch, use_gt_layout=True,
                      rng=torch.Generator().manual_seed(settings.seed))
        if len(rows) == 1:
            rows.append(to_pil(colorize_layout(out.layout)))
            titles.append("ground-truth layout")
        rows.append(to_pil(out.images))
        titles.append(VARIANTS[name][0])
        if out.weight_map is not None:
            rows.append(to_pil(out.weight_map[:, :1] * 2 - 1))
            titles.append(f"{VARIANTS[name][0]}: weight map (white = global, black = local)")
    make_sheet(rows, row_titles=titles, cell_height=96, pad=4).save(path)


def samples_picture(exports: dict[str, Path], settings: AblationSettings, path: Path,
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
            data = build_dataset(replace(cfg.data, root=str(settings.data)), "val",
                                 cfg.model.renderer.image_size, cfg.model.layout.mask_size)
            batch = collate_graphs([data[graph]])
            rows.append(to_pil(batch.images))
            titles.append("real")
        noise = torch.Generator().manual_seed(settings.seed)
        with torch.no_grad():
            images = torch.cat([gen(batch, use_gt_layout=True, rng=noise).images
                                for _ in range(k)])
        rows.append(to_pil(images))
        titles.append(VARIANTS[name][0])
    make_sheet(rows, row_titles=titles, cell_height=96, pad=4).save(path)


def table(results: dict[str, dict], settings: AblationSettings) -> str:
    def f(v: float | None, d: int = 3) -> str:
        return "n/a" if v is None or v != v else f"{v:.{d}f}"

    first = next(iter(results.values()))
    lines = [
        f"Procedural scenes {first['image_size']}x{first['image_size']}, validation split "
        f"({first['num_graphs']} graphs), preset `{settings.preset}`, {settings.steps} steps of "
        f"batch 16 per variant, seed {settings.seed}; "
        + ("each variant's raw generator at its last step (not the EMA copy)"
           if settings.generator == "raw" else "each variant's EMA generator (its export)")
        + (f", each fine-tuned from `{settings.init_from}`" if settings.init_from else "")
        + ". FID uses our procedural feature network "
        "(lower is better); object accuracy is Grid2Im's protocol with our crop "
        "classifier (small: box < 5 % of the image).",
        "",
        "| variant | FID (GT layout) | obj. acc. | obj. acc. small | FID (predicted layout) "
        "| FID (predicted layout, sampled) | layout R@0.5 | diversity (pixel) "
        "| diversity (features, ratio) | G params (M) | step time (x ref.) |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name, r in results.items():
        params = r.get("generator_params")
        lines.append(f"| {VARIANTS[name][0]} | {f(r['fid_gt_layout'], 2)} | {f(r['obj_acc'])} | "
                     f"{f(r['obj_acc_small'])} | {f(r['fid_pred_layout'], 2)} | "
                     f"{f(r.get('fid_pred_layout_sampled'), 2)} | "
                     f"{f(r['layout_R@0.5'])} | {f(r.get('diversity_pixel'))} | "
                     f"{f(r.get('diversity_feature'), 2)} ({f(r.get('diversity_feature_ratio'))}) "
                     f"| {f(None if params is None else params / 1e6, 2)} | "
                     f"{f(r.get('step_time_ratio'), 2)} |")
    r = next(iter(results.values()))
    if any(v.get("step_time_ratio") is not None for v in results.values()):
        lines += ["", f"Step time: one training step (G forward, D step, G step; batch 16) of "
                      f"each variant on the same batch, relative to `full` (or the first "
                      f"variant), median over {settings.bench_rounds} rotating rounds in one "
                      f"process (`--bench-rounds`)."]
    lines += ["", "FID (predicted layout): from the layout head's mode; sampled: from the layout "
                  "generate() draws (a sampling head's draw; a regress head's one layout)."]
    lines += ["", f"Real images through the same classifier: {f(r['real_crop_accuracy'])} overall, "
                  f"{f(r['real_crop_accuracy_small'])} on small objects "
                  f"({r['num_small_crops']} small crops)."]
    return "\n".join(lines) + "\n"


def check_variants(settings: AblationSettings, variants: Sequence[str]) -> None:
    """Raises ValueError for an unknown variant, or one that needs ``settings.init_from``
    without it, before anything trains."""
    unknown = [v for v in variants if v not in VARIANTS]
    if unknown:
        raise ValueError(f"unknown ablation variants {unknown}; known: {sorted(VARIANTS)}")
    starting = [v for v in variants if v in NEEDS_INIT_FROM]
    if starting and settings.init_from is None:
        raise ValueError(f"variants {starting} fine-tune a finished model's renderer: give the "
                         f"checkpoint to start from (AblationSettings.init_from, --init-from "
                         f"on the command line), e.g. sg2img/assets/default_model.pt")


def run_ablation(settings: AblationSettings, variants: Sequence[str] = tuple(DEFAULT_VARIANTS),
                 *, command: str = "") -> dict[str, Any]:
    """Train (or resume), score, draw and tabulate ``variants``; returns what ``ablation.json``
    holds (``command`` is recorded in it as the provenance)."""
    check_variants(settings, variants)
    variants = list(variants)
    settings.out.mkdir(parents=True, exist_ok=True)
    with ThreadPoolExecutor(max_workers=settings.jobs) as pool:
        futures = {name: pool.submit(train_variant, name, settings) for name in variants}
        for f in futures.values():
            f.result()
    exports = {name: (raw_generator(name, settings) if settings.generator == "raw"
                      else settings.out / name / "export.pt") for name in variants}
    results = {}
    for name, export in exports.items():
        # Scores are kept next to the export they measure, so a rerun (one more variant, an
        # interrupted scoring) only scores what changed.
        cache = export.parent / f"scores_{settings.generator}.json"
        # "scores" is the version of the score set (older caches are re-scored).
        key = {"export_mtime": export.stat().st_mtime, "seed": settings.seed, "scores": 4}
        cached = json.loads(cache.read_text()) if cache.exists() else {}
        if cached.get("key") == key:
            results[name] = cached["scores"]
            log.info("[%s] scores from %s", name, cache)
            continue
        log.info("[%s] evaluating", name)
        results[name] = score_variant(export, settings)
        cache.write_text(json.dumps({"key": key, "scores": results[name]}, indent=2) + "\n")
        log.info("[%s] %s", name, json.dumps(results[name]))
    if settings.bench_rounds > 0:
        for name, ratio in step_times(variants, settings, settings.bench_rounds).items():
            results[name] = {**results[name], "step_time_ratio": ratio}
    meta = {"command": command, "preset": settings.preset, "steps": settings.steps,
            "seed": settings.seed, "generator": settings.generator,
            "init_from": None if settings.init_from is None else str(settings.init_from),
            "start_overrides": start_overrides(settings),
            "variants": {n: {"title": VARIANTS[n][0], "overrides": VARIANTS[n][1],
                             "wall_seconds": wall_seconds(n, settings)}
                         for n in variants},
            "results": results}
    tag = "" if settings.generator == "ema" else "_raw"
    (settings.out / f"ablation{tag}.json").write_text(json.dumps(meta, indent=2) + "\n")
    (settings.out / f"ablation{tag}.md").write_text(table(results, settings))
    picture(exports, settings, settings.out / f"ablation{tag}.png")
    samples_picture(exports, settings, settings.out / f"ablation{tag}_samples.png")
    return meta
