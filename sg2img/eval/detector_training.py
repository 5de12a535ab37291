"""Train the procedural-scenes detector, score it on real val images, pick its threshold, ship it.

:func:`train_detector` trains :func:`~sg2img.eval.detector.build_detector`'s FCOS on the train
split's real images and boxes (every class, stuff included), checkpointing every few minutes
so that ``resume=True`` goes on where a killed run stopped. At the end, on the real val images:
    * mAP@0.5 and per-class AP with torchmetrics' ``MeanAveragePrecision``;
    * the ONE score threshold: the lowest (on a 0.01 grid) whose precision, with detections
      greedily matched one-to-one to ground-truth boxes of their class at IoU >= 0.5, is at
      least ``min_precision`` (0.95); it is stored with the weights and never tuned again;
    * recall at that threshold, over all objects and over objects under 5 % of the image.
It writes ``detector.pt`` and the ``detector`` entry of ``meta.json``.
``scripts/train_eval_nets.py --nets detector`` is its command line.
"""

from __future__ import annotations

import json
import logging
import math
import platform
import time
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from os import PathLike
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from ..files import atomic_torch_save, load_torch_file
from ..scene_graph import collate_graphs
from .boxes import box_area_fraction, real_object_mask
from .detector import (
    DETECTOR_FILE,
    SceneDetector,
    build_detector,
    detector_arch,
    load_detector,
    save_detector,
)
from .nets import images_to_uint8

logger = logging.getLogger(__name__)
SMALL_AREA = 0.05
CHECKPOINT_FORMAT_VERSION = 1


@dataclass
class DetectorTraining:
    """How :func:`train_detector` trains; the defaults made the shipped detector.

    Attributes:
        steps: optimiser steps in all.
        batch_size: images per step.
        lr / weight_decay / warmup: AdamW, linear warm-up then cosine decay to 0.
        arch: :func:`~sg2img.eval.detector.detector_arch` settings.
        checkpoint_every_s: seconds between checkpoints.
        time_limit_s: stop early once this many seconds of training are spent (a budget on a
            shared machine; the card records the steps done); None: run all ``steps``.
        min_precision: the threshold is the lowest whose val precision reaches this.
        iou: IoU for a detection to count as finding a ground-truth box.
        small_area: objects under this fraction of the image are "small".
        max_train / max_val: use at most this many images of each split (None: all).
        seed: of the training order and the augmentation.
    """

    steps: int = 3000
    batch_size: int = 16
    lr: float = 1e-3
    weight_decay: float = 1e-4
    warmup: int = 200
    arch: dict[str, Any] = field(default_factory=detector_arch)
    checkpoint_every_s: float = 180.0
    time_limit_s: float | None = None
    min_precision: float = 0.95
    iou: float = 0.5
    small_area: float = SMALL_AREA
    max_train: int | None = None
    max_val: int | None = None
    seed: int = 0


def collect_boxes(dataset: Any, limit: int | None = None,
                  batch_size: int = 64) -> dict[str, Any]:
    """Real images and their object boxes as compact tensors (``__image__`` left out).

    Returns:
        ``images`` uint8 (N, 3, H, W); ``boxes`` a list of N float (K_i, 4) in [0, 1];
        ``labels`` a list of N long (K_i,).
    """
    n = len(dataset) if limit is None else min(limit, len(dataset))
    images, boxes, labels = [], [], []
    for start in range(0, n, batch_size):
        batch = collate_graphs([dataset[i] for i in range(start, min(n, start + batch_size))])
        images.append(images_to_uint8(batch.images))
        keep = real_object_mask(batch.objs) & (box_area_fraction(batch.boxes) > 0)
        for i in range(batch.num_images):
            sel = keep & (batch.obj_to_img == i)
            boxes.append(batch.boxes[sel].float().clamp(0, 1))
            labels.append(batch.objs[sel].long())
    return {"images": torch.cat(images), "boxes": boxes, "labels": labels}


