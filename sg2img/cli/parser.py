"""The ``sg2img`` command line: the argument parser, its argument types and help texts.

``build_parser()`` knows every subcommand's flags; the commands themselves live in
``sg2img.cli.commands`` and ``sg2img.cli.main`` dispatches on ``args.command``.
"""

from __future__ import annotations

import argparse

PROG = "sg2img"
EXIT_USAGE = 2
EXIT_INTERNAL = 1

_MAIN_EPILOG = """\
examples:
  sg2img generate examples/sheep.json --out outputs --seed 0 --save-layout --draw-graph
  sg2img layout examples/sheep.json --format gligen --out outputs/layouts
  sg2img manipulate examples/lake.json examples/edits/lake.json --out outputs/edits
  sg2img train --preset small --data data/shapes64 --out runs/small
  sg2img evaluate --checkpoint runs/small/export.pt --data data/shapes64 --out report.json
  sg2img vocab

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
    (a model trained with model.renderer.noise=spatial: _s0 is the scene, _s1.._s3 other looks of
    object 2, everything else kept)
"""

_LAYOUT_EPILOG = """\
Writes the layout (boxes and masks) that 'sg2img generate' draws for the same files, --seed
and --layout-mode (one sample per graph), for another renderer; for graph i of FILE.json:
  --format gligen   OUT/FILE_{i:03d}_gligen.json: prompt, gligen_phrases, gligen_boxes, the
                    arguments of diffusers' StableDiffusionGLIGENPipeline (pipe(**json))
  --format seg      OUT/FILE_{i:03d}_seg.png: class ids (0 = no object) in a palette PNG,
                    and OUT/FILE_{i:03d}_seg.json: its class names and palette
  --format coco     OUT/FILE_coco.json: COCO annotations (boxes, RLE masks), one image per
                    graph, named FILE_{i:03d}_s0.png as 'sg2img generate' names the pictures
Nothing is written when an input is bad.

examples:
  sg2img layout examples/sheep.json --format gligen --out outputs/layouts
  sg2img layout examples/scenes.json --format seg --index 2 --size 512 --out outputs/layouts
  sg2img layout examples/*.json --format coco --seed 3 --out outputs/layouts
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
model trained with model.renderer.noise=spatial.)

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
  sg2img evaluate --checkpoint runs/small/export.pt --metrics faithfulness relation_swap
  sg2img evaluate --data data/shapes64 --split val --write-graphs val_graphs.json
  sg2img evaluate --images other_system/ --graphs val_graphs.json --data data/shapes64
"""


