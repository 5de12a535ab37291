"""Train the evaluation networks on a dataset's real images and write them with their meta.json.

:func:`train_eval_nets` trains, on the train split:
  * SceneFeatureNet: whole images -> which object classes are present (multi-label); its
    penultimate features give FID and its softmax gives IS on the procedural scenes;
  * CropClassifier: ground-truth object crops (roi_align) -> object class (Grid2Im's
    classification-accuracy protocol),
  * AttributeClassifier (datasets with attributes): crops of the objects whose class comes in
    several colours -> the colour (``sg2img evaluate --metrics attr_acc attr_swap``),
then scores them on the val split and writes ``scene_feature_net.pt``, ``crop_classifier.pt``,
``attribute_classifier.pt`` and ``meta.json`` (``nets`` picks which; meta.json keeps the
entries of the nets not retrained). ``scripts/train_eval_nets.py`` is its command line.
"""

from __future__ import annotations

import json
import logging
import math
import platform
import time
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from os import PathLike
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from ..scene_graph import collate_graphs
from .boxes import real_object_mask
from .nets import (
    AttributeClassifier,
    CropClassifier,
    SceneFeatureNet,
    crop_objects,
    down_and_up,
    images_to_uint8,
    load_eval_net,
    save_eval_net,
    scene_feature_extractor,
)
from .object_accuracy import classification_accuracy

logger = logging.getLogger(__name__)
EVAL_NET_KINDS = ("feature", "classifier", "attributes")


@dataclass
class EvalNetTraining:
    """How :func:`train_eval_nets` trains; the defaults made the shipped procedural nets.

    Attributes:
        nets: which networks to train, of ``"feature"``, ``"classifier"``, ``"attributes"``
            (attributes only on datasets with attributes).
        image_size: the dataset's image size (the SceneFeatureNet's input).
        crop_size: S of the (S, S) object crops.
        feature_epochs / classifier_epochs / attribute_epochs: epochs of each network.
        attribute_labels: what the attribute classifier names; None: the procedural scenes'
            colours.
        width: channels of the first conv block.
        batch_size, lr: of the Adam loop (:func:`fit`).
        max_train / max_val: use at most this many images of each split (None: all).
        seed: of the training order, the augmentation and the reference scores.
    """

    nets: Sequence[str] = EVAL_NET_KINDS
    image_size: int = 64
    crop_size: int = 32
    feature_epochs: int = 8
    classifier_epochs: int = 4
    attribute_epochs: int = 6
    attribute_labels: Sequence[str] | None = None
    width: int = 16
    batch_size: int = 64
    lr: float = 2e-3
    max_train: int | None = None
    max_val: int | None = None
    seed: int = 0


def collect(dataset, num_classes: int, crop_size: int, limit: int | None = None,
            batch_size: int = 64) -> dict[str, Tensor]:
    """Real images, class-presence targets, object crops and their labels, as compact tensors.

    Returns:
        ``images`` uint8 (N, 3, H, W); ``presence`` float (N, C) multi-hot (``__image__``
        left out); ``crops`` uint8 (K, 3, S, S); ``labels`` long (K,); ``attributes`` float
        (K, A) multi-hot, or None when the dataset has no attributes.
    """
    n = len(dataset) if limit is None else min(limit, len(dataset))
    images, presence, crops, labels, attributes = [], [], [], [], []
    for start in range(0, n, batch_size):
        batch = collate_graphs([dataset[i] for i in range(start, min(n, start + batch_size))])
        images.append(images_to_uint8(batch.images))
        p = torch.zeros(batch.num_images, num_classes)
        keep = real_object_mask(batch.objs)
        p[batch.obj_to_img[keep], batch.objs[keep]] = 1.0
        presence.append(p)
        c, y = crop_objects(batch.images, batch.objs, batch.boxes, batch.obj_to_img, crop_size)
        crops.append(images_to_uint8(c))
        labels.append(y)
        if batch.attributes is not None:
            attributes.append(batch.attributes[keep])
    return {"images": torch.cat(images), "presence": torch.cat(presence),
            "crops": torch.cat(crops), "labels": torch.cat(labels),
            "attributes": torch.cat(attributes) if attributes else None}


