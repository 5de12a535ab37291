"""Train the evaluation networks on a dataset's real images and ship them.

Trains, on the train split:
  * SceneFeatureNet: whole images -> which object classes are present (multi-label); its
    penultimate features give FID and its softmax gives IS on the procedural scenes;
  * CropClassifier: ground-truth object crops (roi_align) -> object class (Grid2Im's
    classification-accuracy protocol),
  * AttributeClassifier (datasets with attributes): crops of the objects whose class comes in
    several colours -> the colour (``sg2img evaluate --metrics attr_acc attr_swap``),
then reports held-out accuracy on the val split and writes ``scene_feature_net.pt``,
``crop_classifier.pt``, ``attribute_classifier.pt`` and ``meta.json`` to ``--out`` (``--nets``
picks which; meta.json keeps the entries of the nets not retrained).

    python scripts/train_eval_nets.py --data data/shapes64 --out sg2img/assets/eval
    python scripts/train_eval_nets.py --data /work/ext/shapes64_attr --out sg2img/assets/eval \
        --nets attributes

Small nets, CPU, one thread by default: a few minutes on the procedural scenes.
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import sys
import time
from collections.abc import Sequence
from datetime import datetime, timezone
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor

from sg2img.eval import (
    AttributeClassifier,
    CropClassifier,
    SceneFeatureNet,
    classification_accuracy,
    crop_objects,
    images_to_uint8,
    real_object_mask,
    save_eval_net,
    scene_feature_extractor,
)
from sg2img.scene_graph import collate_graphs


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
    """Adam with a cosine schedule; prints one line per epoch."""
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
        print(f"[{label}] epoch {epoch + 1}/{epochs} loss {total / len(inputs):.4f} "
              f"({time.time() - t0:.0f} s)", flush=True)
    net.eval()


@torch.no_grad()
def predict(net: torch.nn.Module, inputs: Tensor, batch_size: int = 256) -> Tensor:
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
                     seed: int = 0) -> dict[str, float]:
    """FID / IS of real images with the trained net: what a perfect generator would score.

    Args:
        net: the trained SceneFeatureNet.
        train_images: uint8 (N, 3, H, W) real train images (at most 2000 are used).
        val_images: uint8 (N, 3, H, W) real val images.
    """
    import warnings

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
    return {f"fid_val_vs_train{n}": fid(train_images[:n], val_images),
            "fid_val_vs_val_plus_noise0.1": fid(val_images, noisy),
            "is_val_mean": float(is_mean), "is_val_std": float(is_std)}


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", required=True, help="dataset root (COCO-Stuff layout)")
    p.add_argument("--dataset", default="coco", choices=("coco", "vg"))
    p.add_argument("--out", required=True,
                   help="output folder; sg2img/assets/eval ships the procedural-scene nets")
    p.add_argument("--image-size", type=int, default=64)
    p.add_argument("--crop-size", type=int, default=32)
    p.add_argument("--feature-epochs", type=int, default=8)
    p.add_argument("--classifier-epochs", type=int, default=4)
    p.add_argument("--attribute-epochs", type=int, default=6)
    p.add_argument("--nets", nargs="+", default=["feature", "classifier", "attributes"],
                   choices=["feature", "classifier", "attributes"],
                   help="which networks to train (attributes only on datasets with attributes)")
    p.add_argument("--attribute-labels", nargs="+", default=None, metavar="NAME",
                   help="what the attribute classifier names (default: the procedural "
                        "scenes' colours)")
    p.add_argument("--width", type=int, default=16, help="channels of the first conv block")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--lr", type=float, default=2e-3)
    p.add_argument("--max-train", type=int, default=None, help="use at most this many images")
    p.add_argument("--max-val", type=int, default=None)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--seed", type=int, default=0)
    return p.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    from sg2img.config import DataConfig
    from sg2img.data import build_dataset

    data_cfg = DataConfig(dataset=args.dataset, root=args.data)
    t0 = time.time()
    train_set = build_dataset(data_cfg, "train", args.image_size, 16)
    val_set = build_dataset(data_cfg, "val", args.image_size, 16)
    vocab = train_set.vocab
    c = vocab.num_objects
    train = collect(train_set, c, args.crop_size, args.max_train)
    val = collect(val_set, c, args.crop_size, args.max_val)
    print(f"data: {len(train['images'])} train images / {len(train['crops'])} crops, "
          f"{len(val['images'])} val images / {len(val['crops'])} crops, {c} object slots "
          f"({time.time() - t0:.0f} s)", flush=True)

    command = "python scripts/train_eval_nets.py " + " ".join(sys.argv[1:] if argv is None
                                                              else argv)
    common = {"object_names": list(vocab.object_names), "data": str(args.data),
              "dataset": args.dataset, "command": command,
              "trained": datetime.now(timezone.utc).isoformat(timespec="seconds"),
              "torch": str(torch.__version__), "python": platform.python_version()}
    out = Path(args.out)
    meta_path = out / "meta.json"
    meta = json.loads(meta_path.read_text()) if meta_path.is_file() else {}
    if meta.get("object_names", list(vocab.object_names)) != list(vocab.object_names):
        meta = {}                # another dataset's nets: meta.json starts again
    meta["object_names"] = list(vocab.object_names)
    strip = {"object_names"}
    written = []

    if "feature" in args.nets:
        feature_net = SceneFeatureNet(c, image_size=args.image_size, width=args.width)
        t1 = time.time()
        fit(feature_net, train["images"], train["presence"],
            F.binary_cross_entropy_with_logits, epochs=args.feature_epochs,
            batch_size=args.batch_size, lr=args.lr, seed=args.seed, label="SceneFeatureNet")
        feature_time = time.time() - t1
        feature_val = presence_scores(predict(feature_net, val["images"]), val["presence"])
        print(f"SceneFeatureNet val: {feature_val}", flush=True)
        reference = reference_scores(feature_net, train["images"], val["images"], args.seed)
        print(f"SceneFeatureNet reference scores of real images: {reference}", flush=True)
        feature_meta = {**common, "name": "SceneFeatureNet",
                        "train_images": len(train["images"]), "val_images": len(val["images"]),
                        "epochs": args.feature_epochs, "train_seconds": round(feature_time),
                        "val": feature_val, "reference_real_images": reference}
        save_eval_net(feature_net, out / "scene_feature_net.pt", feature_meta)
        meta["scene_feature_net"] = {k: v for k, v in feature_meta.items() if k not in strip}
        written.append(out / "scene_feature_net.pt")

    if "classifier" in args.nets:
        classifier = CropClassifier(c, crop_size=args.crop_size, width=args.width)
        t1 = time.time()
        fit(classifier, train["crops"], train["labels"], F.cross_entropy,
            epochs=args.classifier_epochs, batch_size=args.batch_size, lr=args.lr,
            seed=args.seed, label="CropClassifier")
        classifier_time = time.time() - t1
        clf_val = classification_accuracy(predict(classifier, val["crops"]), val["labels"], c)
        print(f"CropClassifier val: {clf_val}", flush=True)
        clf_meta = {**common, "name": "CropClassifier", "train_crops": len(train["crops"]),
                    "val_crops": len(val["crops"]), "epochs": args.classifier_epochs,
                    "train_seconds": round(classifier_time), "val": clf_val}
        save_eval_net(classifier, out / "crop_classifier.pt", clf_meta)
        meta["crop_classifier"] = {k: v for k, v in clf_meta.items() if k not in strip}
        written.append(out / "crop_classifier.pt")

    if "attributes" in args.nets and train["attributes"] is None:
        print("no attributes in this dataset: the attribute classifier is not trained")
    elif "attributes" in args.nets:
        if args.attribute_labels:
            labels = list(args.attribute_labels)
        else:
            from sg2img.data.shapes import PALETTES
            labels = sorted({a for p in PALETTES.values() for a in p})
        idx, y, class_attributes = attribute_targets(train, vocab, labels)
        vidx, vy, _ = attribute_targets(val, vocab, labels, class_attributes)
        counts = {n: {a: 0 for a in v} for n, v in class_attributes.items()}
        for k, t in zip(idx.tolist(), y.tolist(), strict=True):
            counts[vocab.object_name(int(train["labels"][k]))][labels[t]] += 1
        print(f"attribute classifier: {len(idx)} train / {len(vidx)} val crops; train crops "
              f"per class and label: {counts}", flush=True)
        attr_net = AttributeClassifier(len(labels), crop_size=args.crop_size, width=args.width)
        t1 = time.time()
        fit(attr_net, train["crops"][idx], y, F.cross_entropy, epochs=args.attribute_epochs,
            batch_size=args.batch_size, lr=args.lr, seed=args.seed, label="AttributeClassifier")
        attr_time = time.time() - t1
        attr_val = classification_accuracy(predict(attr_net, val["crops"][vidx]), vy,
                                           len(labels))
        print(f"AttributeClassifier val: {attr_val}", flush=True)
        attr_meta = {**common, "name": "AttributeClassifier", "attribute_names": labels,
                     "class_attributes": class_attributes,
                     "vocab_attribute_names": list(vocab.attribute_names or ()),
                     "train_crops": len(idx), "train_crops_per_label": counts,
                     "val_crops": len(vidx), "epochs": args.attribute_epochs,
                     "train_seconds": round(attr_time), "val": attr_val}
        save_eval_net(attr_net, out / "attribute_classifier.pt", attr_meta)
        meta["attribute_classifier"] = {k: v for k, v in attr_meta.items() if k not in strip}
        written.append(out / "attribute_classifier.pt")

    meta_path.write_text(json.dumps(meta, indent=2) + "\n")
    print(f"wrote {', '.join(map(str, written + [meta_path]))} "
          f"(total {time.time() - t0:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
