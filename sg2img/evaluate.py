"""Evaluate a scene-graph-to-image generator on a dataset split (issue 7).

``evaluate`` runs the generator over a dataset once per sample and feeds the outputs to the
requested metrics; ``write_report`` writes the result as JSON and as a Markdown table.

Metrics (names for ``metrics=``):
    * ``layout_recall``: R@0.3, R@0.5 and mean IoU of the boxes predicted from the graph alone
      (:func:`sg2img.metrics.layout_recall`), also split by object size.
    * ``fid`` / ``is``: torchmetrics' ``FrechetInceptionDistance`` / ``InceptionScore`` with the
      feature network of :mod:`sg2img.eval_nets` (ours on the procedural scenes, InceptionV3
      from a user-given weights file elsewhere).
    * ``obj_acc``: Grid2Im's object classification accuracy with a classifier trained on real
      crops.
    * ``diversity``: LPIPS between two samples of each graph when the LPIPS weights are present,
      the weight-free ``mean_pixel_distance``, and the distance between the two samples in the
      FID feature network's space (also as a ratio to two different real scenes).
    * ``attr_acc`` (datasets with attributes): an attribute classifier trained on real crops
      names the colour of each colourable object in the generated images, cropped at the
      boxes that built them, next to its accuracy on the real crops.
    * ``attr_swap`` (datasets with attributes): the same graph with one object's colour
      changed, noise and layout frozen: how often the classifier follows the change, and how
      much the pixels outside the object change.

The attribute metrics are in the default set only when the dataset has attributes and the
model uses them (:func:`default_metrics`).

The generator contract (``sg2img.model.GALSGenerator``)::

    out = generator(batch, use_gt_layout=False, rng=torch_generator)
    out.images      # (N, 3, H, W) in [-1, 1]
    out.boxes_pred  # (O, 4) in [0, 1], predicted from the scene graph

Results are deterministic for a seed: the noise comes from one ``torch.Generator`` seeded with
``seed``, the dataset is read in order, and datasets that sample per item (relationships,
object subsets) draw from a global torch RNG seeded with ``seed`` inside a fork, so the
caller's RNG state is left untouched.

Entry points: :func:`evaluate` (a generator and a dataset), :func:`evaluate_checkpoint`
(what ``sg2img evaluate`` runs), :func:`evaluate_box_file` (other systems' layouts) and
:func:`write_report`.
"""

from __future__ import annotations

import functools
import json
import logging
import math
import os
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, replace
from os import PathLike
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn
from torch.utils.data import DataLoader, Dataset

from . import metrics as M
from .eval_nets import (
    AttributeClassifier,
    EvalWeightsError,
    FeatureExtractor,
    SceneFeatureNet,
    build_lpips,
    check_net_vocab,
    crop_boxes,
    crop_objects,
    images_to_uint8,
    inception_feature_extractor,
    load_eval_net,
    load_shipped_net,
    lpips_cache_file,
    scene_feature_extractor,
)
from .layout_head import check_layout_mode
from .model import PRECISIONS
from .scene_graph import GraphBatch, collate_graphs

logger = logging.getLogger(__name__)

# --------------------------------------------------------------------------- registry
@dataclass
class EvalContext:
    """What a metric may need to build itself: where it runs and the evaluation networks.

    Networks are resolved on first use and shared (FID and IS use one feature extractor).
    """

    device: torch.device
    seed: int
    samples_per_graph: int
    object_names: tuple[str, ...] | None
    feature_net: Any = None
    classifier: Any = None
    lpips_net: Any = None
    inception_weights: str | PathLike | None = None
    lpips_weights: str | PathLike | None = None
    attribute_names: tuple[str, ...] | None = None
    attribute_classifier: Any = None
    generator: Any = None        # metrics that generate again (attr_swap) call it
    model: Any = None            # the generator module (metrics that lay out without rendering)
    layout_mode: str = "mode"    # the layout the images are rendered from
    is_splits: int = 10
    recall_thresholds: Sequence[float] = M.DEFAULT_RECALL_THRESHOLDS
    pred_names: tuple[str, ...] | None = None
    _extractor: FeatureExtractor | None = None

    def mode_boxes(self, batch: GraphBatch, outs: list[Any]) -> Tensor:
        """The boxes of the most likely layout (no box pinned): the rendered ones, or with
        ``layout_mode="sample"`` the mode the model lays out for the same graph."""
        if self.layout_mode == "mode" or not getattr(self.model, "samples_layout", False):
            return outs[0].boxes_pred
        free = batch if batch.box_given is None else replace(
            batch, box_given=torch.zeros_like(batch.box_given))
        return self.model.layout_boxes(free, layout_mode="mode")

    def feature_extractor(self) -> FeatureExtractor:
        if self._extractor is None:
            self._extractor = _resolve_feature_extractor(self.feature_net, self.inception_weights,
                                                         self.object_names)
        return self._extractor


class Metric:
    """One metric of ``sg2img evaluate``: fed every batch, then computed once.

    Subclasses set ``protocol`` (how the figure is computed, for the report) and
    ``num_draws`` (generated samples per graph they need), and implement ``update`` and
    ``compute``. Register a subclass with :func:`register_metric` to make it available as
    ``evaluate(metrics=[name])`` and ``sg2img evaluate --metrics name``.
    """

    protocol: str = ""
    num_draws: int = 1
    needs_attributes: bool = False   # only for datasets (and models) with attributes

    def __init__(self, ctx: EvalContext) -> None:
        self.ctx = ctx

    def update(self, batch: GraphBatch, outs: list[Any]) -> None:
        """``batch``: the real batch; ``outs[k]``: the generator's output for draw ``k``."""
        raise NotImplementedError

    def compute(self) -> dict[str, Any]:
        raise NotImplementedError


METRICS: dict[str, type[Metric]] = {}
"""The metric registry: name -> :class:`Metric` subclass, in report order."""


def register_metric(name: str):
    """Class decorator adding a :class:`Metric` to :data:`METRICS` under ``name``."""
    def add(cls: type[Metric]) -> type[Metric]:
        if name in METRICS:
            raise ValueError(f"metric {name!r} is already registered")
        METRICS[name] = cls
        return cls
    return add


