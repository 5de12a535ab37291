"""Global-affine generator: residual blocks with spatially-adaptive affine modulation (SPADE).

Each normalization is parameter-free (instance norm); the per-pixel scale ``gamma`` and shift
``beta`` are predicted from the conditioning map (semantic + embedding layout + noise), resized
to the block's resolution. The generator starts from a projection of the noise ``z``, so one
scene graph gives many images.

Instance norm rather than SPADE's batch norm: an image then never depends on the other images
in its batch, which keeps "same z + same graph = same image" true in training mode too and
lets small CPU batches train.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor, nn


class SPADE(nn.Module):
    """Parameter-free instance norm followed by a per-pixel affine map from ``cond_feat``.

    ``cond_feat`` is the block's shared conditioning activation (computed once per block, see
    ``SPADEResBlock``), already at the resolution of ``x``.

    Args:
        channels: width of ``x``.
        hidden: width of ``cond_feat``.

    Shapes:
        x (N, channels, h, w), cond_feat (N, hidden, h, w) -> (N, channels, h, w)
    """

    def __init__(self, channels: int, hidden: int):
        super().__init__()
        self.norm = nn.InstanceNorm2d(channels, affine=False)
        self.gamma_beta = nn.Conv2d(hidden, 2 * channels, 3, padding=1)
        # The "1 +" of the scale, added to the gamma half of the conv's bias (not saved).
        self.register_buffer("scale_offset", torch.cat([torch.ones(channels),
                                                        torch.zeros(channels)]),
                             persistent=False)

    def forward(self, x: Tensor, cond_feat: Tensor) -> Tensor:
        # norm(x) * (1 + gamma) + beta, in two passes over the full-size maps instead of
        # four: the 1 rides in the conv's bias and addcmul fuses the multiply-add (the same
        # arithmetic up to float rounding; tests/test_fast_paths.py checks it in float64).
        conv = self.gamma_beta
        bias = conv.bias + self.scale_offset.to(conv.bias.dtype)
        scale, shift = F.conv2d(cond_feat, conv.weight, bias,
                                padding=conv.padding).chunk(2, dim=1)
        return torch.addcmul(shift, self.norm(x), scale)


class SPADEResBlock(nn.Module):
    """SPADE residual block: (SPADE, LeakyReLU, 3x3 conv) x 2 plus a learned shortcut.

    One 3x3 conv + ReLU turns the conditioning into a ``hidden``-channel activation shared by
    the block's two SPADE layers (SPADE computes it per layer; sharing it halves the
    conditioning cost at high resolution, which dominates on CPU).

    Args:
        in_ch, out_ch: feature widths.
        cond_ch: channels of the conditioning map.
        hidden: width of the shared conditioning activation.

    Shapes:
        x (N, in_ch, h, w), cond (N, cond_ch, h, w) -> (N, out_ch, h, w)
    """

    def __init__(self, in_ch: int, out_ch: int, cond_ch: int, hidden: int):
        super().__init__()
        mid = min(in_ch, out_ch)
        self.shared = nn.Sequential(nn.Conv2d(cond_ch, hidden, 3, padding=1), nn.ReLU())
        self.norm_0 = SPADE(in_ch, hidden)
        self.conv_0 = nn.Conv2d(in_ch, mid, 3, padding=1)
        self.norm_1 = SPADE(mid, hidden)
        self.conv_1 = nn.Conv2d(mid, out_ch, 3, padding=1)
        # A plain 1x1 conv shortcut where the width changes (SPADE also modulates it; at
        # the wide coarse-to-fine transitions that third SPADE was a quarter of the cost).
        self.conv_s = nn.Conv2d(in_ch, out_ch, 1, bias=False) if in_ch != out_ch else None

    def forward(self, x: Tensor, cond: Tensor) -> Tensor:
        c = self.shared(cond)
        # In place on fresh outputs (SPADE's, conv_1's): no backward reads what they overwrite.
        dx = self.conv_0(F.leaky_relu(self.norm_0(x, c), 0.2, inplace=True))
        dx = self.conv_1(F.leaky_relu(self.norm_1(dx, c), 0.2, inplace=True))
        xs = x if self.conv_s is None else self.conv_s(x)
        return dx.add_(xs)


def spade_block_reference(block: SPADEResBlock, x: Tensor, cond: Tensor) -> Tensor:
    """``block(x, cond)`` computed as written before the fused modulation:
    ``norm(x) * (1 + gamma) + beta``, out-of-place activations. The specification the fused
    path is tested against (``tests/test_fast_paths.py``) and timed against
    (``scripts/bench_spade.py``)."""
    def spade(layer: SPADE, h: Tensor, c: Tensor) -> Tensor:
        gamma, beta = layer.gamma_beta(c).chunk(2, dim=1)
        return layer.norm(h) * (1 + gamma) + beta

    c = block.shared(cond)
    dx = block.conv_0(F.leaky_relu(spade(block.norm_0, x, c), 0.2))
    dx = block.conv_1(F.leaky_relu(spade(block.norm_1, dx, c), 0.2))
    return (x if block.conv_s is None else block.conv_s(x)) + dx


def condition_width(base: int) -> int:
    """Width of the conditioning features the CC-FPSE and DP-GAN generators compute from the
    layout: twice the finest stage's width, kept within 16..128."""
    return min(max(2 * base, 16), 128)


