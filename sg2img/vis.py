"""Pictures: scene graph drawings, layout drawings, image sheets, training pictures and
tensor <-> PIL helpers.

The drawing functions return ``PIL.Image.Image`` objects (RGB). Scene graphs are drawn with
graphviz ``dot`` when it is installed and with networkx + matplotlib (Agg, no display needed)
otherwise. Objects are boxes coloured by class, predicates are small ellipses between their
subject and object, as sg2im draws them, so self-loops and duplicate triples stay readable.
Training pictures: ``colorize_layout`` (layout tensors for sample grids) and
``plot_loss_curves`` (a run's ``stats.jsonl`` as a PNG).

There is one class palette (``class_color``): a layout looks the same in ``draw_layout``,
``colorize_layout`` and the object boxes of ``draw_scene_graph``.

Tensors are accepted wherever arrays are (anything with ``.detach()`` is moved to the CPU
first). matplotlib and networkx are imported inside the functions that draw with them, so
importing this module (and ``sg2img --help``) does not pay for them.
"""

from __future__ import annotations

import colorsys
import functools
import json
import logging
import math
import os
import shutil
import stat
import subprocess
import sys
import tempfile
import zlib
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from .scene_graph import SceneGraph
from .vocab import Vocab

if TYPE_CHECKING:
    from torch import Tensor

logger = logging.getLogger(__name__)

_IMAGE_GREY = (160, 160, 160)
MAX_DRAW_OBJECTS = 64
"""``draw_scene_graph`` lays out at most this many objects (``SceneGraph``'s default maximum)."""
MAX_DRAW_RELATIONSHIPS = 128
"""``draw_scene_graph`` lays out at most this many relationships (a few seconds' layout)."""
MAX_LABEL_CHARS = 32
"""Longer object and predicate names are cut in graph drawings."""
MAX_SHEET_PIXELS = 64_000_000
"""``make_sheet`` refuses sheets larger than this (192 MB as RGB) by default."""
# The class palette: a grid of hues x saturations x values (no washed-out, very dark or neon
# colours), and sRGB -> CIE XYZ (D65) for CIELAB distances.
_HUES, _SATURATIONS, _VALUES = 36, (0.4, 0.55, 0.7, 0.85), (0.5, 0.65, 0.8, 0.95)
PALETTE_SIZE = _HUES * len(_SATURATIONS) * len(_VALUES)
"""Number of distinct class colours; ids above it reuse them (id ``PALETTE_SIZE + 1`` is 1's)."""
_RGB_TO_XYZ = np.array([[0.4124, 0.3576, 0.1805], [0.2126, 0.7152, 0.0722],
                        [0.0193, 0.1192, 0.9505]])
_D65_WHITE = np.array([0.95047, 1.0, 1.08883])


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


def _srgb_to_lab(rgb: np.ndarray) -> np.ndarray:
    """``(K, 3)`` sRGB in [0, 255] to CIELAB (D65), where distances follow perceived difference."""
    c = np.asarray(rgb, dtype=np.float64) / 255.0
    c = np.where(c > 0.04045, ((c + 0.055) / 1.055) ** 2.4, c / 12.92)         # linear RGB
    xyz = c @ _RGB_TO_XYZ.T / _D65_WHITE
    f = np.where(xyz > (6 / 29) ** 3, np.cbrt(xyz), xyz / (3 * (6 / 29) ** 2) + 4 / 29)
    return np.stack([116 * f[:, 1] - 16, 500 * (f[:, 0] - f[:, 1]),
                     200 * (f[:, 1] - f[:, 2])], axis=1)


