"""Pictures: tensor <-> PIL, palette, scene graph drawings, layout drawings, sheets, training
pictures."""

import copy
import json
import logging
import os
import shutil
import subprocess
import sys
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from sg2img import vis
from sg2img.scene_graph import SceneGraph
from sg2img.vis import (
    MAX_DRAW_OBJECTS,
    MAX_DRAW_RELATIONSHIPS,
    PALETTE_SIZE,
    class_color,
    class_palette,
    colorize_layout,
    draw_layout,
    draw_scene_graph,
    from_pil,
    graphs,
    make_sheet,
    name_color,
    plot_loss_curves,
    sheets,
    text_color,
    to_pil,
)


def test_to_pil_maps_range_and_shapes():
    x = torch.tensor([-1.0, 0.0, 1.0, 2.0]).view(1, 1, 4).expand(3, 1, 4)  # (3, 1, 4)
    im = to_pil(x)
    assert isinstance(im, Image.Image) and im.size == (4, 1) and im.mode == "RGB"
    assert np.asarray(im)[0, :, 0].tolist() == [0, 128, 255, 255]  # clipped above 1
    ims = to_pil(torch.zeros(2, 3, 5, 7))
    assert isinstance(ims, list) and len(ims) == 2 and ims[0].size == (7, 5)
    assert to_pil(torch.zeros(1, 4, 4)).size == (4, 4)  # one channel repeated
    with pytest.raises(ValueError, match="shape"):
        to_pil(torch.zeros(4, 4))


def test_from_pil_inverts_to_pil():
    x = (torch.arange(2 * 3 * 4 * 5).float().view(2, 3, 4, 5) % 255) / 127.5 - 1.0
    back = from_pil(to_pil(x))
    assert back.shape == (2, 3, 4, 5)
    assert torch.allclose(back, x, atol=1 / 127.5)


def _min_distance(colors):
    c = np.asarray(colors, dtype=float)
    d = np.linalg.norm(c[:, None] - c[None], axis=2)
    np.fill_diagonal(d, np.inf)
    return d.min()


def test_class_colors_distinct_across_vocabularies():
    assert class_color(0) == (160, 160, 160)                        # __image__
    # Low ids differ most, and COCO-Stuff's 184 classes still differ visibly.
    assert _min_distance([class_color(i) for i in range(1, 9)]) >= 90
    assert _min_distance([class_color(i) for i in range(1, 41)]) >= 25
    assert _min_distance([class_color(i) for i in range(1, 185)]) >= 12
    colors = np.array([class_color(i) for i in range(1, PALETTE_SIZE + 1)], dtype=float)
    assert np.linalg.norm(colors - 255, axis=1).min() >= 100        # far from the background
    assert np.linalg.norm(colors - 160, axis=1).min() >= 50         # and from __image__ grey
    assert class_color(PALETTE_SIZE + 3) == class_color(3)          # ids beyond wrap around
    pal = class_palette(PALETTE_SIZE + 3)
    assert pal.shape == (PALETTE_SIZE + 3, 3) and pal.dtype == np.uint8
    assert [tuple(int(v) for v in c) for c in pal] == [class_color(i) for i in range(len(pal))]
    with pytest.raises(ValueError, match=">= 0"):
        class_color(-1)


def _contrast(a, b):
    def lum(rgb):
        c = np.asarray(rgb, dtype=float) / 255
        c = np.where(c > 0.04045, ((c + 0.055) / 1.055) ** 2.4, c / 12.92)
        return 0.2126 * c[0] + 0.7152 * c[1] + 0.0722 * c[2]
    hi, lo = sorted((lum(a), lum(b)), reverse=True)
    return (hi + 0.05) / (lo + 0.05)


def test_label_text_readable_on_every_class_color():
    # WCAG AA for normal text is 4.5:1; black or white, whichever is better, always reaches it.
    for i in range(PALETTE_SIZE + 1):
        rgb = class_color(i)
        assert _contrast(rgb, text_color(rgb)) >= 4.5, (i, rgb)


