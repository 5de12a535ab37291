"""Multi-scale patch discriminator, object discriminator and their wrapper."""

import pytest
import torch

from sg2img.config import Config
from sg2img.discriminators import (
    GALSDiscriminator,
    MultiScaleDiscriminator,
    ObjectDiscriminator,
    PatchDiscriminator,
)


def test_patch_discriminator_features():
    d = PatchDiscriminator(layout_ch=5, channels=4, num_layers=2, spectral_norm=False)
    feats = d(torch.randn(2, 3, 32, 32), torch.rand(2, 5, 32, 32))
    assert [f.shape[1] for f in feats] == [4, 8, 16, 1]
    assert feats[0].shape[-1] == 16 and feats[-1].shape == (2, 1, 8, 8)


@pytest.mark.parametrize("sn", [True, False])
def test_multiscale_discriminator_scales_and_gradients(sn):
    d = MultiScaleDiscriminator(5, channels=4, num_layers=2, num_scales=3, spectral_norm=sn)
    images = torch.randn(2, 3, 32, 32, requires_grad=True)
    out = d(images, torch.rand(2, 5, 32, 32))
    assert len(out) == 3
    assert [feats[-1].shape[-1] for feats in out] == [8, 4, 2]
    sum(feats[-1].sum() for feats in out).backward()
    assert images.grad.abs().sum() > 0
    for name, p in d.named_parameters():
        assert p.grad is not None, name


def test_layout_conditions_the_patch_discriminator():
    torch.manual_seed(0)
    d = MultiScaleDiscriminator(5, channels=4, num_layers=2, num_scales=1)
    img = torch.randn(1, 3, 32, 32)
    a = d(img, torch.zeros(1, 5, 32, 32))[0][-1]
    b = d(img, torch.ones(1, 5, 32, 32))[0][-1]
    assert not torch.allclose(a, b)


def test_object_discriminator_crops_the_boxes():
    d = ObjectDiscriminator(num_classes=6, channels=4, crop_size=16, spectral_norm=False)
    images = torch.zeros(2, 3, 32, 32)
    images[1, :, :16, :16] = 1.0                   # top-left quarter of image 1 is white
    boxes = torch.tensor([[0.0, 0.0, 0.5, 0.5], [0.5, 0.5, 1.0, 1.0]])
    crops = d.crop(images, boxes, torch.tensor([1, 1]))
    assert crops.shape == (2, 3, 16, 16)
    # Bilinear samples within a pixel of the crop's edge blend with the neighbours.
    torch.testing.assert_close(crops[0, :, :-1, :-1], torch.ones(3, 15, 15))
    torch.testing.assert_close(crops[1, :, 1:, 1:], torch.zeros(3, 15, 15))
    logits, cls, attrs = d(images, boxes, torch.tensor([1, 0]))
    assert logits.shape == (2,) and cls.shape == (2, 6) and attrs is None
    d = ObjectDiscriminator(num_classes=6, channels=4, crop_size=16, spectral_norm=False,
                            num_attributes=3)
    assert d(images, boxes, torch.tensor([1, 0]))[2].shape == (2, 3)


def test_gals_discriminator_skips_image_objects(vocab):
    cfg = Config.from_preset("tiny")
    d = GALSDiscriminator(cfg.model, vocab.num_objects)
    images = torch.randn(2, 3, 32, 32)
    layout = torch.rand(2, vocab.num_objects, 32, 32)
    objs = torch.tensor([1, 2, 0, 3, 0])
    boxes = torch.tensor([[0.1, 0.1, 0.5, 0.5]] * 5)
    out = d(images, layout, boxes, objs, torch.tensor([0, 0, 0, 1, 1]))
    assert len(out.patch) == cfg.model.discriminator.num_scales
    assert out.obj_index.tolist() == [0, 1, 3]
    assert out.obj_logits.shape == (3,) and out.obj_class_logits.shape == (3, vocab.num_objects)
    assert d(images, layout).obj_logits is None
    with pytest.raises(ValueError, match="objs and obj_to_img"):
        d(images, layout, boxes)
    off = GALSDiscriminator(Config.from_preset("tiny",
                                               ["model.discriminator.use_object_disc=false"]).model,
                            vocab.num_objects)
    assert off.obj is None and off(images, layout, boxes, objs, objs).obj_logits is None