def attribute_targets(data: dict[str, Tensor], vocab, labels: Sequence[str],
                      class_attributes: dict[str, list[str]] | None = None
                      ) -> tuple[Tensor, Tensor, dict[str, list[str]]]:
    """Which crops teach the attribute classifier, and their label index.

    A crop counts when its object carries exactly one of ``labels``; with
    ``class_attributes`` None (the train split) the classes are those seen with at least two
    of the labels (a colour that never varies, sky "blue", teaches nothing).

    Returns:
        crop indices (K',), targets (K',) into ``labels``, and class name -> its labels.
    """
    cols = torch.tensor([vocab.attribute_idx(n) for n in labels])
    hot = data["attributes"][:, cols] > 0.5                              # (K, L)
    single = hot.sum(dim=1) == 1
    target = hot.float().argmax(dim=1)
    if class_attributes is None:
        seen: dict[str, set[str]] = {}
        for k in torch.nonzero(single).flatten().tolist():
            name = vocab.object_name(int(data["labels"][k]))
            seen.setdefault(name, set()).add(labels[int(target[k])])
        class_attributes = {n: sorted(v) for n, v in sorted(seen.items()) if len(v) >= 2}
    ok = torch.tensor([bool(single[k]) and vocab.object_name(int(c)) in class_attributes
                       for k, c in enumerate(data["labels"].tolist())], dtype=torch.bool)
    idx = torch.nonzero(ok).flatten()
    return idx, target[idx], class_attributes


def _to_float(x: Tensor) -> Tensor:
    return x.float() / 127.5 - 1.0                          # uint8 [0, 255] -> [-1, 1]


def _augment(x: Tensor, gen: torch.Generator) -> Tensor:
    """Random horizontal flips and small brightness jitter, keeping [-1, 1]."""
    flip = torch.rand(len(x), generator=gen) < 0.5
    x = torch.where(flip[:, None, None, None], x.flip(-1), x)
    jitter = (torch.rand(len(x), 1, 1, 1, generator=gen) - 0.5) * 0.1
    return (x + jitter).clamp(-1, 1)