def test_name_colors_follow_vocab_and_are_stable_across_processes(vocab):
    assert name_color("sheep", vocab) == class_color(vocab.object_idx("sheep"))
    names = ["sheep", "zebra", "giraffe", "wooden table", "sky-other-merged", "\u00e9t\u00e9"]
    # Names outside the vocabulary: a CRC-32 of the name, not Python's salted hash().
    for name in names:
        expected = class_color(1 + zlib.crc32(name.encode("utf-8")) % PALETTE_SIZE)
        assert name_color(name) == expected
        if name not in vocab.object_names:
            assert name_color(name, vocab) == expected
    assert len({name_color(n) for n in names}) == len(names)
    code = ("import json, sys; from sg2img.vis import name_color; "
            f"print(json.dumps([name_color(n) for n in {names!r}]))")
    root = str(Path(vis.__file__).resolve().parents[2])             # this checkout's sg2img
    env = {**os.environ, "PYTHONHASHSEED": "4242",
           "PYTHONPATH": os.pathsep.join([root, os.environ.get("PYTHONPATH", "")])}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                         check=True, timeout=120).stdout
    assert [tuple(c) for c in json.loads(out)] == [name_color(n) for n in names]


def _color_present(img, rgb, tol=3):
    arr = np.asarray(img).astype(int)
    return bool((np.abs(arr - np.array(rgb)).max(axis=2) <= tol).any())


def test_draw_scene_graph_self_loops_and_duplicates(vocab):
    graph = {"objects": ["sky", "grass", "sheep", "sheep"],
             "relationships": [[0, "above", 1], [2, "standing on", 1], [2, "standing on", 1],
                               [3, "left of", 3]]}
    before = copy.deepcopy(graph)
    img = draw_scene_graph(graph, vocab, engine="networkx")
    assert graph == before
    assert img.mode == "RGB" and img.width > 100 and img.height > 50
    # Objects are drawn in their class colours.
    for name in ("sky", "grass", "sheep"):
        assert _color_present(img, class_color(vocab.object_idx(name))), name
    tb = draw_scene_graph(graph, vocab, rankdir="TB", engine="networkx")
    assert tb.size != img.size


def test_draw_scene_graph_single_object_and_errors(monkeypatch):
    img = draw_scene_graph({"objects": ["tree"]}, engine="networkx")
    assert img.width > 10
    with pytest.raises(ValueError, match="rankdir"):
        draw_scene_graph({"objects": ["tree"]}, rankdir="XX")
    monkeypatch.setattr(shutil, "which", lambda name: None)
    with pytest.raises(ValueError, match="graphviz"):
        draw_scene_graph({"objects": ["tree"]}, engine="dot")


def test_draw_layout_masks_in_boxes_small_on_top():
    boxes = torch.tensor([[0.0, 0.0, 1.0, 1.0], [0.25, 0.25, 0.75, 0.75], [0.0, 0.0, 1.0, 1.0]])
    masks = torch.ones(3, 8, 8)
    masks[1, :, :4] = 0.0                    # left half of the small object empty
    img = draw_layout(boxes, masks, ["grass", "sheep", "__image__"], 64, class_ids=[3, 7, 0],
                      alpha=1.0, draw_labels=False)
    arr = np.asarray(img).astype(int)
    assert img.size == (64, 64)
    # Painted large first: the small box's filled half shows its colour over the large one.
    assert np.abs(arr[32, 44] - class_color(7)).max() <= 2
    assert np.abs(arr[32, 20] - class_color(3)).max() <= 2       # its empty half: grass
    assert np.abs(arr[5, 5] - class_color(3)).max() <= 2


