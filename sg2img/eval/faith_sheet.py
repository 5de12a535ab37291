"""The faithfulness debug sheet: each image with what the detector found, beside its graph.

Boxes are drawn over the image (enlarged): a detection matched to graph object ``i`` in green,
labelled ``i name``; a detection of a class the graph does not name (a hallucination) in red;
a surplus detection of a named class in yellow. The row title lists the objects not found,
the triples that fail and the colours read wrong, so a low figure can be traced to pictures.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from os import PathLike
from pathlib import Path

from PIL import Image, ImageDraw
from torch import Tensor

from ..scene_graph import SceneGraph
from .faith_score import FaithImage

MAX_SHEET_ROWS = 12
"""Rows a debug sheet holds (the first graphs); the figures are in the report."""
_CELL = 192
_GRAPH_ASPECT = 2.5
_GREEN, _RED, _YELLOW = (40, 220, 60), (240, 40, 40), (250, 210, 20)


@dataclass
class SheetRow:
    """One graph's row: the graph and its scored images (a label, (3, H, W) in [-1, 1])."""

    graph: SceneGraph
    images: list[tuple[str, Tensor, FaithImage]]


def draw_detections(image: Tensor, scored: FaithImage, object_names: Sequence[str],
                    graph: SceneGraph, size: int = _CELL) -> Image.Image:
    """``image`` enlarged to ``size`` with its detections drawn (colours: module docstring)."""
    from ..vis import to_pil
    from ..vis.pil import load_font

    im = to_pil(image.detach().float().cpu()).resize((size, size), Image.NEAREST)
    draw = ImageDraw.Draw(im)
    font = load_font(11)
    dets = scored.detections
    owner = {d: i for i, d in enumerate(scored.match) if d is not None}
    named = set(graph.objects)
    for d in range(len(dets.labels)):
        lab = int(dets.labels[d])
        cls = object_names[lab] if 0 <= lab < len(object_names) else str(lab)
        if d in owner:
            colour, text = _GREEN, f"{owner[d]} {cls}"
        elif cls not in named:
            colour, text = _RED, f"{cls}?"
        else:
            colour, text = _YELLOW, f"+{cls}"
        x0, y0, x1, y1 = (float(v) * size for v in dets.boxes[d].tolist())
        draw.rectangle([x0, y0, x1, y1], outline=colour, width=2)
        label = f"{text} {float(dets.scores[d]):.2f}"
        left, top, right, bottom = draw.textbbox((x0 + 2, y0 + 1), label, font=font)
        draw.rectangle([left - 1, top - 1, right + 1, bottom + 1], fill=(0, 0, 0))
        draw.text((x0 + 2, y0 + 1), label, fill=colour, font=font)
    return im


def _fit_aspect(im: Image.Image, aspect: float) -> Image.Image:
    """``im`` on a white ground at most ``aspect`` times as wide as high (one wide graph
    drawing would otherwise widen the sheet's whole first column)."""
    w, h = im.size
    if w <= aspect * h:
        return im
    ground = Image.new("RGB", (w, int(w / aspect)), (255, 255, 255))
    ground.paste(im, (0, (ground.height - h) // 2))
    return ground


def _title(label: str, graph: SceneGraph, s: FaithImage) -> str:
    missed = [f"{i} {n}" for i, (n, f) in enumerate(s.objects) if f is False]
    failed = [f"{p}" for p, _, h in s.triples if h is False]
    wrong = [f"{n} {want}->{got}" for n, want, got in s.colours
             if got is not None and got != want]
    parts = [f"{label}: missed {', '.join(missed) or 'none'}",
             f"{len(failed)}/{sum(h is not None for _, _, h in s.triples)} triples fail"]
    if wrong:
        parts.append("colour " + ", ".join(wrong))
    if s.hallucinated:
        parts.append("extra " + ", ".join(s.hallucinated))
    return "; ".join(parts)


def add_sheet_rows(rows: list[SheetRow], side: str, images: Tensor, graphs: Sequence[SceneGraph],
              scored: Sequence[FaithImage], start: int) -> None:
    """Add a batch of scored images to the sheet's rows: image ``start + k`` joins row
    ``start + k`` (made on first use) under ``side``, for the first :data:`MAX_SHEET_ROWS`."""
    for k, (im, g, s) in enumerate(zip(images, graphs, scored, strict=True)):
        i = start + k
        if i >= MAX_SHEET_ROWS:
            return
        if i == len(rows):
            rows.append(SheetRow(g, []))
        rows[i].images.append((side, im, s))


def write_faithfulness_sheet(rows: Sequence[SheetRow], object_names: Sequence[str],
                             path: str | PathLike) -> Path:
    """Write the debug sheet of ``rows`` (at most :data:`MAX_SHEET_ROWS`) as a PNG.

    Each row: the graph's drawing, then each scored image with its detections; the row's
    title says, per image, what was missed or failed.

    Returns:
        The path written.

    Raises:
        ValueError: no rows.
    """
    from ..vis import draw_scene_graph, make_sheet

    rows = list(rows)[:MAX_SHEET_ROWS]
    if not rows:
        raise ValueError("the faithfulness sheet needs at least one scored image")
    cells, titles = [], []
    for row in rows:
        cells.append([_fit_aspect(draw_scene_graph(row.graph), _GRAPH_ASPECT)]
                     + [draw_detections(im, s, object_names, row.graph)
                        for _, im, s in row.images])
        titles.append(" | ".join(_title(label, row.graph, s) for label, _, s in row.images))
    columns = ["graph"] + [label for label, _, _ in max((r.images for r in rows), key=len)]
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    make_sheet(cells, columns, row_titles=titles, cell_height=_CELL, pad=6).save(path)
    return path