@register_metric("layout_recall")
class LayoutRecall(Metric):
    protocol = (
        "Grid2Im / GALS-GAN Table 5: boxes predicted from the scene graph alone (no box given), "
        "each paired with the ground-truth box of the same object by index, __image__ excluded; "
        "R@t = fraction of objects with IoU strictly above t; mean_iou over all objects; "
        "a sampling layout head is scored at its mode, also when the images are rendered "
        "from sampled layouts")

    def __init__(self, ctx: EvalContext) -> None:
        super().__init__(ctx)
        self.thresholds = tuple(ctx.recall_thresholds)
        self.pred: list[Tensor] = []
        self.gt: list[Tensor] = []
        self.by_image: dict[str, Tensor] = {}

    def update(self, batch: GraphBatch, outs: list[Any]) -> None:
        if batch.boxes is None:
            raise ValueError("layout_recall needs ground-truth boxes; the dataset items have none")
        keep = M.real_object_mask(batch.objs).cpu()
        pred = self.ctx.mode_boxes(batch, outs).detach().float().cpu()
        gt, obj_to_img = batch.boxes.float().cpu(), batch.obj_to_img.cpu()
        self.pred.append(pred[keep])
        self.gt.append(gt[keep])
        for i, image_id in enumerate(batch.image_ids):
            self.by_image[str(image_id)] = pred[keep & (obj_to_img == i)]

    def compute(self) -> dict[str, Any]:
        pred, gt = torch.cat(self.pred), torch.cat(self.gt)
        out: dict[str, Any] = dict(M.layout_recall(pred, gt, self.thresholds))
        out["by_size"] = M.layout_recall_by_size(pred, gt, thresholds=self.thresholds)
        return out


@register_metric("fid")
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


@register_metric("is")
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


@register_metric("obj_acc")
class ObjectAccuracy(Metric):
    protocol = (
        "Grid2Im object classification accuracy: every object (__image__ excluded) is cropped "
        "from the generated images with its ground-truth box (roi_align) and classified by a "
        "classifier trained on real crops; top-1 accuracy against the object's class "
        "(real_crop_accuracy: the same classifier on the real images' crops; "
        "own_boxes_accuracy: generated objects cropped at the boxes their image was rendered "
        "from, i.e. the model's own layout, or the ground truth's with use_gt_layout)")

    def __init__(self, ctx: EvalContext) -> None:
        super().__init__(ctx)
        self.own: dict[str, list[Tensor]] = {"pred": [], "target": [], "area": []}
        self.classifier = _resolve_classifier(ctx.classifier, ctx.object_names).to(ctx.device)
        self.num_classes = (len(ctx.object_names) if ctx.object_names
                            else int(self.classifier.num_classes))
        self.crop_size = int(getattr(self.classifier, "crop_size", 32))
        self.fake: dict[str, list[Tensor]] = {"pred": [], "target": [], "area": []}
        self.real: dict[str, list[Tensor]] = {"pred": [], "target": [], "area": []}

    def _classify(self, images: Tensor, batch: GraphBatch, into: dict[str, list[Tensor]],
                  area: Tensor) -> None:
        crops, labels = crop_objects(images, batch.objs, batch.boxes, batch.obj_to_img,
                                     self.crop_size)
        pred = self.classifier(crops).argmax(dim=1) if len(crops) else labels
        into["pred"].append(pred.cpu())
        into["target"].append(labels.cpu())
        into["area"].append(area)

    def update(self, batch: GraphBatch, outs: list[Any]) -> None:
        if batch.boxes is None:
            raise ValueError("obj_acc needs ground-truth boxes; the dataset items have none")
        area = M.box_area_fraction(batch.boxes[M.real_object_mask(batch.objs)]).cpu()
        self._classify(batch.images, batch, self.real, area)
        for out in outs[:self.ctx.samples_per_graph]:
            self._classify(out.images, batch, self.fake, area)
            if getattr(out, "boxes", None) is not None:
                self._classify(out.images, replace(batch, boxes=out.boxes), self.own, area)

    def _scores(self, lists: dict[str, list[Tensor]]) -> tuple[dict[str, float], dict]:
        pred, target, area = (torch.cat(lists[k]) for k in ("pred", "target", "area"))
        by_size = {}
        for name, keep in M.size_bins(area):
            n = int(keep.sum())
            acc = float((pred[keep] == target[keep]).float().mean()) if n else math.nan
            by_size[name] = {"accuracy": acc, "num_crops": n}
        return M.classification_accuracy(pred, target, self.num_classes), by_size

    def compute(self) -> dict[str, Any]:
        fake, by_size = self._scores(self.fake)
        real, real_by_size = self._scores(self.real)
        for name, r in real_by_size.items():
            by_size[name]["real_crop_accuracy"] = r["accuracy"]
        meta = getattr(self.classifier, "meta", {})
        own = self._scores(self.own)[0]["accuracy"] if self.own["pred"] else None
        return {"accuracy": fake["accuracy"], "mean_class_accuracy": fake["mean_class_accuracy"],
                "num_crops": fake["num_samples"], "real_crop_accuracy": real["accuracy"],
                "own_boxes_accuracy": own, "by_size": by_size, "crop_size": self.crop_size,
                "classifier": meta.get("name", type(self.classifier).__name__),
                "classifier_data": meta.get("data")}


@register_metric("diversity")
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
        self.distances.append(M.mean_pixel_distance(a, b).cpu())
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


SMALL_OBJECT_AREA = 0.05   # "small objects": ground-truth box area under 5 % of the image


class _LayoutScores:
    """Accumulates one layout's boxes against the ground truth over batches."""

    def __init__(self) -> None:
        self.pred: list[Tensor] = []
        self.gt: list[Tensor] = []
        self.classes: list[Tensor] = []
        self.rel_ok = 0.0
        self.rel_n = 0

    def add(self, boxes: Tensor, batch: GraphBatch, pred_names: Sequence[str] | None) -> None:
        keep = M.real_object_mask(batch.objs).cpu()
        boxes = boxes.detach().float().cpu()
        self.pred.append(boxes[keep])
        self.gt.append(batch.boxes.float().cpu()[keep])
        self.classes.append(batch.objs.cpu()[keep])
        if pred_names is not None:
            rel = M.relation_satisfaction(boxes, batch.triples.cpu(), pred_names)
            if rel["num_triples"]:
                self.rel_ok += rel["relation_satisfaction"] * rel["num_triples"]
                self.rel_n += rel["num_triples"]

    def compute(self, object_names: Sequence[str] | None, thresholds: Sequence[float]
                ) -> dict[str, Any]:
        pred, gt, classes = torch.cat(self.pred), torch.cat(self.gt), torch.cat(self.classes)
        small = M.box_area_fraction(gt) < SMALL_OBJECT_AREA
        fid = M.box_size_fidelity(pred, gt, classes, object_names, min_count=10)
        rec = M.layout_recall(pred, gt, thresholds)
        rec_small = M.layout_recall(pred[small], gt[small], thresholds)
        return {
            "relation_satisfaction": self.rel_ok / self.rel_n if self.rel_n else math.nan,
            "num_geometric_triples": self.rel_n,
            "mean_abs_log_area_ratio": fid["mean_abs_log_area_ratio"],
            "worst_class": fid["worst_class"],
            "worst_class_mean_abs_log_area_ratio": fid["worst_class_mean_abs_log_area_ratio"],
            **{k: v for k, v in rec.items() if k.startswith("R@")},
            **{f"small_{k}": v for k, v in rec_small.items() if k.startswith("R@")},
            "num_small_objects": int(small.sum()),
            "area_ratio_by_class": {k: v["area_ratio"] for k, v in fid["by_class"].items()},
        }


