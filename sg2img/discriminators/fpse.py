"""Feature-pyramid semantics-embedding discriminator (CC-FPSE, Liu et al. NeurIPS 2019, Sec. 3.2).

Instead of pix2pixHD's separate PatchGANs on downsampled copies of the image, one network
looks at the image once: a bottom-up path of stride-2 convolutions builds a feature hierarchy,
and a top-down path upsamples the coarse, semantically rich levels and adds lateral
projections of the finer ones (as in FPN). Every pyramid level gives

* a real/fake score per patch, for high-fidelity detail at that scale, and
* a semantic-alignment score per patch: the inner product of the level's semantic embedding
  of the image with an embedding of the layout resized to that level (a projection
  discriminator, per patch), which is high when the image shows what the layout asks for
  there.

The layout enters only through that projection, not as input channels.
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn

from .blocks import maybe_spectral_norm as _sn


class FPSEDiscriminator(nn.Module):
    """CC-FPSE's discriminator: bottom-up + top-down pyramid, scores at every level.

    Args:
        layout_ch: C' channels of the layout (classes, plus the instance-edge channel).
        channels: width of the first bottom-up layer.
        num_layers: number of stride-2 bottom-up layers = number of pyramid levels
            (``H/2`` ... ``H/2**num_layers``).
        spectral_norm: wrap every conv in spectral normalization.

    Shapes:
        images (B, 3, H, W), layout (B, C', H, W) -> per level, finest first,
        ``[bottom-up features, top-down features, logits (B, 1, h, w)]`` where the logits
        are the real/fake score plus the semantic-alignment score (``score_parts`` gives
        them apart). The lists have the multi-scale discriminator's form, so its hinge and
        feature-matching losses apply unchanged.
    """

    def __init__(self, layout_ch: int, channels: int, num_layers: int,
                 spectral_norm: bool = True):
        super().__init__()
        widths = [channels * min(8, 2 ** i) for i in range(num_layers)]
        self.width = width = min(widths[-1], 2 * channels)
        bottom, prev = [], 3
        for ch in widths:
            bottom.append(nn.Sequential(_sn(nn.Conv2d(prev, ch, 4, 2, 1), spectral_norm),
                                        nn.LeakyReLU(0.2)))
            prev = ch
        self.bottom_up = nn.ModuleList(bottom)
        self.lateral = nn.ModuleList(_sn(nn.Conv2d(ch, width, 1), spectral_norm)
                                     for ch in widths)
        self.smooth = nn.ModuleList(
            nn.Sequential(_sn(nn.Conv2d(width, width, 3, 1, 1), spectral_norm),
                          nn.LeakyReLU(0.2)) for _ in widths)
        self.real_fake = nn.ModuleList(_sn(nn.Conv2d(width, 1, 3, 1, 1), spectral_norm)
                                       for _ in widths)
        self.semantic = nn.ModuleList(_sn(nn.Conv2d(width, width, 3, 1, 1), spectral_norm)
                                      for _ in widths)
        self.layout_embed = _sn(nn.Conv2d(layout_ch, width, 1, bias=False), spectral_norm)

    def score_parts(self, images: Tensor, layout: Tensor) -> list[tuple[Tensor, Tensor, Tensor,
                                                                        Tensor]]:
        """Per level, finest first: (bottom-up, top-down, real/fake, alignment) tensors."""
        x, bottom = images, []
        for block in self.bottom_up:
            x = block(x)
            bottom.append(x)
        tops: list[Tensor] = [None] * len(bottom)
        top = self.lateral[-1](bottom[-1])
        tops[-1] = self.smooth[-1](top)
        for i in range(len(bottom) - 2, -1, -1):
            top = self.lateral[i](bottom[i]) + F.interpolate(top, scale_factor=2,
                                                             mode="nearest")
            tops[i] = self.smooth[i](top)
        out = []
        for i, t in enumerate(tops):
            seg = F.adaptive_avg_pool2d(layout.to(t.dtype), t.shape[-2:])     # (B, C', h, w)
            emb = self.layout_embed(seg)                                      # (B, D, h, w)
            align = (self.semantic[i](t) * emb).sum(dim=1, keepdim=True)      # (B, 1, h, w)
            out.append((bottom[i], t, self.real_fake[i](t), align))
        return out

    def forward(self, images: Tensor, layout: Tensor) -> list[list[Tensor]]:
        return [[b, t, rf + align] for b, t, rf, align in self.score_parts(images, layout)]


__all__ = ["FPSEDiscriminator"]