@functools.lru_cache(maxsize=1)
def _palette() -> np.ndarray:
    """The class colours in order: ``(PALETTE_SIZE, 3)`` uint8.

    The grid colours ordered by greedy farthest-point sampling in CIELAB: each colour is the
    candidate farthest from all colours before it and from white (the layout background), the
    ``__image__`` grey and black. Every prefix is therefore well spread, so class ``k`` keeps
    its colour whatever the vocabulary size, and the first classes differ most.
    """
    grid = [colorsys.hsv_to_rgb(h / _HUES, s, v) for h in range(_HUES) for s in _SATURATIONS
            for v in _VALUES]
    rgb = np.rint(np.array(grid) * 255.0)
    lab = _srgb_to_lab(rgb)
    avoid = _srgb_to_lab(np.array([(255, 255, 255), _IMAGE_GREY, (0, 0, 0)]))
    dist = np.linalg.norm(lab[:, None] - avoid[None], axis=2).min(axis=1)
    order = []
    for _ in range(len(rgb)):
        k = int(dist.argmax())
        order.append(k)
        dist = np.minimum(dist, np.linalg.norm(lab - lab[k], axis=1))
    palette = rgb[order].astype(np.uint8)
    palette.flags.writeable = False  # cached: shared by every caller
    return palette


def class_color(class_id: int) -> tuple[int, int, int]:
    """A fixed RGB colour for a class id (id 0, ``__image__``, is grey).

    The colours come from a fixed palette ordered so that low ids differ most: the first 8 are
    far apart, and COCO-Stuff's 184 classes still differ visibly (CIELAB distance >= 12).
    The same in every process and for every vocabulary size; ``draw_layout``,
    ``draw_scene_graph`` and ``colorize_layout`` all use it.
    """
    class_id = int(class_id)
    if class_id < 0:
        raise ValueError(f"class ids are >= 0, got {class_id}")
    if class_id == 0:
        return _IMAGE_GREY
    r, g, b = _palette()[(class_id - 1) % PALETTE_SIZE]
    return int(r), int(g), int(b)


def class_palette(num_classes: int) -> np.ndarray:
    """``class_color`` for ids ``0 .. num_classes - 1`` as a ``(num_classes, 3)`` uint8 array."""
    if num_classes < 0:
        raise ValueError(f"num_classes must be >= 0, got {num_classes}")
    ids = np.arange(num_classes)
    out = _palette()[(ids - 1) % PALETTE_SIZE]
    out[ids == 0] = _IMAGE_GREY
    return out


def name_color(name: str, vocab: Vocab | None = None) -> tuple[int, int, int]:
    """The colour of a class name: its vocabulary id's colour, else one from a hash of the name.

    The hash is CRC-32 of the UTF-8 name, not Python's ``hash`` (salted per process), so a name
    has the same colour in every run.
    """
    if vocab is not None:
        try:
            return class_color(vocab.object_idx(name))
        except ValueError:
            pass
    return class_color(1 + zlib.crc32(name.encode("utf-8", "replace")) % PALETTE_SIZE)


def _luminance(rgb: tuple[int, int, int]) -> float:
    """WCAG relative luminance of an sRGB colour."""
    c = np.asarray(rgb, dtype=np.float64) / 255.0
    c = np.where(c > 0.04045, ((c + 0.055) / 1.055) ** 2.4, c / 12.92)
    return float(0.2126 * c[0] + 0.7152 * c[1] + 0.0722 * c[2])


def _text_color(rgb: tuple[int, int, int]) -> tuple[int, int, int]:
    """Black or white, whichever contrasts more with ``rgb`` (WCAG ratio >= 4.58 for any colour)."""
    lum = _luminance(rgb)
    return (0, 0, 0) if (lum + 0.05) / 0.05 >= 1.05 / (lum + 0.05) else (255, 255, 255)


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
def _short(text: Any, limit: int = MAX_LABEL_CHARS) -> str:
    """``text`` as a label of at most ``limit`` characters (cut with an ellipsis)."""
    text = str(text)
    return text if len(text) <= limit else text[:limit - 1] + "\u2026"


def _graph_nodes(graph: SceneGraph, vocab: Vocab | None):
    """Node and edge lists of the drawing: object nodes ``o{i}``, predicate nodes ``p{k}``.

    Labels are cut to ``MAX_LABEL_CHARS``; colours come from the full names.
    """
    objects = [(f"o{i}", _short(name), name_color(str(name), vocab))
               for i, name in enumerate(graph.objects)]
    preds = [(f"p{k}", _short(p)) for k, (_, p, _) in enumerate(graph.relationships)]
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


