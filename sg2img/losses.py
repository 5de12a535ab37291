"""Loss functions. Plain functions of tensors, plus the frozen VGG19 perceptual loss module.

Each returns a scalar tensor; weighting happens in ``sg2img.objectives.weighted_total``.
"""

from __future__ import annotations

import logging
import math
import os

import torch
import torch.nn.functional as F
from torch import Tensor, nn

logger = logging.getLogger(__name__)

GAN_MODES = ("hinge", "lsgan")


# ---------------------------------------------------------------------------- adversarial
def gan_d_loss(real_logits: Tensor, fake_logits: Tensor, mode: str = "hinge") -> Tensor:
    """Discriminator loss on one set of logits: ``gan_d_real_loss + gan_d_fake_loss``.

    hinge: ``mean(relu(1 - real)) + mean(relu(1 + fake))``;
    lsgan: ``mean((real - 1)^2) + mean(fake^2)``.
    """
    return gan_d_real_loss(real_logits, mode) + gan_d_fake_loss(fake_logits, mode)


def gan_d_real_loss(real_logits: Tensor, mode: str = "hinge") -> Tensor:
    """The real half of ``gan_d_loss``: hinge ``mean(relu(1 - real))``; lsgan
    ``mean((real - 1)^2)``."""
    if mode == "hinge":
        return F.relu(1.0 - real_logits).mean()
    if mode == "lsgan":
        return (real_logits - 1.0).pow(2).mean()
    raise ValueError(f"gan mode must be one of {GAN_MODES}, got {mode!r}")


def gan_d_fake_loss(fake_logits: Tensor, mode: str = "hinge") -> Tensor:
    """The fake half of ``gan_d_loss`` (extra fakes with no real image of their own):
    hinge ``mean(relu(1 + fake))``; lsgan ``mean(fake^2)``."""
    if mode == "hinge":
        return F.relu(1.0 + fake_logits).mean()
    if mode == "lsgan":
        return fake_logits.pow(2).mean()
    raise ValueError(f"gan mode must be one of {GAN_MODES}, got {mode!r}")


def gan_g_loss(fake_logits: Tensor, mode: str = "hinge") -> Tensor:
    """Generator loss: hinge ``-mean(fake)``; lsgan ``mean((fake - 1)^2)``."""
    if mode == "hinge":
        return -fake_logits.mean()
    if mode == "lsgan":
        return (fake_logits - 1.0).pow(2).mean()
    raise ValueError(f"gan mode must be one of {GAN_MODES}, got {mode!r}")


def multiscale_gan_d_loss(real: list[list[Tensor]], fake: list[list[Tensor]],
                          mode: str = "hinge") -> Tensor:
    """``gan_d_loss`` averaged over scales; each scale's last feature is its logits."""
    losses = [gan_d_loss(r[-1], f[-1], mode) for r, f in zip(real, fake, strict=True)]
    return torch.stack(losses).mean()


def multiscale_gan_d_fake_loss(fake: list[list[Tensor]], mode: str = "hinge") -> Tensor:
    """``gan_d_fake_loss`` averaged over scales: the fake half of ``multiscale_gan_d_loss``."""
    return torch.stack([gan_d_fake_loss(f[-1], mode) for f in fake]).mean()


def multiscale_gan_g_loss(fake: list[list[Tensor]], mode: str = "hinge") -> Tensor:
    """``gan_g_loss`` averaged over scales."""
    return torch.stack([gan_g_loss(f[-1], mode) for f in fake]).mean()


def feature_matching_loss(real: list[list[Tensor]], fake: list[list[Tensor]]) -> Tensor:
    """pix2pixHD's feature matching: L1 between real and fake discriminator features.

    pix2pixHD's weighting: each scale sums the L1 of its intermediate layers (logits excluded)
    times ``4 / num_layers``, and the scales are averaged, so ``loss.feat_match_weight = 10``
    means what it means in pix2pixHD and SPADE. The real features are detached.
    """
    per_scale = []
    for rs, fs in zip(real, fake, strict=True):
        layers = [F.l1_loss(f, r.detach()) for r, f in zip(rs[:-1], fs[:-1], strict=True)]
        per_scale.append(torch.stack(layers).sum() * (4.0 / len(layers)))
    return torch.stack(per_scale).mean()


