"""Layout metrics: ``layout_recall`` and ``layout`` (relations, sizes, small objects, diagnostics).

Both score the boxes a model predicts from the scene graph alone (no box given). The ``layout``
metric can also say where the small objects' misses come from (``EvalOptions.layout_diagnostics``):
recall with one part of each box taken from the truth (:func:`swap_diagnosis`) and with every
other object pinned to its true box (:func:`pinned_small_recall`). :func:`score_layouts` is the
whole-split table of ``scripts/eval_layout.py`` built from the same pieces.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

import torch
from torch import Tensor, nn

from ..scene_graph import GraphBatch, collate_graphs
from .boxes import (
    SMALL_OBJECT_AREA,
    box_area_fraction,
    box_size_fidelity,
    layout_diversity,
    layout_recall,
    layout_recall_by_size,
    paired_box_iou,
    real_object_mask,
    relation_satisfaction,
)
from .canvas import CanvasCoverage
from .context import EvalContext, unpinned
from .registry import Metric


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
        keep = real_object_mask(batch.objs).cpu()
        pred = self.ctx.mode_boxes(batch, outs).detach().float().cpu()
        gt, obj_to_img = batch.boxes.float().cpu(), batch.obj_to_img.cpu()
        self.pred.append(pred[keep])
        self.gt.append(gt[keep])
        for i, image_id in enumerate(batch.image_ids):
            self.by_image[str(image_id)] = pred[keep & (obj_to_img == i)]

    def compute(self) -> dict[str, Any]:
        pred, gt = torch.cat(self.pred), torch.cat(self.gt)
        out: dict[str, Any] = dict(layout_recall(pred, gt, self.thresholds))
        out["by_size"] = layout_recall_by_size(pred, gt, thresholds=self.thresholds)
        return out


class LayoutScores:
    """Accumulates one layout's boxes against the ground truth over batches.

    ``compute`` gives the ``layout`` metric's figures of that layout; :func:`evaluate_box_file`
    scores another system's boxes with it.
    """

    def __init__(self) -> None:
        self.pred: list[Tensor] = []
        self.gt: list[Tensor] = []
        self.classes: list[Tensor] = []
        self.rel_ok = 0.0
        self.rel_n = 0

    def add(self, boxes: Tensor, batch: GraphBatch, pred_names: Sequence[str] | None) -> None:
        """Add a batch's boxes (O, 4) of this layout; ``pred_names`` None skips relations."""
        keep = real_object_mask(batch.objs).cpu()
        boxes = boxes.detach().float().cpu()
        self.pred.append(boxes[keep])
        self.gt.append(batch.boxes.float().cpu()[keep])
        self.classes.append(batch.objs.cpu()[keep])
        if pred_names is not None:
            rel = relation_satisfaction(boxes, batch.triples.cpu(), pred_names)
            if rel["num_triples"]:
                self.rel_ok += rel["relation_satisfaction"] * rel["num_triples"]
                self.rel_n += rel["num_triples"]

    def compute(self, object_names: Sequence[str] | None, thresholds: Sequence[float]
                ) -> dict[str, Any]:
        """The figures of every batch added so far."""
        pred, gt, classes = torch.cat(self.pred), torch.cat(self.gt), torch.cat(self.classes)
        small = box_area_fraction(gt) < SMALL_OBJECT_AREA
        fid = box_size_fidelity(pred, gt, classes, object_names, min_count=10)
        rec = layout_recall(pred, gt, thresholds)
        rec_small = layout_recall(pred[small], gt[small], thresholds)
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
        "layouts of each graph (1 = identical; deterministic heads give 1); canvas = fraction "
        "of the pixels covered by two or more stuff classes and by no class (a class covers a "
        "pixel where its semantic-layout channel is >= 0.5), of the layout each image was "
        "rendered from and of the ground truth (datasets with masks and stuff classes)")
    diagnostics_protocol = (
        "; small_swap (with layout diagnostics): R@0.3 of the mode's small objects as "
        "predicted, with one part of each box (size, horizontal or vertical centre) taken from "
        "the truth, and with every other object pinned to its true box")

    def __init__(self, ctx: EvalContext) -> None:
        super().__init__(ctx)
        self.layouts = {"mode": LayoutScores(), "ground_truth": LayoutScores()}
        self.samples = bool(getattr(ctx.model, "samples_layout", False))
        if self.samples:
            self.layouts["sample"] = LayoutScores()
            self.rngs = [torch.Generator().manual_seed(ctx.seed + k) for k in (1, 2)]
        self.ious: list[Tensor] = []
        self.diagnose = ctx.layout_diagnostics
        names = tuple(ctx.object_names or ())
        stuff = [names.index(n) for n in ctx.stuff_names if n in names]
        self.canvas = CanvasCoverage(stuff) if stuff else None
        if self.diagnose:
            self.protocol = self.protocol + self.diagnostics_protocol
            self.pinned: list[Tensor] = []

    def update(self, batch: GraphBatch, outs: list[Any]) -> None:
        if batch.boxes is None:
            raise ValueError("the layout metric needs ground-truth boxes; the dataset items "
                             "have none")
        names = self.ctx.pred_names
        self.layouts["mode"].add(self.ctx.mode_boxes(batch, outs), batch, names)
        self.layouts["ground_truth"].add(batch.boxes, batch, names)
        if self.canvas is not None and batch.masks is not None and outs[0].layout is not None:
            self.canvas.add(batch, outs[0].layout)
        if self.diagnose:
            keep = real_object_mask(batch.objs)
            small = keep & (box_area_fraction(batch.boxes) < SMALL_OBJECT_AREA)
            self.pinned.append(pinned_small_boxes(self.ctx.model, batch)[small].float().cpu())
        if self.samples:
            free = unpinned(batch)
            a, b = (self.ctx.model.layout_boxes(free, layout_mode="sample", rng=rng)
                    for rng in self.rngs)
            self.layouts["sample"].add(a, batch, names)
            keep = real_object_mask(batch.objs)
            self.ious.append(paired_box_iou(a[keep], b[keep]).float().cpu())

    def compute(self) -> dict[str, Any]:
        out = {name: acc.compute(self.ctx.object_names, self.ctx.recall_thresholds)
               for name, acc in self.layouts.items()}
        iou = torch.cat(self.ious) if self.ious else torch.ones(1)
        out["layout_diversity_mean_iou"] = float(iou.mean())
        out["samples_layout"] = self.samples
        if self.canvas is not None and self.canvas.count:
            out["canvas"] = self.canvas.compute()
        if self.diagnose:
            mode = self.layouts["mode"]
            pred, gt = torch.cat(mode.pred), torch.cat(mode.gt)
            small = box_area_fraction(gt) < SMALL_OBJECT_AREA
            out["small_swap"] = swap_diagnosis(pred[small], gt[small])
            out["small_swap"]["others pinned to the truth"] = float(
                layout_recall(torch.cat(self.pinned), gt[small], (0.3,))["R@0.3"])
        return out


