"""The ``sg2img`` subcommands: each takes the parsed arguments, calls the library, prints
what it wrote and returns an exit code.

Heavy modules (torch, the model) are imported inside the commands so that ``sg2img --help``
starts fast.
"""

from __future__ import annotations

import argparse
import json
import logging
import logging.handlers
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from ..files import StagedOutput, check_output_folder
from .parser import EXIT_USAGE, PROG


# --------------------------------------------------------------------------- output
def _report(files: Sequence[Path], out: Path) -> None:
    print(f"wrote {len(files)} file{'s' * (len(files) != 1)} to {out}/")
    for f in files:
        print(f"  {f}")


# --------------------------------------------------------------------------- commands
def _stems(paths: Sequence[str], ext: str = "png") -> list[str]:
    stems = [Path(p).stem for p in paths]
    seen: dict[str, str] = {}
    for p, s in zip(paths, stems, strict=True):
        if s in seen:
            raise _UsageError(f"two input files would write the same names '{s}_*.{ext}': "
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
    from ..api import load_model
    from ..generate_args import check_image_count
    from ..scene_graph import load_scene_graphs

    # Read and check every file and bound before the model loads or anything is written.
    check_output_folder(args.out)
    per_file = [load_scene_graphs(p) for p in args.graphs]
    graphs = [g for gs in per_file for g in gs]
    check_image_count(len(graphs), args.samples, "--samples")
    if args.sheet:
        _check_sheets(args.graphs, per_file, args.samples)
    model = load_model(args.checkpoint, args.device)
    result = _generate_files(args.graphs, per_file, model, seed=args.seed,
                             num_samples=args.samples, first_sample=args.sample,
                             image_size=args.size, batch_size=args.batch_size,
                             layout_mode=args.layout_mode,
                             resample_object=args.resample_object, precision=args.precision)
    with StagedOutput(args.out) as stage:
        k = 0
        for stem, gs in zip(stems, per_file, strict=True):
            first = k
            for i in range(len(gs)):
                base = f"{stem}_{i:03d}"
                for s in range(args.samples):
                    number = result.sample_index[k + s]    # the file names the sample
                    result.images[k + s].save(stage.path(f"{base}_s{number}.png"))
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


def cmd_layout(args: argparse.Namespace) -> int:
    """``sg2img layout``: the layouts ``generate`` draws, as GLIGEN inputs, segmentation PNGs
    or COCO annotations."""
    stems = _stems(args.graphs, "json")
    from ..api import load_model
    from ..layout_export import GLIGEN_MAX_BOXES, layout_files, write_layout
    from ..scene_graph import load_scene_graphs

    check_output_folder(args.out)
    per_file = [load_scene_graphs(p) for p in args.graphs]
    if args.index is not None:
        for path, gs in zip(args.graphs, per_file, strict=True):
            if args.index >= len(gs):
                raise _UsageError(f"--index {args.index} is out of range; {path} holds "
                                  f"{len(gs)} graph{'s' * (len(gs) != 1)} (0..{len(gs) - 1})")
    model = load_model(args.checkpoint, args.device)
    # Every graph of every file, as generate runs them (by the seed rule, a graph's layout is
    # the same alone or among others).
    result = _generate_files(args.graphs, per_file, model, seed=args.seed,
                             first_sample=args.sample, image_size=args.size,
                             layout_mode=args.layout_mode, return_layout=True)
    files, k = [], 0
    for stem, gs in zip(stems, per_file, strict=True):
        chosen = range(len(gs)) if args.index is None else [args.index]
        files += layout_files(result, args.format, images=[k + i for i in chosen],
                              names=[f"{stem}_{i:03d}" for i in chosen],
                              coco_name=f"{stem}_coco.json")
        k += len(gs)
    paths = write_layout(files, args.out)
    _report(paths, Path(args.out))
    crowded = [f"{p} graph {i}" for p, gs in zip(args.graphs, per_file, strict=True)
               for i, g in enumerate(gs) if len(g.objects) > GLIGEN_MAX_BOXES
               and args.index in (None, i)]
    if args.format == "gligen" and crowded:
        print(f"{PROG}: warning: {', '.join(crowded[:3])}{' ...' * (len(crowded) > 3)} "
              f"{'has' if len(crowded) == 1 else 'have'} more than {GLIGEN_MAX_BOXES} "
              f"objects; StableDiffusionGLIGENPipeline uses the first {GLIGEN_MAX_BOXES} "
              f"phrases and boxes", file=sys.stderr)
    return 0


def _generate_files(paths: Sequence[str], per_file: Sequence[Sequence[Any]], model: Any,
                    **kwargs: Any) -> Any:
    """``generate`` over the graphs of every file; an error about one graph names the file
    and the graph in it rather than the position in the combined list."""
    from ..api import GenerationError, generate
    from ..scene_graph import SceneGraphError

    try:
        return generate([g for gs in per_file for g in gs], model, **kwargs)
    except SceneGraphError as e:
        raise SceneGraphError(_locate(e, paths, per_file)) from None
    except GenerationError as e:
        if e.graph is None:
            raise
        raise GenerationError(_locate(e, paths, per_file)) from None


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


def _check_sheets(paths: Sequence[str], per_file: Sequence[Sequence[Any]], samples: int) -> None:
    """Refuse ``--sheet`` for a file whose sheet would pass the sheet size limit, before any
    image is made (the graph drawings' widths are not known yet: 1 pixel is a lower bound)."""
    from ..vis import MAX_SHEET_PIXELS, sheet_rows_that_fit

    cell = 256                                     # make_sheet's default, as _file_sheet uses
    fit = sheet_rows_that_fit([1] + [cell] * (1 + samples), titles=True, row_titles=True,
                              cell_height=cell)
    for path, gs in zip(paths, per_file, strict=True):
        if len(gs) > fit:
            raise _UsageError(f"--sheet: {path} holds {len(gs)} graphs, more than the {fit} "
                              f"rows one sheet of at most {MAX_SHEET_PIXELS / 1e6:g} megapixels "
                              f"holds with {samples} sample{'s' * (samples != 1)}; split the "
                              f"file or leave out --sheet")


def _file_sheet(result: Any, lo: int, hi: int, samples: int, looks: bool = False) -> Any:
    """Rows graph | layout | samples; with ``looks`` (--resample-object) the samples are
    titled as the scene and its other looks."""
    from .. import vis

    rows, titles = [], []
    for k in range(lo, hi, samples):
        rows.append([result.draw_graph(k, "TB"), result.draw_layout(k),
                     *result.images[k:k + samples]])
        titles.append(f"graph {result.graph_index[k] - result.graph_index[lo]}")
    numbers = result.sample_index[lo:lo + samples]
    cols = ["graph", "layout"] + (["image"] if numbers == [0] else
                                  [f"sample {s}" for s in numbers])
    if looks:
        cols = ["graph", "layout"] + [f"look {s}" if s else "scene (sample 0)" for s in numbers]
    return vis.make_sheet(rows, cols, row_titles=titles)


def cmd_manipulate(args: argparse.Namespace) -> int:
    """``sg2img manipulate``: images before and after each edit, and a sheet."""
    from ..api import load_model
    from ..edits import EditError, apply_edits, edit_to_dict, load_edits
    from ..manipulation import manipulate
    from ..scene_graph import SceneGraphError, load_scene_graphs

    check_output_folder(args.out)
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
        res = manipulate(graph, edits, model, seed=args.seed, sample=args.sample,
                         layout_mode=args.layout_mode, image_size=args.size)
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
    with StagedOutput(args.out) as stage:
        for k, im in enumerate(res.images):
            im.save(stage.path(f"{stem}_step{k:02d}.png"))
        res.sheet().save(stage.path(f"{stem}_manipulation.png"))
        stage.path(f"{stem}_steps.json").write_text(
            json.dumps({"seed": res.seed, "sample": res.sample, "steps": steps}, indent=1))
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


class _HeldUntilExists(logging.handlers.MemoryHandler):
    """Holds log records until ``folder`` exists (or 1,000 are held), then passes them on.

    A daemon thread looks for the folder every 0.2 s, so held lines come out when it appears
    rather than with the next record; ``stop()`` ends the thread.
    """

    def __init__(self, folder: Path, target: logging.Handler) -> None:
        import threading

        super().__init__(1000, flushLevel=logging.CRITICAL + 1, target=target,
                         flushOnClose=False)
        self.folder = folder
        self._done = threading.Event()
        threading.Thread(target=self._watch, name="sg2img-log-hold", daemon=True).start()

    def _watch(self) -> None:
        while not self._done.wait(0.2):
            if self.folder.exists():
                self.flush()
                return

    def stop(self) -> None:
        self._done.set()

    def shouldFlush(self, record: logging.LogRecord) -> bool:
        return super().shouldFlush(record) or self.folder.exists()


def cmd_train(args: argparse.Namespace) -> int:
    """``sg2img train``: train (or resume) a run; exit 128+N when stopped by signal N."""
    from ..config import Config
    from ..train import run_training

    overrides = list(args.set or [])
    if args.data:
        overrides.append(f"data.root={args.data}")
    cfg = Config.from_preset(args.preset, overrides)
    held = None
    root = logging.getLogger()
    if not root.handlers:
        # Setup's log lines are held until the run folder exists (run_training creates it only
        # once the data and model have loaded), so a bad-input error is the only line.
        stream = logging.StreamHandler()
        stream.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
        held = _HeldUntilExists(Path(args.out), stream)
        root.setLevel(logging.INFO)
        root.addHandler(held)
    try:
        summary = run_training(cfg, args.out, resume=args.resume, device=args.device,
                               command=train_command(args))
    except BaseException:
        if held is not None:
            held.buffer.clear()         # the error line says what went wrong
        raise
    finally:
        if held is not None:
            held.stop()
            held.flush()
            root.removeHandler(held)
            root.addHandler(held.target)
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
    from ..eval import evaluate_box_file, evaluate_checkpoint

    metrics = tuple(args.metrics) if args.metrics else None     # None: default_metrics
    if args.write_graphs is not None or args.images is not None or args.graphs is not None:
        return _evaluate_images(args, metrics)
    if args.box_file is not None:
        if args.data is None:
            raise _UsageError("--box-file needs --data (the dataset whose ground truth it is "
                              "scored against)")
        from ..config import DataConfig
        from ..data import build_dataset

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
            layout_mode=args.layout_mode, detector=args.detector_weights,
            detector_arch=args.detector_arch, faithfulness_sheet=args.faithfulness_sheet)
    _print_report(report, args.out)
    return 0


