"""Global-affine (SPADE) generator, local class-specific generator and weight-map fusion."""

import pytest
import torch
import torch.nn.functional as F

from sg2img.generators import (
    GlobalAffineGenerator,
    LocalClassGenerator,
    SPADEResBlock,
    WeightMapPredictor,
    class_conv,
    fuse_images,
    present_classes,
)
from sg2img.generators.global_affine import stage_channels
from sg2img.layout import semantic_layout


def _layout(num_classes, H=16, seed=0):
    """Two images: image 0 has classes 3 (left half) and 5 (top-right quarter) and an
    unlabelled quarter; image 1 has class 3 over everything."""
    objs = torch.tensor([3, 5, 0, 3, 0])
    boxes = torch.tensor([[0.0, 0.0, 0.5, 1.0], [0.5, 0.0, 1.0, 0.5], [0, 0, 1, 1.0],
                          [0, 0, 1, 1.0], [0, 0, 1, 1.0]])
    return semantic_layout(objs, boxes, torch.ones(5, 4, 4), torch.tensor([0, 0, 0, 1, 1]), 2,
                           num_classes, H, H)


def test_stage_channels():
    assert stage_channels(64, 16) == [(4, 128), (8, 128), (16, 64), (32, 32), (64, 16)]
    assert [r for r, _ in stage_channels(128, 8)] == [4, 8, 16, 32, 64, 128]
    assert [r for r, _ in stage_channels(32, 8)] == [2, 4, 8, 16, 32]
    assert [r for r, _ in stage_channels(80, 8)][-1] == 80
    # Coarse-to-fine: the H/2 generator's stages, then one enhancer stage at H.
    assert stage_channels(64, 16, coarse_to_fine=True) == stage_channels(32, 16) + [(64, 16)]
    gen = GlobalAffineGenerator(64, noise_dim=8, cond_ch=6, base_channels=4, coarse_to_fine=True)
    img, feats = gen(torch.randn(2, 8), torch.randn(2, 6, 64, 64))
    assert img.shape == (2, 3, 64, 64) and feats.shape == (2, 4, 64, 64)


def test_spade_block_and_global_generator():
    block = SPADEResBlock(8, 4, cond_ch=3, hidden=6)
    assert block(torch.randn(2, 8, 5, 5), torch.randn(2, 3, 5, 5)).shape == (2, 4, 5, 5)
    gen = GlobalAffineGenerator(32, noise_dim=8, cond_ch=6, base_channels=4)
    z, cond = torch.randn(2, 8), torch.randn(2, 6, 32, 32)
    img, feats = gen(z, cond)
    assert img.shape == (2, 3, 32, 32) and feats.shape == (2, 4, 32, 32)
    assert img.min() >= -1 and img.max() <= 1
    (img.sum() + feats.sum()).backward()
    for name, p in gen.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name
    # The noise changes the image (one graph, many images).
    assert not torch.allclose(gen(torch.randn(2, 8), cond)[0], img)


def test_class_conv_equals_a_loop_over_classes():
    g = torch.Generator().manual_seed(0)
    bank = torch.randn(6 * 4, 3, 3, 3, generator=g)
    bias = torch.randn(6, 4, generator=g)
    x = torch.randn(5, 3, 7, 7, generator=g)
    ids = torch.tensor([2, 5, 2, 0, 1])
    out = class_conv(x, bank, bias, ids, 6)
    for k, c in enumerate(ids.tolist()):
        weight = bank[4 * c:4 * (c + 1)]                 # class c's rows of the bank
        torch.testing.assert_close(out[k], F.conv2d(x[k:k + 1], weight, bias[c], padding=1)[0])


def test_present_classes():
    layout = _layout(7)
    img, cls = present_classes(layout)
    assert list(zip(img.tolist(), cls.tolist(), strict=True)) == [(0, 0), (0, 3), (0, 5), (1, 3)]