def swap_diagnosis(pred: Tensor, gt: Tensor) -> dict[str, float]:
    """Where a layout's misses come from: R@0.3 with one part of each box from the truth.

    Args:
        pred: (K, 4) predicted boxes as (x0, y0, x1, y1).
        gt: (K, 4) the true boxes of the same objects.

    Returns:
        R@0.3 of ``pred`` as is (``"as predicted"``) and with each box's size (width,
        height), horizontal centre or vertical centre replaced by the truth's (``"true
        size"``, ``"true horizontal centre"``, ``"true vertical centre"``). The part whose swap
        raises recall most is where the misses come from.
    """
    from torchvision.ops import box_convert

    p, g = box_convert(pred.float(), "xyxy", "cxcywh"), box_convert(gt.float(), "xyxy", "cxcywh")
    out = {"as predicted": float(layout_recall(pred, gt, (0.3,))["R@0.3"])}
    for name, cols in (("true size", [2, 3]), ("true horizontal centre", [0]),
                       ("true vertical centre", [1])):
        mixed = p.clone()
        mixed[:, cols] = g[:, cols]
        back = box_convert(mixed, "cxcywh", "xyxy")
        out[name] = float(layout_recall(back, gt, (0.3,))["R@0.3"])
    return out


def pinned_small_boxes(model: nn.Module, batch: GraphBatch) -> Tensor:
    """(O, 4) mode layout with every object but the small ones pinned to its true box.

    What the layout head makes of perfect context: its placement of the small objects (true
    area under :data:`SMALL_OBJECT_AREA`) is conditioned on the pinned boxes. ``model`` lays
    out with ``layout_boxes`` (``GALSGenerator``).
    """
    small = box_area_fraction(batch.boxes) < SMALL_OBJECT_AREA
    with torch.no_grad():
        return model.layout_boxes(replace(batch, box_given=~small), layout_mode="mode")




