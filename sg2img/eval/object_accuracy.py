"""Object accuracy ``obj_acc``: Grid2Im's classification of generated objects cropped at boxes.

Also the plain accuracy functions it reports with (:func:`classification_accuracy`).
"""

from __future__ import annotations

import math
from dataclasses import replace
from typing import Any

import torch
from torch import Tensor

from ..scene_graph import GraphBatch
from .boxes import box_area_fraction, real_object_mask, size_bins
from .context import EvalContext, resolve_classifier
from .nets import crop_objects
from .registry import Metric


def per_class_accuracy(pred: Tensor, target: Tensor, num_classes: int) -> Tensor:
    """Top-1 accuracy of each class.

    Args:
        pred: (K,) predicted class ids.
        target: (K,) true class ids in [0, num_classes).
        num_classes: C.

    Returns:
        (C,) accuracy in [0, 1], NaN for classes with no sample.
    """
    correct = torch.zeros(num_classes, dtype=torch.float64)
    count = torch.zeros(num_classes, dtype=torch.float64)
    count.index_add_(0, target.long(), torch.ones(len(target), dtype=torch.float64))
    correct.index_add_(0, target.long(), (pred.long() == target.long()).double())
    return (correct / count).float()  # 0/0 = NaN for absent classes


def classification_accuracy(pred: Tensor, target: Tensor, num_classes: int) -> dict[str, float]:
    """Overall and class-balanced top-1 accuracy.

    Args:
        pred: (K,) predicted class ids (or (K, C) logits, arg-maxed here).
        target: (K,) true class ids.
        num_classes: C.

    Returns:
        ``{"accuracy": a, "mean_class_accuracy": m, "num_samples": K,
        "num_classes_present": c}``; a and m in [0, 1] (NaN when K is 0).
    """
    if pred.dim() == 2:
        pred = pred.argmax(dim=1)
    k = int(target.numel())
    per_class = per_class_accuracy(pred, target, num_classes)
    present = ~torch.isnan(per_class)
    return {
        "accuracy": float((pred.long() == target.long()).float().mean()) if k else math.nan,
        "mean_class_accuracy": float(per_class[present].mean()) if present.any() else math.nan,
        "num_samples": k,
        "num_classes_present": int(present.sum()),
    }




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
        self.classifier = resolve_classifier(ctx.classifier, ctx.object_names,
                                             ctx.image_size).to(ctx.device)
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
        area = box_area_fraction(batch.boxes[real_object_mask(batch.objs)]).cpu()
        self._classify(batch.images, batch, self.real, area)
        for out in outs[:self.ctx.samples_per_graph]:
            self._classify(out.images, batch, self.fake, area)
            if getattr(out, "boxes", None) is not None:
                self._classify(out.images, replace(batch, boxes=out.boxes), self.own, area)

    def _scores(self, lists: dict[str, list[Tensor]]) -> tuple[dict[str, float], dict]:
        pred, target, area = (torch.cat(lists[k]) for k in ("pred", "target", "area"))
        by_size = {}
        for name, keep in size_bins(area):
            n = int(keep.sum())
            acc = float((pred[keep] == target[keep]).float().mean()) if n else math.nan
            by_size[name] = {"accuracy": acc, "num_crops": n}
        return classification_accuracy(pred, target, self.num_classes), by_size

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