def _layers(nodes: list[str], edges: list[tuple[str, str]]) -> list[list[str]]:
    """Layers along the edge direction, as ``dot`` ranks them, through networkx.

    The layers start from the topological generations of the graph less its DFS back edges
    (reverse DFS postorder puts every other edge forwards), so cycles, self-loops and duplicate
    triples still get one layer per step along their arrows; the DFS starts at nodes without
    incoming arrows, so that the edge it drops closes a cycle where the graph's flow returns.
    Then every node with successors moves down to just before its nearest successor, so a
    short chain that joins a long one late starts late instead of sending a long arrow across
    the drawing (``dot`` keeps arrows short the same way); isolated nodes stay first.
    """
    import networkx as nx

    heads = {b for _, b in edges}
    g = nx.DiGraph()
    g.add_nodes_from(sorted(nodes, key=lambda n: n in heads))  # stable: sources first
    g.add_edges_from(edges)
    rank = {n: i for i, n in enumerate(reversed(list(nx.dfs_postorder_nodes(g))))}
    dag = nx.DiGraph()
    dag.add_nodes_from(g)
    dag.add_edges_from((a, b) for a, b in g.edges if rank[a] < rank[b])
    generations = list(nx.topological_generations(dag))
    layer = {n: i for i, gen in enumerate(generations) for n in gen}
    for n in reversed([n for gen in generations for n in gen]):  # successors first
        below = [layer[s] for s in dag.successors(n)]
        if below:
            layer[n] = min(below) - 1
    out: list[list[str]] = [[] for _ in range(max(layer.values(), default=-1) + 1)]
    for n in (n for gen in generations for n in gen):
        out[layer[n]].append(n)
    return [lay for lay in out if lay]


def _networkx_positions(nodes: list[str], edges: list[tuple[str, str]],
                        rankdir: str) -> dict[str, tuple[float, float]]:
    """Node positions from ``nx.multipartite_layout`` over ``_layers``: one layer per column
    (``"LR"``) or row (``"TB"``). Labels are wider than tall, so horizontal steps are 1.6
    units, vertical steps one."""
    import networkx as nx

    layers = _layers(nodes, edges)
    g = nx.Graph()
    g.add_nodes_from(nodes)
    pos = nx.multipartite_layout(g, subset_key=dict(enumerate(layers)), align="vertical")
    # multipartite_layout scales the drawing into [-1, 1]; back to unit steps (it scales x and
    # y alike, so one span along either axis gives the factor).
    xs = [p[0] for p in pos.values()]
    ys = [p[1] for p in pos.values()]
    longest = max(len(layer) for layer in layers)
    if len(layers) > 1:
        unit = (max(xs) - min(xs)) / (len(layers) - 1)
    elif longest > 1:
        unit = (max(ys) - min(ys)) / (longest - 1)
    else:
        unit = 1.0
    out = {}
    for n, (x, y) in pos.items():
        along, across = float(x) / unit, float(y) / unit  # the first node of a layer first
        out[n] = (along * 1.6, -across) if rankdir == "LR" else (across * 1.6, -along)
    return out


def _label_inches(text: str, points: float) -> float:
    """About how wide a label box of ``text`` at ``points`` is, in inches (padding included)."""
    return (0.6 * len(text) + 0.8) * points / 72


