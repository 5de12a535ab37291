"""Dual-pyramid global generator (DP-GAN, Li, Cheng and Gall, BMVC 2022).

SPADE conditions every generator scale on the layout resized to that scale, through the same
small network applied to a picture whose objects shrink with the resolution: a 3x3 conv sees
most of a small object at 64 px, and only an edge of a large one. DP-GAN makes the
conditioning scale-aware with a second pyramid, over the layout:

* pyramid 1 (bottom-up encoder): stride-2 convs from the full-resolution conditioning map;
  its level at resolution ``r`` has seen a neighbourhood that grows as ``r`` shrinks, so
  large objects are described as wholes at the coarse levels;
* pyramid 2 (layout pyramid): the conditioning map area-downsampled to every ``r`` and
  encoded by one shared-weight conv stack, so the same object at another scale gets the same
  filters;
* each generator scale ``r`` is a SPADE residual block whose per-pixel affine map
  (``gamma(l^r)``, ``beta(l^r)``) comes from ``l^r``, the fusion of the two pyramids' levels
  at ``r``.

This is our reading of the paper's description ("the layout is encoded as a pyramid and each
generator scale is conditioned on the matching level"); the generator trunk (``z`` projection,
``stage_channels``, ``SPADEResBlock``) is shared with ``GlobalAffineGenerator`` so that the
comparison isolates the conditioning.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .global_affine import SPADEResBlock, StagedGenerator, cond_pyramid, condition_width


class LayoutPyramid(nn.Module):
    """Conditioning map -> one fused scale-aware feature map per resolution.

    Args:
        cond_ch: channels of the conditioning map.
        image_size: H of the conditioning map.
        min_size: coarsest resolution (a power-of-two fraction of ``image_size``).
        width: channels of each level.

    Shapes:
        cond (N, cond_ch, H, W) -> {r: (N, width, r, r)} for r = H, H/2, ..., ``min_size``
    """

    def __init__(self, cond_ch: int, image_size: int, min_size: int, width: int):
        super().__init__()
        self.sizes = []
        r = image_size
        while r >= min_size:
            self.sizes.append(r)                                              # finest first
            r //= 2
        self.stem = nn.Sequential(nn.Conv2d(cond_ch, width, 3, padding=1), nn.LeakyReLU(0.2))
        self.down = nn.ModuleList(
            nn.Sequential(nn.Conv2d(width, width, 3, stride=2, padding=1), nn.LeakyReLU(0.2))
            for _ in self.sizes[1:])
        # One encoder for every level of the layout pyramid (shared weights).
        self.shared = nn.Sequential(nn.Conv2d(cond_ch, width, 3, padding=1), nn.LeakyReLU(0.2),
                                    nn.Conv2d(width, width, 3, padding=1), nn.LeakyReLU(0.2))
        self.fuse = nn.ModuleList(nn.Conv2d(2 * width, width, 1) for _ in self.sizes)

    def forward(self, cond: Tensor) -> dict[int, Tensor]:
        layouts = cond_pyramid(cond, self.sizes)                              # {r: (N, c, r, r)}
        x = self.stem(cond)
        out = {}
        for i, r in enumerate(self.sizes):
            if i > 0:
                x = self.down[i - 1](x)                                       # (N, width, r, r)
            both = torch.cat([x, self.shared(layouts[r])], dim=1)             # (N, 2w, r, r)
            out[r] = F.leaky_relu(self.fuse[i](both), 0.2)
        return out


class DualPyramidGenerator(StagedGenerator):
    """Noise -> image through SPADE blocks, each conditioned on its level of a layout pyramid.

    Arguments and shapes as :class:`~sg2img.generators.global_affine.GlobalAffineGenerator`'s.
    """

    def __init__(self, image_size: int, noise_dim: int, cond_ch: int, base_channels: int,
                 coarse_to_fine: bool = False):
        width = condition_width(base_channels)
        super().__init__(image_size, noise_dim, base_channels, coarse_to_fine,
                         lambda in_ch, out_ch: SPADEResBlock(in_ch, out_ch, width,
                                                             hidden=min(max(out_ch, 16), 128)))
        self.pyramid = LayoutPyramid(cond_ch, image_size, self.start, width)

    def condition(self, cond: Tensor) -> dict[int, Tensor]:
        return self.pyramid(cond)


__all__ = ["DualPyramidGenerator", "LayoutPyramid"]
