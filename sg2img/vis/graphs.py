"""Scene graph drawings: objects as boxes coloured by class, predicates as ellipses between them.

Scene graphs are drawn with graphviz ``dot`` when it is installed and with networkx +
matplotlib (Agg, no display needed) otherwise. Predicates are small ellipses between their
subject and object, as sg2im draws them, so self-loops and duplicate triples stay readable.
matplotlib and networkx are imported inside the functions that draw with them, so importing
this module (and ``sg2img --help``) does not pay for them.
"""

from __future__ import annotations

import logging
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageDraw

from ..scene_graph import SceneGraph
from ..vocab import Vocab
from .colors import name_color, text_color
from .pil import load_font, short_label

logger = logging.getLogger(__name__)

MAX_DRAW_OBJECTS = 64
"""``draw_scene_graph`` lays out at most this many objects (``SceneGraph``'s default maximum)."""
MAX_DRAW_RELATIONSHIPS = 128
"""``draw_scene_graph`` lays out at most this many relationships (a few seconds' layout)."""


def _graph_nodes(graph: SceneGraph, vocab: Vocab | None):
    """Node and edge lists of the drawing: object nodes ``o{i}``, predicate nodes ``p{k}``.

    An object's label is its name after its attributes ("red car"); labels are cut to
    ``MAX_LABEL_CHARS``; colours come from the full names.
    """
    objects = [(f"o{i}", short_label(label), name_color(str(name), vocab))
               for i, (name, label) in enumerate(zip(graph.objects, graph.object_labels(),
                                                     strict=True))]
    preds = [(f"p{k}", short_label(p)) for k, (_, p, _) in enumerate(graph.relationships)]
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
        font = "#{:02x}{:02x}{:02x}".format(*text_color(rgb))
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
                      color=tuple(c / 255 for c in text_color(rgb)),
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
    font, small = load_font(15), load_font(13)
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
            lines.append((f"{short_label(name)}  x{n}", small,
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
