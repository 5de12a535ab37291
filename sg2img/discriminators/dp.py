"""Scale-enhancement discriminator (DP-GAN, Li, Cheng and Gall, BMVC 2022).

An encoder-decoder (U-Net) on the image alone, as OASIS's segmentation discriminator, with
supervision at three levels:

* pixel level: the decoder's last layer classifies every pixel into the layout's C classes
  or "fake" (class C), trained with OASIS's class-balanced cross-entropy
  (``sg2img.losses.segmentation_d_loss`` / ``segmentation_g_loss``);
* patch level: a real/fake head on every encoder level (multi-scale patch hinge loss; the
  paper's ablation keeps it on the encoder);
* feature level: the decoder's features of real and generated images are matched with a
  squared L2 per level (``sg2img.losses.feature_l2_matching_loss``; the paper's ablation keeps
  it on the decoder).

The layout is not an input: the segmentation head is how the discriminator judges alignment.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .blocks import maybe_spectral_norm as _sn


@dataclass
class ScaleEnhancementOutput:
    """Shapes:
        patch: per encoder level, finest first, ``[features, logits (B, 1, h, w)]``;
        seg_logits (B, C + 1, H, W), channel C = fake;
        match: decoder features, coarsest first, each (B, c_i, h_i, w_i).
    """

    patch: list[list[Tensor]]
    seg_logits: Tensor
    match: list[Tensor]


class ScaleEnhancementDiscriminator(nn.Module):
    """DP-GAN's discriminator: U-Net with pixel, patch and feature-level outputs.

    Args:
        num_classes: C, layout classes (the segmentation head has C + 1 outputs).
        channels: width of the stem.
        num_layers: stride-2 encoder levels are ``num_layers + 1`` (``H/2`` ...).
        spectral_norm: wrap every conv in spectral normalization.

    Shapes:
        images (B, 3, H, W) -> ``ScaleEnhancementOutput``
    """

    def __init__(self, num_classes: int, channels: int, num_layers: int,
                 spectral_norm: bool = True):
        super().__init__()
        self.num_classes = num_classes
        levels = num_layers + 1
        widths = [channels * min(8, 2 ** (i + 1)) for i in range(levels)]
        self.stem = nn.Sequential(_sn(nn.Conv2d(3, channels, 3, 1, 1), spectral_norm),
                                  nn.LeakyReLU(0.2))
        enc, prev = [], channels
        for ch in widths:
            enc.append(nn.Sequential(_sn(nn.Conv2d(prev, ch, 4, 2, 1), spectral_norm),
                                     nn.LeakyReLU(0.2)))
            prev = ch
        self.encoder = nn.ModuleList(enc)
        self.patch_heads = nn.ModuleList(_sn(nn.Conv2d(ch, 1, 3, 1, 1), spectral_norm)
                                         for ch in widths)
        # Decoder step i goes from encoder level i+1 (or the previous step) up to the
        # resolution of level i (the stem for i = -1), with that level as a skip input.
        skips = [channels] + widths[:-1]                                      # finest first
        dec, prev = [], widths[-1]
        for skip in reversed(skips):
            out = max(channels, skip)
            dec.append(nn.Sequential(_sn(nn.Conv2d(prev + skip, out, 3, 1, 1), spectral_norm),
                                     nn.LeakyReLU(0.2)))
            prev = out
        self.decoder = nn.ModuleList(dec)
        self.seg_head = _sn(nn.Conv2d(prev, num_classes + 1, 1), spectral_norm)

    def forward(self, images: Tensor) -> ScaleEnhancementOutput:
        x = self.stem(images)                                                 # (B, ch, H, W)
        feats = [x]
        patch = []
        for block, head in zip(self.encoder, self.patch_heads, strict=True):
            x = block(x)
            feats.append(x)
            patch.append([x, head(x)])
        match = []
        for i, block in enumerate(self.decoder):
            skip = feats[len(feats) - 2 - i]
            x = F.interpolate(x, size=skip.shape[-2:], mode="nearest")
            x = block(torch.cat([x, skip], dim=1))
            match.append(x)
        return ScaleEnhancementOutput(patch=patch, seg_logits=self.seg_head(x), match=match)


__all__ = ["ScaleEnhancementDiscriminator", "ScaleEnhancementOutput"]