def fit(net: torch.nn.Module, inputs: Tensor, targets: Tensor, loss_fn, *, epochs: int,
        batch_size: int, lr: float, seed: int, label: str) -> None:
    """Adam with a cosine schedule; logs one line per epoch."""
    gen = torch.Generator().manual_seed(seed)
    opt = torch.optim.Adam(net.parameters(), lr=lr)
    steps = epochs * math.ceil(len(inputs) / batch_size)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, max(1, steps))
    net.train()
    for epoch in range(epochs):
        order = torch.randperm(len(inputs), generator=gen)
        total, t0 = 0.0, time.time()
        for start in range(0, len(inputs), batch_size):
            idx = order[start:start + batch_size]
            x = _augment(_to_float(inputs[idx]), gen)
            loss = loss_fn(net(x), targets[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            total += float(loss.detach()) * len(idx)
        logger.info("[%s] epoch %d/%d loss %.4f (%.0f s)", label, epoch + 1, epochs,
                    total / len(inputs), time.time() - t0)
    net.eval()


@torch.no_grad()
def predict(net: torch.nn.Module, inputs: Tensor, batch_size: int = 256) -> Tensor:
    """``net`` on uint8 ``inputs`` (K, 3, S, S), in batches: (K, ...) outputs."""
    return torch.cat([net(_to_float(inputs[i:i + batch_size]))
                      for i in range(0, len(inputs), batch_size)])


def presence_scores(logits: Tensor, target: Tensor) -> dict[str, float]:
    """Multi-label scores of the SceneFeatureNet at threshold 0.5 (classes 1.. only)."""
    pred = logits[:, 1:] > 0
    true = target[:, 1:] > 0.5
    tp = (pred & true).sum().item()
    precision = tp / max(1, pred.sum().item())
    recall = tp / max(1, true.sum().item())
    return {"label_accuracy": float((pred == true).float().mean()),
            "exact_match": float((pred == true).all(dim=1).float().mean()),
            "micro_f1": 2 * precision * recall / max(1e-12, precision + recall)}


def reference_scores(net: SceneFeatureNet, train_images: Tensor, val_images: Tensor,
                     seed: int = 0, test_images: Tensor | None = None) -> dict[str, float]:
    """FID / IS of real images with the trained net: what a perfect generator would score,
    and what the net must tell apart.

    Args:
        net: the trained SceneFeatureNet.
        train_images: uint8 (N, 3, H, W) real train images (at most 2000 are used).
        val_images: uint8 (N, 3, H, W) real val images.
        seed: of the added noise and the IS splits.
        test_images: uint8 real test images: with them, ``fid_val_vs_test`` (the FID floor at
            the val count, what generated val pictures are read against).

    Returns:
        ``fid_val_vs_train{n}``, ``fid_val_vs_val_plus_noise0.1``, ``fid_val_vs_val_down{H/2}``
        (val against itself at half the resolution and back, :func:`down_and_up`: a net that
        cannot see lost detail scores it near the floor), ``is_val_mean``, ``is_val_std`` and,
        with test images, ``fid_val_vs_test``.
    """
    from torchmetrics.image.fid import FrechetInceptionDistance
    from torchmetrics.image.inception import InceptionScore

    ex = scene_feature_extractor(net)

    def fid(real: Tensor, fake: Tensor) -> float:
        metric = FrechetInceptionDistance(feature=ex.fid_features)
        for x in real.split(256):
            metric.update(x, real=True)
        for x in fake.split(256):
            metric.update(x, real=False)
        return float(metric.compute())

    gen = torch.Generator().manual_seed(seed)
    noisy = images_to_uint8((_to_float(val_images)
                             + 0.1 * torch.randn(val_images.shape, generator=gen)).clamp(-1, 1))
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*save all extracted features.*")
        inception_score = InceptionScore(feature=ex.is_logits, splits=10)
    for x in val_images.split(256):
        inception_score.update(x)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        is_mean, is_std = inception_score.compute()
    n = min(2000, len(train_images))
    half = val_images.shape[-1] // 2
    scores = {f"fid_val_vs_train{n}": fid(train_images[:n], val_images),
              "fid_val_vs_val_plus_noise0.1": fid(val_images, noisy),
              f"fid_val_vs_val_down{half}": fid(val_images, down_and_up(val_images, half)),
              "is_val_mean": float(is_mean), "is_val_std": float(is_std)}
    if test_images is not None:
        scores["fid_val_vs_test"] = fid(val_images, test_images)
    return scores


def train_eval_nets(train_set: Any, val_set: Any, out: str | PathLike,
                    options: EvalNetTraining | None = None, *,
                    provenance: dict[str, Any] | None = None,
                    test_set: Any = None) -> list[Path]:
    """Train the evaluation networks on ``train_set``, score them on ``val_set``, write them.

    The networks' initial weights come from torch's global RNG: seed it for a repeatable run.

    Args:
        train_set / val_set: datasets of ``GraphSample`` with real images and boxes, built at
            ``options.image_size``, with a ``.vocab``.
        out: output folder (``sg2img/assets/eval`` ships the procedural-scene nets).
        options: what to train and how (:class:`EvalNetTraining`).
        provenance: recorded in each net's meta (e.g. ``data``, ``dataset``, ``command``).
        test_set: the test split, when there is one: the feature net's reference scores then
            include the FID floor (val against test, :func:`reference_scores`).

    Returns:
        The files written: the networks' ``.pt`` files, then ``meta.json``.
    """
    o = EvalNetTraining() if options is None else options
    t0 = time.time()
    vocab = train_set.vocab
    c = vocab.num_objects
    train = collect(train_set, c, o.crop_size, o.max_train)
    val = collect(val_set, c, o.crop_size, o.max_val)
    logger.info("data: %d train images / %d crops, %d val images / %d crops, %d object slots "
                "(%.0f s)", len(train["images"]), len(train["crops"]), len(val["images"]),
                len(val["crops"]), c, time.time() - t0)

    common = {"object_names": list(vocab.object_names), **(provenance or {}),
              "trained": datetime.now(timezone.utc).isoformat(timespec="seconds"),
              "torch": str(torch.__version__), "python": platform.python_version()}
    out = Path(out)
    meta_path = out / "meta.json"
    meta = json.loads(meta_path.read_text()) if meta_path.is_file() else {}
    if meta.get("object_names", list(vocab.object_names)) != list(vocab.object_names):
        meta = {}                # another dataset's nets: meta.json starts again
    meta["object_names"] = list(vocab.object_names)
    strip = {"object_names"}
    written = []

    if "feature" in o.nets:
        feature_net = SceneFeatureNet(c, image_size=o.image_size, width=o.width)
        t1 = time.time()
        fit(feature_net, train["images"], train["presence"],
            F.binary_cross_entropy_with_logits, epochs=o.feature_epochs,
            batch_size=o.batch_size, lr=o.lr, seed=o.seed, label="SceneFeatureNet")
        feature_time = time.time() - t1
        feature_val = presence_scores(predict(feature_net, val["images"]), val["presence"])
        logger.info("SceneFeatureNet val: %s", feature_val)
        test_images = (None if test_set is None
                       else collect(test_set, c, o.crop_size, o.max_val)["images"])
        reference = reference_scores(feature_net, train["images"], val["images"], o.seed,
                                     test_images)
        logger.info("SceneFeatureNet reference scores of real images: %s", reference)
        feature_meta = {**common, "name": "SceneFeatureNet",
                        "train_images": len(train["images"]), "val_images": len(val["images"]),
                        "epochs": o.feature_epochs, "train_seconds": round(feature_time),
                        "val": feature_val, "reference_real_images": reference}
        save_eval_net(feature_net, out / "scene_feature_net.pt", feature_meta)
        meta["scene_feature_net"] = {k: v for k, v in feature_meta.items() if k not in strip}
        written.append(out / "scene_feature_net.pt")

    if "classifier" in o.nets:
        classifier = CropClassifier(c, crop_size=o.crop_size, width=o.width)
        t1 = time.time()
        fit(classifier, train["crops"], train["labels"], F.cross_entropy,
            epochs=o.classifier_epochs, batch_size=o.batch_size, lr=o.lr,
            seed=o.seed, label="CropClassifier")
        classifier_time = time.time() - t1
        clf_val = classification_accuracy(predict(classifier, val["crops"]), val["labels"], c)
        logger.info("CropClassifier val: %s", clf_val)
        clf_meta = {**common, "name": "CropClassifier", "train_crops": len(train["crops"]),
                    "val_crops": len(val["crops"]), "epochs": o.classifier_epochs,
                    "train_seconds": round(classifier_time), "val": clf_val}
        save_eval_net(classifier, out / "crop_classifier.pt", clf_meta)
        meta["crop_classifier"] = {k: v for k, v in clf_meta.items() if k not in strip}
        written.append(out / "crop_classifier.pt")

    if "attributes" in o.nets and train["attributes"] is None:
        logger.info("no attributes in this dataset: the attribute classifier is not trained")
    elif "attributes" in o.nets:
        if o.attribute_labels:
            labels = list(o.attribute_labels)
        else:
            from ..data.shapes import PALETTES
            labels = sorted({a for p in PALETTES.values() for a in p})
        idx, y, class_attributes = attribute_targets(train, vocab, labels)
        vidx, vy, _ = attribute_targets(val, vocab, labels, class_attributes)
        counts = {n: {a: 0 for a in v} for n, v in class_attributes.items()}
        for k, t in zip(idx.tolist(), y.tolist(), strict=True):
            counts[vocab.object_name(int(train["labels"][k]))][labels[t]] += 1
        logger.info("attribute classifier: %d train / %d val crops; train crops per class and "
                    "label: %s", len(idx), len(vidx), counts)
        attr_net = AttributeClassifier(len(labels), crop_size=o.crop_size, width=o.width)
        t1 = time.time()
        fit(attr_net, train["crops"][idx], y, F.cross_entropy, epochs=o.attribute_epochs,
            batch_size=o.batch_size, lr=o.lr, seed=o.seed, label="AttributeClassifier")
        attr_time = time.time() - t1
        attr_val = classification_accuracy(predict(attr_net, val["crops"][vidx]), vy,
                                           len(labels))
        logger.info("AttributeClassifier val: %s", attr_val)
        attr_meta = {**common, "name": "AttributeClassifier", "attribute_names": labels,
                     "class_attributes": class_attributes,
                     "vocab_attribute_names": list(vocab.attribute_names or ()),
                     "train_crops": len(idx), "train_crops_per_label": counts,
                     "val_crops": len(vidx), "epochs": o.attribute_epochs,
                     "train_seconds": round(attr_time), "val": attr_val}
        save_eval_net(attr_net, out / "attribute_classifier.pt", attr_meta)
        meta["attribute_classifier"] = {k: v for k, v in attr_meta.items() if k not in strip}
        written.append(out / "attribute_classifier.pt")

    meta_path.write_text(json.dumps(meta, indent=2) + "\n")
    return written + [meta_path]


def rescore_feature_net(train_set: Any, val_set: Any, out: str | PathLike, *,
                        test_set: Any = None, seed: int = 0,
                        command: str | None = None) -> list[Path]:
    """Recompute the reference scores of the feature net in ``out`` (after the reference
    set grew, e.g. the FID floor against the test split) and write them to its meta.json.

    The net itself is not changed; ``command`` is recorded as ``rescored_by``.

    Returns:
        ``[meta.json]``.
    """
    out = Path(out)
    net = load_eval_net(out / "scene_feature_net.pt", "SceneFeatureNet")
    c = train_set.vocab.num_objects
    images = {name: None if ds is None else collect(ds, c, 8, 2000 if name == "train" else None)
              ["images"] for name, ds in (("train", train_set), ("val", val_set),
                                          ("test", test_set))}
    reference = reference_scores(net, images["train"], images["val"], seed, images["test"])
    logger.info("SceneFeatureNet reference scores of real images: %s", reference)
    meta_path = out / "meta.json"
    meta = json.loads(meta_path.read_text())
    entry = meta.setdefault("scene_feature_net", {})
    entry["reference_real_images"] = reference
    if command:
        entry["rescored_by"] = command
    meta_path.write_text(json.dumps(meta, indent=2) + "\n")
    return [meta_path]
