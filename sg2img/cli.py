"""The ``sg2img`` command: ``generate``, ``manipulate``, ``train``, ``evaluate`` and ``serve``.

Each subcommand is a function taking the parsed arguments and returning an exit code. Heavy
modules (torch, the model) are imported inside them so that ``sg2img --help`` starts fast.
Library errors (``ValueError`` subclasses such as ``SceneGraphError``, ``VocabError``,
``CheckpointError``, ``ConfigError``) and file errors become one line on stderr and exit
status 2; ``--debug`` shows the traceback instead.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import sys
import tempfile
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

PROG = "sg2img"
EXIT_USAGE = 2
EXIT_INTERNAL = 1

_MAIN_EPILOG = """\
examples:
  sg2img generate examples/sheep.json --out outputs --seed 0 --save-layout --draw-graph
  sg2img manipulate examples/lake.json examples/edits/lake.json --out outputs/edits
  sg2img train --preset small --data data/shapes64 --out runs/small
  sg2img evaluate --checkpoint runs/small/export.pt --data data/shapes64 --out report.json

Run 'sg2img COMMAND --help' for a command's options.
"""

_GENERATE_EPILOG = """\
Reads sg2im's scene graph JSON (one graph, or a list of graphs, per file) and writes, for
graph i of FILE.json and sample s:
  OUT/FILE_{i:03d}_s{s}.png       the image
  OUT/FILE_{i:03d}_layout.png     with --save-layout: coloured masks, boxes and labels
  OUT/FILE_{i:03d}_graph.png      with --draw-graph: a drawing of the scene graph
  OUT/FILE_sheet.png              with --sheet: rows of graph | layout | image
Nothing is written when an input is bad.