@register_metric("layout")
class LayoutQuality(Metric):
    protocol = (
        "boxes predicted from the scene graph alone (no box given), for the most likely layout "
        "(mode) and, for a sampling layout head, one sampled layout: relation_satisfaction = "
        "fraction of the graph's geometric triples (left of, right of, above, below, inside, "
        "surrounding) that the boxes satisfy under the rule the dataset made them with "
        "(sg2img.data.common.spatial_predicate, box centres), with the ground-truth boxes' "
        "score as the ceiling; box-size fidelity = mean |log(pred area / true area)| over all "
        "objects and the worst class (classes with >= 10 objects); R@t of all objects and of "
        "small objects (true area < 5 %); layout diversity = mean IoU between two sampled "
        "layouts of each graph (1 = identical; deterministic heads give 1)")

    def __init__(self, ctx: EvalContext) -> None:
        super().__init__(ctx)
        self.layouts = {"mode": _LayoutScores(), "ground_truth": _LayoutScores()}
        self.samples = bool(getattr(ctx.model, "samples_layout", False))
        if self.samples:
            self.layouts["sample"] = _LayoutScores()
            self.rngs = [torch.Generator().manual_seed(ctx.seed + k) for k in (1, 2)]
        self.ious: list[Tensor] = []

    def update(self, batch: GraphBatch, outs: list[Any]) -> None:
        if batch.boxes is None:
            raise ValueError("the layout metric needs ground-truth boxes; the dataset items "
                             "have none")
        names = self.ctx.pred_names
        self.layouts["mode"].add(self.ctx.mode_boxes(batch, outs), batch, names)
        self.layouts["ground_truth"].add(batch.boxes, batch, names)
        if self.samples:
            free = batch if batch.box_given is None else replace(
                batch, box_given=torch.zeros_like(batch.box_given))
            a, b = (self.ctx.model.layout_boxes(free, layout_mode="sample", rng=rng)
                    for rng in self.rngs)
            self.layouts["sample"].add(a, batch, names)
            keep = M.real_object_mask(batch.objs)
            self.ious.append(M.paired_box_iou(a[keep], b[keep]).float().cpu())

    def compute(self) -> dict[str, Any]:
        out = {name: acc.compute(self.ctx.object_names, self.ctx.recall_thresholds)
               for name, acc in self.layouts.items()}
        iou = torch.cat(self.ious) if self.ious else torch.ones(1)
        out["layout_diversity_mean_iou"] = float(iou.mean())
        out["samples_layout"] = self.samples
        return out



class _AttributeMetric(Metric):
    """Shared set-up of the attribute metrics: the classifier and which objects it judges.

    An object is judged when its class is one the classifier knows colours for and it carries
    exactly one of the classifier's labels.
    """

    needs_attributes = True
    name = "attribute metrics"

    def __init__(self, ctx: EvalContext) -> None:
        super().__init__(ctx)
        if ctx.attribute_names is None or ctx.object_names is None:
            raise ValueError(f"{self.name} need a dataset whose vocabulary has attributes "
                             f"(e.g. procedural scenes made with attributes, "
                             f"data_tools/make_shapes.py)")
        self.classifier = _resolve_attribute_classifier(ctx.attribute_classifier,
                                                        ctx.object_names).to(ctx.device)
        self.labels = self.classifier.labels()
        missing = [a for a in self.labels if a not in ctx.attribute_names]
        if missing:
            raise ValueError(f"the attribute classifier names {missing}, which the dataset's "
                             f"attribute vocabulary does not have")
        self.label_cols = torch.tensor([ctx.attribute_names.index(a) for a in self.labels],
                                       device=ctx.device)                       # (L,)
        C, L = len(ctx.object_names), len(self.labels)
        self.class_labels = torch.zeros(C, L, dtype=torch.bool, device=ctx.device)
        for name, attrs in self.classifier.class_attributes().items():
            if name in ctx.object_names:
                c = ctx.object_names.index(name)
                self.class_labels[c, [self.labels.index(a) for a in attrs]] = True
        self.crop_size = int(getattr(self.classifier, "crop_size", 32))

    def judged(self, batch: GraphBatch) -> tuple[Tensor, Tensor]:
        """Indices (K,) of the judged objects in ``batch`` and their label index (K,)."""
        if batch.attributes is None:
            raise ValueError(f"{self.name} need the dataset items' attributes")
        hot = batch.attributes[:, self.label_cols] > 0.5                         # (O, L)
        ok = self.class_labels[batch.objs].any(dim=1) & (hot.sum(dim=1) == 1)
        idx = torch.nonzero(ok).flatten()
        return idx, hot[idx].float().argmax(dim=1)

    def classify(self, images: Tensor, boxes: Tensor, box_to_img: Tensor) -> Tensor:
        """(K,) label index the classifier gives each box's crop."""
        if len(boxes) == 0:
            return torch.zeros(0, dtype=torch.long, device=boxes.device)
        crops = crop_boxes(images, boxes, box_to_img, self.crop_size)
        return self.classifier(crops).argmax(dim=1)