# ------------------------------------------------- pixel / feature level (DP-GAN, OASIS)
def class_balance_weights(labels: Tensor, num_classes: int) -> Tensor:
    """OASIS's class-balancing weights: rare classes weigh more, per batch.

    ``alpha_c = P / (K * count_c)`` with P the pixels of the batch and K the classes present,
    so the weights average to 1 over the pixels; absent classes get 0. (DP-GAN's
    ``alpha_c = E[HW / sum l_c]``, estimated on the batch.)

    Args:
        labels: (B, H, W) long class index per pixel, in [0, num_classes).
        num_classes: C.

    Returns:
        (C,) float weights.
    """
    counts = torch.bincount(labels.flatten(), minlength=num_classes).float()  # (C,)
    present = (counts > 0).sum().clamp_min(1)
    return torch.where(counts > 0, labels.numel() / (present * counts.clamp_min(1)),
                       torch.zeros_like(counts))


def _layout_labels(layout: Tensor) -> Tensor:
    """(B, C, H, W) soft layout -> (B, H, W) class with the largest share at each pixel."""
    return layout.detach().argmax(dim=1)


def segmentation_d_loss(real_seg_logits: Tensor, fake_seg_logits: Tensor,
                        layout: Tensor) -> Tensor:
    """DP-GAN / OASIS pixel-level discriminator loss, (N+1)-class cross-entropy.

    Real pixels are classified as their layout class with class-balancing weights; every
    pixel of a generated image as the extra "fake" class C.

    Shapes:
        real_seg_logits, fake_seg_logits (B, C + 1, H, W); layout (B, C, H, W) in [0, 1]
    """
    return (segmentation_d_real_loss(real_seg_logits, layout)
            + segmentation_d_fake_loss(fake_seg_logits))


def segmentation_d_real_loss(real_seg_logits: Tensor, layout: Tensor) -> Tensor:
    """The real half of ``segmentation_d_loss``: real pixels classified as their layout class,
    class-balanced.

    Shapes:
        real_seg_logits (B, C + 1, H, W); layout (B, C, H, W) in [0, 1]
    """
    labels = _layout_labels(layout)                                          # (B, H, W)
    alpha = class_balance_weights(labels, layout.shape[1]).to(real_seg_logits.dtype)
    return (F.cross_entropy(real_seg_logits, labels, reduction="none") * alpha[labels]).mean()


def segmentation_d_fake_loss(fake_seg_logits: Tensor) -> Tensor:
    """The fake half of ``segmentation_d_loss``: every pixel of a generated image classified
    as the extra "fake" class (the last channel).

    Shapes:
        fake_seg_logits (B, C + 1, H, W)
    """
    B, C1, H, W = fake_seg_logits.shape
    fake_labels = torch.full((B, H, W), C1 - 1, dtype=torch.long, device=fake_seg_logits.device)
    return F.cross_entropy(fake_seg_logits, fake_labels)


def segmentation_g_loss(fake_seg_logits: Tensor, layout: Tensor) -> Tensor:
    """DP-GAN / OASIS pixel-level generator loss: generated pixels classified as their
    layout class, class-balanced.

    Shapes:
        fake_seg_logits (B, C + 1, H, W); layout (B, C, H, W) in [0, 1]
    """
    labels = _layout_labels(layout)
    alpha = class_balance_weights(labels, layout.shape[1]).to(fake_seg_logits.dtype)
    return (F.cross_entropy(fake_seg_logits, labels, reduction="none") * alpha[labels]).mean()


def feature_l2_matching_loss(real: list[Tensor], fake: list[Tensor]) -> Tensor:
    """DP-GAN's feature-level matching: squared L2 between real and fake features,
    divided by C x H x W (a mean square) per level, averaged over levels. Real is detached.
    """
    per_level = [F.mse_loss(f, r.detach()) for r, f in zip(real, fake, strict=True)]
    return torch.stack(per_level).mean()


# ----------------------------------------------------------------------------- diversity
def mode_seeking_loss(images_a: Tensor, images_b: Tensor, noise_a: Tensor, noise_b: Tensor,
                      eps: float = 1e-5) -> Tensor:
    """MSGAN's mode-seeking term (Mao et al. 2019): small when images differ as much as noise.

    ``1 / (mean|I_a - I_b| / mean|n_a - n_b| + eps)``: minimising it pushes two samples of
    the same conditioning apart in proportion to their noise distance.

    Shapes:
        images_a, images_b (N, 3, H, W); noise_a, noise_b: any matching shape
    """
    ratio = (images_a - images_b).abs().mean() / (noise_a - noise_b).abs().mean().clamp_min(eps)
    return 1.0 / (ratio + eps)