def test_draw_layout_without_masks_and_labels(vocab):
    boxes = np.array([[0.5, 0.5, 1.0, 1.0]])
    img = draw_layout(boxes, None, ["sheep"], 128, vocab=vocab, alpha=1.0)
    arr = np.asarray(img).astype(int)
    assert (arr[20, 20] == 255).all()                               # outside: background
    assert np.abs(arr[110, 110] - class_color(vocab.object_idx("sheep"))).max() <= 2
    with pytest.raises(ValueError, match="labels"):
        draw_layout(boxes, None, ["a", "b"], 64)
    with pytest.raises(ValueError, match="masks"):
        draw_layout(boxes, np.ones((2, 4, 4)), ["a"], 64)


def test_make_sheet_grid_sizes_and_titles():
    a = Image.new("RGB", (32, 32), (255, 0, 0))
    b = Image.new("RGB", (64, 32), (0, 255, 0))
    sheet = make_sheet([[a, b], [b, None, a]], ["x", "y", "z"], row_titles=["r0", "r1"],
                       cell_height=50, pad=5)
    # Columns as wide as their widest image at height 50 (aspect kept): 100, 100, 50.
    assert sheet.width == 100 + 100 + 50 + 4 * 5
    assert sheet.height > 2 * 50
    assert _color_present(sheet, (255, 0, 0)) and _color_present(sheet, (0, 255, 0))
    with pytest.raises(ValueError):
        make_sheet([])
    with pytest.raises(ValueError, match="row titles"):
        make_sheet([[a]], row_titles=["a", "b"])


# --------------------------------------------------------------------------- graph drawing
CYCLIC = {"objects": ["sky", "grass", "sheep", "sheep", "tree", "boat"],
          "relationships": [[0, "above", 1], [1, "below", 0], [2, "standing on", 1],
                            [2, "standing on", 1], [3, "left of", 3], [4, "right of", 2],
                            [2, "left of", 4]]}


@pytest.mark.parametrize("rankdir", ["LR", "TB"])
def test_networkx_drawing_labels_every_node_without_overlap(vocab, monkeypatch, rankdir):
    """Without graphviz, every object and predicate label is drawn, and no two labels touch."""
    from matplotlib.axes import Axes

    monkeypatch.setattr(shutil, "which", lambda name: None)        # no graphviz 'dot'
    texts = []
    original = Axes.text

    def spy(self, *args, **kwargs):
        t = original(self, *args, **kwargs)
        texts.append(t)
        return t

    monkeypatch.setattr(Axes, "text", spy)
    img = draw_scene_graph(CYCLIC, vocab, rankdir=rankdir)
    assert img.mode == "RGB"
    expected = CYCLIC["objects"] + [r[1] for r in CYCLIC["relationships"]]
    assert sorted(t.get_text() for t in texts) == sorted(expected)
    renderer = texts[0].figure.canvas.get_renderer()
    boxes = [t.get_bbox_patch().get_window_extent(renderer) for t in texts]
    for i, a in enumerate(boxes):
        assert 0 <= a.x0 and a.x1 <= img.width and 0 <= a.y0 and a.y1 <= img.height
        for b in boxes[i + 1:]:
            assert not a.overlaps(b), (a, b)
    for name in ("sky", "grass", "sheep", "tree", "boat"):
        assert _color_present(img, class_color(vocab.object_idx(name))), name


def test_layers_follow_the_arrows_and_break_cycles():
    nodes = ["o0", "o1", "o2", "p0", "p1", "p2"]
    # o0 -p0-> o1 -p1-> o2 -p2-> o0: one cycle; o2 -> p2 -> o0 closes it.
    edges = [("o0", "p0"), ("p0", "o1"), ("o1", "p1"), ("p1", "o2"), ("o2", "p2"), ("p2", "o0")]
    layers = graphs._layers(nodes, edges)
    assert sorted(n for layer in layers for n in layer) == sorted(nodes)
    rank = {n: i for i, layer in enumerate(layers) for n in layer}
    forward = [rank[a] < rank[b] for a, b in edges]
    assert forward.count(False) == 1                                # one arrow bent back
    # A DAG: every arrow goes forward, and sources are in the first layer.
    dag = graphs._layers(["a", "b", "c", "d"], [("a", "c"), ("b", "c"), ("c", "d")])
    assert dag == [["a", "b"], ["c"], ["d"]]
    # A short chain joining a long one late starts late (short arrows, as dot draws them);
    # an isolated node stays in the first layer.
    chain = [("o0", "p0"), ("p0", "o1"), ("o1", "p1"), ("p1", "o2"), ("o4", "p2"), ("p2", "o2")]
    rank = {n: i for i, layer in enumerate(graphs._layers(["o0", "o1", "o2", "o4", "o5", "p0", "p1",
                                                        "p2"], chain)) for n in layer}
    assert all(rank[b] - rank[a] == 1 for a, b in chain)
    assert rank["o0"] == rank["o5"] == 0 and rank["o4"] == 2


