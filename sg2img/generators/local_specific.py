"""Local class-specific generator (LGGAN, Tang et al. 2020, Sec. 3.2), vectorized over classes.

Shared features ``f'`` are filtered by each class's layout mask (Eq. 1), every class has its own
sub-generator producing a class image that is zero outside the class region, the class images
are combined by a sum (Eq. 3) or by a convolution over their concatenation (Eq. 4), and a
classification module pools each class's filtered features (Eq. 5).

LGGAN unrolls one sub-network per class (35 for Cityscapes). With 184 COCO-Stuff classes that
would cost 184 sub-networks per image, nearly all of them for absent classes. Here the per-class
weights live in class-indexed banks (``weight (C, out, in, k, k)``, stored flattened as
``(C * out, in, k, k)``, see ``_bank``); only the K (image, class)
pairs present in the batch are computed, as one grouped convolution whose groups are the pairs
and whose weights are gathered from the banks. The cost therefore grows with the classes present
in the images, not with the vocabulary size.

Eq. 4's convolution over the concatenation of all C class images (3C input channels) splits
into C slices ``W[:, 3c:3c+3]``; applying slice ``c`` to class image ``c`` and summing over the
classes gives the same result, and absent classes (all-zero images) contribute nothing. So the
combination is again a class-indexed bank, a grouped convolution over the K pairs and a
scatter-add into the images.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn


@dataclass
class LocalOutput:
    """What the local generator returns.

    Shapes:
        images (N, 3, H, W) in [-1, 1]; features (N, F, H, W) shared features f';
        class_images (K, 3, H, W) in [-1, 1], zero outside the class region;
        class_masks (K, 1, H, W) in [0, 1]; class_ids (K,) long; class_to_img (K,) long;
        class_logits (K, C) or None when the classification module is off.
    """

    images: Tensor
    features: Tensor
    class_images: Tensor
    class_masks: Tensor
    class_ids: Tensor
    class_to_img: Tensor
    class_logits: Tensor | None


def present_classes(layout: Tensor, min_mass: float = 0.5) -> tuple[Tensor, Tensor]:
    """The (image, class) pairs whose layout channel has mass in the image.

    Args:
        layout: (N, C, H, W) semantic layout in [0, 1].
        min_mass: a class is present when its channel sums to more than this many pixels
            (0.5: at least half a pixel; float residue of soft masks stays out).

    Returns:
        class_to_img (K,), class_ids (K,), sorted by image then class.
    """
    mass = layout.detach().sum(dim=(2, 3))                                    # (N, C)
    pairs = (mass > min_mass).nonzero()                                       # (K, 2)
    return pairs[:, 0], pairs[:, 1]


def _bank(num_classes: int, out_ch: int, in_ch: int, k: int) -> tuple[nn.Parameter, nn.Parameter]:
    """Per-class conv weights ``(C * out, in, k, k)`` and biases ``(C, out)``.

    Class ``c``'s weight is rows ``[c * out, (c + 1) * out)``, i.e. ``bank.view(C, out, in, k,
    k)[c]``. The bank is stored 4-D, not 5-D, so that ``module.to(memory_format=
    torch.channels_last)`` (used on CUDA) accepts it. Each class is initialized like a fresh
    ``nn.Conv2d``.
    """
    bound = 1.0 / math.sqrt(in_ch * k * k)
    w = torch.empty(num_classes * out_ch, in_ch, k, k).uniform_(-bound, bound)
    b = torch.empty(num_classes, out_ch).uniform_(-bound, bound)
    return nn.Parameter(w), nn.Parameter(b)


def class_conv(x: Tensor, weight_bank: Tensor, bias_bank: Tensor | None,
               class_ids: Tensor, num_classes: int) -> Tensor:
    """Apply class ``class_ids[k]``'s convolution to ``x[k]`` for all k at once.

    One grouped convolution (groups = K) with weights gathered from the bank.

    Args:
        x: (K, in, H, W).
        weight_bank: (C * out, in, k, k), class c in rows ``[c * out, (c + 1) * out)``.
        bias_bank: (C, out) or None.
        class_ids: (K,) classes, in [0, C).
        num_classes: C.

    Returns:
        (K, out, H, W).
    """
    K, in_ch, H, W = x.shape
    k = weight_bank.shape[-1]
    out_ch = weight_bank.shape[0] // num_classes
    if K == 0:  # no class present (a layout of NaN): conv2d refuses groups=0
        return x.new_zeros(0, out_ch, H, W)
    bank = weight_bank.reshape(num_classes, out_ch, in_ch, k, k)              # (C, out, in, k, k)
    weight = bank[class_ids].reshape(K * out_ch, in_ch, k, k)                # (K*out, in, k, k)
    bias = None if bias_bank is None else bias_bank[class_ids].reshape(K * out_ch)
    y = F.conv2d(x.reshape(1, K * in_ch, H, W), weight, bias, padding=k // 2,
                 groups=K)                                                    # (1, K*out, H, W)
    return y.reshape(K, out_ch, H, W)


class LocalClassGenerator(nn.Module):
    """LGGAN's local class-specific generator over the classes present in each image.

    The shared trunk encodes the conditioning at 1/4 resolution and upsamples it twice (LGGAN's
    two deconvolutions) into ``f'``. For each present (image, class) pair k with mask ``M_k``
    (the class's semantic-layout channel), ``F_k = M_k * f'[img_k]`` goes through the class's
    own two 3x3 convs; ``I_k = tanh(.) * M_k`` is exactly zero outside the class region.
    Channel 0 of the layout (the unlabelled region, see ``sg2img.layout.semantic_layout``) is
    treated as a class too, so the local image covers the whole canvas.

    Args:
        num_classes: C, vocabulary size (bank rows).
        cond_ch: channels of the conditioning map.
        channels: F, per-class feature width.
        combine: ``"conv"`` (Eq. 4) or ``"sum"`` (Eq. 3).
        use_class_loss: build the classification module (pooled ``F_k`` -> linear -> C logits).

    Shapes:
        cond (N, cond_ch, H, W), layout (N, C, H, W) in [0, 1] -> ``LocalOutput``
    """

    def __init__(self, num_classes: int, cond_ch: int, channels: int, combine: str = "conv",
                 use_class_loss: bool = True):
        super().__init__()
        if combine not in ("conv", "sum"):
            raise ValueError(f"combine must be 'conv' or 'sum', got {combine!r}")
        self.num_classes = num_classes
        self.combine = combine
        ch = channels
        self.trunk = nn.Sequential(
            nn.Conv2d(cond_ch, 2 * ch, 3, padding=1), nn.InstanceNorm2d(2 * ch),
            nn.LeakyReLU(0.2),
            nn.Upsample(scale_factor=2, mode="nearest"),
            nn.Conv2d(2 * ch, ch, 3, padding=1), nn.InstanceNorm2d(ch), nn.LeakyReLU(0.2),
            nn.Upsample(scale_factor=2, mode="nearest"),
            nn.Conv2d(ch, ch, 3, padding=1), nn.InstanceNorm2d(ch), nn.LeakyReLU(0.2))
        self.weight_1, self.bias_1 = _bank(num_classes, ch, ch, 3)
        self.weight_2, self.bias_2 = _bank(num_classes, 3, ch, 3)
        if combine == "conv":
            # Initialized per class slice (fan-in 3*3*3, not 3C*3*3): a pixel usually belongs
            # to one class, so the full-concatenation fan-in would start the output near zero.
            self.combine_weight, _ = _bank(num_classes, 3, 3, 3)
            self.combine_bias = nn.Parameter(torch.zeros(3))
        self.classifier = nn.Linear(ch, num_classes) if use_class_loss else None
        self.out_channels = ch

    def forward(self, cond: Tensor, layout: Tensor, with_logits: bool = True) -> LocalOutput:
        """``with_logits=False`` skips the classification module (inference: its logits only
        feed the training loss) and returns ``class_logits=None``."""
        N, C, H, W = layout.shape
        if C != self.num_classes:
            raise ValueError(f"layout has {C} class channels, the local generator was built "
                             f"for {self.num_classes}")
        feats = self.trunk(F.avg_pool2d(cond, 4))                             # (N, F, H, W)
        class_to_img, class_ids = present_classes(layout)
        masks = layout[class_to_img, class_ids][:, None]                      # (K, 1, H, W)
        filtered = masks * feats[class_to_img]                                # (K, F, H, W)
        h = F.leaky_relu(class_conv(filtered, self.weight_1, self.bias_1, class_ids, C), 0.2)
        class_images = torch.tanh(class_conv(h, self.weight_2, self.bias_2, class_ids, C)) * masks

        if self.combine == "conv":
            per_class = class_conv(class_images, self.combine_weight, None, class_ids, C)
            summed = per_class.new_zeros(N, 3, H, W).index_add(0, class_to_img, per_class)
            images = torch.tanh(summed + self.combine_bias[None, :, None, None])
        else:
            # Eq. 3, divided by the mask coverage where classes overlap (soft or overlapping
            # masks) so the sum stays in [-1, 1]; equal to Eq. 3 where masks do not overlap.
            summed = class_images.new_zeros(N, 3, H, W).index_add(0, class_to_img, class_images)
            cover = masks.new_zeros(N, 1, H, W).index_add(0, class_to_img, masks)
            images = summed / cover.clamp_min(1.0)

        logits = None
        if self.classifier is not None and with_logits:
            # Semantic-guided average pooling of F_k: sum over the region / region area.
            pooled = filtered.sum(dim=(2, 3)) / masks.sum(dim=(2, 3)).clamp_min(1e-6)  # (K, F)
            logits = self.classifier(pooled)                                  # (K, C)
        return LocalOutput(images=images, features=feats, class_images=class_images,
                           class_masks=masks, class_ids=class_ids, class_to_img=class_to_img,
                           class_logits=logits)
