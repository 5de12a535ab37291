"""Pure evaluation metrics: layout recall, box files, classification accuracy, diversity.

Everything here is a plain function of tensors (no networks, no datasets except in
:func:`score_box_file`); ``sg2img.evaluate`` wires them to a generator and a dataset.

Layout recall (Grid2Im / GALS-GAN Table 5)
    Each box predicted from the scene graph alone is paired with the ground-truth box of the
    same object (by index; ``__image__`` excluded). ``R@t`` is the fraction of objects whose IoU
    is *strictly* above ``t``; an IoU of exactly 0.5 does not count for R@0.5.

Box file format (to score other systems' layouts the same way)
    A JSON file with boxes as ``[x0, y0, x1, y1]`` fractions of the image width and height
    (in [0, 1]), one box per ground-truth object of the image, in the dataset's object order with
    the ``__image__`` node left out. Two forms are accepted::

        {"format": "sg2img-boxes", "boxes": {"<image_id>": [[x0, y0, x1, y1], ...], ...}}
        {"<image_id>": [[x0, y0, x1, y1], ...], ...}          # the same mapping, bare
        [[[x0, y0, x1, y1], ...], ...]                        # list form: one entry per item
                                                              # in dataset order

    Image ids are compared as strings (JSON keys are strings). Every dataset item must have an
    entry with exactly as many boxes as it has objects; extra entries are an error too, so a
    file made for another split cannot be scored by accident. :func:`write_box_file` writes the
    first form.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Iterator, Mapping, Sequence
from os import PathLike
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from .files import read_json, short
from .vocab import IMAGE_OBJECT_ID

BOX_FILE_FORMAT = "sg2img-boxes"
DEFAULT_RECALL_THRESHOLDS = (0.3, 0.5)
DEFAULT_SIZE_EDGES = (0.0, 0.05, 0.2, 1.0)
_IOU_CHUNK = 2048


class BoxFileError(ValueError):
    """A box file is missing, malformed, or does not match the dataset."""


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
    if len(pred_boxes) == 0:
        return pred_boxes.new_zeros(0, dtype=torch.float32)
    # The diagonal of chunked pairwise IoU keeps memory at _IOU_CHUNK**2 whatever O is.
    chunks = zip(pred_boxes.split(_IOU_CHUNK), gt_boxes.split(_IOU_CHUNK), strict=True)
    return torch.cat([box_iou(p, g).diagonal() for p, g in chunks])


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


# --------------------------------------------------------------------------- box files
def write_box_file(path: str | PathLike, boxes: Mapping[Any, Tensor | Sequence]) -> None:
    """Write predicted boxes in the ``sg2img-boxes`` JSON form (see the module docstring).

    Args:
        path: output file.
        boxes: image id -> (O_i, 4) boxes in [0, 1], ``__image__`` excluded.
    """
    data = {str(k): (v.tolist() if isinstance(v, Tensor) else [list(b) for b in v])
            for k, v in boxes.items()}
    Path(path).write_text(json.dumps({"format": BOX_FILE_FORMAT, "boxes": data}))


def load_box_file(path: str | PathLike) -> dict[str, Tensor] | list[Tensor]:
    """Read a box file in one of the forms of the module docstring.

    Returns:
        image id (str) -> (O_i, 4) float boxes, or a list of (O_i, 4) for the list form.

    Raises:
        BoxFileError: the file is missing, not JSON, or a box is not 4 finite numbers in
            [0, 1] (pixel coordinates are refused with a hint to divide by the image size).
    """
    path = Path(path)
    data = read_json(path, "box file", BoxFileError)
    if isinstance(data, dict) and data.get("format") == BOX_FILE_FORMAT:
        data = data.get("boxes")
    if isinstance(data, dict):
        return {str(k): _boxes_tensor(v, f"{path}: image {short(k)}") for k, v in data.items()}
    if isinstance(data, list):
        return [_boxes_tensor(v, f"{path}: item {i}") for i, v in enumerate(data)]
    raise BoxFileError(f"box file {path} must hold a JSON object (image id -> boxes) or a list "
                       f"of box lists, got {type(data).__name__}")


def _boxes_tensor(value: Any, where: str) -> Tensor:
    if not isinstance(value, list) or not all(
            isinstance(b, list) and len(b) == 4 and all(
                isinstance(v, (int, float)) and not isinstance(v, bool) for v in b)
            for b in value):
        raise BoxFileError(f"{where}: expected a list of [x0, y0, x1, y1] boxes, got "
                           f"{short(value)}")
    try:
        t = torch.tensor(value, dtype=torch.float32).reshape(-1, 4)
    except (OverflowError, RuntimeError):  # an integer too large for a float
        raise BoxFileError(f"{where}: box values must be fractions of the image in [0, 1], "
                           f"got a number too large to read") from None
    if not torch.isfinite(t).all():
        raise BoxFileError(f"{where}: box values must be finite")
    if ((t < -1e-3) | (t > 1 + 1e-3)).any():
        raise BoxFileError(f"{where}: box values must be fractions of the image in [0, 1], got "
                           f"values in [{t.min():g}, {t.max():g}]; if these are pixel "
                           f"coordinates, divide x by the image width and y by its height")
    inverted = ((t[:, 2] < t[:, 0]) | (t[:, 3] < t[:, 1])).nonzero().flatten()
    if len(inverted):
        i = int(inverted[0])
        raise BoxFileError(f"{where}: box {i} {[round(float(v), 4) for v in t[i]]} is inverted; "
                           f"boxes are [x0, y0, x1, y1] with x0 <= x1 and y0 <= y1 "
                           f"({len(inverted)} such box{'es' * (len(inverted) > 1)})")
    return t


def _items(samples: Iterable[Any]) -> Iterator[Any]:
    """Items of a map-style dataset by index (plain iteration would not stop at ``len``)."""
    if hasattr(samples, "__len__") and hasattr(samples, "__getitem__"):
        return (samples[i] for i in range(len(samples)))
    return iter(samples)


def gt_boxes_by_image(samples: Iterable[Any]) -> list[tuple[Any, Tensor]]:
    """Ground-truth boxes of real objects per dataset item, in dataset order.

    Args:
        samples: ``GraphSample``-like items with ``objs (O,)``, ``boxes (O, 4)``, ``image_id``.

    Returns:
        ``[(image_id, (O_i, 4) boxes without the __image__ node), ...]``.
    """
    out = []
    for s in _items(samples):
        keep = real_object_mask(s.objs)
        out.append((s.image_id, s.boxes[keep].float()))
    return out


def match_box_file(path: str | PathLike, samples: Iterable[Any]
                   ) -> list[tuple[Any, Tensor, Tensor]]:
    """The boxes of a box file matched to a dataset's items.

    Args:
        path: a box file (module docstring).
        samples: the dataset (``GraphSample`` items with ``objs``, ``boxes``, ``image_id``), in
            the order the list form refers to.

    Returns:
        ``[(image_id, (O_i, 4) predicted boxes, (O_i, 4) ground-truth boxes), ...]`` in
        dataset order, ``__image__`` excluded.

    Raises:
        BoxFileError: an item is missing from the file, has the wrong number of boxes, or the
            file has entries the dataset does not.
    """
    pred = load_box_file(path)
    gt = gt_boxes_by_image(samples)
    if isinstance(pred, list):
        if len(pred) != len(gt):
            raise BoxFileError(f"{path} lists boxes for {len(pred)} images but the dataset has "
                               f"{len(gt)}; the list form needs one entry per item in order")
        pairs = [(image_id, p, g, f"item {i} (image {image_id!r})")
                 for i, ((image_id, g), p) in enumerate(zip(gt, pred, strict=True))]
    else:
        pairs = []
        for image_id, g in gt:
            key = str(image_id)
            if key not in pred:
                raise BoxFileError(f"{path} has no boxes for image {key!r}; give boxes for "
                                   f"every image of the split")
            pairs.append((image_id, pred.pop(key), g, f"image {key!r}"))
        if pred:
            extra = sorted(pred)[:5]
            raise BoxFileError(f"{path} has boxes for {len(pred)} images that are not in the "
                               f"dataset split (e.g. {extra}); is it for another split?")
    for _, p, g, where in pairs:
        if len(p) != len(g):
            raise BoxFileError(f"{path}: {where} has {len(p)} boxes but {len(g)} ground-truth "
                               f"objects (__image__ excluded); give one box per object in "
                               f"dataset order")
    return [(image_id, p, g) for image_id, p, g, _ in pairs]


def score_box_file(path: str | PathLike, samples: Iterable[Any],
                   thresholds: Sequence[float] = DEFAULT_RECALL_THRESHOLDS) -> dict[str, Any]:
    """Layout recall of the boxes in a box file against a dataset's ground truth.

    Args:
        path, samples: as :func:`match_box_file`.
        thresholds: IoU thresholds (strictly above).

    Returns:
        :func:`layout_recall` of all objects, plus ``"num_images"`` and ``"by_size"``
        (:func:`layout_recall_by_size`).

    Raises:
        BoxFileError: as :func:`match_box_file`.
    """
    return score_box_pairs(match_box_file(path, samples), thresholds)


def score_box_pairs(pairs: Sequence[tuple[Any, Tensor, Tensor]],
                    thresholds: Sequence[float] = DEFAULT_RECALL_THRESHOLDS) -> dict[str, Any]:
    """:func:`score_box_file`'s figures for boxes already matched (:func:`match_box_file`)."""
    pred_all = torch.cat([p for _, p, _ in pairs]) if pairs else torch.zeros(0, 4)
    gt_all = torch.cat([g for _, _, g in pairs]) if pairs else torch.zeros(0, 4)
    out: dict[str, Any] = dict(layout_recall(pred_all, gt_all, thresholds))
    out["num_images"] = len(pairs)
    out["by_size"] = layout_recall_by_size(pred_all, gt_all, thresholds=thresholds)
    return out