_VOCAB_EPILOG = """\
An attribute a class never takes in the model's data is refused in a scene graph ("red sheep"
when sheep are always white). Models without a class table (Visual Genome, COCO-Stuff) list
the attributes but cannot say which class takes which.

examples:
  sg2img vocab
  sg2img vocab --checkpoint runs/small/export.pt --json
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
_SAMPLE = _bounded_int(0, 2**32 - 1)   # sg2img.generate_args.MAX_SAMPLE


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
    g.add_argument("--samples", type=_COUNT, default=1, metavar="N", help="images per graph")
    g.add_argument("--sample", type=_SAMPLE, default=0, metavar="K",
                   help="the first sample number: '--sample 2' redraws sample 2 of the seed "
                        "alone (with --samples N: samples K..K+N-1); a sample depends only on "
                        "the graph, --seed and K")
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
                   help="with a sampling layout head (model.layout.head=sample): 'sample' draws "
                        "each image's layout from --seed and its sample number (the default), "
                        "'mode' takes the most likely layout for every image; a regress head "
                        "has one layout")
    g.add_argument("--batch-size", type=_COUNT, default=32, metavar="B",
                   help="images per forward pass")
    g.add_argument("--resample-object", type=_INDEX, nargs="+", default=None, metavar="I",
                   help="with a model trained with model.renderer.noise=spatial: sample 0 is "
                        "the scene, samples 1..K-1 redraw only these objects' noise (indices "
                        "into each graph's objects) and keep everything else; needs --samples "
                        "2 or more")
    g.add_argument("--precision", choices=("fp32", "bf16"), default="fp32",
                   help="bf16 renders the image under bfloat16 autocast (the layout stays "
                        "fp32): 1.8x faster on a CPU with AVX512-BF16, slower without it")

    # ------------------------------------------------------------------ layout
    lo = sub.add_parser("layout", parents=[common], formatter_class=_Formatter,
                        help="write the predicted layout for another renderer (GLIGEN, "
                             "segmentation map, COCO)",
                        description="Write the layouts sg2img predicts for scene graphs in a "
                                    "format other renderers read.", epilog=_LAYOUT_EPILOG)
    lo.add_argument("graphs", nargs="+", metavar="GRAPHS.json",
                    help="JSON file with one scene graph or a list of them (sg2im's format)")
    lo.add_argument("--format", required=True, choices=("gligen", "seg", "coco"),
                    help="gligen: StableDiffusionGLIGENPipeline's inputs; seg: a class-index "
                         "segmentation PNG and its class list; coco: COCO annotations")
    _model_args(lo)
    lo.add_argument("--out", default="outputs", metavar="DIR", help="output folder")
    lo.add_argument("--seed", type=_SEED, default=0, metavar="N",
                    help="noise seed (the one given to 'sg2img generate')")
    lo.add_argument("--sample", type=_SAMPLE, default=0, metavar="K",
                    help="the layout of sample K of the seed ('sg2img generate --sample K')")
    lo.add_argument("--size", type=_COUNT, default=None, metavar="PX",
                    help="pixels of the segmentation map and the COCO images (default: the "
                         "model's size)")
    lo.add_argument("--index", type=_INDEX, default=None, metavar="I",
                    help="only graph I of each file (default: every graph)")
    lo.add_argument("--layout-mode", choices=("sample", "mode"), default=None,
                    help="as 'sg2img generate --layout-mode': with a sampling layout head, "
                         "'sample' (the default) draws the layout from --seed, 'mode' takes the "
                         "most likely one")

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
    m.add_argument("--sample", type=_SAMPLE, default=0, metavar="K",
                   help="start from sample K of the seed: the picture 'sg2img generate --seed "
                        "N --sample K' gives")
    m.add_argument("--layout-mode", choices=("sample", "mode"), default=None,
                   help="as for generate: the layout of the starting picture")
    m.add_argument("--size", type=_COUNT, default=None, metavar="PX",
                   help="output size (default: the model's size)")

    # ------------------------------------------------------------------- train
    t = sub.add_parser("train", parents=[common], formatter_class=_Formatter,
                       help="train a model", description="Train GALS-GAN.",
                       epilog=_TRAIN_EPILOG)
    t.add_argument("--preset", default="small", metavar="NAME",
                   help="config preset: tiny, small, coco64, coco128, vg64, vg128")
    t.add_argument("--data", default=None, metavar="DIR",
                   help="dataset folder (sets data.root)")
    t.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="config override such as model.layout.gconv_dim=64 (repeatable)")
    t.add_argument("--out", required=True, metavar="RUN_DIR", help="run folder")
    t.add_argument("--resume", nargs="?", const="auto", default=None, metavar="CKPT|auto",
                   help="resume from a checkpoint, or the run folder's latest with 'auto'")
    t.add_argument("--device", default=None, metavar="DEVICE",
                   help="cpu, cuda or cuda:N (default: CUDA when available)")

    # ---------------------------------------------------------------- evaluate
    e = sub.add_parser("evaluate", parents=[common], formatter_class=_Formatter,
                       help="evaluate a model on a dataset split",
                       description="Evaluate a checkpoint (layout recall, FID, IS, object "
                                   "accuracy, diversity).", epilog=_EVALUATE_EPILOG)
    e.add_argument("--checkpoint", default=None, metavar="CKPT",
                   help="training checkpoint or inference export, or a bundled model: default "
                        "(64 px) or default-128")
    e.add_argument("--box-file", default=None, metavar="BOXES.json",
                   help="score another system's predicted boxes (layout recall only) instead "
                        "of a checkpoint; needs --data")
    e.add_argument("--data", default=None, metavar="DIR",
                   help="dataset folder (default: the one in the checkpoint's config)")
    e.add_argument("--split", default="val", choices=("val", "test"), help="dataset split")
    e.add_argument("--metrics", nargs="+", default=None, metavar="NAME",
                   help="metrics to compute (default: all that apply): layout_recall fid is "
                        "obj_acc diversity layout, and attr_acc attr_swap when the data and "
                        "the model have attributes; faithfulness and relation_swap when "
                        "named")
    e.add_argument("--gt-layout", action="store_true",
                   help="render from the ground-truth boxes and masks instead of the predicted "
                        "layout: scores the renderer alone (layout metrics still score the "
                        "predicted boxes)")
    e.add_argument("--precision", choices=("fp32", "bf16"), default="fp32",
                   help="render under bfloat16 autocast, as generate --precision bf16 does "
                        "(to measure what it costs)")
    e.add_argument("--layout-mode", choices=("mode", "sample"), default=None,
                   help="render every image from the most likely layout (mode) or from a "
                        "layout sampled per image (sample); by default as generate draws: "
                        "sample with a sampling layout head, so that FID and diversity see "
                        "the layouts users get (layout metrics score the mode either way)")
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
    e.add_argument("--images", default=None, metavar="DIR",
                   help="score any system's pictures with the faithfulness metric: the folder "
                        "of images drawn from --graphs (named as generate names them); with "
                        "--data, the real images are scored too")
    e.add_argument("--graphs", default=None, metavar="GRAPHS.json",
                   help="the scene graphs --images were drawn from (as --write-graphs writes "
                        "them)")
    e.add_argument("--write-graphs", default=None, metavar="GRAPHS.json",
                   help="write the scene graphs of --data's --split (the faithfulness "
                        "protocol's list) for other systems to draw, and stop")
    e.add_argument("--detector-weights", default=None, metavar="FILE",
                   help="detector for faithfulness and relation_swap: an sg2img detector file, "
                        "or torchvision COCO weights for real data (things only) (default: "
                        "the shipped procedural detector)")
    e.add_argument("--detector-arch", default="fasterrcnn_resnet50_fpn", metavar="ARCH",
                   help="the torchvision builder of --detector-weights' COCO weights")
    e.add_argument("--faithfulness-sheet", default=None, metavar="PNG",
                   help="write the faithfulness debug sheet (detections over the first images, "
                        "beside their graphs)")
    e.add_argument("--dataset", default="coco", choices=("coco", "vg"),
                   help="dataset format for --box-file")
    e.add_argument("--image-size", type=_COUNT, default=64, metavar="S",
                   help="image size used to read the dataset for --box-file")
    e.add_argument("--out", default=None, metavar="REPORT",
                   help="report file: REPORT.json and REPORT.md (default: print only)")
    e.add_argument("--seed", type=_SEED, default=0, metavar="N", help="noise seed")
    e.add_argument("--device", default=None, metavar="DEVICE",
                   help="cpu, cuda or cuda:N (default: CUDA when available)")

    # ------------------------------------------------------------------- serve
    v = sub.add_parser("serve", parents=[common], formatter_class=_Formatter,
                       help="interactive scene graph editor in the browser",
                       description="Serve the scene graph editor page and its JSON API "
                                   "(needs: pip install 'sg2img[serve]').",
                       epilog="examples:\n  sg2img serve\n"
                              "  sg2img serve --checkpoint runs/small/export.pt --port 8080\n"
                              "  sg2img serve --allowed-host sg2img.example.org  # behind a "
                              "proxy\n")
    v.add_argument("--checkpoint", action="append", default=[], metavar="CKPT",
                   help="also offer this checkpoint (repeatable); the bundled models are "
                        "first (default, then default-128)")
    v.add_argument("--host", default="127.0.0.1",
                   help="address to bind; anything but loopback lets other machines in")
    v.add_argument("--allowed-host", action="append", default=[], metavar="NAME",
                   help="also answer requests for this host name, as clients write it "
                        "(NAME or NAME:PORT; repeatable); the server always answers its "
                        "bound address and localhost, 127.0.0.1 and [::1]; other Host and "
                        "Origin headers are refused")
    v.add_argument("--port", type=int, default=8000, help="port to bind (0: a free one)")
    v.add_argument("--device", default=None, metavar="DEVICE",
                   help="cpu, cuda or cuda:N (default: CUDA when available)")
    v.add_argument("--queue-size", type=int, default=8, metavar="N",
                   help="requests that may wait while one runs; more get 503")
    _connection_args(v)

    # ------------------------------------------------------------------- vocab
    w = sub.add_parser("vocab", parents=[common], formatter_class=_Formatter,
                       help="list the objects, predicates and attributes a model knows",
                       description="List the names a model's scene graphs may use: objects "
                                   "(things and stuff), predicates, and the attributes each "
                                   "object class takes in the model's data.",
                       epilog=_VOCAB_EPILOG)
    w.add_argument("--checkpoint", default=None, metavar="CKPT",
                   help="checkpoint or inference export, or a bundled model: default (64 px, "
                        "the default) or default-128")
    w.add_argument("--json", action="store_true",
                   help="print the same as JSON (what GET /api/vocab answers, without "
                        "'model')")
    return parser


def _seconds(text: str) -> float:
    """An argparse type: a number of seconds, 0 or more."""
    try:
        value = float(text)
    except ValueError:
        shown = text if len(text) <= 40 else text[:37] + "..."
        raise argparse.ArgumentTypeError(f"expected a number of seconds, got {shown!r}") from None
    if not 0 <= value <= 10**6:
        raise argparse.ArgumentTypeError(f"must be in 0..1e6 seconds, got {text}")
    return value


_seconds.__name__ = "seconds"


def _connection_args(v: argparse.ArgumentParser) -> None:
    """The serve flags of ``sg2img.serve.ConnectionLimits``; unset ones come from the
    environment (``SG2IMG_SERVE_*``), then the defaults."""
    v.add_argument("--header-timeout", type=_seconds, default=None, metavar="S",
                   help="seconds a client has to send the request headers, then 408 and close; "
                        "0: no limit (default: $SG2IMG_SERVE_HEADER_TIMEOUT or 10)")
    v.add_argument("--body-timeout", type=_seconds, default=None, metavar="S",
                   help="seconds a client has to send the request body after its headers; "
                        "0: no limit (default: $SG2IMG_SERVE_BODY_TIMEOUT or 20)")
    v.add_argument("--idle-timeout", type=_seconds, default=None, metavar="S",
                   help="seconds a kept-alive connection may wait for its next request "
                        "(default: $SG2IMG_SERVE_IDLE_TIMEOUT or 5)")
    v.add_argument("--max-connections", type=_bounded_int(0), default=None, metavar="N",
                   help="open connections at most; beyond, the longest-waiting slow or idle "
                        "one is closed; 0: only the open-file limit caps "
                        "(default: $SG2IMG_SERVE_MAX_CONNECTIONS or 256)")


def _model_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--checkpoint", default=None, metavar="CKPT",
                   help="checkpoint or inference export, or a bundled model: default (64 px, "
                        "the default) or default-128")
    p.add_argument("--device", default=None, metavar="DEVICE",
                   help="cpu, cuda or cuda:N (default: CUDA when available)")


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("sg2img")
    except PackageNotFoundError:
        return "unknown"
