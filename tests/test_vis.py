"""Pictures: tensor <-> PIL, scene graph drawings, layout drawings, sheets."""

import copy
import shutil

import numpy as np
import pytest
import torch
from PIL import Image

from sg2img.vis import (
    class_color,
    draw_layout,
    draw_scene_graph,
    from_pil,
    make_sheet,
    name_color,
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


def test_class_colors_fixed_and_distinct():
    assert class_color(5) == class_color(5)
    assert class_color(0) == (160, 160, 160)
    colors = [class_color(i) for i in range(1, 41)]
    assert len(set(colors)) == 40
    assert name_color("sheep") == name_color("sheep")


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


def test_draw_scene_graph_single_object_and_errors():
    img = draw_scene_graph({"objects": ["tree"]}, engine="networkx")
    assert img.width > 10
    with pytest.raises(ValueError, match="rankdir"):
        draw_scene_graph({"objects": ["tree"]}, rankdir="XX")
    if shutil.which("dot") is None:
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
