"""pix2pixHD's multi-scale patch discriminator on (image, layout): ``discriminator="multiscale"``.

Identical PatchGANs on the image and its x2 and x4 downsampled copies, each returning its
intermediate features for the feature-matching loss. It is conditioned on the semantic layout
(LGGAN's semantic-guided discriminator).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .blocks import maybe_spectral_norm as _sn


class PatchDiscriminator(nn.Module):
    """PatchGAN on ``concat(image, reduced layout)``.

    ``num_layers`` stride-2 4x4 convs (widths ``ch, 2ch, 4ch, ...`` capped at ``8ch``), one
    stride-1 3x3 conv, then a 3x3 conv to one logit per patch. The layout's C channels are first
    reduced by a 1x1 conv (C is up to 184).

    Args:
        layout_ch: C (0 for an unconditional discriminator).
        channels: width of the first layer.
        num_layers: number of stride-2 layers.
        spectral_norm: wrap every conv in spectral normalization.

    Shapes:
        images (B, 3, H, W), layout (B, C, H, W)
        -> list of features, each (B, c_i, h_i, w_i); the last is the logits (B, 1, h, w)
    """

    def __init__(self, layout_ch: int, channels: int, num_layers: int,
                 spectral_norm: bool = True):
        super().__init__()
        self.layout_proj = None
        in_ch = 3
        if layout_ch > 0:
            red = min(layout_ch, channels)
            self.layout_proj = _sn(nn.Conv2d(layout_ch, red, 1), spectral_norm)
            in_ch += red
        blocks: list[nn.Module] = []
        prev = in_ch
        for i in range(num_layers):
            ch = channels * min(8, 2 ** i)
            blocks.append(nn.Sequential(_sn(nn.Conv2d(prev, ch, 4, 2, 1), spectral_norm),
                                        nn.LeakyReLU(0.2)))
            prev = ch
        ch = channels * min(8, 2 ** num_layers)
        blocks.append(nn.Sequential(_sn(nn.Conv2d(prev, ch, 3, 1, 1), spectral_norm),
                                    nn.LeakyReLU(0.2)))
        blocks.append(_sn(nn.Conv2d(ch, 1, 3, 1, 1), spectral_norm))
        self.blocks = nn.ModuleList(blocks)

    def forward(self, images: Tensor, layout: Tensor | None) -> list[Tensor]:
        x = images
        if self.layout_proj is not None:
            x = torch.cat([images, self.layout_proj(layout.to(images.dtype))], dim=1)
        feats = []
        for block in self.blocks:
            x = block(x)
            feats.append(x)
        return feats


class MultiScaleDiscriminator(nn.Module):
    """``num_scales`` PatchGANs on the image and layout average-pooled by 2 between scales.

    Shapes:
        images (B, 3, H, W), layout (B, C, H, W) -> per scale (finest first) a list of
        features whose last entry is the patch logits.
    """

    def __init__(self, layout_ch: int, channels: int, num_layers: int, num_scales: int,
                 spectral_norm: bool = True):
        super().__init__()
        self.discs = nn.ModuleList(
            PatchDiscriminator(layout_ch, channels, num_layers, spectral_norm)
            for _ in range(num_scales))

    def forward(self, images: Tensor, layout: Tensor | None) -> list[list[Tensor]]:
        out = []
        for i, disc in enumerate(self.discs):
            if i > 0:
                images = F.avg_pool2d(images, 3, 2, 1, count_include_pad=False)
                if layout is not None:
                    layout = F.avg_pool2d(layout, 3, 2, 1, count_include_pad=False)
            out.append(disc(images, layout))
        return out


__all__ = ["MultiScaleDiscriminator", "PatchDiscriminator"]
