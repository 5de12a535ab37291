"""Loss functions: hand-computed values, masking, and the VGG loss's weights handling."""

import pytest
import torch

from sg2img.losses import (
    VGGPerceptualLoss,
    aux_class_loss,
    box_loss,
    build_vgg_loss,
    class_loss,
    feature_matching_loss,
    gan_d_fake_loss,
    gan_d_loss,
    gan_d_real_loss,
    gan_g_loss,
    image_l1_loss,
    local_l1_loss,
    mask_loss,
    multiscale_gan_d_fake_loss,
    multiscale_gan_d_loss,
    multiscale_gan_g_loss,
    segmentation_d_fake_loss,
    segmentation_d_loss,
    segmentation_d_real_loss,
)


def test_gan_losses_hand_computed():
    real, fake = torch.tensor([2.0, 0.5]), torch.tensor([-2.0, 0.0])
    # hinge: mean(relu(1 - [2, .5])) + mean(relu(1 + [-2, 0])) = 0.25 + 0.5
    torch.testing.assert_close(gan_d_loss(real, fake, "hinge"), torch.tensor(0.75))
    torch.testing.assert_close(gan_g_loss(fake, "hinge"), torch.tensor(1.0))
    # lsgan: mean([1, .25]) + mean([4, 0]) = 0.625 + 2
    torch.testing.assert_close(gan_d_loss(real, fake, "lsgan"), torch.tensor(2.625))
    # lsgan G: mean([(-2 - 1)^2, (0 - 1)^2]) = 5
    torch.testing.assert_close(gan_g_loss(fake, "lsgan"), torch.tensor(5.0))
    with pytest.raises(ValueError, match="gan mode"):
        gan_g_loss(fake, "wgan")
    feats_r = [[torch.zeros(1), real], [torch.zeros(1), real]]
    feats_f = [[torch.zeros(1), fake], [torch.zeros(1), fake]]
    torch.testing.assert_close(multiscale_gan_d_loss(feats_r, feats_f), torch.tensor(0.75))
    torch.testing.assert_close(multiscale_gan_g_loss(feats_f), torch.tensor(1.0))


def test_discriminator_losses_split_into_real_and_fake_halves():
    """Extra fakes (no real image of their own) are scored by the fake half alone."""
    real, fake = torch.tensor([2.0, 0.5]), torch.tensor([-2.0, 0.0])
    torch.testing.assert_close(gan_d_real_loss(real, "hinge"), torch.tensor(0.25))
    torch.testing.assert_close(gan_d_fake_loss(fake, "hinge"), torch.tensor(0.5))
    torch.testing.assert_close(gan_d_real_loss(real, "lsgan"), torch.tensor(0.625))
    torch.testing.assert_close(gan_d_fake_loss(fake, "lsgan"), torch.tensor(2.0))
    for mode in ("hinge", "lsgan"):
        with pytest.raises(ValueError, match="gan mode"):
            gan_d_fake_loss(fake, mode.upper())
    feats_f = [[torch.zeros(1), fake], [torch.zeros(1), fake * 2]]
    # hinge fake halves: 0.5 and mean(relu(1 + [-4, 0])) = 0.5
    torch.testing.assert_close(multiscale_gan_d_fake_loss(feats_f), torch.tensor(0.5))
    torch.manual_seed(0)
    seg_r, seg_f = torch.randn(2, 4, 5, 5), torch.randn(2, 4, 5, 5)
    layout = torch.rand(2, 3, 5, 5)
    torch.testing.assert_close(segmentation_d_loss(seg_r, seg_f, layout),
                               segmentation_d_real_loss(seg_r, layout)
                               + segmentation_d_fake_loss(seg_f))
    # The fake half is the cross-entropy against the last ("fake") channel.
    by_hand = -torch.log_softmax(seg_f, dim=1)[:, 3].mean()
    torch.testing.assert_close(segmentation_d_fake_loss(seg_f), by_hand)


def test_feature_matching_ignores_logits_and_detaches_real():
    real = [[torch.ones(2, 3), torch.zeros(2, 1)], [torch.zeros(2, 3), torch.zeros(2, 1)]]
    fake = [[torch.zeros(2, 3, requires_grad=True), torch.full((2, 1), 9.0)],
            [torch.zeros(2, 3, requires_grad=True), torch.full((2, 1), 9.0)]]
    real[0][0].requires_grad_(True)
    loss = feature_matching_loss(real, fake)
    # scale 0: one layer with L1 1 -> 4 * 1; scale 1: 0; averaged over scales -> 2
    torch.testing.assert_close(loss, torch.tensor(2.0))
    loss.backward()
    assert real[0][0].grad is None and fake[0][0].grad is not None


