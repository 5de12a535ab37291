"""Layouts: hand-computed warps, semantic/embedding layouts, empty images, gradients."""

import torch

from sg2img.layout import (
    box_masks,
    boxes_to_grid,
    embedding_layout,
    masks_to_layout,
    semantic_layout,
    warp_masks,
)


def test_box_of_ones_fills_exactly_the_pixels_inside():
    boxes = torch.tensor([[0.25, 0.25, 0.75, 0.75]])
    out = warp_masks(boxes, torch.ones(1, 8, 8), 4, 4)
    expected = torch.zeros(4, 4)
    expected[1:3, 1:3] = 1
    torch.testing.assert_close(out[0], expected)


def test_bilinear_warp_hand_computed():
    # Left column on, right column off, stretched over the whole 4x4 image: pixel centers
    # 0.125, 0.375, 0.625, 0.875 read the 2-texel mask at -0.25, 0.25, 0.75, 1.25 texels
    # (border-clamped), i.e. 1, 0.75, 0.25, 0.
    mask = torch.tensor([[[1.0, 0.0], [1.0, 0.0]]])
    out = warp_masks(torch.tensor([[0.0, 0.0, 1.0, 1.0]]), mask, 4, 4)
    torch.testing.assert_close(out[0], torch.tensor([1.0, 0.75, 0.25, 0.0]).expand(4, 4))
    # Right half of the image only; the left half is outside the box and exactly zero.
    out = warp_masks(torch.tensor([[0.5, 0.0, 1.0, 1.0]]), mask, 2, 4)
    torch.testing.assert_close(out[0], torch.tensor([0.0, 0.0, 1.0, 0.0]).expand(2, 4))


def test_boxes_to_grid_corners():
    grid = boxes_to_grid(torch.tensor([[0.0, 0.0, 1.0, 1.0]]), 2, 2)
    torch.testing.assert_close(grid[0, :, :, 0], torch.tensor([[-0.5, 0.5], [-0.5, 0.5]]))
    torch.testing.assert_close(grid[0, :, :, 1], torch.tensor([[-0.5, -0.5], [0.5, 0.5]]))


def test_masks_to_layout_sums_vectors_per_image_and_keeps_empty_images():
    boxes = torch.tensor([[0.0, 0.0, 0.5, 1.0], [0.5, 0.0, 1.0, 1.0], [0.0, 0.0, 1.0, 1.0]])
    masks = torch.ones(3, 4, 4)
    obj_to_img = torch.tensor([0, 0, 2])                 # image 1 has no objects at all
    vecs = torch.tensor([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]])
    out = masks_to_layout(boxes, masks, obj_to_img, 3, 2, 2, vecs)
    assert out.shape == (3, 2, 2, 2)
    torch.testing.assert_close(out[0, 0], torch.tensor([[1.0, 3.0], [1.0, 3.0]]))
    torch.testing.assert_close(out[0, 1], torch.tensor([[2.0, 4.0], [2.0, 4.0]]))
    assert (out[1] == 0).all()
    torch.testing.assert_close(out[2, 1], torch.full((2, 2), 6.0))
    # Objects need not be sorted by image.
    perm = torch.tensor([2, 0, 1])
    out2 = masks_to_layout(boxes[perm], masks[perm], obj_to_img[perm], 3, 2, 2, vecs[perm])
    torch.testing.assert_close(out, out2)
    assert masks_to_layout(boxes, masks, obj_to_img, 3, 2, 2).shape == (3, 1, 2, 2)


def test_semantic_layout_channels_and_unlabelled_channel():
    # Image 0: class 1 on the left half twice (overlap clamps to 1), class 2 on the top-right
    # quarter, plus the image node (class 0), which paints nothing. Image 1: only its node.
    objs = torch.tensor([1, 1, 2, 0, 0])
    boxes = torch.tensor([[0.0, 0.0, 0.5, 1.0], [0.0, 0.0, 0.5, 1.0], [0.5, 0.0, 1.0, 0.5],
                          [0.0, 0.0, 1.0, 1.0], [0.0, 0.0, 1.0, 1.0]])
    obj_to_img = torch.tensor([0, 0, 0, 0, 1])
    layout = semantic_layout(objs, boxes, box_masks(5, 4), obj_to_img, 2, 4, 2, 2)
    assert layout.shape == (2, 4, 2, 2)
    torch.testing.assert_close(layout[0, 1], torch.tensor([[1.0, 0.0], [1.0, 0.0]]))
    torch.testing.assert_close(layout[0, 2], torch.tensor([[0.0, 1.0], [0.0, 0.0]]))
    torch.testing.assert_close(layout[0, 0], torch.tensor([[0.0, 0.0], [0.0, 1.0]]))
    assert (layout[0, 3] == 0).all()
    torch.testing.assert_close(layout[1, 0], torch.ones(2, 2))
    assert (layout[1, 1:] == 0).all()


def test_embedding_layout_matches_masks_to_layout():
    g = torch.Generator().manual_seed(0)
    boxes = torch.tensor([[0.1, 0.2, 0.6, 0.9], [0.3, 0.1, 0.8, 0.5]])
    masks = torch.rand(2, 8, 8, generator=g)
    vecs = torch.randn(2, 5, generator=g)
    obj_to_img = torch.tensor([0, 0])
    emb = embedding_layout(vecs, boxes, masks, obj_to_img, 1, 16, 16)
    warped = warp_masks(boxes, masks, 16, 16)
    expected = (vecs[:, :, None, None] * warped[:, None]).sum(0, keepdim=True)
    torch.testing.assert_close(emb, expected)


def test_layouts_are_differentiable_wrt_boxes_and_masks():
    boxes = torch.tensor([[0.2, 0.3, 0.7, 0.8]], requires_grad=True)
    masks = torch.rand(1, 8, 8, requires_grad=True)
    layout = semantic_layout(torch.tensor([1]), boxes, masks, torch.tensor([0]), 1, 2, 16, 16)
    # Weight the pixels unevenly so moving the box changes the loss.
    weight = torch.linspace(0, 1, 16)[None, :].expand(16, 16)
    (layout[0, 1] * weight).sum().backward()
    assert boxes.grad.abs().sum() > 0 and masks.grad.abs().sum() > 0
    assert torch.isfinite(boxes.grad).all()