def _print_report(report: dict[str, Any], out: str | None) -> None:
    from ..eval import report_to_markdown, write_report

    print(report_to_markdown(report), end="")
    if out is not None:
        json_path, md_path = write_report(report, out)
        print(f"wrote {json_path} and {md_path}")


def _evaluate_images(args: argparse.Namespace, metrics: tuple[str, ...] | None) -> int:
    """``sg2img evaluate --write-graphs`` and ``--images DIR --graphs GRAPHS.json``."""
    from ..config import DataConfig
    from ..data import build_dataset
    from ..eval import evaluate_images, write_protocol_graphs

    if args.checkpoint is not None or args.box_file is not None:
        raise _UsageError("--write-graphs and --images score no checkpoint or box file; leave "
                          "out --checkpoint and --box-file")
    dataset = None
    if args.data is not None:
        dataset = build_dataset(DataConfig(dataset=args.dataset, root=args.data), args.split,
                                args.image_size, 16)
    if args.write_graphs is not None:
        if dataset is None:
            raise _UsageError("--write-graphs needs --data (the dataset whose graphs it writes)")
        path = write_protocol_graphs(dataset, args.write_graphs)
        print(f"wrote the {len(dataset)} scene graphs of {args.data} ({args.split}) to {path}")
        return 0
    if args.images is None or args.graphs is None:
        raise _UsageError("--images DIR and --graphs GRAPHS.json go together: the pictures and "
                          "the scene graphs they were drawn from")
    if metrics is not None and metrics != ("faithfulness",):
        raise _UsageError("--images is scored with the faithfulness metric only; leave out "
                          "--metrics or give --metrics faithfulness")
    report = evaluate_images(args.images, args.graphs, dataset=dataset,
                             detector_weights=args.detector_weights,
                             detector_arch=args.detector_arch, seed=args.seed,
                             batch_size=args.batch_size, sheet=args.faithfulness_sheet,
                             device=args.device or "cpu")
    if dataset is not None:
        report.update(data=str(args.data), split=args.split)
    _print_report(report, args.out)
    return 0