def test_reconstruction_losses():
    torch.testing.assert_close(image_l1_loss(torch.zeros(1, 3, 2, 2), torch.ones(1, 3, 2, 2)),
                               torch.tensor(1.0))
    pred = torch.tensor([[0.0, 0.0, 1.0, 1.0], [0.5, 0.5, 1.0, 1.0]])
    gt = torch.tensor([[0.0, 0.0, 0.5, 0.5], [0.5, 0.5, 1.0, 1.0]])
    torch.testing.assert_close(box_loss(pred, gt), torch.tensor(0.125))
    torch.testing.assert_close(box_loss(pred, gt, torch.tensor([False, True])),
                               torch.tensor(0.0))
    assert box_loss(pred, gt, torch.tensor([False, False])).item() == 0
    logits = torch.zeros(2, 4, 4)
    torch.testing.assert_close(mask_loss(logits, torch.ones(2, 4, 4)),
                               torch.log(torch.tensor(2.0)))
    # Ground-truth masks of another size are resized to the prediction's.
    torch.testing.assert_close(mask_loss(logits, torch.ones(2, 8, 8)),
                               torch.log(torch.tensor(2.0)))


def test_local_l1_hand_computed():
    real = torch.ones(2, 3, 2, 2)
    masks = torch.tensor([[[[1.0, 0.0], [0.0, 0.0]]], [[[1.0, 1.0], [1.0, 1.0]]]])
    class_images = torch.zeros(2, 3, 2, 2)
    # class 0 of image 0 misses 1 of 4 pixels: mean 0.25; class 1 of image 1 misses all: 1.
    loss = local_l1_loss(class_images, masks, torch.tensor([0, 1]), real)
    torch.testing.assert_close(loss, torch.tensor((0.25 + 1.0) / 2))
    # Perfect class outputs give zero.
    perfect = real[torch.tensor([0, 1])] * masks
    assert local_l1_loss(perfect, masks, torch.tensor([0, 1]), real).item() == 0


def test_classification_losses():
    logits = torch.tensor([[10.0, 0.0, 0.0], [0.0, 0.0, 10.0]])
    assert class_loss(logits, torch.tensor([0, 2])) < 1e-3
    assert class_loss(logits, torch.tensor([1, 1])) > 5
    assert aux_class_loss(logits[:0], torch.zeros(0, dtype=torch.long)).item() == 0


def test_vgg_loss_needs_weights(tmp_path):
    with pytest.raises(ValueError, match="train.vgg_weights=.*vgg19-dcbb9e9d.pth"):
        VGGPerceptualLoss(None)
    with pytest.raises(ValueError, match="loss.vgg_weight=0"):
        build_vgg_loss(1.0, "")
    assert build_vgg_loss(0.0, "") is None
    with pytest.raises(ValueError, match="not found"):
        VGGPerceptualLoss(tmp_path / "missing.pth")
    torch.save({"foo": torch.zeros(1)}, tmp_path / "bad.pth")
    with pytest.raises(ValueError, match="not a torchvision VGG19 state dict"):
        VGGPerceptualLoss(tmp_path / "bad.pth")


def test_vgg_loss_loads_torchvision_state_dict(tmp_path):
    from torchvision.models.vgg import cfgs, make_layers

    torch.manual_seed(1)
    features = make_layers(cfgs["E"])
    # torchvision's file layout: "features.<i>.*" plus the classifier (ignored by the loss).
    state = {f"features.{k}": v for k, v in features.state_dict().items()}
    state["classifier.0.weight"] = torch.zeros(2, 2)
    torch.save(state, tmp_path / "vgg19-dcbb9e9d.pth")
    vgg = VGGPerceptualLoss(str(tmp_path / "vgg19-dcbb9e9d.pth"))
    torch.testing.assert_close(vgg.slices[0][0].weight, features[0].weight)
    torch.testing.assert_close(vgg.slices[4][-2].weight, features[28].weight)


def test_vgg_loss_random_weights_frozen():
    torch.manual_seed(0)
    vgg = VGGPerceptualLoss(None, allow_random=True)
    vgg.train()
    assert not vgg.training
    assert all(not p.requires_grad for p in vgg.parameters())
    fake = (torch.rand(1, 3, 32, 32) * 2 - 1).requires_grad_(True)
    real = torch.rand(1, 3, 32, 32) * 2 - 1
    loss = vgg(fake, real)
    assert loss.dim() == 0 and loss > 0
    loss.backward()
    assert fake.grad.abs().sum() > 0
    assert vgg(real, real).item() == 0