def score_layouts(model: nn.Module, dataset: Any, class_boxes: Tensor, *, seed: int = 0,
                  min_class_count: int = 10) -> dict[str, Any]:
    """Every layout figure of ``model`` on a whole split at once, nothing rendered.

    Scores the mode layout, one sampled layout (seed ``seed``), the class-mean boxes (the
    graph-blind baseline) and the ground truth (the ceiling): box-size fidelity (also per
    class), relation satisfaction (also per predicate), R@0.3 / R@0.5 of all and of small
    objects; then the mode's :func:`swap_diagnosis` of the small objects with the recall of
    :func:`pinned_small_boxes`, and the diversity between samples ``seed`` and ``seed + 1``.
    Datasets that draw relationships per item draw them from torch's global RNG: seed it.

    Args:
        model: lays out with ``layout_boxes`` (``GALSGenerator``); put in eval mode.
        dataset: items are ``GraphSample`` with ground-truth boxes; has ``.vocab``.
        class_boxes: (C, 4) each class's mean box (:func:`sg2img.eval.mean_class_boxes`).
        seed: seed of the first layout sample.
        min_class_count: classes with fewer objects have no worst-class figure.

    Returns:
        ``{"mode" | "sample" | "class-mean boxes" | "ground truth": figures, "small_swap",
        "diversity", "samples_layout", "num_graphs", "num_triples"}``.
    """
    vocab = dataset.vocab
    batch = collate_graphs([dataset[i] for i in range(len(dataset))])
    batch = replace(batch, box_given=torch.zeros_like(batch.box_given))   # nothing pinned
    real = real_object_mask(batch.objs)
    model.eval()
    with torch.no_grad():
        layouts = {
            "mode": model.layout_boxes(batch, layout_mode="mode"),
            "sample": model.layout_boxes(batch, layout_mode="sample",
                                         rng=torch.Generator().manual_seed(seed)),
        }
        second = model.layout_boxes(batch, layout_mode="sample",
                                    rng=torch.Generator().manual_seed(seed + 1))
    gt = batch.boxes.float()
    layouts["class-mean boxes"] = torch.where(real[:, None], class_boxes[batch.objs], gt)
    layouts["ground truth"] = gt
    small = box_area_fraction(gt) < SMALL_OBJECT_AREA
    report: dict[str, Any] = {}
    for name, boxes in layouts.items():
        fid = box_size_fidelity(boxes[real], gt[real], batch.objs[real], vocab.object_names,
                                min_count=min_class_count)
        rel = relation_satisfaction(boxes, batch.triples, vocab.pred_names)
        rec = layout_recall(boxes[real], gt[real])
        rec_small = layout_recall(boxes[real & small], gt[real & small])
        report[name] = {
            "worst_class": fid["worst_class"],
            "worst_class_abs_log_area": fid["worst_class_mean_abs_log_area_ratio"],
            "all_abs_log_area": fid["mean_abs_log_area_ratio"],
            "relation_satisfaction": rel["relation_satisfaction"],
            "R@0.3": rec["R@0.3"], "R@0.5": rec["R@0.5"],
            "small_R@0.3": rec_small["R@0.3"], "small_R@0.5": rec_small["R@0.5"],
            "num_small": rec_small["num_objects"],
            "by_class": fid["by_class"], "by_predicate": rel["by_predicate"],
        }
    report["small_swap"] = swap_diagnosis(layouts["mode"][real & small], gt[real & small])
    pinned = pinned_small_boxes(model, batch)
    report["small_swap"]["others pinned to the truth"] = float(
        layout_recall(pinned[real & small], gt[real & small], (0.3,))["R@0.3"])
    report["diversity"] = layout_diversity(layouts["sample"][real], second[real])
    report["samples_layout"] = bool(getattr(model, "samples_layout", False))
    report["num_graphs"] = len(dataset)
    report["num_triples"] = report["mode"]["by_predicate"] and sum(
        v["num_triples"] for v in report["mode"]["by_predicate"].values())
    return report