def _draw_with_networkx(graph: SceneGraph, vocab: Vocab | None, rankdir: str,
                        dpi: int) -> Image.Image:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.patches import FancyArrowPatch

    objects, preds, edges = _graph_nodes(graph, vocab)
    nodes = [n for n, _, _ in objects] + [n for n, _ in preds]
    pos = _networkx_positions(nodes, edges, rankdir)
    xs = [p[0] for p in pos.values()]
    ys = [p[1] for p in pos.values()]
    # Inches per layout unit: horizontal steps (1.6 units) fit the widest label and a gap for
    # the arrows; vertical steps (1 unit) fit a label's height and an arrow.
    widest = max([_label_inches(name, 11) for _, name, _ in objects] +
                 [_label_inches(p, 9) for _, p in preds])
    sx, sy = max(0.6, (widest + 0.4) / 1.6), 0.6
    margin_x = (widest / 2 + 0.15) / sx
    fig = Figure(figsize=((max(xs) - min(xs) + 2 * margin_x) * sx,
                          (max(ys) - min(ys) + 1.0) * sy), dpi=dpi)
    FigureCanvasAgg(fig)
    ax = fig.add_axes((0, 0, 1, 1))
    ax.set_xlim(min(xs) - margin_x, max(xs) + margin_x)
    ax.set_ylim(min(ys) - 0.5, max(ys) + 0.5)
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
        # Bend the two arrows of a self-loop (o -> p -> o) apart, arrows that run back against
        # the layers (they close a cycle) around the nodes between, repeated arrows further.
        back = (pos[b][0] <= pos[a][0]) if rankdir == "LR" else (pos[b][1] >= pos[a][1])
        rad = 0.3 if (b, a) in edge_set else 0.4 if back else 0.0
        arrow = FancyArrowPatch(pos[a], pos[b], arrowstyle="-|>", mutation_scale=12,
                                color="#555555", lw=1.0, zorder=2,
                                connectionstyle=f"arc3,rad={rad + 0.2 * n}",
                                patchA=patches[a].get_bbox_patch(),
                                patchB=patches[b].get_bbox_patch(), shrinkA=2, shrinkB=2)
        ax.add_artist(arrow)  # not add_patch: the limits are set, and it would clip twice
    fig.canvas.draw()
    rgba = np.asarray(fig.canvas.buffer_rgba())
    return Image.fromarray(rgba[..., :3].copy(), "RGB")


def _draw_summary(graph: SceneGraph, vocab: Vocab | None, max_objects: int,
                  max_relationships: int, top: int = 8) -> Image.Image:
    """A card in place of a graph too large to draw: its size, the limits, the commonest names.

    Its size is bounded (``top`` names per list, names cut to ``MAX_LABEL_CHARS``) and it takes
    time linear in the graph (two counts), so any graph gets one quickly.
    """
    from collections import Counter

    objects = Counter(str(o) for o in graph.objects).most_common()
    preds = Counter(str(r[1]) for r in graph.relationships).most_common()
    font, small = _font(15), _font(13)
    lines: list[tuple[str, Any, tuple[int, int, int] | None]] = [
        ("Scene graph too large to draw", font, None),
        (f"{len(graph.objects)} objects, {len(graph.relationships)} relationships; drawings "
         f"stop at {max_objects} objects", small, None),
        (f"or {max_relationships} relationships (draw_scene_graph's max_objects and "
         f"max_relationships).", small, None)]
    for title, counts, colored in (("objects", objects, True), ("predicates", preds, False)):
        if not counts:
            continue
        lines.append((f"{title}:", font, None))
        for name, n in counts[:top]:
            lines.append((f"{_short(name)}  x{n}", small,
                          name_color(name, vocab) if colored else None))
        if len(counts) > top:
            lines.append((f"... and {len(counts) - top} more", small, None))
    step, pad, swatch = 20, 12, 14
    img = Image.new("RGB", (560, 2 * pad + step * len(lines)), (255, 255, 255))
    draw = ImageDraw.Draw(img)
    y = pad
    for text, f, rgb in lines:
        x = pad
        if rgb is not None:
            draw.rectangle((x + 8, y + 2, x + 8 + swatch, y + 2 + swatch), fill=rgb)
            x += 8 + swatch + 6
        draw.text((x, y), text, fill=(0, 0, 0), font=f)
        y += step
    draw.rectangle((0, 0, img.width - 1, img.height - 1), outline=(200, 200, 200))
    return img


