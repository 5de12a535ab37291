"""Image-quality metrics ``fid`` and ``is``: torchmetrics' FID and Inception Score on our features.

The feature network is the run context's (:meth:`EvalContext.feature_extractor`): our
SceneFeatureNet on the procedural scenes, InceptionV3 from a weights file elsewhere.
"""

from __future__ import annotations

import warnings
from typing import Any

import torch

from ..scene_graph import GraphBatch
from .context import EvalContext
from .nets import images_to_uint8
from .registry import Metric


class FID(Metric):
    protocol = (
        "Frechet distance (torchmetrics FrechetInceptionDistance) between features of the real "
        "images of the split (one per graph) and of all generated images")

    def __init__(self, ctx: EvalContext) -> None:
        from torchmetrics.image.fid import FrechetInceptionDistance

        super().__init__(ctx)
        self.extractor = ctx.feature_extractor()
        self.fid = FrechetInceptionDistance(feature=self.extractor.fid_features).to(ctx.device)
        self.num_real = self.num_fake = 0

    def update(self, batch: GraphBatch, outs: list[Any]) -> None:
        self.fid.update(images_to_uint8(batch.images), real=True)
        self.num_real += batch.num_images
        for out in outs[:self.ctx.samples_per_graph]:
            self.fid.update(images_to_uint8(out.images), real=False)
            self.num_fake += len(out.images)

    def compute(self) -> dict[str, Any]:
        return {"fid": float(self.fid.compute()), "feature_network": self.extractor.name,
                "num_real_images": self.num_real, "num_generated_images": self.num_fake}


class InceptionScore(Metric):
    protocol = (
        "Inception Score (torchmetrics InceptionScore): exp(E KL(p(y|x) || p(y))) of the feature "
        "network's softmax over the generated images, mean and std over splits")

    def __init__(self, ctx: EvalContext) -> None:
        from torchmetrics.image.inception import InceptionScore as _IS

        super().__init__(ctx)
        self.extractor = ctx.feature_extractor()
        with warnings.catch_warnings():  # "will save all extracted features in buffer"
            warnings.filterwarnings("ignore", message=".*save all extracted features.*")
            self.score = _IS(feature=self.extractor.is_logits, splits=ctx.is_splits).to(ctx.device)
        self.num_fake = 0

    def update(self, batch: GraphBatch, outs: list[Any]) -> None:
        for out in outs[:self.ctx.samples_per_graph]:
            self.score.update(images_to_uint8(out.images))
            self.num_fake += len(out.images)

    def compute(self) -> dict[str, Any]:
        splits = min(self.ctx.is_splits, self.num_fake)
        self.score.splits = splits
        # InceptionScore.compute shuffles with the global RNG; fork it for determinism.
        with torch.random.fork_rng(devices=[]), warnings.catch_warnings():
            torch.manual_seed(self.ctx.seed)
            warnings.filterwarnings("ignore", message=".*degrees of freedom.*")  # 1 split
            mean, std = self.score.compute()
        return {"is_mean": float(mean), "is_std": float(std), "splits": splits,
                "feature_network": self.extractor.name, "num_generated_images": self.num_fake}