@register_metric("attr_acc")
class AttributeAccuracy(_AttributeMetric):
    protocol = (
        "attribute accuracy: every object of a colourable class with exactly one colour "
        "attribute is cropped (roi_align) from the generated image at the box that built it "
        "and its colour named by an AttributeClassifier trained on real crops; top-1 accuracy "
        "against the graph's colour. real_crop_accuracy: the same classifier on the real "
        "images' crops at the ground-truth boxes; ratio = accuracy / real_crop_accuracy "
        "(target >= 0.8)")
    name = "attr_acc"

    def __init__(self, ctx: EvalContext) -> None:
        super().__init__(ctx)
        self.rows: dict[str, list[Tensor]] = {"fake": [], "real": [], "cls": [], "real_cls": []}

    def update(self, batch: GraphBatch, outs: list[Any]) -> None:
        idx, target = self.judged(batch)
        if batch.boxes is None:
            raise ValueError("attr_acc needs ground-truth boxes for the real crops")
        to_img = batch.obj_to_img[idx]
        real = self.classify(batch.images, batch.boxes[idx], to_img) == target
        self.rows["real"].append(real.cpu())
        self.rows["real_cls"].append(batch.objs[idx].cpu())
        for out in outs[:self.ctx.samples_per_graph]:
            fake = self.classify(out.images, out.boxes[idx], to_img) == target
            self.rows["fake"].append(fake.cpu())
            self.rows["cls"].append(batch.objs[idx].cpu())

    def compute(self) -> dict[str, Any]:
        fake, real = torch.cat(self.rows["fake"]).float(), torch.cat(self.rows["real"]).float()
        cls, real_cls = torch.cat(self.rows["cls"]), torch.cat(self.rows["real_cls"])
        acc = float(fake.mean()) if len(fake) else math.nan
        real_acc = float(real.mean()) if len(real) else math.nan
        by_class = {}
        for c in sorted(set(cls.tolist())):
            name = self.ctx.object_names[c]
            by_class[name] = {"accuracy": float(fake[cls == c].mean()),
                              "real_crop_accuracy": float(real[real_cls == c].mean()),
                              "num_crops": int((cls == c).sum())}
        meta = getattr(self.classifier, "meta", {})
        return {"accuracy": acc, "real_crop_accuracy": real_acc,
                "ratio": acc / real_acc if real_acc > 0 else math.nan,
                "num_crops": len(fake), "by_class": by_class, "labels": self.labels,
                "classifier": meta.get("name", type(self.classifier).__name__),
                "classifier_data": meta.get("data")}


def box_region(boxes: Tensor, box_to_img: Tensor, num_images: int, H: int, W: int) -> Tensor:
    """(N, H, W) bool: pixels whose centre lies in one of the image's boxes.

    The rule of ``sg2img.manipulation``'s edited region, so the swap test's "outside" is the
    same measure as the manipulation benchmark's.
    """
    ys = (torch.arange(H, device=boxes.device, dtype=torch.float32) + 0.5) / H
    xs = (torch.arange(W, device=boxes.device, dtype=torch.float32) + 0.5) / W
    out = torch.zeros(num_images, H, W, dtype=torch.bool, device=boxes.device)
    for b, i in zip(boxes.float(), box_to_img.tolist(), strict=True):
        out[i] |= (((ys >= b[1]) & (ys <= b[3]))[:, None] & ((xs >= b[0]) & (xs <= b[2]))[None])
    return out


@register_metric("attr_swap")
class AttributeSwap(_AttributeMetric):
    protocol = (
        "attribute swap test: in every graph one judged object (drawn at random) gets another "
        "of its class's colours (drawn at random) and the graph is generated again with the "
        "same noise and the same boxes and masks for every object (layout frozen). "
        "follow_rate = how often the AttributeClassifier names the new colour on the swapped "
        "object's crop (target >= 0.8); before_accuracy = it names the old colour before the "
        "swap; outside_change / inside_change = mean |after - before| / 2 over the pixels "
        "outside / inside the object's box, in [0, 1] (the manipulation benchmark's measure; "
        "the bundled model's replace edit: 0.036 outside)")
    name = "attr_swap"

    def __init__(self, ctx: EvalContext) -> None:
        super().__init__(ctx)
        if ctx.generator is None:
            raise ValueError("attr_swap generates again: it needs the generator (evaluate() "
                             "passes it)")
        self.rng = torch.Generator().manual_seed(ctx.seed)
        self.rows: dict[str, list[Tensor]] = {k: [] for k in
                                              ("follow", "before", "outside", "inside", "cls")}

    def update(self, batch: GraphBatch, outs: list[Any]) -> None:
        idx, target = self.judged(batch)
        if len(idx) == 0:
            return
        out0 = outs[0]
        # One object per image, drawn at random among the image's judged objects.
        img = batch.obj_to_img[idx].cpu()
        order = torch.randperm(len(idx), generator=self.rng)
        chosen: dict[int, int] = {}
        for k in order.tolist():
            chosen.setdefault(int(img[k]), k)
        ks = torch.tensor(sorted(chosen.values()), dtype=torch.long)
        objs, old = idx[ks.to(idx.device)], target[ks.to(target.device)]
        new = old.clone()
        for j, (o, t) in enumerate(zip(objs.tolist(), old.tolist(), strict=True)):
            allowed = torch.nonzero(self.class_labels[batch.objs[o]].cpu()).flatten().tolist()
            others = [a for a in allowed if a != t]
            new[j] = others[int(torch.randint(len(others), (1,), generator=self.rng))]
        attrs = batch.attributes.clone()
        attrs[objs, self.label_cols[old]] = 0.0
        attrs[objs, self.label_cols[new]] = 1.0
        frozen = torch.ones(len(batch.objs), dtype=torch.bool, device=batch.objs.device)
        swapped = self.ctx.generator(replace(batch, attributes=attrs), z=out0.z,
                                     override=frozen, boxes_override=out0.boxes,
                                     masks_override=out0.masks)
        boxes, to_img = out0.boxes[objs], batch.obj_to_img[objs]
        self.rows["follow"].append((self.classify(swapped.images, boxes, to_img) == new).cpu())
        self.rows["before"].append((self.classify(out0.images, boxes, to_img) == old).cpu())
        H, W = out0.images.shape[-2:]
        region = box_region(boxes, to_img, batch.num_images, H, W)[to_img]      # (K, H, W)
        diff = ((swapped.images.float() - out0.images.float()).abs().mean(dim=1) / 2)[to_img]
        self.rows["outside"].append(((diff * ~region).sum(dim=(1, 2))
                                     / (~region).sum(dim=(1, 2)).clamp(min=1)).cpu())
        self.rows["inside"].append(((diff * region).sum(dim=(1, 2))
                                    / region.sum(dim=(1, 2)).clamp(min=1)).cpu())
        self.rows["cls"].append(batch.objs[objs].cpu())

    def compute(self) -> dict[str, Any]:
        if not self.rows["follow"]:
            return {"follow_rate": math.nan, "num_swaps": 0}
        r = {k: torch.cat(v) for k, v in self.rows.items()}
        follow = r["follow"].float()
        by_class = {self.ctx.object_names[c]: {"follow_rate": float(follow[r["cls"] == c].mean()),
                                               "num_swaps": int((r["cls"] == c).sum())}
                    for c in sorted(set(r["cls"].tolist()))}
        return {"follow_rate": float(follow.mean()),
                "before_accuracy": float(r["before"].float().mean()),
                "outside_change": float(r["outside"].mean()),
                "inside_change": float(r["inside"].mean()),
                "num_swaps": len(follow), "by_class": by_class}


DEFAULT_METRICS = tuple(n for n, m in METRICS.items() if not m.needs_attributes)
ATTRIBUTE_METRICS = tuple(n for n, m in METRICS.items() if m.needs_attributes)