examples:
  sg2img generate examples/sheep.json
  sg2img generate examples/*.json --out outputs/demo --seed 1 --samples 4 --save-layout
  sg2img generate my_graphs.json --checkpoint runs/small/export.pt --size 128 --device cuda
  sg2img generate sheep.json --checkpoint runs/spatial/export.pt --samples 4 --resample-object 2
    (a model trained with model.noise=spatial: _s0 is the scene, _s1.._s3 other looks of
    object 2, everything else kept)
"""

_MANIPULATE_EPILOG = """\
Generates GRAPH, then applies the edits in EDITS.json one after another, regenerating after
each with the same noise while the objects an edit does not touch keep their boxes and masks.
Writes OUT/GRAPH_step00.png (the original), OUT/GRAPH_step{k:02d}.png (after edit k),
OUT/GRAPH_manipulation.png (before | after | layouts, one row per edit) and
OUT/GRAPH_steps.json (the graph after each edit and the pixel change inside and outside the
edited region).

EDITS.json is a list of edits; indices refer to the graph as left by the previous edit:
  [{"op": "add", "object": "boat", "relationship": ["new", "inside", 1]},
   {"op": "remove", "index": 2},
   {"op": "replace", "index": 0, "object": "cow"},
   {"op": "predicate", "relationship": 1, "predicate": "left of"},
   {"op": "move", "index": 2, "box": [0.1, 0.5, 0.4, 0.8]},
   {"op": "attributes", "index": 2, "attributes": ["red"]},
   {"op": "resample", "index": 2}]
("attributes" needs a model trained with attributes; the object keeps its box and mask.
"resample" gives the object another look, new noise in the same box and mask; it needs a
model trained with model.noise=spatial.)

examples:
  sg2img manipulate examples/lake.json examples/edits/lake.json --out outputs/edits
  sg2img manipulate examples/scenes.json edits.json --index 2 --seed 3 --out outputs/edits
"""

_TRAIN_EPILOG = """\
examples:
  sg2img train --preset small --data data/shapes64 --out runs/small
  sg2img train --preset tiny --data data/shapes64 --set train.num_steps=20 --out runs/tiny
  sg2img train --preset small --data data/shapes64 --out runs/small --resume auto
  torchrun --standalone --nproc_per_node=2 -m sg2img train --preset coco64 \\
      --data data/coco --out runs/coco64
"""

_EVALUATE_EPILOG = """\
examples:
  sg2img evaluate --checkpoint runs/small/export.pt --data data/shapes64 --out report.json
  sg2img evaluate --checkpoint runs/small/export.pt --split test --metrics layout_recall fid \\
      --samples-per-graph 2 --seed 0 --out report.json
  sg2img evaluate --checkpoint runs/small/export.pt --data data/shapes64 \
      --metrics layout_recall --layout-baseline
  sg2img evaluate --box-file other_system_boxes.json --data data/shapes64 --split val
"""


class _Parser(argparse.ArgumentParser):
    """An argument parser whose usage errors are one line on stderr (exit status 2)."""

    def error(self, message: str) -> None:  # type: ignore[override]
        message = " ".join(message.split())
        if len(message) > 300:
            message = message[:297] + "..."
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see '{self.prog} --help')\n")


_MAX_INT_DIGITS = 20


def _bounded_int(lo: int, hi: int | None = None):
    """An argparse type: an integer in ``lo..hi`` (digits bounded before converting)."""

    def parse(text: str) -> int:
        shown = text if len(text) <= 40 else text[:37] + "..."
        digits = text.strip().lstrip("+-")
        if len(digits) > _MAX_INT_DIGITS or not digits.isdigit():
            raise argparse.ArgumentTypeError(f"expected an integer, got {shown!r}")
        value = int(text)
        if value < lo or (hi is not None and value > hi):
            rng = f"in {lo}..{hi}" if hi is not None else f"at least {lo}"
            raise argparse.ArgumentTypeError(f"must be {rng}, got {value}")
        return value

    parse.__name__ = "integer"
    return parse


_SEED = _bounded_int(0, 2**64 - 1)   # what torch.Generator.manual_seed accepts
_COUNT = _bounded_int(1)
_INDEX = _bounded_int(0)


class _Formatter(argparse.RawDescriptionHelpFormatter):
    """Keeps the epilog's line breaks and shows defaults of options that have one."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        default = action.default
        if ("%(default)" not in text and action.option_strings and default is not None
                and default is not False and default != argparse.SUPPRESS and default != []):
            text += " (default: %(default)s)"
        return text


def _common() -> argparse.ArgumentParser:
    """Options every subcommand accepts (also before the subcommand)."""
    p = _Parser(add_help=False)
    p.add_argument("--debug", action="store_true", default=argparse.SUPPRESS,
                   help="show the full traceback on errors")
    p.add_argument("-v", "--verbose", action="store_true", default=argparse.SUPPRESS,
                   help="log progress (INFO level) to stderr")
    return p


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``sg2img`` command."""
    common = _common()
    parser = _Parser(
        prog=PROG, formatter_class=_Formatter, epilog=_MAIN_EPILOG,
        description="Scene graph to image generation with GALS-GAN.")
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    parser.add_argument("--debug", action="store_true", default=False,
                        help="show the full traceback on errors")
    parser.add_argument("-v", "--verbose", action="store_true", default=False,
                        help="log progress (INFO level) to stderr")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True,
                                parser_class=_Parser)

    # ---------------------------------------------------------------- generate
    g = sub.add_parser("generate", parents=[common], formatter_class=_Formatter,
                       help="generate images from scene graph JSON files",
                       description="Generate images from scene graphs.", epilog=_GENERATE_EPILOG)
    g.add_argument("graphs", nargs="+", metavar="GRAPHS.json",
                   help="JSON file with one scene graph or a list of them (sg2im's format)")
    _model_args(g)
    g.add_argument("--out", default="outputs", metavar="DIR", help="output folder")
    g.add_argument("--seed", type=_SEED, default=0, metavar="N", help="noise seed")
    g.add_argument("--samples", type=_COUNT, default=1, metavar="K", help="images per graph")
    g.add_argument("--size", type=_COUNT, default=None, metavar="PX",
                   help="output size, e.g. 64 or 128 (default: the model's size; other sizes "
                        "are resized)")
    g.add_argument("--save-layout", action="store_true",
                   help="also write each graph's predicted layout (masks, boxes, labels)")
    g.add_argument("--draw-graph", action="store_true",
                   help="also write a drawing of each scene graph")
    g.add_argument("--sheet", action="store_true",
                   help="also write one sheet per file with rows of graph | layout | image")
    g.add_argument("--layout-mode", choices=("sample", "mode"), default=None,
                   help="with a sampling layout head (model.layout_head=sample): 'sample' draws "
                        "each image's layout from --seed (the default), 'mode' takes the most "
                        "likely layout for every image; a regress head has one layout")
    g.add_argument("--batch-size", type=_COUNT, default=32, metavar="B",
                   help="images per forward pass")
    g.add_argument("--resample-object", type=_INDEX, nargs="+", default=None, metavar="I",
                   help="with a model trained with model.noise=spatial: sample 0 is the scene, "
                        "samples 1..K-1 redraw only these objects' noise (indices into each "
                        "graph's objects) and keep everything else; needs --samples 2 or more")
    g.add_argument("--precision", choices=("fp32", "bf16"), default="fp32",
                   help="bf16 renders the image under bfloat16 autocast (the layout stays "
                        "fp32): 1.8x faster on a CPU with AVX512-BF16, slower without it")
    g.set_defaults(func=cmd_generate)

    # -------------------------------------------------------------- manipulate
    m = sub.add_parser("manipulate", parents=[common], formatter_class=_Formatter,
                       help="edit a scene graph and regenerate its image consistently",
                       description="Manipulate a generated image by editing its scene graph.",
                       epilog=_MANIPULATE_EPILOG)
    m.add_argument("graph", metavar="GRAPH.json", help="JSON file with the scene graph")
    m.add_argument("edits", metavar="EDITS.json", help="JSON file with a list of edits")
    _model_args(m)
    m.add_argument("--index", type=_INDEX, default=None, metavar="I",
                   help="which graph of GRAPH.json when it holds a list")
    m.add_argument("--out", default="outputs", metavar="DIR", help="output folder")
    m.add_argument("--seed", type=_SEED, default=0, metavar="N", help="noise seed")
    m.add_argument("--size", type=_COUNT, default=None, metavar="PX",
                   help="output size (default: the model's size)")
    m.set_defaults(func=cmd_manipulate)

    # ------------------------------------------------------------------- train
    t = sub.add_parser("train", parents=[common], formatter_class=_Formatter,
                       help="train a model", description="Train GALS-GAN.",
                       epilog=_TRAIN_EPILOG)
    t.add_argument("--preset", default="small", metavar="NAME",
                   help="config preset: tiny, small, coco64, coco128, vg64, vg128")
    t.add_argument("--data", default=None, metavar="DIR",
                   help="dataset folder (sets data.root)")
    t.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="config override such as model.gconv_dim=64 (repeatable)")
    t.add_argument("--out", required=True, metavar="RUN_DIR", help="run folder")
    t.add_argument("--resume", nargs="?", const="auto", default=None, metavar="CKPT|auto",
                   help="resume from a checkpoint, or the run folder's latest with 'auto'")
    t.add_argument("--device", default=None, metavar="DEVICE",
                   help="cpu, cuda or cuda:N (default: CUDA when available)")
    t.set_defaults(func=cmd_train)

    # ---------------------------------------------------------------- evaluate
    e = sub.add_parser("evaluate", parents=[common], formatter_class=_Formatter,
                       help="evaluate a model on a dataset split",
                       description="Evaluate a checkpoint (layout recall, FID, IS, object "
                                   "accuracy, diversity).", epilog=_EVALUATE_EPILOG)
    e.add_argument("--checkpoint", default=None, metavar="CKPT",
                   help="training checkpoint or inference export")
    e.add_argument("--box-file", default=None, metavar="BOXES.json",
                   help="score another system's predicted boxes (layout recall only) instead "
                        "of a checkpoint; needs --data")
    e.add_argument("--data", default=None, metavar="DIR",
                   help="dataset folder (default: the one in the checkpoint's config)")
    e.add_argument("--split", default="val", choices=("val", "test"), help="dataset split")
    e.add_argument("--metrics", nargs="+", default=None, metavar="NAME",
                   help="metrics to compute (default: all that apply): layout_recall fid is "
                        "obj_acc diversity layout, and attr_acc attr_swap when the data and "
                        "the model have attributes")
    e.add_argument("--gt-layout", action="store_true",
                   help="render from the ground-truth boxes and masks instead of the predicted "
                        "layout: scores the renderer alone (layout metrics still score the "
                        "predicted boxes)")
    e.add_argument("--precision", choices=("fp32", "bf16"), default="fp32",
                   help="render under bfloat16 autocast, as generate --precision bf16 does "
                        "(to measure what it costs)")
    e.add_argument("--layout-mode", choices=("mode", "sample"), default="mode",
                   help="render every image from the most likely layout (mode), or from a "
                        "layout sampled per image as generate does with a sampling layout "
                        "head, so that FID and diversity see the layouts users get (layout "
                        "metrics score the mode either way)")
    e.add_argument("--samples-per-graph", type=_COUNT, default=1, metavar="K",
                   help="images generated per scene graph")
    e.add_argument("--layout-baseline", action="store_true",
                   help="also score the mean-class-box layout baseline (each class's mean "
                        "training box)")
    e.add_argument("--batch-size", type=_COUNT, default=32, metavar="N",
                   help="scene graphs per generator call")
    e.add_argument("--inception-weights", default=None, metavar="FILE",
                   help="InceptionV3 weights for FID/IS on data other than the procedural "
                        "scenes (weights-inception-2015-12-05-6726825d.pth)")
    e.add_argument("--lpips-weights", default=None, metavar="FILE",
                   help="AlexNet weights for LPIPS diversity (alexnet-owt-7be5be79.pth)")
    e.add_argument("--boxes-out", default=None, metavar="BOXES.json",
                   help="write the predicted boxes as a box file")
    e.add_argument("--dataset", default="coco", choices=("coco", "vg"),
                   help="dataset format for --box-file")
    e.add_argument("--image-size", type=_COUNT, default=64, metavar="S",
                   help="image size used to read the dataset for --box-file")
    e.add_argument("--out", default=None, metavar="REPORT",
                   help="report file: REPORT.json and REPORT.md (default: print only)")
    e.add_argument("--seed", type=_SEED, default=0, metavar="N", help="noise seed")
    e.add_argument("--device", default=None, metavar="DEVICE",
                   help="cpu, cuda or cuda:N (default: CUDA when available)")
    e.set_defaults(func=cmd_evaluate)

    # ------------------------------------------------------------------- serve
    v = sub.add_parser("serve", parents=[common], formatter_class=_Formatter,
                       help="interactive scene graph editor in the browser",
                       description="Serve the scene graph editor page and its JSON API "
                                   "(needs: pip install 'sg2img[serve]').",
                       epilog="examples:\n  sg2img serve\n"
                              "  sg2img serve --checkpoint runs/small/export.pt --port 8080\n")
    v.add_argument("--checkpoint", action="append", default=[], metavar="CKPT",
                   help="also offer this checkpoint (repeatable); the bundled model is first")
    v.add_argument("--host", default="127.0.0.1",
                   help="address to bind; anything but loopback lets other machines in")
    v.add_argument("--port", type=int, default=8000, help="port to bind (0: a free one)")
    v.add_argument("--device", default=None, metavar="DEVICE",
                   help="cpu, cuda or cuda:N (default: CUDA when available)")
    v.add_argument("--queue-size", type=int, default=8, metavar="N",
                   help="requests that may wait while one runs; more get 503")
    v.set_defaults(func=cmd_serve)
    return parser


def _model_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--checkpoint", default=None, metavar="CKPT",
                   help="checkpoint or inference export (default: the bundled model)")
    p.add_argument("--device", default=None, metavar="DEVICE",
                   help="cpu, cuda or cuda:N (default: CUDA when available)")


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("sg2img")
    except PackageNotFoundError:
        return "unknown"


# --------------------------------------------------------------------------- output
class _Staging:
    """Write files into a hidden temp folder inside ``out``, then move them all into place.

    On an error nothing is left behind: the temp folder goes, and so does ``out`` when this
    run created it.
    """

    def __init__(self, out: str | os.PathLike):
        self.out = Path(out)
        self.paths: list[Path] = []

    def __enter__(self) -> _Staging:
        if self.out.exists() and not self.out.is_dir():
            raise NotADirectoryError(f"--out {self.out} exists and is not a folder")
        self.created = not self.out.exists()
        self.out.mkdir(parents=True, exist_ok=True)
        from .files import TEMP_PREFIX, remove_stale_temp_files

        # A run killed mid-write left its staging folder; clean it now (not ones in use).
        remove_stale_temp_files(self.out)
        self.tmp = Path(tempfile.mkdtemp(prefix=TEMP_PREFIX, dir=self.out))
        return self

    def path(self, name: str) -> Path:
        """Where to write ``name`` now (inside the temp folder)."""
        self.paths.append(self.out / name)
        return self.tmp / name

    def __exit__(self, exc_type, exc, tb) -> None:
        try:
            if exc_type is None:
                for final in self.paths:
                    os.replace(self.tmp / final.name, final)
        finally:
            shutil.rmtree(self.tmp, ignore_errors=True)
            if exc_type is not None and self.created:
                shutil.rmtree(self.out, ignore_errors=True)


def _report(files: Sequence[Path], out: Path) -> None:
    print(f"wrote {len(files)} file{'s' * (len(files) != 1)} to {out}/")
    for f in files:
        print(f"  {f}")


# --------------------------------------------------------------------------- commands
def _stems(paths: Sequence[str]) -> list[str]:
    stems = [Path(p).stem for p in paths]
    seen: dict[str, str] = {}
    for p, s in zip(paths, stems, strict=True):
        if s in seen:
            raise _UsageError(f"two input files would write the same names '{s}_*.png': "
                              f"{seen[s]} and {p}; rename one")
        seen[s] = p
    return stems


class _UsageError(ValueError):
    """A command-line argument combination that cannot work."""


def cmd_generate(args: argparse.Namespace) -> int:
    """``sg2img generate``: images (and optionally layouts, graph drawings, sheets)."""
    stems = _stems(args.graphs)
    if args.resample_object is not None and args.samples < 2:
        raise _UsageError("--resample-object shows the new looks in samples 1..K-1; give "
                          "--samples 2 or more (sample 0 is the scene itself)")
    from .api import GenerationError, generate, load_model
    from .scene_graph import SceneGraphError, load_scene_graphs

    # Read and check every file before the model loads or anything is written.
    per_file = [load_scene_graphs(p) for p in args.graphs]
    model = load_model(args.checkpoint, args.device)
    graphs = [g for gs in per_file for g in gs]
    try:
        result = generate(graphs, model, seed=args.seed, num_samples=args.samples,
                          image_size=args.size, batch_size=args.batch_size,
                          layout_mode=args.layout_mode, resample_object=args.resample_object,
                          precision=args.precision)
    except SceneGraphError as e:
        # Name the file and the graph in it rather than the position in the combined list.
        raise SceneGraphError(_locate(e, args.graphs, per_file)) from None
    except GenerationError as e:
        if e.graph is None:
            raise
        raise GenerationError(_locate(e, args.graphs, per_file)) from None
    with _Staging(args.out) as stage:
        k = 0
        for stem, gs in zip(stems, per_file, strict=True):
            first = k
            for i in range(len(gs)):
                base = f"{stem}_{i:03d}"
                for s in range(args.samples):
                    result.images[k + s].save(stage.path(f"{base}_s{s}.png"))
                if args.save_layout:
                    result.draw_layout(k).save(stage.path(f"{base}_layout.png"))
                if args.draw_graph:
                    result.draw_graph(k).save(stage.path(f"{base}_graph.png"))
                k += args.samples
            if args.sheet:
                _file_sheet(result, first, k, args.samples,
                            args.resample_object is not None).save(
                    stage.path(f"{stem}_sheet.png"))
    _report(stage.paths, stage.out)
    return 0


def _locate(error: Any, paths: Sequence[str], per_file: Sequence[Sequence[Any]]) -> str:
    """The message of an error about graph ``error.graph`` of all files together
    (``graph 5: ...``), naming the file and the graph in it instead (``FILE graph 2: ...``)."""
    msg = str(error)
    if error.graph is None:
        return msg if len(paths) > 1 else f"{paths[0]}: {msg}"
    idx, rest = error.graph, msg.removeprefix(f"graph {error.graph}: ")
    for p, gs in zip(paths, per_file, strict=True):
        if idx < len(gs):
            return f"{p} graph {idx}: {rest}" if len(gs) > 1 else f"{p}: {rest}"
        idx -= len(gs)
    return msg


def _file_sheet(result: Any, lo: int, hi: int, samples: int, looks: bool = False) -> Any:
    """Rows graph | layout | samples; with ``looks`` (--resample-object) the samples are
    titled as the scene and its other looks."""
    from . import vis

    rows, titles = [], []
    for k in range(lo, hi, samples):
        rows.append([result.draw_graph(k, "TB"), result.draw_layout(k),
                     *result.images[k:k + samples]])
        titles.append(f"graph {result.graph_index[k] - result.graph_index[lo]}")
    cols = ["graph", "layout"] + (["image"] if samples == 1 else
                                  [f"sample {s}" for s in range(samples)])
    if looks:
        cols = ["graph", "layout", "scene (sample 0)"] + [f"look {s}" for s in range(1, samples)]
    return vis.make_sheet(rows, cols, row_titles=titles)


def cmd_manipulate(args: argparse.Namespace) -> int:
    """``sg2img manipulate``: images before and after each edit, and a sheet."""
    from .api import load_model
    from .edits import EditError, apply_edits, edit_to_dict, load_edits
    from .manipulation import manipulate
    from .scene_graph import SceneGraphError, load_scene_graphs

    graphs = load_scene_graphs(args.graph)
    if args.index is None:
        if len(graphs) != 1:
            raise _UsageError(f"{args.graph} holds {len(graphs)} graphs; choose one with "
                              f"--index 0..{len(graphs) - 1}")
        graph = graphs[0]
    else:
        if not 0 <= args.index < len(graphs):
            raise _UsageError(f"--index {args.index} is out of range; {args.graph} holds "
                              f"{len(graphs)} graph{'s' * (len(graphs) != 1)}")
        graph = graphs[args.index]
    edits = load_edits(args.edits)
    model = load_model(args.checkpoint, args.device)
    try:
        # Every edit is checked on the graphs alone first (cheap), so a bad edit k fails
        # before k images are generated.
        apply_edits(graph, edits, model.vocab)
        res = manipulate(graph, edits, model, seed=args.seed, image_size=args.size)
    except SceneGraphError as e:
        about_edit = isinstance(e, EditError) and e.edit is not None
        raise e.located(args.edits if about_edit else args.graph) from None
    stem = Path(args.graph).stem + (f"_{args.index:03d}" if args.index is not None else "")
    steps = []
    for k in range(len(res.images)):
        step: dict[str, Any] = {"step": k, "image": f"{stem}_step{k:02d}.png",
                                "graph": res.graphs[k].to_dict()}
        if k > 0:
            inside, outside = res.change(k - 1)
            step.update(edit=edit_to_dict(edits[k - 1]),
                        description=res.steps[k - 1].description,
                        change_inside=_finite(inside), change_outside=_finite(outside))
        steps.append(step)
    with _Staging(args.out) as stage:
        for k, im in enumerate(res.images):
            im.save(stage.path(f"{stem}_step{k:02d}.png"))
        res.sheet().save(stage.path(f"{stem}_manipulation.png"))
        stage.path(f"{stem}_steps.json").write_text(
            json.dumps({"seed": res.seed, "steps": steps}, indent=1))
    _report(stage.paths, stage.out)
    return 0


def train_command(args: argparse.Namespace) -> str:
    """The ``sg2img train`` command line equivalent to parsed arguments (for provenance)."""
    import shlex

    parts = ["sg2img", "train", "--preset", args.preset]
    if args.data:
        parts += ["--data", str(args.data)]
    for override in args.set or ():
        parts += ["--set", override]
    parts += ["--out", str(args.out)]
    if args.resume:
        parts += ["--resume", str(args.resume)]
    if getattr(args, "device", None):
        parts += ["--device", str(args.device)]
    return shlex.join(parts)


def cmd_train(args: argparse.Namespace) -> int:
    """``sg2img train``: train (or resume) a run; exit 128+N when stopped by signal N."""
    from .config import Config
    from .train import run_training

    overrides = list(args.set or [])
    if args.data:
        overrides.append(f"data.root={args.data}")
    cfg = Config.from_preset(args.preset, overrides)
    if not logging.getLogger().handlers:
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    summary = run_training(cfg, args.out, resume=args.resume, device=args.device,
                           command=train_command(args))
    if summary["is_main"]:
        print(f"trained to step {summary['step']}; run directory: {args.out}")
    if summary["stopped_by_signal"] is not None:
        # Schedulers read 128+N as "preempted by signal N"; the checkpoint is written.
        print(f"{PROG}: stopped by signal {summary['stopped_by_signal']} at step "
              f"{summary['step']}; resume with --resume auto", file=sys.stderr)
        return 128 + int(summary["stopped_by_signal"])
    return 0


def cmd_evaluate(args: argparse.Namespace) -> int:
    """``sg2img evaluate``: print the report table, write REPORT.json / REPORT.md."""
    from .eval import (
        evaluate_box_file,
        evaluate_checkpoint,
        report_to_markdown,
        write_report,
    )

    metrics = tuple(args.metrics) if args.metrics else None     # None: default_metrics
    if args.box_file is not None:
        if args.data is None:
            raise _UsageError("--box-file needs --data (the dataset whose ground truth it is "
                              "scored against)")
        from .config import DataConfig
        from .data import build_dataset

        data_cfg = DataConfig(dataset=args.dataset, root=args.data)
        dataset = build_dataset(data_cfg, args.split, args.image_size, 16)
        report = evaluate_box_file(args.box_file, dataset, split=args.split, seed=args.seed)
        report["data"] = str(args.data)
    else:
        if args.checkpoint is None:
            raise _UsageError("give --checkpoint (a model to evaluate) or --box-file (boxes "
                              "predicted by another system)")
        report = evaluate_checkpoint(
            args.checkpoint, args.data, args.split, device=args.device,
            layout_baseline=args.layout_baseline, metrics=metrics,
            samples_per_graph=args.samples_per_graph, seed=args.seed,
            batch_size=args.batch_size, inception_weights=args.inception_weights,
            lpips_weights=args.lpips_weights, boxes_out=args.boxes_out,
            use_gt_layout=args.gt_layout, precision=args.precision,
            layout_mode=args.layout_mode)
    print(report_to_markdown(report), end="")
    if args.out is not None:
        json_path, md_path = write_report(report, args.out)
        print(f"wrote {json_path} and {md_path}")
    return 0


def _finite(x: float) -> float | None:
    return None if x != x else round(x, 6)


def cmd_serve(args: argparse.Namespace) -> int:
    try:
        from .serve import Limits, is_loopback, make_server
    except ImportError as e:
        print(f"{PROG}: error: 'sg2img serve' needs the serve extra ({e}); install it with: "
              f"pip install 'sg2img[serve]'", file=sys.stderr)
        return EXIT_USAGE
    if not is_loopback(args.host):
        print(f"{PROG}: warning: serving on {args.host}, not loopback: anyone who can reach "
              f"this address can use the server; it has no authentication", file=sys.stderr)
    server = make_server(args.checkpoint, host=args.host, port=args.port, device=args.device,
                         limits=Limits(max_waiting=args.queue_size),
                         log_level="info" if getattr(args, "verbose", False) else "warning")
    print(f"{PROG}: serving the scene graph editor at {server.url} (Ctrl+C to stop)",
          file=sys.stderr)
    server.run()
    return 0


# --------------------------------------------------------------------------- main
_MAX_MESSAGE = 1000


def _one_line(e: BaseException) -> str:
    """The error as one bounded line; a full disk reads "disk full while writing FILE"."""
    import errno

    from .files import DiskFullError

    if (isinstance(e, OSError) and not isinstance(e, DiskFullError)
            and e.errno in (errno.ENOSPC, errno.EDQUOT)):
        return f"disk full while writing {e.filename or 'a file'}"
    text = str(e)
    if "\nOriginal Traceback" in text:
        # Re-raised from a DataLoader worker: the message is a whole traceback; its last line
        # ("DatasetError: cannot read image ...") is the error.
        last = text.strip().splitlines()[-1]
        text = last.split(": ", 1)[1] if ": " in last else last
    msg = " ".join(text.split()) or type(e).__name__
    return msg if len(msg) <= _MAX_MESSAGE else msg[:_MAX_MESSAGE - 3] + "..."


def _is_user_error(e: BaseException) -> bool:
    """Errors that mean bad input (not a bug): ValueErrors and file-system errors."""
    return isinstance(e, (ValueError, OSError))


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``sg2img`` command; returns the exit status.

    Args:
        argv: arguments without the program name; ``sys.argv[1:]`` when None.

    Returns:
        0 on success, 2 on bad input or usage, 1 on an unexpected internal error, 130 when
        interrupted.
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as e:  # --help, --version, usage errors: argparse has printed them
        return e.code if isinstance(e.code, int) else (0 if e.code is None else EXIT_USAGE)
    debug = bool(getattr(args, "debug", False))
    if not debug:
        # torch-geometric's import warns about torch.jit.script; users cannot act on it.
        warnings.filterwarnings("ignore", message=r".*torch\.jit\.script.*",
                                category=FutureWarning)
    if getattr(args, "verbose", False) or debug:
        logging.basicConfig(level=logging.DEBUG if debug else logging.INFO,
                            format="%(levelname)s %(name)s: %(message)s")
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        if debug:
            raise
        print(f"{PROG}: interrupted", file=sys.stderr)
        return 130
    except Exception as e:
        if debug:
            raise
        msg = _one_line(e)
        if _is_user_error(e):
            if isinstance(e, OSError) and e.filename is not None and str(e.filename) not in msg:
                msg = f"{msg}: {e.filename}"
            print(f"{PROG}: error: {msg}", file=sys.stderr)
            return EXIT_USAGE
        print(f"{PROG}: internal error: {type(e).__name__}: {msg} (run with --debug for the "
              f"traceback)", file=sys.stderr)
        return EXIT_INTERNAL


if __name__ == "__main__":
    sys.exit(main())
