"""Side by side: sg2im's ``forward_json`` against sg2img's ``generate()`` on sg2im's own example
scene graphs, with paper-scale architectures and random weights.

DIR is a checkout of google/sg2im that you provide (``git clone
https://github.com/google/sg2im DIR``); nothing of it is copied into this project. Usage::

    python scripts/bench_vs_sg2im.py --sg2im DIR                    # 5 rounds, 2 threads
    python scripts/bench_vs_sg2im.py --sg2im DIR --rounds 7 --json out.json
    python scripts/bench_vs_sg2im.py --sg2im DIR \\
        --set model.renderer.narrow_upsample=true                    # the cheaper generator
    python scripts/bench_vs_sg2im.py --sg2im DIR \\
        --also narrow:model.renderer.narrow_upsample=true            # both, same rounds
    python scripts/bench_vs_sg2im.py --sg2im DIR --precision bf16  # both under bf16 autocast
    python scripts/bench_vs_sg2im.py --sg2im DIR --precision bf16 --sg2im-precision fp32
    python scripts/bench_vs_sg2im.py --sg2im DIR --also bf16:precision=bf16  # fp32 and bf16
                                                   # sg2img in the same rounds as fp32 sg2im

Cases (sg2im side: its ``scripts/train.py`` defaults, i.e. embedding/graph width 128, hidden
512, 5 graph layers, 16x16 masks, 32 layout-noise channels, CRN dims 1024-512-256-128-64,
batch norm in eval mode; sg2img side: the named preset):

    figure_5_coco    64 px   sg2im COCO vocabulary size (184 objects, 7 predicates) / coco64
    figure_5_vg      64 px   VG vocabulary size (179 objects, 46 predicates)        / vg64
    figure_6_sheep  128 px   VG vocabulary size                                      / vg128

Both vocabularies hold the names of the JSON file, padded with filler names to the dataset's
size (the weights are random, so which names fill the rest does not matter; the class count
sets the sizes of the embedding and of the semantic layout).

Method: every measurement runs in a **fresh process** (``--worker``): build the model, one
untimed call (warm-up, also counted by ``torch.utils.flop_counter`` for GFLOP per image), then
``--repeats`` timed calls of all the file's graphs in one batch, whose median is the
measurement; the process's peak resident memory (``ru_maxrss``, so it includes Python and
torch themselves) is its peak memory. Rounds are interleaved: in each round every case runs
once per implementation (sg2im, sg2img, and each ``--also`` variant of sg2img), the order of
the implementations rotating from round to round. The table gives medians over rounds and the
**median of the per-round ratios** (sg2im time / sg2img time = sg2img's throughput relative to
sg2im's; > 1 means sg2img is faster).

Shims that let sg2im's 2018 code (written for torch 0.4) run on a modern torch, applied at
import time to sg2im's modules only, without editing its files:

* ``F.grid_sample``: torch 0.4 had no ``align_corners`` argument and behaved like
  ``align_corners=True``; the shim passes that explicitly (it also silences the warning).
* ``F.upsample`` (removed from recent torch): the shim maps it to ``F.interpolate``.

Each of ``sg2im.layout``, ``sg2im.crn``, ``sg2im.bilinear`` and ``sg2im.layers`` gets its own
stand-in for its module-level ``F`` that forwards everything else to ``torch.nn.functional``;
torch itself is not patched. sg2im's ``forward_json`` appends the image node to the caller's
dicts, so each timed call gets a fresh deep copy (made outside the timed region).
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import resource
import statistics
import subprocess
import sys
import types
from pathlib import Path

from sg2img.benchmark import (
    PRECISION_CHOICES,
    load_average,
    parse_variants,
    set_threads,
    thread_env,
    timed_calls,
    write_json,
)

CASES = {
    "figure_5_coco": {"preset": "coco64", "size": 64, "objects": 184, "preds": 7},
    "figure_5_vg": {"preset": "vg64", "size": 64, "objects": 179, "preds": 46},
    "figure_6_sheep": {"preset": "vg128", "size": 128, "objects": 179, "preds": 46},
}
SG2IM_TRAIN_DEFAULTS = dict(embedding_dim=128, gconv_dim=128, gconv_hidden_dim=512,
                            gconv_num_layers=5, mlp_normalization="none",
                            refinement_dims=(1024, 512, 256, 128, 64), normalization="batch",
                            activation="leakyrelu-0.2", mask_size=16, layout_noise_dim=32)


# ----------------------------------------------------------------------------- shared
def load_graphs(sg2im_dir: Path, case: str) -> list[dict]:
    path = sg2im_dir / "scene_graphs" / f"{case}.json"
    if not path.is_file():
        raise SystemExit(f"{path} not found: --sg2im must be a checkout of google/sg2im")
    if path.stat().st_size > 1_000_000:
        raise SystemExit(f"{path} is larger than 1 MB; not an sg2im example file")
    graphs = json.loads(path.read_text())
    return graphs if isinstance(graphs, list) else [graphs]


def vocab_names(graphs: list[dict], num_objects: int, num_preds: int) -> tuple[list, list]:
    """Object and predicate names (without the image node / in-image predicate) of the graphs,
    padded with fillers so that, with those two, there are ``num_objects`` / ``num_preds``."""
    objs = sorted({o for g in graphs for o in g["objects"]})
    preds = sorted({r[1] for g in graphs for r in g["relationships"]})
    objs += [f"filler_object_{i}" for i in range(num_objects - 1 - len(objs))]
    preds += [f"filler_pred_{i}" for i in range(num_preds - 1 - len(preds))]
    return objs, preds


# ----------------------------------------------------------------------------- sg2im side
class _FunctionalShim(types.ModuleType):
    """``torch.nn.functional`` as sg2im (torch 0.4) expects it."""

    def __init__(self):
        super().__init__("sg2im_functional_shim")
        import torch.nn.functional as F

        self._F = F

    def __getattr__(self, name):
        return getattr(self._F, name)

    def grid_sample(self, input, grid, mode="bilinear", padding_mode="zeros", **kwargs):
        kwargs.setdefault("align_corners", True)   # torch 0.4 behaviour
        return self._F.grid_sample(input, grid, mode=mode, padding_mode=padding_mode, **kwargs)

    def upsample(self, input, size=None, scale_factor=None, mode="nearest", align_corners=None):
        return self._F.interpolate(input, size=size, scale_factor=scale_factor, mode=mode,
                                   align_corners=align_corners)


def import_sg2im(sg2im_dir: Path):
    sys.path.insert(0, str(sg2im_dir))
    import importlib

    shim = _FunctionalShim()
    for name in ("sg2im.layers", "sg2im.layout", "sg2im.crn", "sg2im.bilinear"):
        importlib.import_module(name).F = shim
    from sg2im.model import Sg2ImModel

    return Sg2ImModel


def sg2im_worker(sg2im_dir: Path, case: str, repeats: int, precision: str = "fp32") -> dict:
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    Sg2ImModel = import_sg2im(sg2im_dir)
    spec = CASES[case]
    graphs = load_graphs(sg2im_dir, case)
    objs, preds = vocab_names(graphs, spec["objects"], spec["preds"])
    obj_names = ["__image__", *objs]
    pred_names = ["__in_image__", *preds]
    vocab = {"object_idx_to_name": obj_names, "pred_idx_to_name": pred_names,
             "object_name_to_idx": {n: i for i, n in enumerate(obj_names)},
             "pred_name_to_idx": {n: i for i, n in enumerate(pred_names)}}
    torch.manual_seed(0)
    model = Sg2ImModel(vocab, image_size=(spec["size"], spec["size"]),
                       **SG2IM_TRAIN_DEFAULTS).eval()
    copies = [copy.deepcopy(graphs) for _ in range(repeats + 1)]
    if precision == "bf16":
        # As generate(precision="bf16") does: only the renderer (sg2im's cascaded refinement
        # network) under bfloat16 autocast; its graph convolution's scatter_add fails under
        # autocast anyway.
        crn_forward = model.refinement_net.forward

        def bf16_forward(layout):
            with torch.autocast("cpu", dtype=torch.bfloat16):
                return crn_forward(layout).float()
        model.refinement_net.forward = bf16_forward
    with torch.no_grad():
        with FlopCounterMode(display=False) as fc:
            imgs = model.forward_json(copies.pop())[0]
        assert imgs.shape == (len(graphs), 3, spec["size"], spec["size"]), imgs.shape
        times = timed_calls(lambda: model.forward_json(copies.pop()), repeats)
    return {"flops_per_image": fc.get_total_flops() / len(graphs), "times": times}


# ----------------------------------------------------------------------------- sg2img side
def sg2img_worker(sg2im_dir: Path, case: str, repeats: int, overrides: list[str],
                  compile_model: bool, precision: str = "fp32") -> dict:
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    from sg2img.api import SG2ImgModel, generate
    from sg2img.config import Config
    from sg2img.model import GALSGenerator
    from sg2img.vocab import Vocab

    spec = CASES[case]
    graphs = load_graphs(sg2im_dir, case)
    vocab = Vocab.from_names(*vocab_names(graphs, spec["objects"], spec["preds"]))
    cfg = Config.from_preset(spec["preset"], overrides)
    torch.manual_seed(0)
    G = GALSGenerator(cfg.model, vocab.num_objects, vocab.num_preds).eval()
    G.requires_grad_(False)
    model = SG2ImgModel(G, cfg, vocab)
    kwargs = {"compile": True} if compile_model else {}
    kwargs["precision"] = precision
    with FlopCounterMode(display=False) as fc:
        res = generate(graphs, model, seed=0, **kwargs)
    assert res.tensors.shape == (len(graphs), 3, spec["size"], spec["size"])
    if compile_model:   # the flop counter's run does not compile; warm the compiled graph up
        generate(graphs, model, seed=0, **kwargs)
    times = timed_calls(lambda: generate(graphs, model, seed=0, **kwargs), repeats)
    return {"flops_per_image": fc.get_total_flops() / len(graphs), "times": times}


# ----------------------------------------------------------------------------- driver
def parse_also(specs: list[str]) -> tuple[dict[str, list[str]], dict[str, str]]:
    """``--also LABEL:KEY=VALUE,...`` -> ({"sg2img[LABEL]": config overrides},
    {"sg2img[LABEL]": precision}), or exit with the message of ``parse_variants``."""
    try:
        return parse_variants(specs, "--also")
    except ValueError as e:
        raise SystemExit(str(e)) from None


def run_worker(args: argparse.Namespace, impl: str, case: str) -> dict:
    worker, overrides, precision = "sg2im", [], args.precision
    if impl != "sg2im":
        worker, overrides = "sg2img", args.set + args.variants.get(impl, [])
        precision = args.variant_precision.get(impl, args.precision)
    cmd = [sys.executable, __file__, "--worker", worker, "--case", case, "--sg2im",
           str(args.sg2im), "--repeats", str(args.repeats), "--threads", str(args.threads)]
    for o in overrides:
        cmd += ["--set", o]
    if args.compile:
        cmd.append("--compile")
    cmd += ["--precision", precision, "--sg2im-precision", args.sg2im_precision]
    out = subprocess.run(cmd, capture_output=True, text=True, env=thread_env(args.threads))
    if out.returncode != 0:
        raise SystemExit(f"{impl} {case} failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--sg2im", type=Path, required=True, help="checkout of google/sg2im")
    p.add_argument("--cases", nargs="+", default=list(CASES), choices=list(CASES))
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--repeats", type=int, default=3, help="timed calls per process")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="config override for the sg2img presets")
    p.add_argument("--also", action="append", default=[], metavar="LABEL:KEY=VALUE,...",
                   help="another sg2img variant measured in the same rounds: config "
                        "overrides, and precision=fp32|bf16 for generate()'s precision")
    p.add_argument("--compile", action="store_true", help="generate(..., compile=True)")
    p.add_argument("--precision", choices=PRECISION_CHOICES, default="fp32",
                   help="generate(..., precision=...) for sg2img")
    p.add_argument("--sg2im-precision", choices=PRECISION_CHOICES, default=None,
                   help="sg2im's forward_json under bfloat16 autocast or not (default: the "
                        "same as --precision, so both sides compute alike)")
    p.add_argument("--json", type=Path, help="write all measurements here")
    p.add_argument("--worker", choices=("sg2im", "sg2img"), help=argparse.SUPPRESS)
    p.add_argument("--case", choices=list(CASES), help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.sg2im_precision is None:
        args.sg2im_precision = args.precision

    if args.worker:
        set_threads(args.threads)
        if args.worker == "sg2im":
            res = sg2im_worker(args.sg2im, args.case, args.repeats, args.sg2im_precision)
        else:
            res = sg2img_worker(args.sg2im, args.case, args.repeats, args.set, args.compile,
                                args.precision)
        res["median_s"] = statistics.median(res["times"])
        res["peak_rss_gib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
        print(json.dumps(res))
        return

    for case in args.cases:
        load_graphs(args.sg2im, case)
    args.variants, args.variant_precision = parse_also(args.also)
    impls = ["sg2im", "sg2img", *args.variants]
    load = load_average()
    print(f"{args.rounds} interleaved rounds, {args.threads} threads, {args.repeats} timed "
          f"calls per fresh process; load average before: {load[0]:.2f} {load[1]:.2f} "
          f"{load[2]:.2f} on {os.cpu_count()} CPUs; sg2img overrides: {args.set or 'none'}"
          f"{', compile=True' if args.compile else ''}; precision sg2im {args.sg2im_precision}"
          f", sg2img {args.precision}", flush=True)
    results: dict[str, dict[str, list[dict]]] = {c: {k: [] for k in impls} for c in args.cases}
    for r in range(args.rounds):
        for case in args.cases:
            order = impls[r % len(impls):] + impls[:r % len(impls)]
            for impl in order:
                results[case][impl].append(run_worker(args, impl, case))
            a = results[case]["sg2im"][-1]["median_s"]
            line = "  ".join(f"{k} {results[case][k][-1]['median_s'] * 1000:.0f} ms "
                             f"(ratio {a / results[case][k][-1]['median_s']:.2f})"
                             for k in impls[1:])
            print(f"  round {r + 1} {case:15s} sg2im {a * 1000:.0f} ms  {line}", flush=True)

    rows = []
    for case, impl in [(c, k) for c in args.cases for k in impls[1:]]:
        s, g = results[case]["sg2im"], results[case][impl]
        ratios = [x["median_s"] / y["median_s"] for x, y in zip(s, g, strict=True)]
        n = len(load_graphs(args.sg2im, case))
        rows.append({
            "case": case, "impl": impl, "image_size": CASES[case]["size"], "graphs": n,
            "preset": CASES[case]["preset"],
            "sg2im_ms": 1000 * statistics.median(x["median_s"] for x in s),
            "sg2img_ms": 1000 * statistics.median(x["median_s"] for x in g),
            "ratio_median": statistics.median(ratios), "ratios": ratios,
            "sg2im_gflop_per_image": s[0]["flops_per_image"] / 1e9,
            "sg2img_gflop_per_image": g[0]["flops_per_image"] / 1e9,
            "sg2im_peak_rss_gib": max(x["peak_rss_gib"] for x in s),
            "sg2img_peak_rss_gib": max(x["peak_rss_gib"] for x in g)})
    print("\n| case | sg2im `forward_json` | sg2img `generate()` | throughput ratio (median of "
          "rounds, min-max) | GFLOP/image sg2im / sg2img | peak RSS GiB sg2im / sg2img |")
    print("|---|---|---|---|---|---|")
    for x in rows:
        label = "" if x["impl"] == "sg2img" else f" {x['impl'][6:]}"
        print(f"| {x['case']}{label}, {x['image_size']} px, {x['graphs']} graphs | "
              f"{x['sg2im_ms']:.0f} ms "
              f"| {x['sg2img_ms']:.0f} ms | {x['ratio_median']:.2f} ({min(x['ratios']):.2f}-"
              f"{max(x['ratios']):.2f}) | {x['sg2im_gflop_per_image']:.1f} / "
              f"{x['sg2img_gflop_per_image']:.1f} | {x['sg2im_peak_rss_gib']:.2f} / "
              f"{x['sg2img_peak_rss_gib']:.2f} |")
    load = load_average()
    print(f"load average after: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")
    if args.json:
        write_json(args.json, {"command": " ".join(sys.argv), "rounds": args.rounds,
                               "threads": args.threads, "overrides": args.set,
                               "compile": args.compile, "precision": args.precision,
                               "sg2im_precision": args.sg2im_precision, "rows": rows,
                               "raw": results}, indent=1)


if __name__ == "__main__":
    main()