def default_metrics(dataset_vocab: Any, generator: nn.Module | None = None) -> tuple[str, ...]:
    """:data:`DEFAULT_METRICS`, plus the attribute metrics when the dataset has attributes and
    the generator uses them (it has an attribute embedding)."""
    has = getattr(dataset_vocab, "attribute_names", None) is not None
    uses = generator is None or getattr(generator, "attr_embeddings", None) is not None
    return DEFAULT_METRICS + (ATTRIBUTE_METRICS if has and uses else ())

PROTOCOLS = {name: cls.protocol for name, cls in METRICS.items()}
PROTOCOLS["layout_recall_baseline"] = (
    "the layout_recall protocol applied to a baseline that puts every object at its "
    "class's mean ground-truth box over the training split")


# --------------------------------------------------------------------------- wiring
def _resolve_feature_extractor(feature_net: FeatureExtractor | SceneFeatureNet | str | PathLike
                               | None, inception_weights: str | PathLike | None,
                               object_names: tuple[str, ...] | None) -> FeatureExtractor:
    if isinstance(feature_net, FeatureExtractor):
        return feature_net
    if isinstance(feature_net, (str, PathLike)):
        path = feature_net
        feature_net = load_eval_net(path, "SceneFeatureNet")
        if object_names is not None:
            check_net_vocab(feature_net, object_names, "feature network")
        return scene_feature_extractor(feature_net, f"SceneFeatureNet from {path}")
    if isinstance(feature_net, SceneFeatureNet):
        if object_names is not None:
            check_net_vocab(feature_net, object_names, "feature network")
        return scene_feature_extractor(feature_net)
    if feature_net is not None:
        raise TypeError(f"feature_net must be a FeatureExtractor or a SceneFeatureNet, got "
                        f"{type(feature_net).__name__}")
    if inception_weights is not None:
        return inception_feature_extractor(inception_weights)
    try:
        net = load_shipped_net("SceneFeatureNet")
    except EvalWeightsError:
        net = None
    trained = getattr(net, "meta", {}).get("object_names") if net is not None else None
    if net is not None and object_names is not None and list(trained or []) == list(object_names):
        return scene_feature_extractor(net)
    try:  # a real dataset: InceptionV3 from the torch hub cache, if the user put it there
        return inception_feature_extractor(None)
    except EvalWeightsError as e:
        raise EvalWeightsError(
            f"{e}. (Our shipped SceneFeatureNet only covers the procedural scenes, whose "
            f"vocabulary this dataset does not have.)") from None


def _resolve_classifier(classifier: nn.Module | str | PathLike | None,
                        object_names: tuple[str, ...] | None) -> nn.Module:
    if classifier is None:
        classifier = load_shipped_net("CropClassifier")
    elif isinstance(classifier, (str, PathLike)):
        classifier = load_eval_net(classifier, "CropClassifier")
    if object_names is not None:
        check_net_vocab(classifier, object_names, "object classifier")
    return classifier.eval()


def _resolve_attribute_classifier(classifier: nn.Module | str | PathLike | None,
                                  object_names: tuple[str, ...]) -> AttributeClassifier:
    if classifier is None:
        classifier = load_shipped_net("AttributeClassifier")
    elif isinstance(classifier, (str, PathLike)):
        classifier = load_eval_net(classifier, "AttributeClassifier")
    if not isinstance(classifier, AttributeClassifier):
        raise TypeError(f"attribute_classifier must be an AttributeClassifier or its file, got "
                        f"{type(classifier).__name__}")
    trained = getattr(classifier, "meta", {}).get("object_names")
    if trained is not None and list(trained) != list(object_names):
        raise ValueError("the attribute classifier was trained on another object vocabulary "
                         "than the dataset's; train one with scripts/train_eval_nets.py "
                         "--nets attributes")
    return classifier.eval()