def _batch(data: dict[str, Any], idx: Tensor, gen: torch.Generator | None
           ) -> tuple[Tensor, list[dict[str, Tensor]]]:
    """Images in [-1, 1] and torchvision targets (pixel boxes); random flips when ``gen``."""
    x = data["images"][idx].float() / 127.5 - 1.0
    side = x.shape[-1]
    flip = (torch.rand(len(idx), generator=gen) < 0.5) if gen is not None else \
        torch.zeros(len(idx), dtype=torch.bool)
    targets = []
    for j, i in enumerate(idx.tolist()):
        b = data["boxes"][i].clone()
        if flip[j]:
            b[:, [0, 2]] = 1.0 - b[:, [2, 0]]
        targets.append({"boxes": b * side, "labels": data["labels"][i]})
    x = torch.where(flip[:, None, None, None], x.flip(-1), x)
    if gen is not None:                        # small brightness jitter, colours kept
        x = (x + (torch.rand(len(x), 1, 1, 1, generator=gen) - 0.5) * 0.1).clamp(-1, 1)
    return x, targets


def _lr_factor(step: int, steps: int, warmup: int) -> float:
    if step < warmup:
        return (step + 1) / warmup
    return 0.5 * (1 + math.cos(math.pi * (step - warmup) / max(1, steps - warmup)))


def fit_detector(detector: SceneDetector, data: dict[str, Any], options: DetectorTraining,
                 checkpoint: str | PathLike | None = None, resume: bool = False
                 ) -> tuple[float, int]:
    """AdamW on torchvision's FCOS losses; checkpoints to ``checkpoint``, resumes from it.

    Args:
        detector: the detector to train (in place).
        data: :func:`collect_boxes` of the train split.
        options: steps, batch size, learning rate, checkpoint interval.
        checkpoint: the checkpoint file (None: no checkpoints).
        resume: go on from ``checkpoint`` when it exists.

    Returns:
        Seconds spent training (over all runs of a resumed training) and the steps done.

    Raises:
        ValueError: the checkpoint is of another detector or run (other steps or classes).
    """
    o = options
    gen = torch.Generator().manual_seed(o.seed)
    opt = torch.optim.AdamW(detector.parameters(), lr=o.lr, weight_decay=o.weight_decay)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: _lr_factor(s, o.steps, o.warmup))
    step, spent, losses = 0, 0.0, []
    n = len(data["images"])
    order, pos = torch.randperm(n, generator=gen), 0
    ckpt = Path(checkpoint) if checkpoint is not None else None
    if resume and ckpt is not None and ckpt.is_file():
        state = load_torch_file(ckpt, "detector checkpoint", ValueError)
        if (not isinstance(state, dict) or state.get("steps") != o.steps
                or state.get("object_names") != list(detector.object_names)
                or state.get("arch") != detector.arch):
            raise ValueError(f"{ckpt} is a checkpoint of another detector training (other "
                             f"steps, classes or architecture); delete it or drop --resume")
        detector.model.load_state_dict(state["model"])
        opt.load_state_dict(state["optimizer"])
        sched.load_state_dict(state["scheduler"])
        gen.set_state(state["generator"])
        step, spent, losses = int(state["step"]), float(state["seconds"]), list(state["losses"])
        if isinstance(state.get("order"), Tensor) and len(state["order"]) == len(data["images"]):
            order, pos = state["order"], int(state["pos"])   # the same batches as unbroken
        logger.info("[detector] resumed from %s at step %d/%d", ckpt, step, o.steps)

    def save() -> None:
        if ckpt is not None:
            atomic_torch_save({"format_version": CHECKPOINT_FORMAT_VERSION, "steps": o.steps,
                               "object_names": list(detector.object_names),
                               "arch": dict(detector.arch), "step": step, "seconds": spent,
                               "losses": losses, "order": order, "pos": pos,
                               "model": detector.model.state_dict(),
                               "optimizer": opt.state_dict(), "scheduler": sched.state_dict(),
                               "generator": gen.get_state()}, ckpt, "detector checkpoint")

    detector.train()
    t_run, t_saved, window = time.time(), time.time(), []
    while step < o.steps:
        if o.time_limit_s is not None and spent + time.time() - t_run >= o.time_limit_s:
            logger.warning("[detector] time limit of %.0f s reached at step %d/%d: stopping",
                           o.time_limit_s, step, o.steps)
            break
        if pos + o.batch_size > n:
            order, pos = torch.randperm(n, generator=gen), 0
        idx = order[pos:pos + o.batch_size]
        pos += o.batch_size
        x, targets = _batch(data, idx, gen)
        loss_dict = detector(x, targets)
        loss = sum(loss_dict.values())
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(detector.parameters(), 10.0)
        opt.step()
        sched.step()
        step += 1
        window.append({k: float(v.detach()) for k, v in loss_dict.items()})
        if step % 50 == 0 or step == o.steps:
            mean = {k: round(sum(w[k] for w in window) / len(window), 4) for k in window[0]}
            losses.append({"step": step, **mean})
            window = []
            logger.info("[detector] step %d/%d loss %s lr %.2e (%.0f s)", step, o.steps, mean,
                        sched.get_last_lr()[0], spent + time.time() - t_run)
        if time.time() - t_saved >= o.checkpoint_every_s:
            spent += time.time() - t_run
            t_run = time.time()
            save()
            t_saved = time.time()
    spent += time.time() - t_run
    save()
    detector.eval()
    return spent, step