# ----------------------------------------------------------------------- reconstruction
def image_l1_loss(fake: Tensor, real: Tensor) -> Tensor:
    """Mean absolute error between images, (N, 3, H, W) each."""
    return F.l1_loss(fake, real)


def box_loss(boxes_pred: Tensor, boxes: Tensor, valid: Tensor | None = None) -> Tensor:
    """L1 between predicted and ground-truth boxes, (O, 4) each, over objects where ``valid``."""
    if valid is not None:
        boxes_pred, boxes = boxes_pred[valid], boxes[valid]
    if boxes.numel() == 0:
        return boxes_pred.sum() * 0.0
    return F.l1_loss(boxes_pred, boxes.to(boxes_pred.dtype))


def box_mixture_nll(logits: Tensor, means: Tensor, log_stds: Tensor, target: Tensor,
                    valid: Tensor | None = None) -> Tensor:
    """Mean negative log-likelihood of targets under per-object diagonal Gaussian mixtures.

    ``-log sum_k pi_k prod_d N(target_d; mean_kd, exp(log_std_kd)^2)`` averaged over the
    objects where ``valid``. A density, so it can be negative.

    Args:
        logits: (O, K) unnormalised component weights.
        means: (O, K, D).
        log_stds: (O, K, D).
        target: (O, D), e.g. ``layout_head.boxes_to_params(true_boxes)``.
        valid: (O,) bool, objects to count.

    Returns:
        scalar tensor (0 with a gradient path when no object counts).
    """
    if valid is not None:
        logits, means, log_stds, target = logits[valid], means[valid], log_stds[valid], \
            target[valid]
    if target.numel() == 0:
        return logits.sum() * 0.0 + means.sum() * 0.0 + log_stds.sum() * 0.0
    z = (target[:, None, :].to(means.dtype) - means) * torch.exp(-log_stds)   # (O, K, D)
    log_comp = (-0.5 * z.pow(2) - log_stds - 0.5 * math.log(2 * math.pi)).sum(dim=2)
    log_prob = torch.logsumexp(F.log_softmax(logits, dim=1) + log_comp, dim=1)  # (O,)
    return -log_prob.mean()


def mask_loss(mask_logits: Tensor, masks: Tensor, valid: Tensor | None = None) -> Tensor:
    """Binary cross-entropy of mask logits (O, M, M) against masks in [0, 1].

    Ground-truth masks of another size are resized bilinearly to the logits' size.
    """
    if valid is not None:
        mask_logits, masks = mask_logits[valid], masks[valid]
    if masks.numel() == 0:
        return mask_logits.sum() * 0.0
    M = mask_logits.shape[-1]
    if masks.shape[-1] != M:
        masks = F.interpolate(masks[:, None].float(), size=(M, M), mode="bilinear",
                              align_corners=False)[:, 0]
    return F.binary_cross_entropy_with_logits(mask_logits, masks.to(mask_logits.dtype))


def local_l1_loss(class_images: Tensor, class_masks: Tensor, class_to_img: Tensor,
                  real_images: Tensor) -> Tensor:
    """LGGAN Eq. 2: L1 between each class output and the real image inside its mask.

    ``sum over classes of mean |I * M_k - I_k|``, averaged over the images, so when the class
    regions tile the image it is close to a plain L1 on the image.

    Shapes:
        class_images (K, 3, H, W), class_masks (K, 1, H, W), class_to_img (K,),
        real_images (N, 3, H, W)
    """
    target = real_images[class_to_img].to(class_images.dtype) * class_masks
    per_class = (target - class_images).abs().mean(dim=(1, 2, 3))             # (K,)
    return per_class.sum() / real_images.shape[0]


def class_loss(class_logits: Tensor, class_ids: Tensor) -> Tensor:
    """LGGAN Eq. 5: cross-entropy of the pooled class features against their class.

    Only classes present in an image have rows here, which is LGGAN's void-class filtering.

    Shapes:
        class_logits (K, C), class_ids (K,)
    """
    return F.cross_entropy(class_logits, class_ids)


