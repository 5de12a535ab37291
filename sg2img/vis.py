"""Pictures: scene graph drawings, layout drawings, image sheets and tensor <-> PIL helpers.

Everything here returns ``PIL.Image.Image`` objects (RGB). Scene graphs are drawn with
graphviz ``dot`` when it is installed and with networkx + matplotlib (Agg, no display needed)
otherwise. Objects are boxes coloured by class, predicates are small ellipses between their
subject and object, as sg2im draws them, so self-loops and duplicate triples stay readable.

This module needs numpy, Pillow and matplotlib but not torch: tensors are accepted wherever
arrays are (anything with ``.detach()`` is moved to the CPU first).
"""

from __future__ import annotations

import colorsys
import logging
import math
import shutil
import subprocess
import tempfile
import zlib
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from .scene_graph import SceneGraph
from .vocab import Vocab

logger = logging.getLogger(__name__)

_GOLDEN = 0.618033988749895
_IMAGE_GREY = (160, 160, 160)


# --------------------------------------------------------------------------- helpers
def _as_array(x: Any, dtype: Any = np.float32) -> np.ndarray:
    """A numpy copy of ``x`` (numpy array, nested lists or a torch tensor on any device)."""
    if hasattr(x, "detach"):
        x = x.detach().float().cpu().numpy()
    return np.asarray(x, dtype=dtype)


def _font(size: int) -> ImageFont.ImageFont | ImageFont.FreeTypeFont:
    try:
        return ImageFont.load_default(size=size)
    except (TypeError, OSError):  # Pillow without FreeType: the fixed bitmap font.
        return ImageFont.load_default()


