"""Faithfulness for any system: the protocol's graphs written out, image folders read and scored.

The protocol (``docs/evaluation.md``): every graph of the procedural val split (image ids
100000001 to 100000500 in dataset order, relationships as the loader draws them for val,
seed 0), one image per graph. :func:`write_protocol_graphs` writes them as a plain list of
sg2im JSON graphs, which ``sg2img generate`` reads; any other system draws one picture per
graph and saves it under the names ``sg2img generate`` uses, ``{stem}_{i:03d}_s{k}.png``
(``stem``: the graphs file's name without ``.json``; ``i``: the graph's position; ``k``: the
sample), or lists its own file names in the graphs file::

    {"graphs": [graph, ...], "images": [["graph0_a.png", ...], ...]}

(one list per graph, names relative to the images folder). :func:`evaluate_images` scores
the folder; with the dataset it also scores the real images (the ceiling).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from os import PathLike
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from ..files import atomic_write, read_json
from ..scene_graph import SceneGraph, SceneGraphError, collate_graphs, load_scene_graphs
from .faith_score import (
    COCO_DETECTOR_ARCH,
    FaithJudge,
    detector_name,
    graphs_of_batch,
    resolve_colour_classifier,
    resolve_detector,
)
from .faith_sheet import SheetRow, add_sheet_rows, write_faithfulness_sheet
from .faith_tally import DEFAULT_BOOTSTRAP, FaithTally
from .faithfulness import PROTOCOL

MAX_IMAGE_SIDE = 4096
"""The largest image side read for scoring."""
MAX_IMAGES = 100_000
"""The most images one folder may hold for scoring."""


class FaithFilesError(ValueError):
    """A graphs file or an images folder cannot be scored; the message says how to fix it."""


def dataset_graphs(dataset: Any, indices: Sequence[int] | None = None) -> list[SceneGraph]:
    """The scene graphs of dataset items in the user's form (names and attributes, no boxes),
    as the dataset draws them (images are not read).

    Args:
        dataset: a dataset of ``GraphSample`` items with a ``vocab``.
        indices: which items; None: all, in order.
    """
    vocab = dataset.vocab
    with_images = getattr(dataset, "with_images", None)
    if with_images is not None:
        dataset.with_images = False
    try:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(0)        # only datasets that draw relations at random read it
            items = [dataset[i] for i in (range(len(dataset)) if indices is None else indices)]
    finally:
        if with_images is not None:
            dataset.with_images = with_images
    graphs = []
    for start in range(0, len(items), 256):
        batch = collate_graphs(items[start:start + 256])
        graphs += graphs_of_batch(batch, vocab.object_names, vocab.pred_names,
                                  vocab.attribute_names)
    return graphs


def write_protocol_graphs(dataset: Any, path: str | PathLike) -> Path:
    """Write the dataset's graphs (every item, in order: the protocol's list for its split)
    as a JSON list of sg2im graphs that ``sg2img generate`` reads. Returns the path."""
    import json

    graphs = dataset_graphs(dataset)
    path = Path(path)
    with atomic_write(path, "graphs file") as f:
        f.write((json.dumps([g.to_dict() for g in graphs], indent=1) + "\n").encode())
    return path


def read_graphs_file(path: str | PathLike) -> tuple[list[SceneGraph], list[list[str]] | None]:
    """The graphs of a graphs file and, when it names them, each graph's image files.

    Raises:
        FaithFilesError: the ``images`` list is malformed (the message says the form).
        SceneGraphError: a graph is malformed.
    """
    data = read_json(path, "graphs file", SceneGraphError)
    if not (isinstance(data, dict) and "graphs" in data):
        return load_scene_graphs(path), None
    unknown = set(data) - {"graphs", "images"}
    if unknown:
        raise FaithFilesError(f"{path}: unknown keys {sorted(unknown)[:5]}; a graphs file with "
                              f"its own image names is {{\"graphs\": [...], \"images\": [[file, "
                              f"...] per graph]}}")
    graphs = load_scene_graphs(data["graphs"]) if data["graphs"] else []
    images = data.get("images")
    if images is None:
        return graphs, None
    if (not isinstance(images, list) or len(images) != len(graphs)
            or not all(isinstance(x, list) and x and all(isinstance(n, str) for n in x)
                       for x in images)):
        raise FaithFilesError(f"{path}: 'images' must list, for each of the {len(graphs)} "
                              f"graphs, a non-empty list of image file names")
    for names in images:
        for n in names:
            p = Path(n)
            if p.is_absolute() or ".." in p.parts or not n.strip():
                raise FaithFilesError(f"{path}: image name {n[:80]!r} must be a file name "
                                      f"relative to the images folder, without '..'")
    return graphs, images


def find_images(folder: str | PathLike, stem: str, num_graphs: int,
                names: list[list[str]] | None = None) -> list[tuple[int, Path]]:
    """(graph index, image file) of every image to score, graph by graph.

    Args:
        folder: the images folder.
        stem: the graphs file's name without ``.json`` (the names ``sg2img generate`` writes).
        num_graphs: the number of graphs in the graphs file.
        names: per graph its file names (from the graphs file), or None for the naming rule.

    Raises:
        FaithFilesError: the folder is missing, a graph has no image, or the folder holds
            images of more graphs than the file has (each message names the fix).
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise FaithFilesError(f"images folder not found: {folder}; pass --images the folder "
                              f"'sg2img generate GRAPHS.json --out DIR' wrote")
    if names is not None:
        out = [(i, folder / n) for i, ns in enumerate(names) for n in ns]
        missing = [str(p) for _, p in out if not p.is_file()]
        if missing:
            raise FaithFilesError(f"{len(missing)} image files named in the graphs file are "
                                  f"missing, e.g. {missing[0]}; fix the names under 'images'")
        return out
    rule = re.compile(rf"^{re.escape(stem)}_(\d{{3,}})_s(\d+)\.png$")
    found: dict[int, list[tuple[int, Path]]] = {}
    count = 0
    for p in folder.iterdir():
        m = rule.match(p.name)
        if m is None:
            continue
        count += 1
        if count > MAX_IMAGES:
            raise FaithFilesError(f"{folder} holds more than {MAX_IMAGES} images to score; "
                                  f"split the graphs over several files")
        found.setdefault(int(m.group(1)), []).append((int(m.group(2)), p))
    extra = sorted(i for i in found if i >= num_graphs)
    if extra:
        raise FaithFilesError(f"{folder} holds images of graph {extra[-1]} ({stem}_"
                              f"{extra[-1]:03d}_s*.png) but the graphs file has {num_graphs} "
                              f"graphs; score the graphs file these images were generated from")
    missing = [i for i in range(num_graphs) if i not in found]
    if missing:
        raise FaithFilesError(
            f"no image of graph {missing[0]} in {folder}: expected {stem}_{missing[0]:03d}_s0.png "
            f"({len(missing)} of {num_graphs} graphs have none), the names 'sg2img generate "
            f"{stem}.json' writes; generate every graph of the file, or list each graph's "
            f"files under 'images' in the graphs file")
    return [(i, p) for i in range(num_graphs) for _, p in sorted(found[i])]