def stage_channels(image_size: int, base: int,
                   coarse_to_fine: bool = False) -> list[tuple[int, int]]:
    """(resolution, channels) of each generator stage, coarsest first.

    Four x2 upsamplings from ``H/16`` up to 64x64 images, five from ``H/32`` above that (when
    ``H`` divides by 32); widths are ``base * min(8, 2 ** (stages - 1 - i))``, i.e.
    ``8b, 8b, 4b, 2b, b`` for five stages.

    ``coarse_to_fine`` (pix2pixHD): the stages of the ``H/2`` generator (G1) followed by one
    enhancer stage at ``H`` of width ``b`` (G2), so that an ``H/2`` model's weights initialise
    every stage but the last (``train.init_from``).
    """
    if coarse_to_fine:
        return stage_channels(image_size // 2, base) + [(image_size, base)]
    num_up = 5 if image_size > 64 and image_size % 32 == 0 else 4
    res = [image_size >> (num_up - i) for i in range(num_up + 1)]
    n = len(res)
    return [(r, base * min(8, 2 ** (n - 1 - i))) for i, r in enumerate(res)]



class StagedGenerator(nn.Module):
    """The noise-to-image skeleton the seed papers' global generators share: ``fc(z)`` at the
    coarsest stage of :func:`stage_channels`, one conditioned block per stage (nearest 2x
    upsampling between stages), then ``tanh`` of a 3x3 RGB convolution.

    Subclasses give the block (``make_block(in_ch, out_ch)``) and :meth:`condition`, which
    turns the conditioning map into one map per stage resolution.

    Shapes:
        z (N, noise_dim), cond (N, cond_ch, H, W)
        -> images (N, 3, H, W) in [-1, 1], features (N, base_channels, H, W)
    """

    def __init__(self, image_size: int, noise_dim: int, base_channels: int,
                 coarse_to_fine: bool, make_block: Callable[[int, int], nn.Module]):
        super().__init__()
        self.stages = stage_channels(image_size, base_channels, coarse_to_fine)
        self.start, self.c0 = self.stages[0]
        self.fc = nn.Linear(noise_dim, self.c0 * self.start * self.start)
        blocks = []
        prev = self.c0
        for _, ch in self.stages:
            blocks.append(make_block(prev, ch))
            prev = ch
        self.blocks = nn.ModuleList(blocks)
        self.to_rgb = nn.Conv2d(prev, 3, 3, padding=1)
        self.out_channels = prev

    def condition(self, cond: Tensor) -> dict[int, Tensor]:
        """Resolution -> the map the block at that resolution is conditioned on."""
        raise NotImplementedError

    def forward(self, z: Tensor, cond: Tensor) -> tuple[Tensor, Tensor]:
        maps = self.condition(cond)
        x = self.fc(z).view(-1, self.c0, self.start, self.start)             # (N, c0, s, s)
        for i, ((res, _), block) in enumerate(zip(self.stages, self.blocks, strict=True)):
            x = block(x, maps[res])
            if i < len(self.blocks) - 1:
                x = F.interpolate(x, scale_factor=2, mode="nearest")
        feats = F.leaky_relu(x, 0.2)
        return torch.tanh(self.to_rgb(feats)), feats

def cond_pyramid(cond: Tensor, sizes: list[int]) -> dict[int, Tensor]:
    """The conditioning map area-downsampled to each size in ``sizes`` (by repeated halving)."""
    out = {cond.shape[-1]: cond}
    cur = cond
    while cur.shape[-1] > min(sizes):
        cur = F.avg_pool2d(cur, 2)
        out[cur.shape[-1]] = cur
    return out


class GlobalAffineGenerator(nn.Module):
    """Noise -> image through SPADE residual blocks conditioned on the layout.

    ``z`` is projected to the coarsest map; each stage is one ``SPADEResBlock`` followed by
    nearest x2 upsampling (except the last). By default the generator simply ends at the
    target size; with ``coarse_to_fine`` it is the ``H/2`` generator plus an enhancer stage at
    ``H`` (see ``stage_channels``), trained after the ``H/2`` model as in pix2pixHD.

    Args:
        image_size: output H = W (a multiple of 16: 32, 64, 128, ...; of 32 for
            ``coarse_to_fine``).
        noise_dim: width of ``z``.
        cond_ch: channels of the conditioning map.
        base_channels: width of the finest stage (coarse stages are up to 8x wider).
        coarse_to_fine: add the enhancer stage on top of the ``H/2`` generator.
        narrow_upsample: change the width between stages with a 1x1 conv *before* the x2
            upsampling (``reduce``), so every block keeps its width and its first 3x3 conv
            and SPADE layer work at the narrower width. A 1x1 conv commutes with nearest
            upsampling, so on the shortcut path this is the blocks' 1x1 shortcut moved to
            a quarter of the pixels; on the residual path it factors the first 3x3 conv
            through that 1x1 conv.

    Shapes:
        z (N, noise_dim), cond (N, cond_ch, H, W)
        -> images (N, 3, H, W) in [-1, 1], features (N, base_channels, H, W)
    """

    def __init__(self, image_size: int, noise_dim: int, cond_ch: int, base_channels: int,
                 coarse_to_fine: bool = False, narrow_upsample: bool = False):
        super().__init__()
        self.stages = stage_channels(image_size, base_channels, coarse_to_fine)
        self.start, c0 = self.stages[0]
        self.c0 = c0
        self.fc = nn.Linear(noise_dim, c0 * self.start * self.start)
        blocks = []
        prev = c0
        for _, ch in self.stages:
            blocks.append(SPADEResBlock(ch if narrow_upsample else prev, ch, cond_ch,
                                        hidden=min(max(ch, 16), 128)))
            prev = ch
        self.blocks = nn.ModuleList(blocks)
        # Only with narrow_upsample: stage i's width -> stage i + 1's, before upsampling
        # (identity where the width stays).
        self.reduce = None
        if narrow_upsample:
            widths = [ch for _, ch in self.stages]
            self.reduce = nn.ModuleList(
                nn.Conv2d(a, b, 1, bias=False) if a != b else nn.Identity()
                for a, b in zip(widths[:-1], widths[1:], strict=True))
        self.to_rgb = nn.Conv2d(prev, 3, 3, padding=1)
        self.out_channels = prev

    def forward(self, z: Tensor, cond: Tensor) -> tuple[Tensor, Tensor]:
        conds = cond_pyramid(cond, [r for r, _ in self.stages])
        x = self.fc(z).view(-1, self.c0, self.start, self.start)             # (N, c0, s, s)
        for i, ((res, _), block) in enumerate(zip(self.stages, self.blocks, strict=True)):
            x = block(x, conds[res])
            if i < len(self.blocks) - 1:
                if self.reduce is not None:
                    x = self.reduce[i](x)
                x = F.interpolate(x, scale_factor=2, mode="nearest")
        feats = F.leaky_relu(x, 0.2)
        return torch.tanh(self.to_rgb(feats)), feats