def evaluate(generator: nn.Module, dataset: Dataset, *,
             metrics: Sequence[str] = DEFAULT_METRICS,
             samples_per_graph: int = 1,
             batch_size: int = 32,
             seed: int = 0,
             device: str | torch.device = "cpu",
             use_gt_layout: bool = False,
             feature_net: FeatureExtractor | SceneFeatureNet | str | PathLike | None = None,
             classifier: nn.Module | str | PathLike | None = None,
             attribute_classifier: nn.Module | str | PathLike | None = None,
             lpips_net: Any | None = None,
             inception_weights: str | PathLike | None = None,
             lpips_weights: str | PathLike | None = None,
             split: str | None = None,
             is_splits: int = 10,
             recall_thresholds: Sequence[float] = M.DEFAULT_RECALL_THRESHOLDS,
             boxes_out: str | PathLike | None = None,
             num_workers: int = 0,
             progress: bool = True,
             precision: str = "fp32",
             layout_mode: str = "mode") -> dict[str, Any]:
    """Score a generator on a dataset split with the registered metrics (:data:`METRICS`).

    Args:
        generator: follows the contract of the module docstring; put in eval mode for the run
            (its mode is restored afterwards).
        dataset: items are ``GraphSample`` with ``image (3, H, W)`` in [-1, 1], ``objs``,
            ``boxes`` (and the ``__image__`` node last); its ``.vocab`` (if any) is checked
            against the evaluation networks.
        metrics: names from :data:`METRICS`.
        samples_per_graph: K images generated per graph for FID, IS and obj_acc (diversity
            always uses two samples, drawing a second one when K is 1).
        batch_size: graphs per generator call.
        seed: seeds the generator's noise and the IS split shuffle.
        device: where the generator and the evaluation networks run.
        use_gt_layout: generate from the ground-truth layout instead of the predicted one
            (layout recall always scores the predicted boxes).
        feature_net: FID/IS network: a ``FeatureExtractor``, a ``SceneFeatureNet`` or the
            path of one saved by ``save_eval_net``; None picks our shipped SceneFeatureNet
            when the dataset's vocabulary is the procedural one, else InceptionV3 from
            ``inception_weights`` or the torch hub cache.
        classifier: object classifier (``CropClassifier``-like: (K, 3, S, S) in [-1, 1] ->
            (K, C) logits) or the path of a saved ``CropClassifier``; None loads the shipped
            procedural one.
        attribute_classifier: for ``attr_acc`` / ``attr_swap``: an ``AttributeClassifier``
            or its file; None loads the shipped procedural one.
        lpips_net: a torchmetrics LPIPS metric (``update(a, b)``, ``compute()``); None builds
            one from ``lpips_weights`` or the torch hub cache, or skips LPIPS with a note.
        inception_weights: ``weights-inception-2015-12-05-6726825d.pth`` for FID/IS.
        lpips_weights: torchvision's ``alexnet-owt-7be5be79.pth`` for LPIPS.
        split: recorded in the report.
        is_splits: IS splits (capped at the number of generated images).
        recall_thresholds: layout recall IoU thresholds (strictly above).
        boxes_out: if given, the predicted boxes are written there as a box file
            (:func:`sg2img.metrics.write_box_file`); needs ``layout_recall``.
        num_workers: DataLoader workers.
        progress: show a tqdm progress bar.
        precision: "fp32", or "bf16" to render the images under bfloat16 autocast as
            ``generate(precision="bf16")`` does (the generator must take ``render_dtype``).
        layout_mode: "mode" renders every image from the most likely layout; "sample" from
            a layout sampled per image, as ``generate()`` does with a sampling layout head
            (the generator must take ``layout_mode``), so FID and diversity see the layouts
            users get. Layout metrics score the mode either way (``layout`` also scores
            samples of its own).

    Returns:
        The report: run information (split, seed, image size, numbers of real and generated
        images, samples per graph, feature network) and ``"metrics"`` keyed by metric name,
        with ``"protocols"`` naming how each was computed.

    Raises:
        ValueError: unknown metric names, bad arguments, or a generator whose images do not
            match the dataset's size.
        EvalWeightsError: a network a requested metric needs is missing (the message says how
            to provide it or which metric to leave out).
    """
    unknown = [m for m in metrics if m not in METRICS]
    if unknown or not metrics:
        raise ValueError(f"unknown metrics {unknown}; choose from {list(METRICS)}")
    if samples_per_graph < 1:
        raise ValueError(f"samples_per_graph must be >= 1, got {samples_per_graph}")
    if len(dataset) < 2 and ("fid" in metrics or "is" in metrics):
        raise ValueError(f"FID and IS need at least 2 images, the dataset has {len(dataset)}")
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {tuple(PRECISIONS)}, got {precision!r}")
    check_layout_mode(layout_mode)
    device = torch.device(device)
    vocab = getattr(dataset, "vocab", None)
    render_kwargs: dict[str, Any] = {}
    if PRECISIONS[precision] is not None:
        render_kwargs["render_dtype"] = PRECISIONS[precision]
    if layout_mode != "mode":
        render_kwargs["layout_mode"] = layout_mode
    render = functools.partial(generator, **render_kwargs) if render_kwargs else generator
    ctx = EvalContext(device=device, seed=seed, samples_per_graph=samples_per_graph,
                      object_names=tuple(vocab.object_names) if vocab is not None else None,
                      feature_net=feature_net, classifier=classifier, lpips_net=lpips_net,
                      inception_weights=inception_weights, lpips_weights=lpips_weights,
                      is_splits=is_splits, recall_thresholds=recall_thresholds,
                      pred_names=tuple(vocab.pred_names) if vocab is not None else None,
                      attribute_names=(None if vocab is None or vocab.attribute_names is None
                                       else tuple(vocab.attribute_names)),
                      attribute_classifier=attribute_classifier, generator=render,
                      model=generator, layout_mode=layout_mode)
    # Build every metric (and its networks) before generating anything: a missing file
    # fails fast.
    active = {name: METRICS[name](ctx) for name in metrics}
    num_draws = max([samples_per_graph] + [m.num_draws for m in active.values()])

    # Datasets that sample per item (relationships, object subsets) draw from torch's global
    # RNG or, in workers, from seeds DataLoader derives from `generator`: seed both.
    loader = DataLoader(dataset, batch_size=batch_size, shuffle=False, num_workers=num_workers,
                        collate_fn=collate_graphs, generator=torch.Generator().manual_seed(seed))
    noise = torch.Generator(device=device).manual_seed(seed)
    image_size = None
    was_training = generator.training
    generator.eval()
    try:
        from tqdm.auto import tqdm

        with torch.no_grad(), torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            for batch in tqdm(loader, desc="evaluate", disable=not progress):
                batch = batch.to(device)
                if batch.images is None:
                    raise ValueError("evaluation needs the real images; the dataset items have "
                                     "no 'image'")
                # Boxes "predicted from the scene graph alone": no box is pinned.
                gen_batch = batch if batch.box_given is None else replace(
                    batch, box_given=torch.zeros_like(batch.box_given))
                outs = [render(gen_batch, use_gt_layout=use_gt_layout, rng=noise)
                        for _ in range(num_draws)]
                image_size = _check_sizes(batch, outs, image_size)
                for metric in active.values():
                    metric.update(batch, outs)
    finally:
        generator.train(was_training)

    results = {name: metric.compute() for name, metric in active.items()}
    if boxes_out is not None:
        if "layout_recall" not in active:
            raise ValueError("boxes_out needs the layout_recall metric")
        M.write_box_file(boxes_out, active["layout_recall"].by_image)
    num_graphs = len(dataset)
    return {
        "split": split,
        "seed": seed,
        "image_size": image_size,
        "num_graphs": num_graphs,
        "num_real_images": num_graphs,
        "num_generated_images": num_graphs * samples_per_graph,
        "samples_per_graph": samples_per_graph,
        "use_gt_layout": use_gt_layout,
        "precision": precision,
        "layout_mode": layout_mode,
        "feature_network": ctx._extractor.name if ctx._extractor is not None else None,
        "metrics": results,
        "protocols": {name: metric.protocol for name, metric in active.items()},
    }


def _check_sizes(batch: GraphBatch, outs: list[Any], image_size: int | None) -> int:
    real = tuple(batch.images.shape[-2:])
    for out in outs:
        if tuple(out.images.shape) != tuple(batch.images.shape):
            raise ValueError(f"the generator made images of shape {tuple(out.images.shape)} "
                             f"but the real batch is {tuple(batch.images.shape)}; build the "
                             f"dataset at the generator's image size")
    if real[0] != real[1]:
        raise ValueError(f"expected square images, got {real}")
    if image_size is not None and image_size != real[0]:
        raise ValueError(f"image size changed within the dataset: {image_size} then {real[0]}")
    return real[0]


# --------------------------------------------------------------------------- report
def _fmt(v: Any, digits: int = 4) -> str:
    if v is None:
        return "n/a"
    if isinstance(v, float):
        return "nan" if math.isnan(v) else f"{v:.{digits}f}"
    return str(v)