def aux_class_loss(class_logits: Tensor, objs: Tensor) -> Tensor:
    """Auxiliary classification of object crops (cross-entropy), (K, C) against (K,)."""
    if objs.numel() == 0:
        return class_logits.sum() * 0.0
    return F.cross_entropy(class_logits, objs)


def aux_attribute_loss(attr_logits: Tensor, attributes: Tensor) -> Tensor:
    """Multi-label classification of object crops' attributes: binary cross-entropy summed
    over the A attributes, averaged over the K crops; (K, A) logits against (K, A) multi-hot."""
    if attributes.numel() == 0:
        return attr_logits.sum() * 0.0
    bce = F.binary_cross_entropy_with_logits(attr_logits, attributes.to(attr_logits.dtype),
                                             reduction="none")
    return bce.sum(dim=1).mean()


# --------------------------------------------------------------------------- perceptual
VGG_FILE_NAME = "vgg19-dcbb9e9d.pth"
_VGG_SLICES = (2, 7, 12, 21, 30)            # ends of relu1_1, relu2_1, relu3_1, relu4_1, relu5_1
_VGG_WEIGHTS = (1.0 / 32, 1.0 / 16, 1.0 / 8, 1.0 / 4, 1.0)


class VGGPerceptualLoss(nn.Module):
    """Weighted L1 between VGG19 features of two images (pix2pixHD / SPADE's VGG loss).

    The weights come from a user-given file (torchvision's ``vgg19-dcbb9e9d.pth`` state dict);
    nothing is downloaded. The network is frozen and kept in eval mode.

    Args:
        weights_path: path of the VGG19 state dict, or None.
        allow_random: with no path, use random weights (tests only; meaningless as a loss).

    Raises:
        ValueError: no path and ``allow_random`` False, or the file is missing or not a VGG19
            state dict.

    Shapes:
        fake, real (N, 3, H, W) in [-1, 1] -> scalar
    """

    def __init__(self, weights_path: str | os.PathLike | None, *, allow_random: bool = False):
        super().__init__()
        # Only the convolutional part: torchvision's vgg19() would also allocate the 120M
        # parameter classifier that the loss never uses.
        from torchvision.models.vgg import cfgs, make_layers

        if not weights_path and not allow_random:
            raise ValueError(
                "the VGG perceptual loss needs VGG19 weights: pass "
                f"--set train.vgg_weights=/path/{VGG_FILE_NAME} (torchvision's file) or turn "
                "the loss off with --set loss.vgg_weight=0")
        features = make_layers(cfgs["E"])[:_VGG_SLICES[-1]]
        if weights_path:
            from .files import load_into, load_state_dict_file

            what = f"VGG19 weights (torchvision's {VGG_FILE_NAME})"
            state = load_state_dict_file(weights_path, what, ValueError)
            prefix = "features."
            state = {k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)
                     and k.split(".")[1].isdigit() and int(k.split(".")[1]) < _VGG_SLICES[-1]}
            load_into(features, state, f"{weights_path} is not a torchvision VGG19 state dict "
                      f"({VGG_FILE_NAME})", ValueError)
        else:
            logger.warning("VGGPerceptualLoss uses random weights (allow_random=True)")
        self.slices = nn.ModuleList(features[a:b] for a, b in
                                    zip((0, *_VGG_SLICES[:-1]), _VGG_SLICES, strict=True))
        self.requires_grad_(False)
        self.eval()
        self.register_buffer("mean", torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1),
                             persistent=False)
        self.register_buffer("std", torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1),
                             persistent=False)

    def train(self, mode: bool = True) -> VGGPerceptualLoss:
        # Always eval: the network is a fixed feature extractor.
        return super().train(False)

    def forward(self, fake: Tensor, real: Tensor) -> Tensor:
        n = fake.shape[0]
        x = torch.cat([fake, real.to(fake.dtype)])
        x = ((x + 1) / 2 - self.mean.to(x.dtype)) / self.std.to(x.dtype)
        loss = x.new_zeros(())
        for weight, block in zip(_VGG_WEIGHTS, self.slices, strict=True):
            x = block(x)
            loss = loss + weight * F.l1_loss(x[:n], x[n:].detach())
        return loss


def build_vgg_loss(vgg_weight: float, weights_path: str | None) -> VGGPerceptualLoss | None:
    """The VGG loss when ``vgg_weight > 0`` (raises ``ValueError`` without weights), else None."""
    if vgg_weight <= 0:
        return None
    return VGGPerceptualLoss(weights_path or None)
