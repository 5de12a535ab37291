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

from ..layout import semantic_layout
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


def region_energy(images: Tensor, layout: Tensor) -> Tensor:
    """Per class, the summed squared neighbour differences along x and y inside the class's
    region (pixel pairs whose both pixels have the class's layout channel >= 0.5), and the
    pair counts.

    Args:
        images: (N, 3, H, W) in [-1, 1]; layout: (N, C, H, W) semantic layout.

    Returns:
        (C, 4) float64: [sum along x, pairs along x, sum along y, pairs along y].
    """
    grey = (images.float().clamp(-1, 1) + 1).mean(dim=1) / 2                 # (N, H, W)
    dx = (grey[:, :, 1:] - grey[:, :, :-1]).pow(2)                           # (N, H, W-1)
    dy = (grey[:, 1:, :] - grey[:, :-1, :]).pow(2)                           # (N, H-1, W)
    inside = layout.float() >= 0.5                                           # (N, C, H, W)
    in_x = (inside[..., 1:] & inside[..., :-1]).float()                      # (N, C, H, W-1)
    in_y = (inside[:, :, 1:] & inside[:, :, :-1]).float()                    # (N, C, H-1, W)
    return torch.stack([torch.einsum("nchw,nhw->c", in_x, dx), in_x.sum(dim=(0, 2, 3)),
                        torch.einsum("nchw,nhw->c", in_y, dy), in_y.sum(dim=(0, 2, 3))],
                       dim=1).double().cpu()


class Streaks(Metric):
    protocol = (
        "mean squared difference of horizontally (x) and vertically (y) neighbouring pixels, "
        "grey levels in [0, 1], of all generated images, each over the same figure for the "
        "real images of the split (ratio 1 = as much fine detail along that axis as real; "
        "vertical streaks raise the x ratio above the y ratio); by_class: the same inside "
        "each class's region, of the layout each image was rendered from against the real "
        "images' own layouts (classes with >= 500 pixel pairs on both sides)")

    def __init__(self, ctx) -> None:
        super().__init__(ctx)
        self.real = torch.zeros(2, dtype=torch.float64)
        self.fake = torch.zeros(2, dtype=torch.float64)
        self.num_real = self.num_fake = 0
        self.regions: dict[str, Tensor] = {}

    def update(self, batch: GraphBatch, outs: list[Any]) -> None:
        self.real += axis_energy(batch.images)
        self.num_real += batch.num_images
        for out in outs[:self.ctx.samples_per_graph]:
            self.fake += axis_energy(out.images)
            self.num_fake += len(out.images)
        out = outs[0]
        if getattr(out, "layout", None) is not None and batch.masks is not None:
            N, C, H, W = out.layout.shape
            truth = semantic_layout(batch.objs, batch.boxes.float(), batch.masks.float(),
                                    batch.obj_to_img, N, C, H, W)
            for name, images, layout in (("real", batch.images, truth),
                                         ("generated", out.images, out.layout)):
                sums = region_energy(images, layout)
                self.regions[name] = self.regions.get(name, 0) + sums

    def compute(self) -> dict[str, Any]:
        real = self.real / max(self.num_real, 1)
        fake = self.fake / max(self.num_fake, 1)
        ratio = fake / real.clamp_min(1e-12)
        report = {"generated_x": float(fake[0]), "generated_y": float(fake[1]),
                  "real_x": float(real[0]), "real_y": float(real[1]),
                  "ratio_x": float(ratio[0]), "ratio_y": float(ratio[1]),
                  "num_generated_images": self.num_fake}
        if len(self.regions) == 2:
            names = self.ctx.object_names or ()
            by_class = {}
            r, g = self.regions["real"], self.regions["generated"]
            for c in range(1, len(r)):
                if min(r[c, 1], r[c, 3], g[c, 1], g[c, 3]) < 500:
                    continue
                name = names[c] if c < len(names) else str(c)
                by_class[name] = {
                    "ratio_x": float((g[c, 0] / g[c, 1]) / (r[c, 0] / r[c, 1]).clamp_min(1e-12)),
                    "ratio_y": float((g[c, 2] / g[c, 3]) / (r[c, 2] / r[c, 3]).clamp_min(1e-12)),
                    "real_pixel_pairs": int(r[c, 1])}
            report["by_class"] = by_class
        return report