def draw_scene_graph(graph: SceneGraph | Mapping[str, Any], vocab: Vocab | None = None, *,
                     rankdir: str = "LR", engine: str = "auto", dpi: int = 100,
                     max_objects: int = MAX_DRAW_OBJECTS,
                     max_relationships: int = MAX_DRAW_RELATIONSHIPS) -> Image.Image:
    """Draw a scene graph: objects as coloured boxes, predicates as ellipses on the arrows.

    Each relationship gets its own predicate node (sg2im's drawing), so duplicate triples and
    self-loops are drawn rather than merged or dropped. Without graphviz, networkx places the
    nodes in layers along the arrows (``multipartite_layout`` over topological generations;
    arrows that close a cycle are bent back).

    Graphs with more than ``max_objects`` objects or ``max_relationships`` relationships are
    not laid out: the drawing is then a small card that says so and lists the graph's sizes,
    the limits and its commonest object and predicate names (a warning is logged). Layout time
    grows faster than linearly with the graph (minutes for 2,000 relationships), and such a
    drawing is unreadable anyway. A card rather than an error, because a drawing is a
    by-product (``--draw-graph``, sheets) of a generation that has already succeeded, and
    should not fail it; the card's text names the limits to raise.
    Labels longer than ``MAX_LABEL_CHARS`` are cut.

    Args:
        graph: a ``SceneGraph`` or its sg2im JSON dict (not modified).
        vocab: when given, objects take their class id's colour (the same as ``draw_layout``);
            otherwise a colour derived from the name.
        rankdir: ``"LR"`` (left to right) or ``"TB"`` (top to bottom).
        engine: ``"auto"`` (graphviz ``dot`` when installed, else networkx), ``"dot"`` or
            ``"networkx"``.
        dpi: resolution of the networkx drawing.
        max_objects: draw at most this many objects (else the summary card).
        max_relationships: draw at most this many relationships (else the summary card).

    Returns:
        An RGB image whose size depends on the graph.

    Raises:
        SceneGraphError: the graph is malformed.
        ValueError: bad ``rankdir`` or ``engine``, or ``engine="dot"`` without graphviz.
    """
    if not isinstance(graph, SceneGraph):
        # The drawing has its own size limits (below): a large graph gets the summary card.
        graph = SceneGraph.from_dict(graph, max_objects=sys.maxsize,
                                     max_relationships=sys.maxsize)
    if rankdir not in ("LR", "TB"):
        raise ValueError(f"rankdir must be 'LR' or 'TB', got {rankdir!r}")
    if engine not in ("auto", "dot", "networkx"):
        raise ValueError(f"engine must be 'auto', 'dot' or 'networkx', got {engine!r}")
    if max_objects < 1 or max_relationships < 0:
        raise ValueError(f"max_objects must be >= 1 and max_relationships >= 0, got "
                         f"{max_objects} and {max_relationships}")
    if len(graph.objects) > max_objects or len(graph.relationships) > max_relationships:
        logger.warning("scene graph with %d objects and %d relationships is too large to draw "
                       "(limits %d and %d); drawing a summary instead", len(graph.objects),
                       len(graph.relationships), max_objects, max_relationships)
        return _draw_summary(graph, vocab, max_objects, max_relationships)
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


# --------------------------------------------------------------------------- training
def colorize_layout(layout: Tensor) -> Tensor:
    """A semantic layout as a colour image in the class palette (``draw_layout``'s colours).

    The class channels ``c >= 1`` are painted over white as ``draw_layout`` paints objects:
    in ``class_color(c)``, with the channel's value as opacity, the class covering most of
    the image first, so that small objects stay visible on top of the regions they overlap.
    A one-hot pixel of class ``c`` is therefore exactly ``class_color(c)`` and a pixel that no
    class covers is white. Channel 0 (the unlabelled region in ``layout.semantic_layout``) is
    background. NaNs count as 0.

    Args:
        layout: ``(N, C, H, W)`` in [0, 1] (a torch tensor on any device).

    Returns:
        ``(N, 3, H, W)`` float32 in [-1, 1] on the CPU, ready for ``to_pil`` or ``save_image``.

    Raises:
        ValueError: ``layout`` does not have 4 dimensions or has no channel.
    """
    if layout.dim() != 4 or layout.shape[1] < 1:
        raise ValueError(f"colorize_layout expects an (N, C, H, W) layout with C >= 1, got "
                         f"shape {tuple(layout.shape)}")
    x = layout.detach().float().cpu().nan_to_num(0.0).clamp_(0.0, 1.0)
    n, c, h, w = x.shape
    if c == 1:                                                        # nothing but background
        return x.new_ones(n, 3, h, w)
    lut = x.new_tensor(class_palette(c)[1:] / 255.0)                 # (C - 1, 3)
    fg = x[:, 1:]                                                      # (N, C - 1, H, W)
    # Composite like draw_layout paints: the class covering least of the image is on top.
    # With the channels sorted top first, channel k shows through the ones above it:
    # weight_k = a_k * prod_{j < k} (1 - a_j); white shows through all of them.
    order = fg.mean(dim=(2, 3)).argsort(dim=1, stable=True)            # (N, C - 1), top first
    weight = fg.gather(1, order[:, :, None, None].expand_as(fg))       # a_k, top first
    through = (1.0 - weight).cumprod_(1)                               # prod_{j <= k} (1 - a_j)
    weight[:, 1:] *= through[:, :-1]
    color = lut[order].transpose(1, 2) @ weight.view(n, c - 1, h * w)  # (N, 3, H * W)
    return (color.view(n, 3, h, w) + through[:, -1:]) * 2.0 - 1.0    # white where uncovered