def _finite(x: float) -> float | None:
    return None if x != x else round(x, 6)


def cmd_serve(args: argparse.Namespace) -> int:
    try:
        from ..serve import ConnectionLimits, Limits, is_loopback, make_server
        from ..serve.hosts import check_host_names
    except ImportError as e:
        print(f"{PROG}: error: 'sg2img serve' needs the serve extra ({e}); install it with: "
              f"pip install 'sg2img[serve]'", file=sys.stderr)
        return EXIT_USAGE
    check_host_names(args.allowed_host)
    connections = ConnectionLimits.from_env(
        header_timeout_s=args.header_timeout, body_timeout_s=args.body_timeout,
        idle_timeout_s=args.idle_timeout, max_connections=args.max_connections)
    if not is_loopback(args.host):
        print(f"{PROG}: warning: serving on {args.host}, not loopback: anyone who can reach "
              f"this address can use the server; it has no authentication (put a reverse "
              f"proxy with authentication in front, see docs/reliability.md); it answers "
              f"only the Host names {args.host}, localhost, 127.0.0.1, [::1] and those of "
              f"--allowed-host", file=sys.stderr)
    server = make_server(args.checkpoint, host=args.host, port=args.port, device=args.device,
                         limits=Limits(max_waiting=args.queue_size),
                         log_level="info" if getattr(args, "verbose", False) else "warning",
                         allowed_hosts=args.allowed_host, connections=connections)
    print(f"{PROG}: serving the scene graph editor at {server.url} (Ctrl+C to stop)",
          file=sys.stderr)
    server.run()
    return 0