def report_to_markdown(report: dict[str, Any]) -> str:
    """A Markdown page: run information, then one table row per number."""
    lines = ["# sg2img evaluation", ""]
    keys = ("checkpoint", "box_file", "data", "split", "image_size", "num_graphs",
            "num_real_images", "num_generated_images", "samples_per_graph", "use_gt_layout",
            "layout_mode", "precision", "seed", "feature_network")
    info = [(k, report[k]) for k in keys if k in report]
    lines += [f"- **{k}**: {_fmt(v)}" for k, v in info]
    lines += ["", "| metric | value | notes |", "|---|---|---|"]
    m = report.get("metrics", {})
    if "layout_recall" in m:
        lr = m["layout_recall"]
        for key, val in lr.items():
            if key.startswith("R@") or key == "mean_iou":
                lines.append(f"| layout {key} | {_fmt(val)} | {lr['num_objects']} objects |")
        for size_bin, r in lr.get("by_size", {}).items():
            recalls = ", ".join(f"{k} {_fmt(v)}" for k, v in r.items() if k.startswith("R@"))
            lines.append(f"| layout, objects of {size_bin} | {recalls} | {r['num_objects']} "
                         f"objects |")
    if "layout_recall_baseline" in m:
        lb = m["layout_recall_baseline"]
        for key, val in lb.items():
            if key.startswith("R@") or key == "mean_iou":
                lines.append(f"| layout baseline (mean class box) {key} | {_fmt(val)} | "
                             f"{lb['num_objects']} objects |")
    if "layout" in m:
        lay = m["layout"]
        for name in ("mode", "sample", "box_file", "ground_truth"):
            if name not in lay:
                continue
            v = lay[name]
            lines.append(f"| layout ({name}): relation satisfaction | "
                         f"{_fmt(v['relation_satisfaction'])} | {v['num_geometric_triples']} "
                         f"geometric triples |")
            if name != "ground_truth":
                lines.append(f"| layout ({name}): mean abs log area ratio, all / worst class | "
                             f"{_fmt(v['mean_abs_log_area_ratio'])} / "
                             f"{_fmt(v['worst_class_mean_abs_log_area_ratio'])} | worst: "
                             f"{v['worst_class']} |")
                recalls = ", ".join(f"{k} {_fmt(v[k])}" for k in v if k.startswith("R@"))
                small = ", ".join(f"{k[6:]} {_fmt(v[k])}" for k in v if k.startswith("small_R@"))
                lines.append(f"| layout ({name}): recall, all / small objects | {recalls} / "
                             f"{small} | {v['num_small_objects']} small objects |")
        if "layout_diversity_mean_iou" in lay:
            lines.append(f"| layout diversity: mean IoU between two sampled layouts | "
                         f"{_fmt(lay['layout_diversity_mean_iou'])} | 1 = identical |")
    if "fid" in m:
        lines.append(f"| FID | {_fmt(m['fid']['fid'], 2)} | {m['fid']['feature_network']}; "
                     f"{m['fid']['num_real_images']} real vs "
                     f"{m['fid']['num_generated_images']} generated |")
    if "is" in m:
        lines.append(f"| IS | {_fmt(m['is']['is_mean'], 2)} ± {_fmt(m['is']['is_std'], 2)} | "
                     f"{m['is']['feature_network']}; {m['is']['splits']} splits |")
    if "obj_acc" in m:
        oa = m["obj_acc"]
        lines.append(f"| object classification accuracy | {_fmt(oa['accuracy'])} | Grid2Im "
                     f"protocol, {oa['num_crops']} crops; real crops: "
                     f"{_fmt(oa['real_crop_accuracy'])} |")
        if oa.get("own_boxes_accuracy") is not None:
            lines.append(f"| object accuracy at the model's own boxes | "
                         f"{_fmt(oa['own_boxes_accuracy'])} | each object cropped where the "
                         f"image's layout put it |")
        for size_bin, r in oa.get("by_size", {}).items():
            lines.append(f"| object accuracy, objects of {size_bin} | {_fmt(r['accuracy'])} | "
                         f"{r['num_crops']} crops; real crops: "
                         f"{_fmt(r.get('real_crop_accuracy'))} |")
    if "attr_acc" in m:
        aa = m["attr_acc"]
        lines.append(f"| attribute accuracy (colour) | {_fmt(aa['accuracy'])} | "
                     f"{aa['num_crops']} crops; real crops: {_fmt(aa['real_crop_accuracy'])}; "
                     f"ratio {_fmt(aa['ratio'], 3)} |")
    if "attr_swap" in m:
        sw = m["attr_swap"]
        lines.append(f"| attribute swap: follows the change | {_fmt(sw['follow_rate'])} | "
                     f"{sw['num_swaps']} swaps, layout frozen |")
        if sw.get("num_swaps"):
            lines.append(f"| attribute swap: pixel change outside / inside the object | "
                         f"{_fmt(sw['outside_change'])} / {_fmt(sw['inside_change'])} | "
                         f"mean abs. change, pixels in [0, 1] |")
    if "diversity" in m:
        dv = m["diversity"]
        lines.append(f"| diversity: mean_pixel_distance | {_fmt(dv['mean_pixel_distance'])} | "
                     f"weight-free, {dv['num_pairs']} pairs |")
        note = "" if dv["lpips"] is not None else "LPIPS weights missing (see JSON)"
        lines.append(f"| diversity: LPIPS | {_fmt(dv['lpips'])} | {note} |")
        if dv.get("feature_distance") is not None:
            lines.append(f"| diversity: feature distance (ratio to two real scenes) | "
                         f"{_fmt(dv['feature_distance'])} ({_fmt(dv['feature_distance_ratio'])}) "
                         f"| {dv['feature_network']} |")
    lines += ["", "## Protocols", ""]
    lines += [f"- **{k}**: {v}" for k, v in report.get("protocols", {}).items()]
    return "\n".join(lines) + "\n"