def class_color(class_id: int) -> tuple[int, int, int]:
    """A fixed RGB colour for a class id (id 0, ``__image__``, is grey).

    Hues are spread by the golden ratio so that neighbouring ids differ strongly, for any
    number of classes; saturation and value alternate to separate ids whose hues come close.
    """
    if class_id == 0:
        return _IMAGE_GREY
    hue = (class_id * _GOLDEN) % 1.0
    sat = (0.55, 0.8, 0.7)[class_id % 3]
    val = (0.95, 0.8, 0.65)[(class_id // 3) % 3]
    r, g, b = colorsys.hsv_to_rgb(hue, sat, val)
    return int(r * 255), int(g * 255), int(b * 255)


def name_color(name: str, vocab: Vocab | None = None) -> tuple[int, int, int]:
    """The colour of a class name: its vocabulary id's colour, else one from a hash of the name."""
    if vocab is not None:
        try:
            return class_color(vocab.object_idx(name))
        except ValueError:
            pass
    return class_color(1 + zlib.crc32(name.encode()) % 997)


def _text_color(rgb: tuple[int, int, int]) -> tuple[int, int, int]:
    luma = 0.299 * rgb[0] + 0.587 * rgb[1] + 0.114 * rgb[2]
    return (0, 0, 0) if luma > 140 else (255, 255, 255)


def to_pil(images: Any) -> Image.Image | list[Image.Image]:
    """Images in [-1, 1] to RGB PIL images.

    Args:
        images: ``(3, H, W)`` or ``(N, 3, H, W)`` in [-1, 1] (tensor or array); values outside
            are clipped. One channel is repeated to three.

    Returns:
        One image for a ``(3, H, W)`` input, a list of N images for ``(N, 3, H, W)``.

    Raises:
        ValueError: the input does not have 3 or 4 dimensions with 1 or 3 channels.
    """
    arr = _as_array(images)
    if arr.ndim not in (3, 4) or arr.shape[-3] not in (1, 3):
        raise ValueError(f"to_pil expects (3, H, W) or (N, 3, H, W) images, got shape "
                         f"{tuple(arr.shape)}")
    single = arr.ndim == 3
    arr = arr[None] if single else arr
    if arr.shape[1] == 1:
        arr = np.repeat(arr, 3, axis=1)
    u8 = np.clip(np.rint((arr + 1.0) * 127.5), 0, 255).astype(np.uint8)  # (N, 3, H, W)
    out = [Image.fromarray(np.ascontiguousarray(a.transpose(1, 2, 0)), "RGB") for a in u8]
    return out[0] if single else out


def from_pil(images: Image.Image | Sequence[Image.Image]) -> Any:
    """PIL images to a float tensor in [-1, 1], the inverse of ``to_pil``.

    Args:
        images: one image or a list of images of equal size.

    Returns:
        ``(3, H, W)`` for one image, ``(N, 3, H, W)`` for a list (a ``torch.Tensor``).
    """
    import torch

    single = isinstance(images, Image.Image)
    imgs = [images] if single else list(images)
    arr = np.stack([np.asarray(im.convert("RGB"), dtype=np.float32) for im in imgs])
    t = torch.from_numpy(arr).permute(0, 3, 1, 2) / 127.5 - 1.0  # (N, 3, H, W)
    return t[0] if single else t


# --------------------------------------------------------------------------- scene graphs
def _graph_nodes(graph: SceneGraph, vocab: Vocab | None):
    """Node and edge lists of the drawing: object nodes ``o{i}``, predicate nodes ``p{k}``."""
    objects = [(f"o{i}", name, name_color(name, vocab)) for i, name in enumerate(graph.objects)]
    preds = [(f"p{k}", p) for k, (_, p, _) in enumerate(graph.relationships)]
    edges = []
    for k, (s, _, o) in enumerate(graph.relationships):
        edges.append((f"o{s}", f"p{k}"))
        edges.append((f"p{k}", f"o{o}"))
    return objects, preds, edges


def _dot_source(graph: SceneGraph, vocab: Vocab | None, rankdir: str) -> str:
    def q(s: str) -> str:
        return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'

    objects, preds, edges = _graph_nodes(graph, vocab)
    lines = ["digraph G {", f"  rankdir={rankdir}; dpi=96; nodesep=0.25; ranksep=0.35;",
             '  node [fontname="Helvetica", fontsize=12];', "  edge [arrowsize=0.6];"]
    for node, name, rgb in objects:
        fill = "#{:02x}{:02x}{:02x}".format(*rgb)
        font = "#{:02x}{:02x}{:02x}".format(*_text_color(rgb))
        lines.append(f"  {node} [label={q(name)}, shape=box, style=\"rounded,filled\", "
                     f"fillcolor=\"{fill}\", fontcolor=\"{font}\", color=\"{fill}\"];")
    for node, p in preds:
        lines.append(f"  {node} [label={q(p)}, shape=ellipse, style=filled, "
                     f"fillcolor=\"#eeeeee\", color=\"#999999\", fontsize=10];")
    for a, b in edges:
        lines.append(f"  {a} -> {b};")
    lines.append("}")
    return "\n".join(lines)


def _draw_with_dot(graph: SceneGraph, vocab: Vocab | None, rankdir: str,
                   dot: str) -> Image.Image:
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "graph.png"
        subprocess.run([dot, "-Tpng", "-o", str(out)], input=_dot_source(graph, vocab, rankdir),
                       text=True, check=True, capture_output=True, timeout=60)
        with Image.open(out) as im:
            return im.convert("RGB")


def _layered_positions(graph: SceneGraph, nodes: list[str], edges: list[tuple[str, str]],
                       rankdir: str) -> dict[str, tuple[float, float]]:
    """Node positions: layers along the edge direction (as ``dot`` does), spread within a layer.

    Layers come from the longest path in the condensation of the graph (so cycles, self-loops
    and duplicate triples are fine); inside a layer nodes are ordered by the mean position of
    their neighbours in the previous layer (one barycentre sweep), which keeps edges short.
    """
    import networkx as nx

    g = nx.DiGraph()
    g.add_nodes_from(nodes)
    g.add_edges_from((a, b) for a, b in edges if a != b)
    cond = nx.condensation(g)
    comp_layer: dict[int, int] = {}
    for c in nx.topological_sort(cond):
        preds = list(cond.predecessors(c))
        comp_layer[c] = 1 + max(comp_layer[p] for p in preds) if preds else 0
    layer = {n: comp_layer[cond.graph["mapping"][n]] for n in nodes}
    # Isolated objects (no relationships) go in the first layer next to the others.
    by_layer: dict[int, list[str]] = {}
    for n in nodes:
        by_layer.setdefault(layer[n], []).append(n)
    order: dict[str, float] = {}
    for lvl in sorted(by_layer):
        members = by_layer[lvl]
        first = {n: i for i, n in enumerate(members)}

        def key(n: str, first: dict[str, int] = first) -> tuple[float, int]:
            ins = [order[p] for p in g.predecessors(n) if p in order]
            return (sum(ins) / len(ins) if ins else float(first[n]), first[n])

        members.sort(key=key)
        for i, n in enumerate(members):
            order[n] = i - (len(members) - 1) / 2
    pos = {}
    for n in nodes:
        along, across = layer[n], order[n]
        pos[n] = (along * 1.6, -across) if rankdir == "LR" else (across * 1.6, -along)
    return pos


def _draw_with_networkx(graph: SceneGraph, vocab: Vocab | None, rankdir: str,
                        dpi: int) -> Image.Image:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.patches import FancyArrowPatch

    objects, preds, edges = _graph_nodes(graph, vocab)
    nodes = [n for n, _, _ in objects] + [n for n, _ in preds]
    pos = _layered_positions(graph, nodes, edges, rankdir)
    xs = [p[0] for p in pos.values()]
    ys = [p[1] for p in pos.values()]
    width = max(xs) - min(xs) + 2.2
    height = max(ys) - min(ys) + 1.2
    scale = 1.1  # inches per layout unit
    fig = Figure(figsize=(max(2.5, width * scale), max(1.5, height * scale * 0.75)), dpi=dpi)
    FigureCanvasAgg(fig)
    ax = fig.add_axes((0, 0, 1, 1))
    ax.set_xlim(min(xs) - 1.1, max(xs) + 1.1)
    ax.set_ylim(min(ys) - 0.6, max(ys) + 0.6)
    ax.axis("off")

    patches = {}
    for node, name, rgb in objects:
        fill = tuple(c / 255 for c in rgb)
        txt = ax.text(*pos[node], name, ha="center", va="center", fontsize=11, zorder=3,
                      color=tuple(c / 255 for c in _text_color(rgb)),
                      bbox={"boxstyle": "round,pad=0.4", "fc": fill, "ec": fill})
        patches[node] = txt
    for node, p in preds:
        txt = ax.text(*pos[node], p, ha="center", va="center", fontsize=9, zorder=3,
                      color="#222222",
                      bbox={"boxstyle": "round4,pad=0.3", "fc": "#eeeeee", "ec": "#999999"})
        patches[node] = txt
    # Text boxes are sized only after a draw; arrows are then clipped at their borders.
    fig.canvas.draw()
    edge_set = set(edges)
    seen: dict[tuple[str, str], int] = {}
    for a, b in edges:
        n = seen.get((a, b), 0)
        seen[(a, b)] = n + 1
        # Bend the two arrows of a self-loop (o -> p -> o) apart, and repeated arrows further.
        rad = 0.3 if (b, a) in edge_set else 0.0
        arrow = FancyArrowPatch(pos[a], pos[b], arrowstyle="-|>", mutation_scale=12,
                                color="#555555", lw=1.0, zorder=2,
                                connectionstyle=f"arc3,rad={rad + 0.2 * n}",
                                patchA=patches[a].get_bbox_patch(),
                                patchB=patches[b].get_bbox_patch(), shrinkA=2, shrinkB=2)
        ax.add_patch(arrow)
    fig.canvas.draw()
    rgba = np.asarray(fig.canvas.buffer_rgba())
    return Image.fromarray(rgba[..., :3].copy(), "RGB")


def draw_scene_graph(graph: SceneGraph | Mapping[str, Any], vocab: Vocab | None = None, *,
                     rankdir: str = "LR", engine: str = "auto", dpi: int = 100) -> Image.Image:
    """Draw a scene graph: objects as coloured boxes, predicates as ellipses on the arrows.

    Each relationship gets its own predicate node (sg2im's drawing), so duplicate triples and
    self-loops are drawn rather than merged or dropped.

    Args:
        graph: a ``SceneGraph`` or its sg2im JSON dict (not modified).
        vocab: when given, objects take their class id's colour (the same as ``draw_layout``);
            otherwise a colour derived from the name.
        rankdir: ``"LR"`` (left to right) or ``"TB"`` (top to bottom).
        engine: ``"auto"`` (graphviz ``dot`` when installed, else networkx), ``"dot"`` or
            ``"networkx"``.
        dpi: resolution of the networkx drawing.

    Returns:
        An RGB image whose size depends on the graph.

    Raises:
        SceneGraphError: the graph is malformed.
        ValueError: bad ``rankdir`` or ``engine``, or ``engine="dot"`` without graphviz.
    """
    graph = SceneGraph.from_dict(graph) if not isinstance(graph, SceneGraph) else graph
    if rankdir not in ("LR", "TB"):
        raise ValueError(f"rankdir must be 'LR' or 'TB', got {rankdir!r}")
    if engine not in ("auto", "dot", "networkx"):
        raise ValueError(f"engine must be 'auto', 'dot' or 'networkx', got {engine!r}")
    dot = shutil.which("dot") if engine in ("auto", "dot") else None
    if engine == "dot" and dot is None:
        raise ValueError("engine='dot' needs graphviz's 'dot' on PATH; install graphviz or use "
                         "engine='networkx'")
    if dot is not None:
        try:
            return _draw_with_dot(graph, vocab, rankdir, dot)
        except (OSError, subprocess.SubprocessError) as e:
            if engine == "dot":
                raise
            logger.warning("graphviz dot failed (%s); drawing with networkx instead", e)
    return _draw_with_networkx(graph, vocab, rankdir, dpi)


# --------------------------------------------------------------------------- layouts
def _resize_mask(mask: np.ndarray, w: int, h: int) -> np.ndarray:
    im = Image.fromarray(np.clip(mask * 255.0, 0, 255).astype(np.uint8), "L")
    return np.asarray(im.resize((w, h), Image.BILINEAR), dtype=np.float32) / 255.0


def draw_layout(boxes: Any, masks: Any | None, labels: Sequence[str], size: int = 256, *,
                class_ids: Sequence[int] | None = None, vocab: Vocab | None = None,
                alpha: float = 0.75, draw_boxes: bool = True,
                draw_labels: bool = True) -> Image.Image:
    """Draw a layout: coloured masks warped into their boxes, box outlines and labels.

    Objects are painted from the largest box to the smallest, so small objects stay visible
    on top of large background regions. ``__image__`` objects (id 0) are skipped.

    Args:
        boxes: ``(O, 4)`` as (x0, y0, x1, y1) in [0, 1].
        masks: ``(O, M, M)`` in [0, 1], or ``None`` to fill each box.
        labels: O names, written at the top-left corner of each box.
        size: the output is ``size x size`` pixels.
        class_ids: O class ids for the colours; else looked up in ``vocab``, else derived from
            the label text.
        vocab: used to find class ids from ``labels`` when ``class_ids`` is not given.
        alpha: opacity of the masks over the white background.
        draw_boxes: draw the box outlines.
        draw_labels: write the labels (only when ``size >= 96``; smaller drawings have no
            room for text).

    Returns:
        An RGB image of ``size x size`` pixels.

    Raises:
        ValueError: the shapes of ``boxes``, ``masks``, ``labels`` and ``class_ids`` disagree.
    """
    b = _as_array(boxes).reshape(-1, 4) if len(labels) or np.size(boxes) else np.zeros((0, 4))
    n = b.shape[0]
    if len(labels) != n:
        raise ValueError(f"draw_layout: {n} boxes but {len(labels)} labels")
    m = None
    if masks is not None:
        m = _as_array(masks)
        if m.ndim != 3 or m.shape[0] != n:
            raise ValueError(f"draw_layout: masks must be (O, M, M) with O={n}, got "
                             f"{tuple(m.shape)}")
    if class_ids is not None and len(class_ids) != n:
        raise ValueError(f"draw_layout: {n} boxes but {len(class_ids)} class ids")
    colors = [class_color(int(class_ids[i])) if class_ids is not None
              else name_color(labels[i], vocab) for i in range(n)]
    skip = [class_ids is not None and int(class_ids[i]) == 0 or labels[i] == "__image__"
            for i in range(n)]

    canvas = np.full((size, size, 3), 255.0, dtype=np.float32)
    areas = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    order = [i for i in np.argsort(-areas, kind="stable") if not skip[i]]
    pix = []
    for i in range(n):
        x0, y0, x1, y1 = np.clip(b[i], 0.0, 1.0) * size
        px0, py0 = int(math.floor(x0)), int(math.floor(y0))
        px1, py1 = max(px0 + 1, int(math.ceil(x1))), max(py0 + 1, int(math.ceil(y1)))
        pix.append((px0, py0, min(px1, size), min(py1, size)))
    for i in order:
        px0, py0, px1, py1 = pix[i]
        w, h = px1 - px0, py1 - py0
        if w <= 0 or h <= 0:
            continue
        a = _resize_mask(m[i], w, h) if m is not None else np.ones((h, w), np.float32)
        a = (a * alpha)[..., None]
        region = canvas[py0:py1, px0:px1]
        canvas[py0:py1, px0:px1] = region * (1 - a) + np.asarray(colors[i], np.float32) * a
    img = Image.fromarray(np.clip(canvas, 0, 255).astype(np.uint8), "RGB")

    draw = ImageDraw.Draw(img)
    font = _font(max(9, size // 22))
    line = max(1, size // 128)
    darks = {i: tuple(int(c * 0.6) for c in colors[i]) for i in order}
    if draw_boxes:
        for i in order:
            px0, py0, px1, py1 = pix[i]
            draw.rectangle((px0, py0, px1 - 1, py1 - 1), outline=darks[i], width=line)
    if draw_labels and size >= 96:
        placed: list[tuple[int, int, int, int]] = []
        for i in order:
            px0, py0, px1, py1 = pix[i]
            tx, ty = px0 + line + 1, py0 + line
            rect = draw.textbbox((tx, ty), labels[i], font=font)
            step = rect[3] - rect[1] + 4
            # Objects with coinciding boxes: stack their labels instead of overprinting.
            for _ in range(len(placed)):
                if not any(rect[0] < r[2] and r[0] < rect[2] and rect[1] < r[3] and r[1] < rect[3]
                           for r in placed) or rect[3] + step > size:
                    break
                ty += step
                rect = (rect[0], rect[1] + step, rect[2], rect[3] + step)
            placed.append(rect)
            left, top, right, bottom = rect
            draw.rectangle((left - 1, top - 1, right + 1, bottom + 1), fill=darks[i])
            draw.text((tx, ty), labels[i], fill=(255, 255, 255), font=font)
    # A light frame shows the canvas' extent where no object covers it.
    draw.rectangle((0, 0, size - 1, size - 1), outline=(200, 200, 200), width=1)
    return img


# --------------------------------------------------------------------------- sheets
def _fit(im: Image.Image, height: int) -> Image.Image:
    if im.height == height:
        return im.convert("RGB")
    w = max(1, round(im.width * height / im.height))
    # Upscaling small generated images: nearest keeps their pixels honest.
    resample = Image.NEAREST if im.height < height and im.height <= 128 else Image.LANCZOS
    return im.convert("RGB").resize((w, height), resample)


def make_sheet(rows: Sequence[Sequence[Image.Image | None]],
               titles: Sequence[str] | None = None, *,
               row_titles: Sequence[str] | None = None, cell_height: int = 256,
               pad: int = 8, background: tuple[int, int, int] = (255, 255, 255)) -> Image.Image:
    """Arrange images in a grid: one row per list, each image scaled to ``cell_height``.

    Columns are as wide as their widest image; narrower images are centred. ``None`` leaves a
    cell empty.

    Args:
        rows: the images, row by row (rows may differ in length).
        titles: column titles written above the first row, e.g.
            ``["graph", "layout", "image"]``.
        row_titles: one title per row, written above that row.
        cell_height: every image is resized to this height, keeping its aspect ratio.
        pad: pixels between cells.
        background: sheet colour.

    Returns:
        One RGB image.

    Raises:
        ValueError: no rows, or a titles list of the wrong length.
    """
    if not rows or not any(len(r) for r in rows):
        raise ValueError("make_sheet needs at least one image")
    if row_titles is not None and len(row_titles) != len(rows):
        raise ValueError(f"make_sheet: {len(rows)} rows but {len(row_titles)} row titles")
    fitted = [[None if im is None else _fit(im, cell_height) for im in r] for r in rows]
    ncols = max(len(r) for r in fitted)
    if titles is not None and len(titles) > ncols:
        raise ValueError(f"make_sheet: {len(titles)} titles for {ncols} columns")
    col_w = [max([r[c].width for r in fitted if c < len(r) and r[c] is not None] or
                 [cell_height]) for c in range(ncols)]
    font = _font(max(12, cell_height // 16))
    probe = ImageDraw.Draw(Image.new("RGB", (1, 1)))
    text_h = probe.textbbox((0, 0), "Ag", font=font)[3] + 4
    head = text_h + pad if titles else 0
    row_head = text_h if row_titles else 0
    width = sum(col_w) + pad * (ncols + 1)
    height = head + len(rows) * (cell_height + row_head + pad) + pad
    sheet = Image.new("RGB", (width, height), background)
    draw = ImageDraw.Draw(sheet)
    x_of = [pad + sum(col_w[:c]) + pad * c for c in range(ncols)]
    for c, title in enumerate(titles or ()):
        tw = draw.textlength(title, font=font)
        draw.text((x_of[c] + (col_w[c] - tw) / 2, pad), title, fill=(0, 0, 0), font=font)
    y = head + pad
    for r, row in enumerate(fitted):
        if row_titles:
            draw.text((pad, y), row_titles[r], fill=(0, 0, 0), font=font)
            y += row_head
        for c, im in enumerate(row):
            if im is not None:
                sheet.paste(im, (x_of[c] + (col_w[c] - im.width) // 2, y))
        y += cell_height + pad
    return sheet
