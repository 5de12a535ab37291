"""Conditional-convolution global generator (CC-FPSE, Liu et al. NeurIPS 2019, Sec. 3.1).

SPADE modulates normalized activations with a per-pixel affine map; CC-FPSE argues that the
convolution kernels themselves should depend on what is drawn where. A weight-prediction
network turns the conditioning map into a feature pyramid (a bottom-up encoder and a top-down
path with lateral connections, as in FPN) and, for every conditional-convolution (CC) block of
the generator, predicts one depthwise ``k x k`` kernel per channel *and per position* from the
pyramid level of the block's resolution. Each depthwise conditional convolution is followed by
a learned pointwise (1x1) convolution that mixes the channels, so a CC layer costs about as
much as a separable convolution plus its kernel prediction.

Same interface as ``GlobalAffineGenerator``: ``z`` is projected to the coarsest map, each
stage is one ``CCBlock`` followed by nearest x2 upsampling (except the last), and the stage
list comes from ``stage_channels`` (so ``coarse_to_fine`` means the same here).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .global_affine import StagedGenerator, condition_width


def conditional_depthwise_conv(x: Tensor, kernels: Tensor, k: int) -> Tensor:
    """Depthwise convolution whose ``k x k`` kernel differs per image, channel and position.

    Args:
        x: (N, C, h, w) input.
        kernels: (N, C * k * k, h, w); channel ``c``'s kernel at a position is
            ``kernels[:, c * k * k:(c + 1) * k * k]``, taps in row-major order.
        k: kernel size (odd); zero padding keeps the size.

    Returns:
        (N, C, h, w).
    """
    N, C, h, w = x.shape
    patches = F.unfold(x, k, padding=k // 2).view(N, C, k * k, h, w)         # (N, C, kk, h, w)
    return (patches * kernels.view(N, C, k * k, h, w)).sum(dim=2)


class KernelPredictor(nn.Module):
    """Guide features -> per-position depthwise kernels for ``channels`` channels.

    Initialised near the identity kernel (centre tap 1, small weights), so an untrained CC
    layer passes its input through instead of scaling it by a random kernel.

    Shapes:
        guide (N, guide_ch, h, w) -> (N, channels * k * k, h, w)
    """

    def __init__(self, guide_ch: int, channels: int, k: int = 3):
        super().__init__()
        self.k = k
        self.conv = nn.Conv2d(guide_ch, channels * k * k, 3, padding=1)
        with torch.no_grad():
            self.conv.weight.mul_(0.1)
            bias = torch.zeros(channels, k * k)
            bias[:, (k * k) // 2] = 1.0
            self.conv.bias.copy_(bias.flatten())

    def forward(self, guide: Tensor) -> Tensor:
        return self.conv(guide)


class CCBlock(nn.Module):
    """Residual block of two conditional-convolution layers.

    Each layer: parameter-free instance norm, depthwise conditional convolution with kernels
    predicted from the guide features, LeakyReLU, pointwise 1x1 convolution. A 1x1 shortcut
    where the width changes.

    Args:
        in_ch, out_ch: feature widths.
        guide_ch: channels of the weight-prediction network's features at this resolution.
        k: depthwise kernel size.

    Shapes:
        x (N, in_ch, h, w), guide (N, guide_ch, h, w) -> (N, out_ch, h, w)
    """

    def __init__(self, in_ch: int, out_ch: int, guide_ch: int, k: int = 3):
        super().__init__()
        mid = min(in_ch, out_ch)
        self.k = k
        self.norm_0 = nn.InstanceNorm2d(in_ch, affine=False)
        self.kernels_0 = KernelPredictor(guide_ch, in_ch, k)
        self.point_0 = nn.Conv2d(in_ch, mid, 1)
        self.norm_1 = nn.InstanceNorm2d(mid, affine=False)
        self.kernels_1 = KernelPredictor(guide_ch, mid, k)
        self.point_1 = nn.Conv2d(mid, out_ch, 1)
        self.conv_s = nn.Conv2d(in_ch, out_ch, 1, bias=False) if in_ch != out_ch else None

    def forward(self, x: Tensor, guide: Tensor) -> Tensor:
        h = conditional_depthwise_conv(self.norm_0(x), self.kernels_0(guide), self.k)
        h = self.point_0(F.leaky_relu(h, 0.2))
        h = conditional_depthwise_conv(self.norm_1(h), self.kernels_1(guide), self.k)
        h = self.point_1(F.leaky_relu(h, 0.2))
        xs = x if self.conv_s is None else self.conv_s(x)
        return xs + h


class WeightPredictionNetwork(nn.Module):
    """Conditioning map -> a feature pyramid, one level per generator resolution.

    Bottom-up: a 3x3 stem at full resolution, then stride-2 3x3 convs down to the coarsest
    resolution. Top-down: starting from the coarsest level, each finer level is its lateral
    1x1 projection plus the upsampled coarser level, smoothed by a 3x3 conv. So the kernels of
    a coarse block see the whole layout, and those of a fine block see local detail plus that
    context.

    Args:
        cond_ch: channels of the conditioning map.
        image_size: H of the conditioning map.
        min_size: coarsest resolution needed (a power-of-two fraction of ``image_size``).
        width: channels of every pyramid level.

    Shapes:
        cond (N, cond_ch, H, W) -> {resolution: (N, width, r, r)} for every r from
        ``min_size`` to H by factors of 2
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
        self.lateral = nn.ModuleList(nn.Conv2d(width, width, 1) for _ in self.sizes[:-1])
        self.smooth = nn.ModuleList(
            nn.Sequential(nn.Conv2d(width, width, 3, padding=1), nn.LeakyReLU(0.2))
            for _ in self.sizes)

    def forward(self, cond: Tensor) -> dict[int, Tensor]:
        bottom_up = [self.stem(cond)]
        for down in self.down:
            bottom_up.append(down(bottom_up[-1]))                              # finest first
        top = bottom_up[-1]
        out = {self.sizes[-1]: self.smooth[-1](top)}
        for i in range(len(self.sizes) - 2, -1, -1):
            top = self.lateral[i](bottom_up[i]) + F.interpolate(top, scale_factor=2,
                                                                mode="nearest")
            out[self.sizes[i]] = self.smooth[i](top)
        return out


class CCGenerator(StagedGenerator):
    """Noise -> image through conditional-convolution blocks (CC-FPSE's generator).

    Arguments and shapes as :class:`~sg2img.generators.global_affine.GlobalAffineGenerator`'s.
    """

    def __init__(self, image_size: int, noise_dim: int, cond_ch: int, base_channels: int,
                 coarse_to_fine: bool = False):
        guide_ch = condition_width(base_channels)
        super().__init__(image_size, noise_dim, base_channels, coarse_to_fine,
                         lambda in_ch, out_ch: CCBlock(in_ch, out_ch, guide_ch))
        self.predictor = WeightPredictionNetwork(cond_ch, image_size, self.start, guide_ch)

    def condition(self, cond: Tensor) -> dict[int, Tensor]:
        return self.predictor(cond)


__all__ = ["CCBlock", "CCGenerator", "WeightPredictionNetwork", "conditional_depthwise_conv"]