def _json_safe(value: Any) -> Any:
    """NaN / inf -> None, recursively: strict JSON has no NaN (e.g. an empty size bin)."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    return value


def write_report(report: dict[str, Any], out_path: str | PathLike) -> tuple[Path, Path]:
    """Write the report as JSON (NaN written as null) and as Markdown.

    Args:
        report: from :func:`evaluate` (extra keys such as ``checkpoint`` are kept).
        out_path: ``REPORT.json`` (the Markdown goes to ``REPORT.md``), a path without a
            ``.json`` suffix, to which ``.json`` and ``.md`` are appended, or a folder (an
            existing one, or any path ending in ``/``), which gets ``report.json`` and
            ``report.md``.

    Returns:
        The JSON and Markdown paths.
    """
    is_folder = str(out_path).endswith(("/", os.sep)) or Path(out_path).is_dir()
    out_path = Path(out_path)
    if is_folder:
        base = out_path / "report"
    else:
        base = out_path.with_suffix("") if out_path.suffix == ".json" else out_path
    json_path = base.parent / (base.name + ".json")
    md_path = base.parent / (base.name + ".md")
    json_path.parent.mkdir(parents=True, exist_ok=True)
    json_path.write_text(json.dumps(_json_safe(report), indent=2, allow_nan=False) + "\n")
    md_path.write_text(report_to_markdown(report))
    return json_path, md_path


# --------------------------------------------------------------------------- entry points
def evaluate_checkpoint(checkpoint: str | PathLike, data_root: str | PathLike | None = None,
                        split: str = "val", *, out: str | PathLike | None = None,
                        device: str | torch.device | None = None,
                        layout_baseline: bool = False, **kwargs: Any) -> dict[str, Any]:
    """``sg2img evaluate``: load a checkpoint, build its dataset split, evaluate, write.

    The dataset is built with the checkpoint's data config (``data_root`` replaces its root)
    at the checkpoint's image and mask size, and must have the checkpoint's vocabulary.

    Args:
        checkpoint: a training checkpoint or an inference export.
        data_root: dataset directory; None uses the one in the checkpoint's config.
        split: ``"val"`` or ``"test"`` (any split the dataset has).
        out: if given, the report is written there (:func:`write_report`).
        device: where to run (None: CUDA when available, else the CPU).
        layout_baseline: also score the mean-class-box baseline (each class's mean box over
            the training split) under ``metrics["layout_recall_baseline"]``.
        **kwargs: passed to :func:`evaluate` (metrics, samples_per_graph, seed, ...);
            ``metrics`` None (or left out) means :func:`default_metrics`.

    Returns:
        The report, with ``checkpoint`` and ``data`` added.

    Raises:
        sg2img.checkpoint.CheckpointError: the checkpoint cannot be read.
        ValueError: the dataset's vocabulary is not the checkpoint's.
    """
    from .checkpoint import build_generator
    from .data import build_dataset

    if device is None:
        device = "cuda" if torch.cuda.is_available() else "cpu"
    generator, config, vocab = build_generator(checkpoint, map_location=device)
    data_cfg = config.data if data_root is None else replace(config.data, root=str(data_root))
    dataset = build_dataset(data_cfg, split, config.model.image_size, config.model.mask_size)
    data_vocab = getattr(dataset, "vocab", None)
    if data_vocab is not None and tuple(data_vocab.object_names) != tuple(vocab.object_names):
        raise ValueError(f"the dataset at {data_cfg.root} has another object vocabulary "
                         f"({data_vocab.num_objects} slots) than the checkpoint "
                         f"({vocab.num_objects}); evaluate on the dataset it was trained on")
    if (data_vocab is not None and data_vocab.attribute_names is not None
            and getattr(generator, "attr_embeddings", None) is not None
            and tuple(data_vocab.attribute_names) != tuple(vocab.attribute_names or ())):
        raise ValueError(f"the dataset at {data_cfg.root} has other attribute names than the "
                         f"checkpoint ({data_vocab.num_attributes} vs {vocab.num_attributes}); "
                         f"evaluate on the dataset it was trained on")
    if kwargs.get("metrics") is None:
        kwargs["metrics"] = default_metrics(data_vocab, generator)
    report = evaluate(generator.to(device), dataset, split=split, device=device, **kwargs)
    report = {"checkpoint": str(checkpoint), "data": str(data_cfg.root), **report}
    if layout_baseline:
        train = build_dataset(data_cfg, "train", config.model.image_size, config.model.mask_size)
        class_boxes = M.mean_class_boxes(train, vocab.num_objects)
        thresholds = kwargs.get("recall_thresholds", M.DEFAULT_RECALL_THRESHOLDS)
        report["metrics"]["layout_recall_baseline"] = M.mean_class_box_recall(
            class_boxes, dataset, thresholds)
        report["protocols"]["layout_recall_baseline"] = PROTOCOLS["layout_recall_baseline"]
    if out is not None:
        write_report(report, out)
    return report


def evaluate_box_file(box_file: str | PathLike, dataset: Dataset, *, split: str | None = None,
                      thresholds: Sequence[float] = M.DEFAULT_RECALL_THRESHOLDS,
                      seed: int = 0, out: str | PathLike | None = None) -> dict[str, Any]:
    """Layout metrics of another system's boxes (a box file, see :mod:`sg2img.metrics`).

    Scores the boxes as the layout a model would have predicted: ``layout_recall`` and the
    ``layout`` metric's relation satisfaction, box-size fidelity and R@t of all and of small
    objects, with the ground truth's scores as the ceiling. Datasets that draw each item's
    relationships at random (the COCO format) draw them here as ``sg2img evaluate --seed``
    does, so a box file written by ``evaluate --boxes-out`` with the same seed is scored
    against the graphs it was predicted from.

    Returns:
        A report in :func:`evaluate`'s form with the ``layout_recall`` and ``layout`` metrics.
    """
    with_images = getattr(dataset, "with_images", None)
    if with_images is not None:
        dataset.with_images = False        # boxes and graphs are all this reads
    try:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)    # as evaluate(): items that draw relations use this RNG
            items = [dataset[i] for i in range(len(dataset))]
    finally:
        if with_images is not None:
            dataset.with_images = with_images
    pairs = M.match_box_file(box_file, items)
    scored = M.score_box_pairs(pairs, thresholds)
    num_images = scored.pop("num_images")
    vocab = getattr(dataset, "vocab", None)
    names = tuple(vocab.pred_names) if vocab is not None else None
    objects = tuple(vocab.object_names) if vocab is not None else None
    layouts = {"box_file": _LayoutScores(), "ground_truth": _LayoutScores()}
    for start in range(0, len(items), 64):
        chunk = items[start:start + 64]
        batch = collate_graphs(chunk)
        real = M.real_object_mask(batch.objs)
        boxes = batch.boxes.float().clone()
        boxes[real] = torch.cat([p for _, p, _ in pairs[start:start + 64]])
        layouts["box_file"].add(boxes, batch, names)
        layouts["ground_truth"].add(batch.boxes, batch, names)
    layout = {name: acc.compute(objects, thresholds) for name, acc in layouts.items()}
    report = {"box_file": str(box_file), "split": split, "seed": seed, "num_graphs": num_images,
              "metrics": {"layout_recall": scored, "layout": layout},
              "protocols": {
                  "layout_recall": PROTOCOLS["layout_recall"].replace(
                      "boxes predicted from the scene graph alone (no box given)",
                      "boxes read from the box file"),
                  "layout": LayoutQuality.protocol.replace(
                      "boxes predicted from the scene graph alone (no box given), for the most "
                      "likely layout (mode) and, for a sampling layout head, one sampled layout",
                      "boxes read from the box file, against the graphs the dataset gives with "
                      f"seed {seed}").split("; layout diversity")[0]}}
    if out is not None:
        write_report(report, out)
    return report