@pytest.mark.parametrize("combine", ["conv", "sum"])
def test_class_outputs_are_zero_outside_their_region(combine):
    torch.manual_seed(0)
    local = LocalClassGenerator(7, cond_ch=5, channels=4, combine=combine)
    layout = _layout(7)
    out = local(torch.randn(2, 5, 16, 16), layout)
    K = out.class_ids.shape[0]
    assert K == 4
    assert out.images.shape == (2, 3, 16, 16) and out.features.shape == (2, 4, 16, 16)
    assert out.class_images.shape == (K, 3, 16, 16) and out.class_logits.shape == (K, 7)
    assert out.images.min() >= -1 and out.images.max() <= 1
    outside = (out.class_masks == 0).expand_as(out.class_images)
    assert outside.any()
    assert (out.class_images[outside] == 0).all()
    assert (out.class_images[~outside] != 0).any()
    if combine == "sum":
        # Class regions tile image 0 without overlap: Eq. 3 is the plain sum.
        torch.testing.assert_close(out.images[0], out.class_images[:3].sum(0))


def test_conv_combination_equals_conv_over_all_class_concatenation():
    """Eq. 4: a conv over the concatenation of all C class images (zeros for absent ones)."""
    torch.manual_seed(0)
    C = 7
    local = LocalClassGenerator(C, cond_ch=5, channels=4, combine="conv")
    out = local(torch.randn(2, 5, 16, 16), _layout(C))
    full = torch.zeros(2, C, 3, 16, 16)
    full[out.class_to_img, out.class_ids] = out.class_images.detach()
    weight = local.combine_weight.detach().view(C, 3, 3, 3, 3).permute(1, 0, 2, 3, 4)
    weight = weight.reshape(3, 3 * C, 3, 3)              # (out, C * in, k, k): the Eq. 4 conv
    expected = torch.tanh(F.conv2d(full.view(2, 3 * C, 16, 16), weight,
                                   local.combine_bias.detach(), padding=1))
    torch.testing.assert_close(out.images.detach(), expected, atol=1e-5, rtol=1e-5)


def test_cost_and_output_do_not_depend_on_vocabulary_size():
    """The same scene with a 20- and a 184-class vocabulary (same weights for the classes
    present) gives the same images: absent classes are never computed."""
    torch.manual_seed(0)
    small, big = (LocalClassGenerator(c, cond_ch=5, channels=4) for c in (20, 184))
    big_state = big.state_dict()
    for name, value in small.state_dict().items():
        if value.shape == big_state[name].shape:
            big_state[name] = value
        elif name.startswith(("weight_", "bias_", "combine_weight")):
            big_state[name][:len(value)] = value      # the rows of classes 0..19
    big.load_state_dict(big_state)
    cond = torch.randn(2, 5, 16, 16)
    a, b = small(cond, _layout(20)), big(cond, _layout(184))
    torch.testing.assert_close(a.images, b.images)
    torch.testing.assert_close(a.class_images, b.class_images)
    assert torch.equal(a.class_ids, b.class_ids)


def test_banks_accept_channels_last():
    local = LocalClassGenerator(7, cond_ch=5, channels=4).to(memory_format=torch.channels_last)
    out = local(torch.randn(2, 5, 16, 16).contiguous(memory_format=torch.channels_last),
                _layout(7))
    assert out.images.shape == (2, 3, 16, 16)


def test_classification_module_off():
    local = LocalClassGenerator(7, cond_ch=5, channels=4, use_class_loss=False)
    assert local(torch.randn(2, 5, 16, 16), _layout(7)).class_logits is None
    with pytest.raises(ValueError, match="combine"):
        LocalClassGenerator(7, 5, 4, combine="max")


def test_weight_map_sums_to_one_and_fuses():
    pred = WeightMapPredictor(6, hidden=4)
    w = pred(torch.randn(3, 6, 8, 8) * 10)
    assert w.shape == (3, 2, 8, 8)
    torch.testing.assert_close(w.sum(dim=1), torch.ones(3, 8, 8))
    assert (w >= 0).all()
    g, loc = torch.full((3, 3, 8, 8), 0.8), torch.full((3, 3, 8, 8), -0.4)
    fused = fuse_images(g, loc, w)
    torch.testing.assert_close(fused, (w[:, :1] * 0.8 - w[:, 1:] * 0.4).expand(3, 3, 8, 8))
    torch.testing.assert_close(fuse_images(g, loc, None), torch.full((3, 3, 8, 8), 0.2))
