"""COCO-Stuff scene graphs (sg2im's rules), also used for the procedural scenes.

Objects come from ``instances_*.json`` (things) and ``stuff_*.json`` (stuff) read with
pycocotools. sg2im's filters: keep objects whose box covers more than ``min_object_size`` of
the image, drop the stuff class ``other`` unless asked, and keep images with
``min_objects``..``max_objects`` objects (with ``stuff_only``, only images that have stuff
annotations). Masks are cropped to the box and resized to M x M. Relationships are not in
COCO: ``synthesize_relationships`` makes one per object from geometry, and the image node with
its ``__in_image__`` triples is appended.

The filtered objects with their boxes and masks are cached in an HDF5 file so that loading
does not redo the pycocotools work (the cache key covers the annotation files and the
filter parameters).
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from os import PathLike
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import torch
from PIL import Image
from pycocotools import mask as mask_utils
from torch import Tensor

from ..files import ANNOTATIONS_LIMIT_ENV, max_annotation_bytes, read_json, short
from ..scene_graph import GraphSample
from ..vocab import Vocab, VocabError
from .common import (
    DatasetError,
    RowDataset,
    item_rng,
    load_image,
    require_path,
    spatial_predicate,
)

logger = logging.getLogger(__name__)

_CACHE_VERSION = 2           # 2: object attributes


# ----------------------------------------------------------------------------- relationships
def mask_centroids(boxes: np.ndarray, masks: np.ndarray | None) -> np.ndarray:
    """Centres of the mask pixels in image coordinates (box centres for empty or no masks).

    Args:
        boxes: (O, 4) (x0, y0, x1, y1) in [0, 1].
        masks: (O, M, M) in {0, 1} covering each box, or None.

    Returns:
        (O, 2) float64 (x, y) in [0, 1].
    """
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    centres = np.stack([(boxes[:, 0] + boxes[:, 2]) / 2, (boxes[:, 1] + boxes[:, 3]) / 2], 1)
    if masks is None:
        return centres
    masks = np.asarray(masks) > 0.5
    m = masks.shape[-1]
    t = (np.arange(m) + 0.5) / m                                          # pixel centres
    for i, mask in enumerate(masks):
        n = mask.sum()
        if n == 0:
            continue
        rows, cols = np.nonzero(mask)
        x0, y0, x1, y1 = boxes[i]
        centres[i] = (x0 + t[cols].mean() * (x1 - x0), y0 + t[rows].mean() * (y1 - y0))
    return centres


def synthesize_relationships(boxes: np.ndarray, masks: np.ndarray | None,
                             rng: np.random.Generator) -> np.ndarray:
    """One geometric relationship per object, as sg2im builds them for COCO.

    For each object in turn another object is drawn at random and, with probability 1/2,
    the pair is swapped; the predicate comes from ``spatial_predicate`` on the boxes and
    mask centroids. The same ``rng`` state gives the same triples.

    Args:
        boxes: (O, 4) (x0, y0, x1, y1) in [0, 1] of the real objects (no image node).
        masks: (O, M, M) in {0, 1} or None (box centres are used).
        rng: numpy random generator.

    Returns:
        (T, 3) int64 [subject, predicate, object] with T = O (0 when O < 2); predicate ids
        index ``COCO_PREDICATES``.
    """
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    n = len(boxes)
    if n < 2:
        return np.zeros((0, 3), dtype=np.int64)
    centres = mask_centroids(boxes, masks)
    triples = []
    for cur in range(n):
        other = int(rng.integers(n - 1))
        other += other >= cur                                  # any object but cur
        s, o = (cur, other) if rng.random() > 0.5 else (other, cur)
        triples.append((s, spatial_predicate(boxes[s], boxes[o], centres[s], centres[o]), o))
    return np.asarray(triples, dtype=np.int64)


# ----------------------------------------------------------------------------- masks, images
def segmentation_to_mask(segmentation: Any, height: int, width: int) -> np.ndarray:
    """Decode a COCO segmentation (polygons, uncompressed or compressed RLE) to (H, W) uint8."""
    if isinstance(segmentation, list):
        rle = mask_utils.merge(mask_utils.frPyObjects(segmentation, height, width))
    elif isinstance(segmentation.get("counts"), list):
        rle = mask_utils.frPyObjects(segmentation, height, width)
    else:
        rle = dict(segmentation)
        if isinstance(rle["counts"], str):
            rle["counts"] = rle["counts"].encode("ascii")
    return mask_utils.decode(rle)


def crop_mask(mask: np.ndarray, bbox: Sequence[float], mask_size: int) -> np.ndarray:
    """Crop an (H, W) mask to a COCO bbox [x, y, w, h] (pixels) and resize it to (M, M).

    The crop is at least one pixel; resizing is bilinear (area-averaging when shrinking)
    followed by a threshold at 1/2.

    Returns:
        (M, M) uint8 in {0, 1}.
    """
    h, w = mask.shape
    x, y, bw, bh = bbox
    x0, x1 = min(max(int(round(x)), 0), w - 1), int(round(x + bw))
    y0, y1 = min(max(int(round(y)), 0), h - 1), int(round(y + bh))
    x1, y1 = min(max(x0 + 1, x1), w), min(max(y0 + 1, y1), h)
    crop = Image.fromarray((mask[y0:y1, x0:x1] > 0).astype(np.uint8) * 255)
    crop = crop.resize((mask_size, mask_size), Image.BILINEAR)
    return (np.asarray(crop) > 127).astype(np.uint8)


# ----------------------------------------------------------------------------- index
@dataclass
class _CocoIndex:
    """Filtered objects of all kept images, concatenated (offsets split them per image)."""

    image_ids: np.ndarray        # (N,) int64
    file_names: list[str]
    obj_offsets: np.ndarray      # (N + 1,) int64
    obj_categories: np.ndarray   # (total,) int64, raw COCO category ids
    obj_boxes: np.ndarray        # (total, 4) float32 (x0, y0, x1, y1) in [0, 1]
    obj_masks: np.ndarray        # (total, M, M) uint8
    categories: list[dict]
    stats: dict[str, int]
    attribute_names: list[str] | None = None   # the files' attribute vocabulary, if any
    obj_attributes: np.ndarray | None = None   # (total, A_max) int32 attribute ids, -1 padded


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _load_annotations(path: Path, *, categories: set[int] | None = None) -> dict:
    """A COCO annotation file, checked enough that indexing it cannot fail obscurely.

    Args:
        categories: category ids the annotations may use besides the file's own (the
            instances file's categories, for a stuff file).

    Raises:
        DatasetError: not a JSON object with ``images``, ``categories`` and ``annotations``
            lists, or an entry that lacks a field, has one of the wrong type, a bounding box
            that is not 4 finite numbers, or an unknown category id (named by file and entry).
    """
    data = read_json(path, "COCO annotation file", DatasetError, max_annotation_bytes(),
                     ANNOTATIONS_LIMIT_ENV)
    if not isinstance(data, dict):
        raise DatasetError(f"{path} must hold a COCO JSON object with 'images', 'categories' "
                           f"and 'annotations', got a JSON {type(data).__name__}")
    for key in ("images", "categories", "annotations"):
        if key not in data:
            raise DatasetError(f"{path} has no {key!r} list; a COCO annotation file needs "
                               f"'images', 'categories' and 'annotations'")
        if not isinstance(data[key], list):
            raise DatasetError(f"{path}: {key!r} must be a list, got "
                               f"{type(data[key]).__name__}")
    for i, im in enumerate(data["images"]):
        ok = (isinstance(im, dict) and isinstance(im.get("id"), int)
              and isinstance(im.get("file_name"), str) and im["file_name"]
              and all(isinstance(im.get(k), int) and not isinstance(im.get(k), bool)
                      and im[k] > 0 for k in ("width", "height")))
        if not ok:
            raise DatasetError(f"{path}: images[{i}] needs an integer 'id', a 'file_name' and "
                               f"positive integer 'width' and 'height', got {short(im)}")
        name = Path(im["file_name"])
        if name.is_absolute() or ".." in name.parts:
            raise DatasetError(f"{path}: images[{i}] file_name {short(im['file_name'])} must "
                               f"be a path inside the image folder")
    known = set(categories or ())
    for i, c in enumerate(data["categories"]):
        if not (isinstance(c, dict) and isinstance(c.get("id"), int)
                and isinstance(c.get("name"), str)):
            raise DatasetError(f"{path}: categories[{i}] needs an integer 'id' and a 'name', "
                               f"got {short(c)}")
        known.add(c["id"])
    for i, ann in enumerate(data["annotations"]):
        where = f"{path}: annotations[{i}]"
        if not isinstance(ann, dict):
            raise DatasetError(f"{where} must be a JSON object, got {short(ann)}")
        if "id" in ann:
            where += f" (id {short(ann['id'])})"
        for key in ("image_id", "category_id", "bbox", "segmentation"):
            if key not in ann:
                raise DatasetError(f"{where} has no {key!r}")
        if not isinstance(ann["image_id"], int):
            raise DatasetError(f"{where}: image_id must be an integer, got "
                               f"{short(ann['image_id'])}")
        cid = ann["category_id"]
        if not isinstance(cid, int) or isinstance(cid, bool) or cid not in known:
            raise DatasetError(f"{where}: category_id {short(cid)} is not among the categories "
                               f"of {path.name}" + (" or of the instances file"
                                                    if categories is not None else ""))
        box = ann["bbox"]
        if not (isinstance(box, list) and len(box) == 4 and all(map(_is_number, box))
                and box[2] >= 0 and box[3] >= 0):
            raise DatasetError(f"{where}: 'bbox' must be [x, y, width, height], 4 finite "
                               f"numbers with width and height >= 0, got {short(box)}")
        if not isinstance(ann["segmentation"], (list, dict)):
            raise DatasetError(f"{where}: 'segmentation' must be polygons or an RLE object, "
                               f"got {short(ann['segmentation'])}")
    return data


def _attribute_vocab(files: Sequence[dict]) -> list[str] | None:
    """The attribute names the annotation files declare (top-level ``"attributes"``), in order.

    Only our procedural files have them (real COCO-Stuff has no attributes: None). Files that
    give annotations attributes without declaring the names get the sorted names seen.

    Raises:
        ValueError: the declaration is not a list of names.
    """
    names: list[str] = []
    declared = False
    for data in files:
        decl = data.get("attributes")
        if decl is None:
            continue
        declared = True
        if not isinstance(decl, list) or not all(isinstance(n, str) and n for n in decl):
            raise ValueError("the top-level 'attributes' of a COCO annotation file must be a "
                             "list of attribute names")
        names += [n for n in decl if n not in names]
    if declared:
        return names
    seen = {a for data in files for ann in data["annotations"]
            if isinstance(ann.get("attributes"), list) for a in ann["attributes"]
            if isinstance(a, str)}
    if not seen:
        return None
    logger.warning("annotations carry attributes but no file lists them (top-level "
                   "'attributes'); using the %d names seen, sorted", len(seen))
    return sorted(seen)


def _annotation_attributes(ann: dict, index: Mapping[str, int]) -> list[int]:
    """Attribute ids of one annotation (its optional ``"attributes"`` list of names)."""
    attrs = ann.get("attributes", [])
    if not isinstance(attrs, list) or not all(isinstance(a, str) for a in attrs):
        raise ValueError(f"annotation {ann.get('id')!r} of image {ann.get('image_id')!r}: "
                         f"'attributes' must be a list of names, got {short(attrs)}")
    unknown = [a for a in attrs if a not in index]
    if unknown:
        raise ValueError(f"annotation {ann.get('id')!r} of image {ann.get('image_id')!r}: "
                         f"attribute {short(unknown[0])} is not in the file's 'attributes' "
                         f"list ({len(index)} names)")
    return [index[a] for a in attrs]


def _build_index(instances_json: Path, stuff_json: Path | None, *, mask_size: int,
                 min_object_size: float, min_objects: int, max_objects: int,
                 include_other: bool, stuff_only: bool) -> _CocoIndex:
    instances = _load_annotations(instances_json)
    stuff = None
    if stuff_json is not None:
        stuff = _load_annotations(stuff_json,
                                  categories={c["id"] for c in instances["categories"]})
    images = {im["id"]: im for im in instances["images"]}
    order = [im["id"] for im in instances["images"]]
    # Which file a category comes from says thing or stuff where it does not say itself.
    categories = ([{"isthing": 1, **c} for c in instances["categories"]]
                  + ([{"isthing": 0, **c} for c in stuff["categories"]] if stuff else []))
    attribute_names = _attribute_vocab([instances] + ([stuff] if stuff else []))
    attr_index = {n: i for i, n in enumerate(attribute_names or ())}
    names = {int(c["id"]): c["name"] for c in categories}
    objects: dict[int, list[dict]] = {i: [] for i in order}
    num_small = num_other = 0
    for data in [instances] + ([stuff] if stuff else []):
        for ann in data["annotations"]:
            im = images.get(ann["image_id"])
            if im is None:
                continue
            _, _, w, h = ann["bbox"]
            if not (w * h) / (im["width"] * im["height"]) > min_object_size:
                num_small += 1
                continue
            if names[int(ann["category_id"])] == "other" and not include_other:
                num_other += 1
                continue
            objects[ann["image_id"]].append(ann)
    if stuff is not None and stuff_only:
        with_stuff = {a["image_id"] for a in stuff["annotations"]}
        order = [i for i in order if i in with_stuff]
    kept = [i for i in order if min_objects <= len(objects[i]) <= max_objects]
    offsets, cats, boxes, masks, attrs = [0], [], [], [], []
    for image_id in kept:
        im = images[image_id]
        W, H = im["width"], im["height"]
        for ann in objects[image_id]:
            x, y, w, h = ann["bbox"]
            cats.append(int(ann["category_id"]))
            if attribute_names is not None:
                attrs.append(_annotation_attributes(ann, attr_index))
            boxes.append((x / W, y / H, (x + w) / W, (y + h) / H))
            try:
                full = segmentation_to_mask(ann["segmentation"], H, W)
            except (TypeError, ValueError, KeyError, AttributeError, OverflowError) as e:
                src = stuff_json if stuff is not None and ann in stuff["annotations"] \
                    else instances_json
                raise DatasetError(f"{src}: annotation {short(ann.get('id'))} of image "
                                   f"{image_id} has a segmentation pycocotools cannot decode "
                                   f"({' '.join(str(e).split())[:120]})") from None
            masks.append(crop_mask(full, ann["bbox"], mask_size))
        offsets.append(len(cats))
    stats = {"images": len(images), "images_considered": len(order), "images_kept": len(kept),
             "objects_kept": len(cats), "objects_too_small": num_small,
             "objects_other": num_other}
    obj_attributes = None
    if attribute_names is not None:
        obj_attributes = np.full((len(cats), max(1, max(map(len, attrs), default=0))), -1,
                                 dtype=np.int32)
        for i, ids in enumerate(attrs):
            obj_attributes[i, :len(ids)] = ids
    return _CocoIndex(
        image_ids=np.asarray(kept, dtype=np.int64),
        file_names=[images[i]["file_name"] for i in kept],
        obj_offsets=np.asarray(offsets, dtype=np.int64),
        obj_categories=np.asarray(cats, dtype=np.int64),
        obj_boxes=np.clip(np.asarray(boxes, dtype=np.float32).reshape(-1, 4), 0.0, 1.0),
        obj_masks=np.asarray(masks, dtype=np.uint8).reshape(-1, mask_size, mask_size),
        categories=categories, stats=stats, attribute_names=attribute_names,
        obj_attributes=obj_attributes)


def _row_objects(index: _CocoIndex, rows: np.ndarray) -> np.ndarray:
    """The objects of images ``rows`` (indices into the object arrays), in row order."""
    starts, ends = index.obj_offsets[rows], index.obj_offsets[rows + 1]
    return (np.concatenate([np.arange(a, b) for a, b in zip(starts, ends, strict=True)])
            if len(rows) else np.zeros(0, dtype=np.int64))


def _class_attributes(index: _CocoIndex, rows: np.ndarray) -> dict[str, list[str]] | None:
    """Per category name the attributes its objects carry in images ``rows`` (the class
    table of the vocabulary), or None when the files have no attributes. A class's
    attributes are ordered by the first place they take in an annotation's list (colours
    before sizes in the procedural data), then by attribute id; absent classes take none."""
    if index.attribute_names is None or index.obj_attributes is None:
        return None
    objects = _row_objects(index, rows)
    cats, ids = index.obj_categories[objects], index.obj_attributes[objects]
    first: dict[tuple[int, int], int] = {}
    for place in range(ids.shape[1]):
        seen = ids[:, place] >= 0
        for c, a in np.unique(np.stack([cats[seen], ids[seen, place]], 1), axis=0).tolist():
            first.setdefault((c, a), place)
    names = {int(c["id"]): c["name"] for c in index.categories}
    table: dict[str, list[str]] = {}
    for (c, a), _ in sorted(first.items(), key=lambda kv: (kv[0][0], kv[1], kv[0][1])):
        table.setdefault(names[c], []).append(index.attribute_names[a])
    return table


def _class_default_attributes(index: _CocoIndex, rows: np.ndarray
                              ) -> dict[str, list[str]] | None:
    """Per category name the attribute set its objects carry most often in images ``rows``
    (the vocabulary's defaults), or None when the files have no attributes. Sets ignore order
    (an object without attributes has the empty set); of sets carried equally often the one
    seen first wins (row order, then annotation order), its names listed as that object
    lists them. Classes with no object in ``rows`` are left out (they take none)."""
    if index.attribute_names is None or index.obj_attributes is None:
        return None
    objects = _row_objects(index, rows)
    ids = index.obj_attributes[objects]                                  # (n, A_max), -1 pad
    keys = np.concatenate([index.obj_categories[objects][:, None], np.sort(ids, axis=1)], 1)
    sets, first, counts = np.unique(keys, axis=0, return_index=True, return_counts=True)
    best: dict[int, tuple[int, int]] = {}                       # category -> (count, -first)
    for c, f, n in zip(sets[:, 0].tolist(), first.tolist(), counts.tolist(), strict=True):
        best[c] = max(best.get(c, (0, 0)), (n, -f))
    names = {int(c["id"]): c["name"] for c in index.categories}
    return {names[c]: [index.attribute_names[a] for a in ids[-f].tolist() if a >= 0]
            for c, (_, f) in best.items()}


def _cache_key(files: Sequence[Path | None], params: Mapping[str, Any]) -> str:
    parts: list[Any] = [_CACHE_VERSION, dict(params)]
    for f in files:
        if f is not None:
            st = f.stat()
            parts.append([str(f.resolve()), st.st_size, st.st_mtime_ns])
    return hashlib.sha1(json.dumps(parts, sort_keys=True).encode()).hexdigest()[:16]


def _write_cache(path: Path, index: _CocoIndex) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".h5.tmp")
    os.close(fd)
    try:
        with h5py.File(tmp, "w") as f:
            for name in ("image_ids", "obj_offsets", "obj_categories", "obj_boxes"):
                f.create_dataset(name, data=getattr(index, name))
            f.create_dataset("obj_masks", data=index.obj_masks, compression="lzf")
            f.create_dataset("file_names", data=index.file_names,
                             dtype=h5py.string_dtype())
            f.attrs["categories"] = json.dumps(index.categories)
            f.attrs["stats"] = json.dumps(index.stats)
            if index.attribute_names is not None:
                f.attrs["attribute_names"] = json.dumps(index.attribute_names)
                f.create_dataset("obj_attributes", data=index.obj_attributes)
        os.chmod(tmp, 0o644)    # mkstemp makes it private; the cache is shared data
        os.replace(tmp, path)   # atomic: concurrent readers never see a partial file
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def _read_cache(path: Path) -> _CocoIndex:
    with h5py.File(path, "r") as f:
        return _CocoIndex(
            image_ids=f["image_ids"][()], file_names=[
                n.decode() if isinstance(n, bytes) else str(n) for n in f["file_names"][()]],
            obj_offsets=f["obj_offsets"][()], obj_categories=f["obj_categories"][()],
            obj_boxes=f["obj_boxes"][()], obj_masks=f["obj_masks"][()],
            categories=json.loads(f.attrs["categories"]), stats=json.loads(f.attrs["stats"]),
            attribute_names=(json.loads(f.attrs["attribute_names"])
                             if "attribute_names" in f.attrs else None),
            obj_attributes=f["obj_attributes"][()] if "obj_attributes" in f else None)


# ----------------------------------------------------------------------------- dataset
class CocoSceneGraphDataset(RowDataset):
    """COCO-Stuff (or procedural) images with scene graphs synthesised from geometry.

    Items are ``GraphSample``s with the image node appended: ``objs (O,)`` raw category ids,
    ``triples (T, 3)``, ``boxes (O, 4)`` in [0, 1], ``box_given (O,)`` all True,
    ``masks (O, M, M)`` float in {0, 1}, ``image (3, S, S)`` in [-1, 1], ``image_id`` and,
    when the files list attribute names (the procedural scenes), ``attributes (O, A)``
    multi-hot from each annotation's ``"attributes"``.

    Args:
        image_dir: folder holding the images named by ``file_name``.
        instances_json: COCO instances file (things).
        stuff_json: COCO-Stuff stuff file, or None for things only.
        image_size: S, images are resized to S x S.
        mask_size: M.
        min_object_size: keep objects whose box covers more than this fraction of the image.
        min_objects, max_objects: keep images with this many objects (after the filters).
        include_other: keep the stuff class ``other``.
        stuff_only: keep only images that have stuff annotations (as sg2im).
        subset: a slice of the filtered images (``slice(0, 1024)`` for COCO val).
        deterministic: relationship sampling seeded by ``seed + index`` (evaluation); else
            drawn from torch's RNG at every access (training).
        seed: see ``deterministic``.
        cache_dir: folder for the HDF5 cache of filtered objects, or None for no cache.
        max_samples: use at most this many images (after ``subset``).

    Raises:
        DatasetNotFoundError: an annotation file or the image folder is missing.
    """

    def __init__(self, image_dir: str | PathLike, instances_json: str | PathLike,
                 stuff_json: str | PathLike | None = None, *, image_size: int = 64,
                 mask_size: int = 16, min_object_size: float = 0.02, min_objects: int = 3,
                 max_objects: int = 8, include_other: bool = False, stuff_only: bool = True,
                 subset: slice | None = None, deterministic: bool = False, seed: int = 0,
                 cache_dir: str | PathLike | None = None,
                 max_samples: int | None = None) -> None:
        super().__init__()
        instances = require_path(Path(instances_json), "COCO instances annotation file",
                                 "a COCO instances JSON (e.g. annotations/instances_train.json)")
        stuff = None if stuff_json is None else require_path(
            Path(stuff_json), "COCO-Stuff stuff annotation file",
            "a COCO-Stuff stuff JSON (e.g. annotations/stuff_train.json)")
        self.image_dir = require_path(Path(image_dir), "image directory",
                                      "a folder with the images named in the annotations")
        self.image_size, self.mask_size = int(image_size), int(mask_size)
        self.deterministic, self.seed = bool(deterministic), int(seed)
        params = {"mask_size": self.mask_size, "min_object_size": float(min_object_size),
                  "min_objects": int(min_objects), "max_objects": int(max_objects),
                  "include_other": bool(include_other), "stuff_only": bool(stuff_only)}
        index = None
        cache = None
        if cache_dir is not None:
            key = _cache_key([instances, stuff], params)
            cache = Path(cache_dir) / f"coco_{instances.stem}_{key}.h5"
            if cache.exists():
                try:
                    index = _read_cache(cache)
                    logger.info("read cached scene graphs from %s", cache)
                except (OSError, KeyError, ValueError) as e:
                    logger.warning("ignoring unreadable cache %s (%s)", cache, e)
        if index is None:
            index = _build_index(instances, stuff, **params)
            if cache is not None:
                try:
                    _write_cache(cache, index)
                    logger.info("cached scene graphs in %s", cache)
                except OSError as e:
                    logger.warning("could not write cache %s (%s); continuing without", cache, e)
        self._index = index
        rows = np.arange(len(index.image_ids))
        if subset is not None:
            rows = rows[subset]
        if max_samples is not None:
            rows = rows[:max_samples]
        self._rows = rows
        try:
            self.vocab = Vocab.from_coco_categories(
                index.categories, attribute_names=index.attribute_names,
                class_attributes=_class_attributes(index, rows),
                class_default_attributes=_class_default_attributes(index, rows))
        except VocabError as e:
            raise DatasetError(f"{instances}: {e}") from None
        s = index.stats
        logger.info(
            "COCO %s: %d of %d images kept (%d with stuff considered; %d-%d objects with box "
            "area > %g, 'other' %s): %d objects; dropped %d small objects and %d 'other'; "
            "using %d images", instances.name, s["images_kept"], s["images"],
            s["images_considered"], min_objects, max_objects, min_object_size,
            "kept" if include_other else "dropped", s["objects_kept"], s["objects_too_small"],
            s["objects_other"], len(rows))

    @property
    def image_ids(self) -> list[int]:
        """Image ids in dataset order."""
        return [int(i) for i in self._index.image_ids[self._rows]]

    def num_objects(self, index: int) -> int:
        """Number of real objects (without the image node) of item ``index``."""
        r = self._rows[index]
        return int(self._index.obj_offsets[r + 1] - self._index.obj_offsets[r])

    #: Set to False to skip reading images (layout-only training and statistics).
    with_images: bool = True

    def object_boxes(self, index: int) -> tuple[Tensor, Tensor]:
        """Classes ``(O,)`` and boxes ``(O, 4)`` of item ``index`` without reading its image.

        The image node is not included. Used where only the annotations matter (e.g. the
        mean-class-box layout baseline over a whole training split).
        """
        r = int(self._rows[index])
        a, b = int(self._index.obj_offsets[r]), int(self._index.obj_offsets[r + 1])
        return (torch.from_numpy(self._index.obj_categories[a:b].copy()),
                torch.from_numpy(self._index.obj_boxes[a:b].copy()))

    def __getitem__(self, index: int) -> GraphSample:
        r = self._row(index)
        ix = self._index
        a, b = int(ix.obj_offsets[r]), int(ix.obj_offsets[r + 1])
        boxes, masks = ix.obj_boxes[a:b], ix.obj_masks[a:b]
        rng = item_rng(self.deterministic, self.seed, index)
        triples = synthesize_relationships(boxes, masks, rng)
        image = (load_image(self.image_dir / ix.file_names[r], self.image_size)
                 if self.with_images else None)
        n = b - a
        attributes = None
        if ix.obj_attributes is not None:
            ids = ix.obj_attributes[a:b]                                  # (O, A_max)
            attributes = torch.zeros(n, self.vocab.num_attributes)
            rows, cols = np.nonzero(ids >= 0)
            attributes[rows, ids[rows, cols]] = 1.0
        return GraphSample(
            objs=torch.from_numpy(ix.obj_categories[a:b].copy()),
            triples=torch.from_numpy(triples),
            boxes=torch.from_numpy(boxes.copy()),
            box_given=torch.ones(n, dtype=torch.bool),
            masks=torch.from_numpy(masks.astype(np.float32)),
            image=image, attributes=attributes,
            image_id=int(ix.image_ids[r])).with_image_node()