MAX_STATS_BYTES = 64 * 2**20
"""``plot_loss_curves`` reads at most the last this many bytes of ``stats.jsonl``."""
_MAX_CURVES = 24


def _finite(v: Any) -> float | None:
    """``v`` as a finite float, or None (not a number, a bool, NaN, inf or too large)."""
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        return None
    try:
        f = float(v)
    except OverflowError:
        return None
    return f if math.isfinite(f) else None


def plot_loss_curves(stats_path: str | os.PathLike, out_path: str | os.PathLike, *,
                     max_bytes: int = MAX_STATS_BYTES) -> Path | None:
    """Plot every ``G/`` and ``D/`` term of a ``stats.jsonl`` against the step into a PNG.

    Two panels, D terms and G terms, on a symlog axis; points are sorted by step (a resumed
    run appends steps it had already logged). Unusable input is skipped rather than fatal, so
    a run's file cut mid-line by a kill still plots: lines that are not JSON objects, rows
    without a numeric ``step``, values that are not finite numbers. Only the last
    ``max_bytes`` of the file are read, and at most 24 terms per panel are drawn (in name
    order). Drawn with matplotlib's Agg canvas, without pyplot, so the caller's matplotlib
    backend is left alone; the PNG is written to a temporary file, then renamed.

    Args:
        stats_path: the ``stats.jsonl`` of a run (one JSON object per line).
        out_path: the PNG to write (replaced if it exists).
        max_bytes: read at most the file's last ``max_bytes`` bytes.

    Returns:
        ``out_path``, or None when ``stats_path`` does not exist or holds no loss term
        (nothing is written then).

    Raises:
        ValueError: ``stats_path`` exists but is not a regular file (a FIFO would block).
    """
    stats_path, out_path = Path(stats_path), Path(out_path)
    try:
        st = stats_path.stat()
    except FileNotFoundError:
        return None
    if not stat.S_ISREG(st.st_mode):
        raise ValueError(f"{stats_path} is not a regular file")
    with stats_path.open("rb") as f:
        start = max(0, st.st_size - max_bytes)
        f.seek(start)
        data = f.read(max_bytes)
    lines = data.decode("utf-8", "replace").splitlines()
    if start > 0 and lines:
        lines = lines[1:]  # the first line is cut
    curves: dict[str, list[tuple[float, float]]] = {}
    for line in lines:
        try:
            row = json.loads(line)
        except (ValueError, RecursionError):
            continue
        step = _finite(row.get("step")) if isinstance(row, dict) else None
        if step is None:
            continue
        for k, v in row.items():
            val = _finite(v)
            if isinstance(k, str) and k[:2] in ("D/", "G/") and val is not None:
                curves.setdefault(k, []).append((step, val))
    if not curves:
        return None

    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(12, 4))
    FigureCanvasAgg(fig)
    axes = fig.subplots(1, 2)
    for ax, group in zip(axes, ("D", "G"), strict=True):
        for k in sorted(c for c in curves if c.startswith(group + "/"))[:_MAX_CURVES]:
            pts = sorted(curves[k], key=lambda p: p[0])
            ax.plot([p[0] for p in pts], [p[1] for p in pts], label=_short(k[2:]))
        ax.set_title(f"{group} loss terms (unweighted)")
        ax.set_xlabel("step")
        ax.set_yscale("symlog", linthresh=1e-2)
        if ax.lines:
            ax.legend(fontsize=7, ncol=2)
    fig.tight_layout()
    tmp = out_path.with_name(f".{out_path.name}.tmp")
    fig.savefig(tmp, dpi=90, format="png")
    os.replace(tmp, out_path)
    return out_path


