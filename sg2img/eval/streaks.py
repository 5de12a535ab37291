"""The ``streaks`` metric: fine detail along each image axis, generated against real.

A renderer that draws vertical streaks puts more energy into differences between horizontally
neighbouring pixels than the real images have; one that blurs puts less into both. The figure
is the mean squared difference of neighbouring pixels (grey levels in [0, 1]) along each axis,
for the generated images over the same figure for the real images of the split: 1 is as real,
and the target for a faithful renderer is within 10 % on each axis.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from ..scene_graph import GraphBatch
from .registry import Metric


def axis_energy(images: Tensor) -> Tensor:
    """Sum over images of the mean squared neighbour difference along x and along y.

    Args:
        images: (N, 3, H, W) in [-1, 1].

    Returns:
        (2,) float64: [along x (vertical edges and streaks), along y (horizontal ones)],
        summed over the N images (divide by N for the mean).
    """
    grey = (images.float().clamp(-1, 1) + 1).mean(dim=1) / 2                 # (N, H, W)
    dx = (grey[:, :, 1:] - grey[:, :, :-1]).pow(2).mean(dim=(1, 2))          # (N,)
    dy = (grey[:, 1:, :] - grey[:, :-1, :]).pow(2).mean(dim=(1, 2))          # (N,)
    return torch.stack([dx.sum(), dy.sum()]).double().cpu()


class Streaks(Metric):
    protocol = (
        "mean squared difference of horizontally (x) and vertically (y) neighbouring pixels, "
        "grey levels in [0, 1], of all generated images, each over the same figure for the "
        "real images of the split (ratio 1 = as much fine detail along that axis as real; "
        "vertical streaks raise the x ratio above the y ratio)")

    def __init__(self, ctx) -> None:
        super().__init__(ctx)
        self.real = torch.zeros(2, dtype=torch.float64)
        self.fake = torch.zeros(2, dtype=torch.float64)
        self.num_real = self.num_fake = 0

    def update(self, batch: GraphBatch, outs: list[Any]) -> None:
        self.real += axis_energy(batch.images)
        self.num_real += batch.num_images
        for out in outs[:self.ctx.samples_per_graph]:
            self.fake += axis_energy(out.images)
            self.num_fake += len(out.images)

    def compute(self) -> dict[str, Any]:
        real = self.real / max(self.num_real, 1)
        fake = self.fake / max(self.num_fake, 1)
        ratio = fake / real.clamp_min(1e-12)
        return {"generated_x": float(fake[0]), "generated_y": float(fake[1]),
                "real_x": float(real[0]), "real_y": float(real[1]),
                "ratio_x": float(ratio[0]), "ratio_y": float(ratio[1]),
                "num_generated_images": self.num_fake}