def test_dot_source_quotes_and_cuts_labels():
    long = "x" * 100
    graph = {"objects": ['say "hi"\\', long], "relationships": [[0, "left of", 1]]}
    src = graphs._dot_source(SceneGraph.from_dict(graph), None, "TB")
    assert 'label="say \\"hi\\"\\\\"' in src
    assert long not in src and "x" * (vis.MAX_LABEL_CHARS - 1) + "\u2026" in src
    assert "rankdir=TB" in src and "o0 -> p0" in src and "p0 -> o1" in src


def test_drawn_objects_carry_their_attributes():
    graph = {"objects": ["road", "car"], "relationships": [[1, "inside", 0]],
             "attributes": [[], ["red", "small"]]}
    src = graphs._dot_source(SceneGraph.from_dict(graph), None, "TB")
    assert 'label="red small car"' in src and 'label="road"' in src


@pytest.mark.skipif(shutil.which("dot") is None and not os.environ.get("CI"),
                    reason="graphviz 'dot' is an optional engine (CI installs it and runs this)")
def test_dot_engine_draws_when_installed(vocab):
    img = draw_scene_graph(CYCLIC, vocab, engine="dot")
    assert img.mode == "RGB" and img.width > 100
    assert _color_present(img, class_color(vocab.object_idx("sheep")))


def test_large_graph_gets_a_summary_card_without_layout(vocab, monkeypatch, caplog):
    def no_layout(*args, **kwargs):
        raise AssertionError("a graph over the limits must not be laid out")

    monkeypatch.setattr(graphs, "_draw_with_networkx", no_layout)
    monkeypatch.setattr(graphs, "_draw_with_dot", no_layout)
    rng = np.random.default_rng(0)
    names = ["sky", "grass", "sheep", "tree", "a" * 256]
    graph = {"objects": [names[i] for i in rng.integers(0, 5, 60)],
             "relationships": [[int(s), "left of", int(o)]
                               for s, o in rng.integers(0, 60, (2000, 2))]}
    with caplog.at_level(logging.WARNING, logger="sg2img.vis"):
        card = draw_scene_graph(graph, vocab)
    assert "too large to draw" in caplog.text and str(MAX_DRAW_RELATIONSHIPS) in caplog.text
    assert card.mode == "RGB" and card.width <= 600 and card.height <= 600
    assert _color_present(card, class_color(vocab.object_idx("sheep")), tol=0)  # swatches
    # Objects beyond the limit too, even in a dict that SceneGraph's own maximum would refuse.
    many = draw_scene_graph({"objects": ["tree"] * (MAX_DRAW_OBJECTS + 1)}, engine="networkx")
    assert many.size == draw_scene_graph({"objects": ["sky"] * 100}, engine="dot").size
    with pytest.raises(ValueError, match="max_objects"):
        draw_scene_graph({"objects": ["tree"]}, max_objects=0)


def test_drawing_limits_are_inclusive_and_adjustable(vocab):
    graph = {"objects": ["sky", "grass"], "relationships": [[0, "above", 1]] * 3}
    drawn = draw_scene_graph(graph, vocab, engine="networkx", max_relationships=3)
    card = draw_scene_graph(graph, vocab, engine="networkx", max_relationships=2)
    card_objects = draw_scene_graph(graph, vocab, engine="networkx", max_objects=1)
    assert card.size == card_objects.size != drawn.size
    assert _color_present(drawn, class_color(vocab.object_idx("sky")))


