"""Pure box scores of a layout against the ground truth: IoU, recall, size, relations, diversity.

Everything here is a plain function of tensors (the class-mean baseline also reads a dataset);
the ``layout_recall`` and ``layout`` metrics (:mod:`sg2img.eval.layout`) wire them to a
generator and a dataset.

Layout recall (Grid2Im / GALS-GAN Table 5)
    Each box predicted from the scene graph alone is paired with the ground-truth box of the
    same object (by index; ``__image__`` excluded). ``R@t`` is the fraction of objects whose IoU
    is *strictly* above ``t``; an IoU of exactly 0.5 does not count for R@0.5.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from typing import Any

import torch
from torch import Tensor

from ..layout import paired_iou
from ..vocab import IMAGE_OBJECT_ID

DEFAULT_RECALL_THRESHOLDS = (0.3, 0.5)
SMALL_OBJECT_AREA = 0.05
"""Small objects: ground-truth box area under 5 % of the image (the first size bin)."""
DEFAULT_SIZE_EDGES = (0.0, SMALL_OBJECT_AREA, 0.2, 1.0)


# --------------------------------------------------------------------------- boxes
def box_iou(boxes1: Tensor, boxes2: Tensor) -> Tensor:
    """IoU of every box in ``boxes1`` with every box in ``boxes2``.

    Args:
        boxes1: (A, 4) as (x0, y0, x1, y1), any consistent units.
        boxes2: (B, 4) as (x0, y0, x1, y1).

    Returns:
        (A, B) IoU in [0, 1]; pairs whose union is empty (two degenerate boxes) give 0.
    """
    from torchvision.ops import box_iou as tv_box_iou  # lazy: torchvision.ops pulls torch._dynamo

    iou = tv_box_iou(boxes1.float(), boxes2.float())
    return torch.nan_to_num(iou, nan=0.0)


def paired_box_iou(pred_boxes: Tensor, gt_boxes: Tensor) -> Tensor:
    """IoU of each predicted box with the ground-truth box of the same index.

    Args:
        pred_boxes: (O, 4) as (x0, y0, x1, y1).
        gt_boxes: (O, 4) as (x0, y0, x1, y1).

    Returns:
        (O,) IoU in [0, 1].

    Raises:
        ValueError: the two tensors do not have the same (O, 4) shape.
    """
    if pred_boxes.dim() != 2 or pred_boxes.shape[-1] != 4 or pred_boxes.shape != gt_boxes.shape:
        raise ValueError(f"paired_box_iou needs two (O, 4) tensors of the same shape, got "
                         f"{tuple(pred_boxes.shape)} and {tuple(gt_boxes.shape)}")
    return paired_iou(pred_boxes.float(), gt_boxes.float())


def layout_recall(pred_boxes: Tensor, gt_boxes: Tensor,
                  thresholds: Sequence[float] = DEFAULT_RECALL_THRESHOLDS) -> dict[str, float]:
    """Layout recall R@t and mean IoU of boxes paired with their ground truth by index.

    The caller removes ``__image__`` nodes first (see :func:`real_object_mask`).

    Args:
        pred_boxes: (O, 4) predicted (x0, y0, x1, y1) in [0, 1].
        gt_boxes: (O, 4) ground-truth (x0, y0, x1, y1) in [0, 1].
        thresholds: IoU thresholds; an object counts when its IoU is strictly above.

    Returns:
        ``{"R@0.3": r, "R@0.5": r, "mean_iou": m, "num_objects": O}`` with r, m in [0, 1]
        (NaN when O is 0).
    """
    iou = paired_box_iou(pred_boxes, gt_boxes)
    return recall_from_iou(iou, thresholds)


def recall_from_iou(iou: Tensor, thresholds: Sequence[float] = DEFAULT_RECALL_THRESHOLDS
                    ) -> dict[str, float]:
    """R@t (IoU strictly above t) and mean IoU from per-object IoUs.

    Args:
        iou: (O,) IoU in [0, 1].
        thresholds: IoU thresholds.

    Returns:
        ``{"R@<t>": ..., "mean_iou": ..., "num_objects": O}``; NaN values when O is 0.
    """
    n = int(iou.numel())
    out: dict[str, float] = {}
    for t in thresholds:
        out[f"R@{t:g}"] = float((iou > t).float().mean()) if n else math.nan
    out["mean_iou"] = float(iou.float().mean()) if n else math.nan
    out["num_objects"] = n
    return out


def real_object_mask(objs: Tensor) -> Tensor:
    """(O,) bool, True for real objects and False for ``__image__`` nodes (id 0)."""
    return objs != IMAGE_OBJECT_ID


def box_area_fraction(boxes: Tensor) -> Tensor:
    """Area of each box as a fraction of the image.

    Args:
        boxes: (O, 4) as (x0, y0, x1, y1) in [0, 1].

    Returns:
        (O,) in [0, 1]; degenerate boxes give 0.
    """
    wh = (boxes[:, 2:] - boxes[:, :2]).clamp(min=0)
    return wh[:, 0] * wh[:, 1]


def layout_recall_by_size(pred_boxes: Tensor, gt_boxes: Tensor,
                          edges: Sequence[float] = DEFAULT_SIZE_EDGES,
                          thresholds: Sequence[float] = DEFAULT_RECALL_THRESHOLDS
                          ) -> dict[str, dict[str, float]]:
    """Layout recall split by the ground-truth box's area fraction (small objects separately).

    Args:
        pred_boxes: (O, 4) in [0, 1].
        gt_boxes: (O, 4) in [0, 1].
        edges: increasing bin edges on the area fraction; bin i holds
            ``edges[i] <= area < edges[i + 1]`` (the last bin also holds ``area == edges[-1]``).
        thresholds: IoU thresholds (strictly above).

    Returns:
        ``{"area[a,b)": layout_recall(...) of the objects in that bin, ...}``.
    """
    iou = paired_box_iou(pred_boxes, gt_boxes)
    return {name: recall_from_iou(iou[keep], thresholds)
            for name, keep in size_bins(box_area_fraction(gt_boxes), edges)}


def size_bins(area: Tensor, edges: Sequence[float] = DEFAULT_SIZE_EDGES
              ) -> Iterator[tuple[str, Tensor]]:
    """``("area[a,b)", mask)`` per bin of the area fraction: ``a <= area < b``.

    The last bin is closed (``area == edges[-1]`` falls in it) and named ``"area[a,b]"``.
    """
    for i, (lo, hi) in enumerate(zip(edges[:-1], edges[1:], strict=True)):
        last = i == len(edges) - 2
        keep = (area >= lo) & ((area <= hi) if last else (area < hi))
        yield f"area[{lo:g},{hi:g}{']' if last else ')'}", keep


# --------------------------------------------------------------------------- baseline
def object_boxes_of(dataset: Any) -> Iterator[tuple[Tensor, Tensor]]:
    """``(classes (O,), boxes (O, 4))`` of every item, ``__image__`` excluded, in order.

    Uses the dataset's ``object_boxes(index)`` when it has one (no image is read), else its
    items.
    """
    fast = getattr(dataset, "object_boxes", None)
    for i in range(len(dataset)):
        if fast is not None:
            objs, boxes = fast(i)
        else:
            s = dataset[i]
            objs, boxes = s.objs, s.boxes
        keep = real_object_mask(objs)
        yield objs[keep].long(), boxes[keep].float()


def mean_class_boxes(dataset: Any, num_classes: int) -> Tensor:
    """Each class's mean ground-truth box over a (training) dataset: the layout baseline.

    A scene-graph-to-layout model must beat "put every object where its class usually is";
    this is that baseline. Classes that never occur get the mean box over all objects.

    Returns:
        (num_classes, 4) boxes as (x0, y0, x1, y1) in [0, 1].
    """
    sums = torch.zeros(num_classes, 4, dtype=torch.float64)
    counts = torch.zeros(num_classes, dtype=torch.float64)
    for objs, boxes in object_boxes_of(dataset):
        sums.index_add_(0, objs, boxes.double())
        counts.index_add_(0, objs, torch.ones(len(objs), dtype=torch.float64))
    if counts.sum() == 0:
        raise ValueError("the dataset has no objects to average boxes over")
    overall = sums.sum(0) / counts.sum()
    means = torch.where(counts[:, None] > 0, sums / counts.clamp(min=1)[:, None], overall)
    return means.float()


def mean_class_box_recall(class_boxes: Tensor, dataset: Any,
                          thresholds: Sequence[float] = DEFAULT_RECALL_THRESHOLDS
                          ) -> dict[str, Any]:
    """Layout recall of the mean-class-box baseline on a dataset (same protocol as models).

    Args:
        class_boxes: (C, 4) from :func:`mean_class_boxes` on the training split.
        dataset: the split to score.

    Returns:
        :func:`layout_recall` plus ``"by_size"``, as for a model's predicted boxes.
    """
    preds, gts = [], []
    for objs, boxes in object_boxes_of(dataset):
        preds.append(class_boxes[objs])
        gts.append(boxes)
    pred, gt = torch.cat(preds), torch.cat(gts)
    out: dict[str, Any] = dict(layout_recall(pred, gt, thresholds))
    out["by_size"] = layout_recall_by_size(pred, gt, thresholds=thresholds)
    return out



# --------------------------------------------------------------------------- layout plausibility
GEOMETRIC_PREDICATES = ("left of", "right of", "above", "below", "inside", "surrounding")
"""Predicates the COCO / procedural datasets derive from geometry (``spatial_predicate``)."""


def box_predicate(box_s: Sequence[float], box_o: Sequence[float]) -> str:
    """The geometric predicate the dataset's rule gives a subject box relative to an object box.

    The rule of :func:`relation_satisfaction`: ``sg2img.data.coco.spatial_predicate`` with the
    box centres as the centres. Every score of triples against boxes goes through here, so
    they all judge geometry the same way.

    Args:
        box_s: (4,) the subject's box (x0, y0, x1, y1).
        box_o: (4,) the object's box (x0, y0, x1, y1).

    Returns:
        One of :data:`GEOMETRIC_PREDICATES`.
    """
    from ..data.common import spatial_predicate  # lazy: the data package pulls in h5py
    from ..vocab import COCO_PREDICATES

    sx0, sy0, sx1, sy1 = (float(v) for v in box_s)
    ox0, oy0, ox1, oy1 = (float(v) for v in box_o)
    return COCO_PREDICATES[spatial_predicate((sx0, sy0, sx1, sy1), (ox0, oy0, ox1, oy1),
                                             ((sx0 + sx1) / 2, (sy0 + sy1) / 2),
                                             ((ox0 + ox1) / 2, (oy0 + oy1) / 2))]


def relation_satisfaction(boxes: Tensor, triples: Tensor, pred_names: Sequence[str]
                          ) -> dict[str, Any]:
    """Fraction of a graph's geometric triples that the boxes satisfy, under the dataset's rule.

    Protocol: for every triple whose predicate is one of ``GEOMETRIC_PREDICATES``, the
    predicate that ``sg2img.data.coco.spatial_predicate`` (the rule the dataset made the
    triples with) gives for the subject's and object's boxes, with box centres as the
    centres, must equal the triple's predicate. Other predicates (``__in_image__``, ``on``,
    ...) are not counted. The dataset computed its triples from mask centroids, so the
    ground-truth boxes score a little under 1: that is the ceiling.

    Args:
        boxes: (O, 4) (x0, y0, x1, y1) in [0, 1] of all objects the triples index.
        triples: (T, 3) long [subject, predicate, object], indices into ``boxes``.
        pred_names: predicate name of each predicate id (``vocab.pred_names``).

    Returns:
        ``{"relation_satisfaction": fraction in [0, 1] (NaN with no geometric triple),
        "num_triples": n, "by_predicate": {name: {"satisfied": f, "num_triples": k}}}``.

    Raises:
        ValueError: bad shapes, or a predicate id outside ``pred_names``.
    """
    if boxes.dim() != 2 or boxes.shape[-1] != 4 or triples.dim() != 2 or triples.shape[-1] != 3:
        raise ValueError(f"relation_satisfaction needs boxes (O, 4) and triples (T, 3), got "
                         f"{tuple(boxes.shape)} and {tuple(triples.shape)}")
    if len(triples) and int(triples[:, 1].max()) >= len(pred_names):
        raise ValueError(f"predicate id {int(triples[:, 1].max())} is outside the "
                         f"{len(pred_names)} predicate names given")
    b = boxes.detach().double().cpu().tolist()
    counts = {name: [0, 0] for name in GEOMETRIC_PREDICATES}
    for s, p, o in triples.tolist():
        name = pred_names[p]
        if name not in counts:
            continue
        counts[name][0] += int(box_predicate(b[s], b[o]) == name)
        counts[name][1] += 1
    ok = sum(c[0] for c in counts.values())
    n = sum(c[1] for c in counts.values())
    return {
        "relation_satisfaction": ok / n if n else math.nan,
        "num_triples": n,
        "by_predicate": {k: {"satisfied": c[0] / c[1] if c[1] else math.nan,
                             "num_triples": c[1]} for k, c in counts.items()},
    }


def box_size_fidelity(pred_boxes: Tensor, gt_boxes: Tensor, classes: Tensor,
                      class_names: Sequence[str] | None = None, min_count: int = 1
                      ) -> dict[str, Any]:
    """How well predicted boxes get each object's size: ``|log(pred area / true area)|``.

    Args:
        pred_boxes: (O, 4) predicted boxes in [0, 1], paired with ``gt_boxes`` by index.
        gt_boxes: (O, 4) ground-truth boxes.
        classes: (O,) class id of each object (``__image__`` nodes removed by the caller).
        class_names: names by class id for the report (ids as strings otherwise).
        min_count: classes with fewer objects are reported but cannot be the worst class.

    Returns:
        ``{"mean_abs_log_area_ratio": mean over all objects, "worst_class": name,
        "worst_class_mean_abs_log_area_ratio": its mean, "num_objects": O,
        "by_class": {name: {"mean_abs_log_area_ratio": m, "area_ratio": exp(mean signed log
        ratio), i.e. the geometric-mean factor by which boxes are too large (> 1) or too small,
        "num_objects": k}}}``. Areas are floored at 1e-6 so a degenerate box stays finite.
    """
    if pred_boxes.shape != gt_boxes.shape or len(classes) != len(gt_boxes):
        raise ValueError(f"box_size_fidelity needs pred (O, 4), gt (O, 4) and classes (O,), got "
                         f"{tuple(pred_boxes.shape)}, {tuple(gt_boxes.shape)}, "
                         f"{tuple(classes.shape)}")
    log_ratio = (box_area_fraction(pred_boxes.double()).clamp(min=1e-6).log()
                 - box_area_fraction(gt_boxes.double()).clamp(min=1e-6).log())   # (O,)
    by_class: dict[str, dict[str, float]] = {}
    worst, worst_value = None, -math.inf
    for c in sorted(set(classes.tolist())):
        sel = log_ratio[classes == c]
        name = class_names[c] if class_names is not None else str(c)
        m = float(sel.abs().mean())
        by_class[name] = {"mean_abs_log_area_ratio": m, "area_ratio": float(sel.mean().exp()),
                          "num_objects": int(sel.numel())}
        if sel.numel() >= min_count and m > worst_value:
            worst, worst_value = name, m
    n = int(log_ratio.numel())
    return {
        "mean_abs_log_area_ratio": float(log_ratio.abs().mean()) if n else math.nan,
        "worst_class": worst,
        "worst_class_mean_abs_log_area_ratio": worst_value if worst is not None else math.nan,
        "num_objects": n,
        "by_class": by_class,
    }


def layout_diversity(boxes_a: Tensor, boxes_b: Tensor) -> dict[str, float]:
    """Mean IoU between two sampled layouts of the same graphs (lower = more diverse).

    Args:
        boxes_a: (O, 4) one sample's boxes (``__image__`` nodes removed by the caller).
        boxes_b: (O, 4) another sample's boxes for the same objects.

    Returns:
        ``{"mean_iou_between_samples": m in [0, 1] (1 = the samples are identical; NaN when
        O is 0), "num_objects": O}``.
    """
    iou = paired_box_iou(boxes_a, boxes_b)
    n = int(iou.numel())
    return {"mean_iou_between_samples": float(iou.mean()) if n else math.nan, "num_objects": n}