# --------------------------------------------------------------------------- sheets
def _fit_width(im: Image.Image, height: int) -> int:
    """The width of ``im`` scaled to ``height`` (aspect kept), as ``_fit`` makes it."""
    return im.width if im.height == height else max(1, round(im.width * height / im.height))


def _fit(im: Image.Image, height: int) -> Image.Image:
    if im.height == height:
        return im.convert("RGB")
    w = _fit_width(im, height)
    # Upscaling small generated images: nearest keeps their pixels honest.
    resample = Image.NEAREST if im.height < height and im.height <= 128 else Image.LANCZOS
    return im.convert("RGB").resize((w, height), resample)


def make_sheet(rows: Sequence[Sequence[Image.Image | None]],
               titles: Sequence[str] | None = None, *,
               row_titles: Sequence[str] | None = None, cell_height: int = 256,
               pad: int = 8, background: tuple[int, int, int] = (255, 255, 255),
               max_pixels: int = MAX_SHEET_PIXELS) -> Image.Image:
    """Arrange images in a grid: one row per list, each image scaled to ``cell_height``.

    Columns are as wide as their widest image; narrower images are centred. ``None`` leaves a
    cell empty.

    The sheet's size is checked before any image is resized, and a sheet of more than
    ``max_pixels`` pixels is refused with a ``ValueError`` that says how many rows would fit:
    2,000 rows at the default cell height make a sheet of gigabytes that no viewer opens. We
    refuse rather than shrink the cells, because shrinking them to fit would make every cell
    unreadable; callers split long lists over several sheets instead.

    Args:
        rows: the images, row by row (rows may differ in length).
        titles: column titles written above the first row, e.g.
            ``["graph", "layout", "image"]``.
        row_titles: one title per row, written above that row.
        cell_height: every image is resized to this height, keeping its aspect ratio.
        pad: pixels between cells.
        background: sheet colour.
        max_pixels: the largest sheet (width x height) to make.

    Returns:
        One RGB image.

    Raises:
        ValueError: no rows, a titles list of the wrong length, or a sheet larger than
            ``max_pixels``.
    """
    if not rows or not any(len(r) for r in rows):
        raise ValueError("make_sheet needs at least one image")
    if row_titles is not None and len(row_titles) != len(rows):
        raise ValueError(f"make_sheet: {len(rows)} rows but {len(row_titles)} row titles")
    if cell_height < 1 or pad < 0:
        raise ValueError(f"make_sheet: cell_height must be >= 1 and pad >= 0, got "
                         f"{cell_height} and {pad}")
    ncols = max(len(r) for r in rows)
    if titles is not None and len(titles) > ncols:
        raise ValueError(f"make_sheet: {len(titles)} titles for {ncols} columns")
    col_w = [max([_fit_width(r[c], cell_height) for r in rows if c < len(r) and r[c] is not None]
                 or [cell_height]) for c in range(ncols)]
    font = _font(max(12, cell_height // 16))
    probe = ImageDraw.Draw(Image.new("RGB", (1, 1)))
    text_h = probe.textbbox((0, 0), "Ag", font=font)[3] + 4
    head = text_h + pad if titles else 0
    row_head = text_h if row_titles else 0
    width = sum(col_w) + pad * (ncols + 1)
    row_h = cell_height + row_head + pad
    height = head + len(rows) * row_h + pad
    if width * height > max_pixels:
        fit = max(0, (max_pixels // width - head - pad) // row_h)
        raise ValueError(f"make_sheet: {len(rows)} rows make a {width} x {height} sheet "
                         f"({width * height / 1e6:.0f} megapixels), more than max_pixels="
                         f"{max_pixels} ({max_pixels / 1e6:.0f} megapixels); about {fit} such "
                         f"rows fit: split the rows over several sheets or lower cell_height")
    fitted = [[None if im is None else _fit(im, cell_height) for im in r] for r in rows]
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