# --------------------------------------------------------------------------- classification
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


# --------------------------------------------------------------------------- diversity
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
# --------------------------------------------------------------------------- layout plausibility
GEOMETRIC_PREDICATES = ("left of", "right of", "above", "below", "inside", "surrounding")
"""Predicates the COCO / procedural datasets derive from geometry (``spatial_predicate``)."""


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
    from .data.common import spatial_predicate  # lazy: the data package pulls in h5py
    from .vocab import COCO_PREDICATES

    if boxes.dim() != 2 or boxes.shape[-1] != 4 or triples.dim() != 2 or triples.shape[-1] != 3:
        raise ValueError(f"relation_satisfaction needs boxes (O, 4) and triples (T, 3), got "
                         f"{tuple(boxes.shape)} and {tuple(triples.shape)}")
    if len(triples) and int(triples[:, 1].max()) >= len(pred_names):
        raise ValueError(f"predicate id {int(triples[:, 1].max())} is outside the "
                         f"{len(pred_names)} predicate names given")
    b = boxes.detach().double().cpu()
    centres = torch.stack([(b[:, 0] + b[:, 2]) / 2, (b[:, 1] + b[:, 3]) / 2], dim=1)
    counts = {name: [0, 0] for name in GEOMETRIC_PREDICATES}
    for s, p, o in triples.tolist():
        name = pred_names[p]
        if name not in counts:
            continue
        got = COCO_PREDICATES[spatial_predicate(b[s].tolist(), b[o].tolist(),
                                                centres[s].tolist(), centres[o].tolist())]
        counts[name][0] += int(got == name)
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