def load_images(paths: Sequence[Path]) -> Tensor:
    """(N, 3, S, S) in [-1, 1] from image files of one square size (read safely).

    Raises:
        FaithFilesError: an image is not square, too large, or of another size than the first.
    """
    from PIL import Image

    from ..data.common import load_image

    side = None
    out = []
    for p in paths:
        try:
            with Image.open(p) as im:
                w, h = im.size
        except (OSError, SyntaxError, ValueError) as e:
            raise FaithFilesError(f"cannot read image {p}: {' '.join(str(e).split())[:160]}"
                                  ) from None
        if w != h or w > MAX_IMAGE_SIDE:
            raise FaithFilesError(f"image {p} is {w}x{h}; the detector reads square images of "
                                  f"at most {MAX_IMAGE_SIDE} px: resize or crop it")
        if side is not None and w != side:
            raise FaithFilesError(f"image {p} is {w} px but the others are {side} px; save "
                                  f"every image at one size")
        side = w
        out.append(load_image(p, w))
    return torch.stack(out)


def evaluate_images(images: str | PathLike, graphs_file: str | PathLike, *,
                    dataset: Any = None, detector: Any = None,
                    detector_weights: str | PathLike | None = None,
                    detector_arch: str = COCO_DETECTOR_ARCH, threshold: float | None = None,
                    seed: int = 0, bootstrap: int = DEFAULT_BOOTSTRAP, batch_size: int = 32,
                    sheet: str | PathLike | None = None, device: str | torch.device = "cpu"
                    ) -> dict[str, Any]:
    """``sg2img evaluate --images DIR --graphs GRAPHS.json``: score a folder of any system's
    images against the graphs they were drawn from (the ``faithfulness`` protocol).

    Args:
        images: the folder (names: the module docstring).
        graphs_file: the graphs, as :func:`write_protocol_graphs` writes them (or with
            ``images`` naming each graph's files).
        dataset: if given, its real images are scored too (the ceiling); the graphs file must
            hold its graphs, in order (checked).
        detector, detector_weights, detector_arch, threshold, seed, bootstrap, batch_size,
        sheet, device: as :func:`sg2img.eval.score_faithfulness`.

    Returns:
        A report in ``evaluate``'s form with the ``faithfulness`` metric.
    """
    graphs, names = read_graphs_file(graphs_file)
    if not graphs:
        raise FaithFilesError(f"{graphs_file} holds no graphs")
    files = find_images(images, Path(graphs_file).stem, len(graphs), names)
    det = resolve_detector(detector, detector_weights, detector_arch)
    stuff = ()
    if dataset is not None:
        stuff = tuple(getattr(dataset.vocab, "stuff_names", None) or ())
        if dataset_graphs(dataset) != graphs:
            raise FaithFilesError(f"{graphs_file} is not the list of graphs of the dataset "
                                  f"given for the real images (in order); write it with "
                                  f"'sg2img evaluate --data DIR --split SPLIT --write-graphs "
                                  f"{graphs_file}', or leave out --data")
    clf = resolve_colour_classifier() if any(g.attributes for g in graphs) else None
    judge = FaithJudge(det, clf, threshold=threshold, stuff_names=stuff, device=device)
    result: dict[str, Any] = {}
    rows: list[SheetRow] = []
    tally = FaithTally(bootstrap, seed)
    firsts = {}
    for i, p in files:
        firsts.setdefault(i, p)
    for start in range(0, len(files), batch_size):
        chunk = files[start:start + batch_size]
        x = load_images([p for _, p in chunk])
        scored = judge.score(x, [graphs[i] for i, _ in chunk], [i for i, _ in chunk])
        tally.add(scored)
        if sheet is not None:
            for (i, p), im, s in zip(chunk, x, scored, strict=True):
                if firsts[i] == p:
                    add_sheet_rows(rows, "generated", im[None], [graphs[i]], [s], i)
    result["generated"] = tally.compute()
    if dataset is not None:
        real = FaithTally(bootstrap, seed)
        side = int(x.shape[-1])
        for start in range(0, len(graphs), batch_size):
            idx = list(range(start, min(len(graphs), start + batch_size)))
            batch = collate_graphs([dataset[i] for i in idx])
            imgs = batch.images
            if imgs.shape[-1] != side:
                imgs = torch.nn.functional.interpolate(imgs, size=(side, side), mode="bilinear",
                                                       align_corners=False, antialias=True)
            scored = judge.score(imgs, [graphs[i] for i in idx], idx)
            real.add(scored)
            if sheet is not None:
                add_sheet_rows(rows, "real", imgs, [graphs[i] for i in idx], scored, start)
        result["real"] = real.compute()
    result.update(detector=detector_name(det), threshold=judge.threshold,
                  colour_classifier=None if clf is None else type(clf).__name__)
    if sheet is not None:
        result["sheet"] = str(write_faithfulness_sheet(rows, judge.names, sheet))
    return {"images": str(images), "graphs": str(graphs_file), "seed": seed,
            "num_graphs": len(graphs), "num_generated_images": len(files),
            "image_size": int(x.shape[-1]), "metrics": {"faithfulness": result},
            "protocols": {"faithfulness": PROTOCOL}}