# --------------------------------------------------------------------------- sheets
def test_make_sheet_refuses_huge_sheets_before_resizing(monkeypatch):
    def no_resize(*args, **kwargs):
        raise AssertionError("the size must be checked before any image is resized")

    monkeypatch.setattr(sheets, "_fit", no_resize)
    cell = Image.new("RGB", (64, 64))
    rows = [[cell, cell, cell]] * 2000                 # 2,000 edits: about 700 megapixels
    with pytest.raises(ValueError, match=r"2000 rows .* max_pixels=64000000 .* about \d+ such"):
        make_sheet(rows, ["a", "b", "c"], row_titles=[str(i) for i in range(2000)])


def test_make_sheet_pixel_limit_is_exact():
    a = Image.new("RGB", (10, 10), (255, 0, 0))
    sheet = make_sheet([[a]], cell_height=10, pad=0)
    assert sheet.size == (10, 10)
    assert make_sheet([[a]], cell_height=10, pad=0, max_pixels=100).size == (10, 10)
    with pytest.raises(ValueError, match="max_pixels=99"):
        make_sheet([[a]], cell_height=10, pad=0, max_pixels=99)
    with pytest.raises(ValueError, match="cell_height"):
        make_sheet([[a]], cell_height=0)


# --------------------------------------------------------------------------- training pictures
def test_colorize_layout_one_hot_is_exactly_the_class_color():
    c = 12
    layout = torch.zeros(2, c, 4, c)
    for k in range(1, c):
        layout[0, k, :2, k] = 1.0                      # class k in column k, top half
    layout[0, 0, 2:, :] = 1.0                          # unlabelled channel: background
    out = colorize_layout(layout)
    assert out.shape == (2, 3, 4, c) and out.dtype == torch.float32
    assert out.min() >= -1 and out.max() <= 1
    arr = np.asarray(to_pil(out)[0]).astype(int)       # (H, W, 3)
    for k in range(1, c):
        assert tuple(arr[0, k]) == class_color(k), k   # exactly, as in draw_layout
    assert (arr[2:] == 255).all() and (arr[:2, 0] == 255).all()   # nothing covers: white
    assert (np.asarray(to_pil(out)[1]) == 255).all()   # an all-zero layout is all background


def test_colorize_layout_matches_draw_layout(vocab):
    """The same layout looks the same in a training sample grid and in draw_layout."""
    from sg2img.layout import semantic_layout

    names = ["sky", "grass", "sheep"]
    ids = [vocab.object_idx(n) for n in names]
    boxes = torch.tensor([[0.0, 0.0, 1.0, 0.5], [0.0, 0.5, 1.0, 1.0], [0.25, 0.25, 0.75, 0.75]])
    masks = torch.ones(3, 8, 8)
    layout = semantic_layout(torch.tensor(ids), boxes, masks, torch.zeros(3, dtype=torch.long),
                             1, vocab.num_objects, 32, 32)
    ours = np.asarray(to_pil(colorize_layout(layout))[0]).astype(int)
    theirs = np.asarray(draw_layout(boxes, masks, names, 32, class_ids=ids, alpha=1.0,
                                    draw_boxes=False, draw_labels=False)).astype(int)
    inner = (slice(1, -1), slice(1, -1))               # draw_layout frames the canvas
    assert np.abs(ours[inner] - theirs[inner]).max() <= 2
    # The sheep overlaps the sky and the grass, both at full strength: it is drawn on top.
    assert tuple(ours[16, 16]) == class_color(vocab.object_idx("sheep"))
    assert tuple(ours[4, 4]) == class_color(vocab.object_idx("sky"))