@torch.no_grad()
def predict_boxes(detector: SceneDetector, images: Tensor, min_score: float = 0.05,
                  batch_size: int = 64) -> list[dict[str, Tensor]]:
    """``detector`` on uint8 images (N, 3, H, W): per image ``boxes`` in [0, 1], ``scores``,
    ``labels`` of every detection scoring at least ``min_score``."""
    out = []
    for start in range(0, len(images), batch_size):
        x = images[start:start + batch_size].float() / 127.5 - 1.0
        for d in detector.detect(x, threshold=min_score):
            out.append({"boxes": d.boxes, "scores": d.scores, "labels": d.labels})
    return out


def greedy_matches(preds: list[dict[str, Tensor]], boxes: list[Tensor], labels: list[Tensor],
                   iou: float = 0.5) -> tuple[Tensor, Tensor, Tensor]:
    """Match detections one-to-one to ground-truth boxes, highest score first.

    A detection takes the unmatched ground-truth box of its class with the highest IoU, if
    that IoU is at least ``iou``. Matching in score order means the matches among the
    detections above any threshold do not depend on the detections below it.

    Returns:
        detection scores (D,), whether each detection matched (D,) bool, and per
        ground-truth box the score of the detection that matched it, -1 if none (G,).
    """
    from torchvision.ops import box_iou

    scores, hits, gt_scores = [], [], []
    for p, gt_b, gt_l in zip(preds, boxes, labels, strict=True):
        order = torch.argsort(p["scores"], descending=True)
        matched = torch.full((len(gt_l),), -1.0)
        ious = box_iou(p["boxes"][order], gt_b) if len(gt_l) and len(order) else None
        for rank, d in enumerate(order.tolist()):
            ok = False
            if ious is not None:
                cand = ious[rank].clone()
                cand[(gt_l != p["labels"][d]) | (matched >= 0)] = -1.0
                best = int(torch.argmax(cand))
                if cand[best] >= iou:
                    matched[best] = float(p["scores"][d])
                    ok = True
            scores.append(float(p["scores"][d]))
            hits.append(ok)
        gt_scores.append(matched)
    return (torch.tensor(scores), torch.tensor(hits, dtype=torch.bool),
            torch.cat(gt_scores) if gt_scores else torch.zeros(0))


