"""Diversity ``diversity``: how different two samples of one graph are (LPIPS, pixels, features).

LPIPS needs torchvision's backbone weights and is left out with a note without them; the
weight-free :func:`mean_pixel_distance` is always reported.
"""

from __future__ import annotations

import logging
from typing import Any

import torch
from torch import Tensor

from ..scene_graph import GraphBatch
from .context import EvalContext
from .nets import EvalWeightsError, build_lpips, images_to_uint8, lpips_cache_file
from .registry import Metric

logger = logging.getLogger(__name__)


def mean_pixel_distance(images_a: Tensor, images_b: Tensor) -> Tensor:
    """Weight-free diversity: mean absolute difference of two samples, in [0, 1] units.

    Args:
        images_a: (N, 3, H, W) in [-1, 1].
        images_b: (N, 3, H, W) in [-1, 1], the second sample of the same graphs.

    Returns:
        (N,) in [0, 1]: 0 for identical images, 1 for black vs white.
    """
    if images_a.shape != images_b.shape:
        raise ValueError(f"mean_pixel_distance needs images of the same shape, got "
                         f"{tuple(images_a.shape)} and {tuple(images_b.shape)}")
    return (images_a.float() - images_b.float()).abs().flatten(1).mean(dim=1) / 2

class Diversity(Metric):
    protocol = (
        "two samples of each graph with different noise: LPIPS (torchmetrics; AlexNet backbone "
        "unless another LPIPS net is given) when its weights are present; "
        "mean_pixel_distance = mean |a - b| / 2 over pixels and channels, in [0, 1] "
        "(weight-free); feature_distance = mean L2 distance between the two samples' features "
        "in the FID feature network, and feature_distance_ratio = that over the mean distance "
        "between the features of two different real images of the split (graph i and i + 1 "
        "of a batch): 0 = identical samples, 1 = as different as two different real scenes")
    num_draws = 2

    def __init__(self, ctx: EvalContext) -> None:
        super().__init__(ctx)
        self.lpips, self.note = ctx.lpips_net, None
        if self.lpips is None:
            try:
                self.lpips = build_lpips("alex", ctx.lpips_weights)
            except EvalWeightsError as e:
                # Only weights that are simply absent (none given, none in the hub cache) skip
                # LPIPS; a given file that is missing or bad, or a bad cached file, is an error.
                if ctx.lpips_weights is not None or lpips_cache_file("alex").exists():
                    raise
                self.note = str(e)
                logger.warning("LPIPS skipped: %s", e)
        if self.lpips is not None:
            self.lpips = self.lpips.to(ctx.device)
        # The feature distance needs the FID network; without one (a real dataset and no
        # Inception weights) it is left out with a note, as LPIPS is.
        self.extractor, self.feature_note = None, None
        try:
            self.extractor = ctx.feature_extractor()
        except EvalWeightsError as e:
            self.feature_note = str(e)
        self.distances: list[Tensor] = []
        self.feature_distances: list[Tensor] = []
        self.real_distances: list[Tensor] = []

    def _features(self, images: Tensor) -> Tensor:
        net = self.extractor.fid_features.to(images.device)
        return net(images_to_uint8(images)).float().flatten(1)

    def update(self, batch: GraphBatch, outs: list[Any]) -> None:
        a, b = outs[0].images, outs[1].images
        self.distances.append(mean_pixel_distance(a, b).cpu())
        if self.lpips is not None:
            self.lpips.update(a.float().clamp(-1, 1), b.float().clamp(-1, 1))
        if self.extractor is not None:
            fa, fb = self._features(a), self._features(b)
            self.feature_distances.append((fa - fb).norm(dim=1).cpu())
            if batch.images is not None and len(batch.images) > 1:
                real = self._features(batch.images)
                self.real_distances.append((real[1:] - real[:-1]).norm(dim=1).cpu())

    def compute(self) -> dict[str, Any]:
        d = torch.cat(self.distances)
        out: dict[str, Any] = {"mean_pixel_distance": float(d.mean()), "num_pairs": len(d),
                               "lpips": float(self.lpips.compute()) if self.lpips else None,
                               "feature_distance": None, "feature_distance_ratio": None}
        if self.feature_distances:
            fd = float(torch.cat(self.feature_distances).mean())
            out["feature_distance"] = fd
            out["feature_network"] = self.extractor.name
            if self.real_distances:
                out["feature_distance_ratio"] = fd / float(torch.cat(self.real_distances).mean())
        if self.note:
            out["lpips_note"] = self.note
        if self.feature_note:
            out["feature_note"] = self.feature_note
        return out