def cmd_vocab(args: argparse.Namespace) -> int:
    """``sg2img vocab``: the objects, predicates and per-class attributes of a model."""
    from ..bundled import checkpoint_path
    from ..checkpoint import read_vocabulary

    path = checkpoint_path(args.checkpoint)
    description = read_vocabulary(path).describe()
    if args.json:
        print(json.dumps(description, indent=1))
    else:
        shown = "the bundled model" if args.checkpoint is None else str(path)
        print(vocab_text(description, shown))
    return 0


_WIDTH = 88


def _names_line(title: str, names: Sequence[str], indent: str = "") -> str:
    import textwrap

    return textwrap.fill(f"{title} ({len(names)}): {', '.join(names)}", _WIDTH,
                         initial_indent=indent, subsequent_indent=indent + "    ",
                         break_on_hyphens=False)


def _class_rows(rows: dict[str, str]) -> list[str]:
    """One line (wrapped) per object class: its name in a column, then ``rows[name]``."""
    import textwrap

    width = max(map(len, rows), default=0) + 2
    return [textwrap.fill(text, _WIDTH, initial_indent=f"  {name:<{width}}",
                          subsequent_indent=" " * (width + 2), break_on_hyphens=False)
            for name, text in rows.items()]


def vocab_text(description: dict[str, Any], source: str) -> str:
    """``Vocab.describe()`` as ``sg2img vocab`` prints it, for ``source`` (the model)."""
    import textwrap

    d = description
    lines = [f"Vocabulary of {source}", ""]
    if d["stuff"] is None:
        lines.append(_names_line("objects", d["objects"]))
    else:
        lines += [f"objects ({len(d['objects'])}):", _names_line("things", d["things"], "  "),
                  _names_line("stuff", d["stuff"], "  ")]
    lines.append(_names_line("predicates", d["predicates"]))
    if d["attributes"] is None:
        lines.append("attributes: none (the model was trained without attributes)")
        return "\n".join(lines)
    lines.append(_names_line("attributes", d["attributes"]))
    lines.append("")
    table, defaults = d["class_attributes"], d.get("default_attributes")
    if table is None:
        lines.append(textwrap.fill("attributes per class: not recorded (a model without a "
                                   "class table); any attribute is accepted on any object",
                                   _WIDTH, subsequent_indent="    "))
        if defaults is not None:
            lines += ["", "attributes an object given none gets (its class's usual ones):"]
            lines += _class_rows({n: ", ".join(a) or "none" for n, a in defaults.items()})
        return "\n".join(lines)
    lines.append("attributes each class takes (in the model's data):")
    rows = {}
    for name, attrs in table.items():
        rows[name] = ", ".join(attrs) or "none"
        if defaults is not None and attrs:
            rows[name] += f" (given none: {', '.join(defaults[name]) or 'none'})"
    return "\n".join(lines + _class_rows(rows))


COMMANDS: dict[str, Callable[[argparse.Namespace], int]] = {
    "generate": cmd_generate,
    "layout": cmd_layout,
    "manipulate": cmd_manipulate,
    "train": cmd_train,
    "evaluate": cmd_evaluate,
    "serve": cmd_serve,
    "vocab": cmd_vocab,
}