def choose_threshold(scores: Tensor, hits: Tensor, min_precision: float = 0.95
                     ) -> tuple[float, float]:
    """The lowest threshold on a 0.01 grid (0.05-0.99) whose precision >= ``min_precision``.

    Returns:
        (threshold, its precision); when no threshold reaches it, the one with the highest
        precision (the caller reports it).
    """
    best = (0.99, -1.0)
    for t in [round(0.05 + 0.01 * i, 2) for i in range(95)]:
        keep = scores >= t
        if not keep.any():
            continue
        precision = float(hits[keep].float().mean())
        if precision >= min_precision:
            return t, precision
        if precision > best[1]:
            best = (t, precision)
    return best


def detection_scores(detector: SceneDetector, data: dict[str, Any], options: DetectorTraining
                     ) -> dict[str, Any]:
    """mAP@0.5, per-class AP, the chosen threshold and recall, on ``data`` (val).

    Returns:
        ``map_50``, ``ap_50_per_class`` (name -> AP), ``threshold``, ``precision``,
        ``recall``, ``small_object_recall`` (objects under ``small_area`` of the image),
        ``num_objects`` and ``num_small_objects``.
    """
    from torchmetrics.detection import MeanAveragePrecision

    preds = predict_boxes(detector, data["images"])
    side = float(data["images"].shape[-1])
    metric = MeanAveragePrecision(iou_type="bbox", iou_thresholds=[options.iou],
                                  class_metrics=True)
    metric.update([{k: (v * side if k == "boxes" else v) for k, v in p.items()} for p in preds],
                  [{"boxes": b * side, "labels": lab}
                   for b, lab in zip(data["boxes"], data["labels"], strict=True)])
    result = metric.compute()
    per_class = {detector.object_names[int(c)]: round(float(ap), 4)
                 for c, ap in zip(result["classes"].flatten(),
                                  result["map_per_class"].flatten(), strict=True)
                 if float(ap) >= 0}                  # -1: no ground truth of that class
    scores, hits, gt_scores = greedy_matches(preds, data["boxes"], data["labels"], options.iou)
    threshold, precision = choose_threshold(scores, hits, options.min_precision)
    small = torch.cat([box_area_fraction(b) for b in data["boxes"]]) < options.small_area
    found = gt_scores >= threshold
    return {"map_50": round(float(result["map_50"]), 4), "ap_50_per_class": per_class,
            "threshold": threshold, "precision": round(precision, 4),
            "recall": round(float(found.float().mean()), 4),
            "small_object_recall": round(float(found[small].float().mean()), 4)
            if small.any() else None,
            "num_objects": int(len(found)), "num_small_objects": int(small.sum())}