def test_colorize_layout_soft_masks_nan_and_errors():
    layout = torch.zeros(1, 3, 2, 2)
    layout[0, 1] = 1.0                                 # class 1 everywhere
    layout[0, 2, 0, 0] = 0.5                           # class 2 half over it (smaller: on top)
    layout[0, 2, 1, 1] = float("nan")
    arr = np.asarray(to_pil(colorize_layout(layout))[0]).astype(float)
    c1, c2 = np.array(class_color(1)), np.array(class_color(2))
    assert np.abs(arr[0, 0] - (0.5 * c1 + 0.5 * c2)).max() <= 1
    assert tuple(arr[1, 1].astype(int)) == class_color(1)           # NaN counts as 0
    assert (colorize_layout(torch.zeros(1, 1, 2, 2)) == 1).all()    # only the unlabelled channel
    with pytest.raises(ValueError, match="N, C, H, W"):
        colorize_layout(torch.zeros(3, 4, 4))


def _write_stats(path, lines):
    path.write_text("\n".join(lines) + "\n")


def test_plot_loss_curves_writes_a_png_and_skips_bad_rows(tmp_path):
    stats = tmp_path / "stats.jsonl"
    good = [json.dumps({"step": s, "images_per_s": 3.0, "D/gan": 1.0 / (s + 1), "G/gan": 2.0,
                        "G/l1": 0.5}) for s in range(0, 100, 10)]
    _write_stats(stats, good[:5] + [
        '{"step": 50, "G/gan": NaN, "D/gan": Infinity}',         # non-finite values
        '{"G/gan": 3.0}',                                        # no step
        '[1, 2]', '"text"', '{"step": "x", "G/gan": 1}',         # not rows
        '{"step": 55, "G/gan": "bad", "G/l1": null, "G/vgg": 1e999999, "D/x": 10e400}',
        '{"step": 56, "G/gan": ' + "9" * 5000 + '}',             # huge integer
        "[" * 100_000 + "]" * 100_000,                           # deeply nested
    ] + good[5:] + ['{"step": 100, "G/gan": 1.'])               # cut by a kill
    out = tmp_path / "curves.png"
    assert plot_loss_curves(stats, out) == out
    with Image.open(out) as im:
        assert im.format == "PNG" and im.width > 500 and im.height > 200
    assert sorted(p.name for p in tmp_path.iterdir()) == ["curves.png", "stats.jsonl"]


def test_plot_loss_curves_without_terms_and_non_regular_files(tmp_path):
    out = tmp_path / "curves.png"
    assert plot_loss_curves(tmp_path / "missing.jsonl", out) is None
    _write_stats(tmp_path / "empty.jsonl", ['{"step": 1, "images_per_s": 2.0}', "junk"])
    assert plot_loss_curves(tmp_path / "empty.jsonl", out) is None
    assert not out.exists()
    with pytest.raises(ValueError, match="not a regular file"):
        plot_loss_curves(tmp_path, out)
    fifo = tmp_path / "fifo.jsonl"
    os.mkfifo(fifo)
    with pytest.raises(ValueError, match="not a regular file"):      # would block on read
        plot_loss_curves(fifo, out)


def test_plot_loss_curves_reads_only_the_tail(tmp_path):
    stats = tmp_path / "stats.jsonl"
    early = [json.dumps({"step": s, "G/early": 1.0}) for s in range(200)]
    late = [json.dumps({"step": s, "G/late": 1.0}) for s in range(200, 210)]
    _write_stats(stats, early + late)
    tail = sum(len(x) + 1 for x in late) + 5           # the late lines and part of one more
    out = tmp_path / "curves.png"
    assert plot_loss_curves(stats, out, max_bytes=tail) == out
    # Only 'late' is in the tail: with the early lines cut off, the same picture as a file of
    # the late lines alone.
    _write_stats(tmp_path / "late.jsonl", late)
    plot_loss_curves(tmp_path / "late.jsonl", tmp_path / "late.png")
    with Image.open(out) as a, Image.open(tmp_path / "late.png") as b:
        assert np.array_equal(np.asarray(a), np.asarray(b))