def train_detector(train_set: Any, val_set: Any, out: str | PathLike,
                   options: DetectorTraining | None = None, *,
                   checkpoint: str | PathLike | None = None, resume: bool = False,
                   provenance: dict[str, Any] | None = None) -> list[Path]:
    """Train the detector on ``train_set``, score it and set its threshold on ``val_set``.

    The initial weights come from torch's global RNG: seed it for a repeatable run. The
    scores are those of the detector as saved (float16 weights), reloaded from the file.

    Args:
        train_set / val_set: datasets of ``GraphSample`` with real images and boxes, with a
            ``.vocab``.
        out: output folder (``sg2img/assets/eval`` ships the procedural-scene detector).
        options: how to train (:class:`DetectorTraining`).
        checkpoint: checkpoint file (None: no checkpoints).
        resume: go on from ``checkpoint`` when it exists.
        provenance: recorded in the detector's card (``data``, ``command``, ...).

    Returns:
        The files written: ``detector.pt``, then ``meta.json``.
    """
    o = DetectorTraining() if options is None else options
    t0 = time.time()
    names = tuple(train_set.vocab.object_names)
    train = collect_boxes(train_set, o.max_train)
    val = collect_boxes(val_set, o.max_val)
    logger.info("[detector] data: %d train images / %d boxes, %d val images / %d boxes "
                "(%.0f s)", len(train["images"]), sum(len(b) for b in train["boxes"]),
                len(val["images"]), sum(len(b) for b in val["boxes"]), time.time() - t0)
    detector = build_detector(names, 0.5, o.arch)
    seconds, steps_done = fit_detector(detector, train, o, checkpoint, resume)
    out = Path(out)
    path = out / DETECTOR_FILE
    save_detector(detector, path)                      # float16, as shipped, then scored
    shipped = load_detector(path)
    scores = detection_scores(shipped, val, o)
    logger.info("[detector] val: %s", scores)
    if scores["precision"] < o.min_precision:
        logger.warning("[detector] no threshold reaches precision %.2f on val; using %.2f "
                       "(precision %.3f)", o.min_precision, scores["threshold"],
                       scores["precision"])
    shipped.threshold = scores["threshold"]
    card = {"name": "SceneDetector", "object_names": list(names), **(provenance or {}),
            "trained": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "torch": str(torch.__version__), "python": platform.python_version(),
            "train_images": len(train["images"]), "val_images": len(val["images"]),
            "training": {k: v for k, v in asdict(o).items() if k not in ("max_val",)},
            "steps_done": steps_done, "train_seconds": round(seconds), "val": scores}
    save_detector(shipped, path, **card)
    card["size_mb"] = round(path.stat().st_size / 2 ** 20, 2)
    return [path, _write_meta_entry(out, names, {k: v for k, v in card.items()
                                                  if k != "object_names"})]


def share_detector(val_set: Any, out: str | PathLike, weights_of: int,
                   options: DetectorTraining | None = None, *,
                   provenance: dict[str, Any] | None = None) -> list[Path]:
    """Use the detector shipped for ``weights_of`` px images on ``val_set``'s size as well:
    score it on ``val_set`` and choose its threshold there by the same rule as
    :func:`train_detector`, then record both in ``out/meta.json`` (no weights are copied;
    :func:`sg2img.eval.load_detector` reads the entry).

    The shipped FCOS resizes its input to 128 px, so a 64 px detector reads 128 px images at
    their own size; whether it still finds what is there is what the scores say.

    Returns:
        ``[meta.json]``.
    """
    o = DetectorTraining() if options is None else options
    detector = load_detector(image_size=weights_of)
    names = tuple(val_set.vocab.object_names)
    if tuple(detector.object_names) != names:
        raise ValueError(f"the {weights_of} px detector was trained on another vocabulary "
                         f"than the dataset's; train one with --nets detector")
    scores = detection_scores(detector, collect_boxes(val_set, o.max_val), o)
    logger.info("[detector] the %d px detector on this data: %s", weights_of, scores)
    entry = {"weights_of": int(weights_of), "threshold": float(scores["threshold"]),
             "name": "SceneDetector", **(provenance or {}),
             "scored": datetime.now(timezone.utc).isoformat(timespec="seconds"),
             "val_images": len(val_set), "val": scores}
    return [_write_meta_entry(Path(out), names, entry)]


def _write_meta_entry(out: Path, names: tuple[str, ...], entry: dict[str, Any]) -> Path:
    """Set ``out/meta.json``'s ``detector`` entry, keeping the other nets' entries (unless
    they were made for another vocabulary: meta.json then starts again)."""
    meta_path = out / "meta.json"
    meta = json.loads(meta_path.read_text()) if meta_path.is_file() else {}
    if meta.get("object_names", list(names)) != list(names):
        meta = {}
    meta["object_names"] = list(names)
    meta["detector"] = entry
    out.mkdir(parents=True, exist_ok=True)
    meta_path.write_text(json.dumps(meta, indent=2) + "\n")
    return meta_path
