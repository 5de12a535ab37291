"""Tiny datasets in the real on-disk formats, written into a test's tmp_path.

``write_tiny_coco`` writes a COCO-Stuff pair of JSON files (polygons, compressed and
uncompressed RLE) with PNG images; ``write_tiny_vg_raw`` writes Visual Genome's raw JSON files.
The contents are hand-made so that tests can state which objects and images survive the
filters.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from PIL import Image
from pycocotools import mask as mask_utils

W, H = 40, 30   # fixture COCO images are not square, so box normalisation is tested per axis

THING_CATS = [{"id": 1, "name": "person", "supercategory": "person"},
              {"id": 18, "name": "dog", "supercategory": "animal"}]
STUFF_CATS = [{"id": 124, "name": "grass", "supercategory": "plant"},
              {"id": 157, "name": "sky-other", "supercategory": "sky"},
              {"id": 183, "name": "other", "supercategory": "other"}]


def rle(mask: np.ndarray) -> dict:
    """Compressed RLE with str counts, as COCO-Stuff stores it."""
    r = mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))
    return {"size": [int(v) for v in r["size"]], "counts": r["counts"].decode("ascii")}


def box_of(mask: np.ndarray) -> list[float]:
    return [float(v) for v in mask_utils.toBbox(mask_utils.encode(
        np.asfortranarray(mask.astype(np.uint8))))]


def rect_mask(x0: int, y0: int, x1: int, y1: int) -> np.ndarray:
    m = np.zeros((H, W), dtype=np.uint8)
    m[y0:y1, x0:x1] = 1
    return m


def triangle_mask(x0: int, y0: int, x1: int, y1: int) -> np.ndarray:
    """Lower-left triangle of the box (pixels with dx / w <= dy / h)."""
    m = np.zeros((H, W), dtype=np.uint8)
    for y in range(y0, y1):
        for x in range(x0, x1):
            if (x - x0 + 0.5) / (x1 - x0) <= (y - y0 + 0.5) / (y1 - y0):
                m[y, x] = 1
    return m


def write_tiny_coco(root: Path, names: tuple[str, str] = ("instances_train.json",
                                                         "stuff_train.json"),
                    image_dir: str = "images/train") -> dict:
    """Four images testing sg2im's rules; returns what the loader should keep.

    * image 1 keeps: person (polygon rectangle), dog (compressed RLE triangle), sky (RLE),
      grass (RLE); drops a 1%-of-image person and the stuff class 'other'.
    * image 2 has only 2 objects after the filters -> dropped (min 3).
    * image 3 has 9 objects -> dropped (max 8).
    * image 4 has no stuff annotations -> dropped (stuff_only).
    * image 5 keeps: 3 things, one given as uncompressed RLE (iscrowd).
    """
    ann_dir, img_dir = root / "annotations", root / image_dir
    ann_dir.mkdir(parents=True, exist_ok=True)
    img_dir.mkdir(parents=True, exist_ok=True)
    images = [{"id": i, "file_name": f"{i:012d}.png", "width": W, "height": H}
              for i in range(1, 6)]
    rng = np.random.default_rng(0)
    for im in images:
        Image.fromarray(rng.integers(0, 256, (H, W, 3), dtype=np.uint8)).save(
            img_dir / im["file_name"])
    inst, stuff = [], []

    def add(target: list, image_id: int, cat: int, mask: np.ndarray,
            segmentation: object = None) -> None:
        target.append({"id": len(inst) + len(stuff) + 1, "image_id": image_id,
                       "category_id": cat, "segmentation": segmentation or rle(mask),
                       "area": float(mask.sum()), "bbox": box_of(mask), "iscrowd": 0})

    # image 1
    add(inst, 1, 1, rect_mask(2, 3, 12, 13),
        [[2.0, 3.0, 12.0, 3.0, 12.0, 13.0, 2.0, 13.0]])            # polygon, 100 px box
    add(inst, 1, 18, triangle_mask(20, 10, 36, 26))
    add(inst, 1, 1, rect_mask(30, 2, 33, 6))                        # 12 px: 1% -> dropped
    add(stuff, 1, 157, rect_mask(0, 0, W, 10))
    add(stuff, 1, 124, rect_mask(0, 20, W, H))
    add(stuff, 1, 183, rect_mask(0, 10, 20, 20))                    # 'other' -> dropped
    # image 2: person + sky
    add(inst, 2, 1, rect_mask(5, 5, 15, 20))
    add(stuff, 2, 157, rect_mask(0, 0, W, 12))
    # image 3: 9 objects
    for k in range(7):
        add(inst, 3, 1, rect_mask(4 * k, 0, 4 * k + 4, 15))
    add(stuff, 3, 157, rect_mask(0, 15, W, 22))
    add(stuff, 3, 124, rect_mask(0, 22, W, H))
    # image 4: things only
    for k in range(3):
        add(inst, 4, 18, rect_mask(10 * k, 5, 10 * k + 9, 20))
    # image 5: 3 things (one iscrowd uncompressed RLE) + stuff 'other' only (dropped)
    add(inst, 5, 18, rect_mask(0, 0, 10, 10))
    add(inst, 5, 1, rect_mask(12, 0, 22, 10))
    crowd = rect_mask(25, 5, 39, 25)
    uncompressed = {"size": [H, W], "counts": uncompressed_counts(crowd)}
    add(inst, 5, 1, crowd, uncompressed)
    inst[-1]["iscrowd"] = 1
    add(stuff, 5, 183, rect_mask(0, 12, 20, 30))
    info = {"description": "tiny test fixture"}
    (ann_dir / names[0]).write_text(json.dumps(
        {"info": info, "images": images, "annotations": inst, "categories": THING_CATS}))
    (ann_dir / names[1]).write_text(json.dumps(
        {"info": info, "images": images, "annotations": stuff, "categories": STUFF_CATS}))
    return {"kept_image_ids": [1, 5], "objects": {1: [1, 18, 157, 124], 5: [18, 1, 1]}}


def uncompressed_counts(mask: np.ndarray) -> list[int]:
    """COCO's uncompressed RLE: run lengths in column-major order, starting with zeros."""
    flat = mask.flatten(order="F")
    counts, current, run = [], 0, 0
    for v in flat:
        if v == current:
            run += 1
        else:
            counts.append(run)
            current, run = v, 1
    counts.append(run)
    return [int(c) for c in counts]


# ----------------------------------------------------------------------------- VG
def write_tiny_vg_raw(raw: Path, images_root: Path) -> None:
    """Raw VG files for 5 images (ids 1-5) and their JPEGs under ``images_root/VG_100K``.

    With thresholds min image size 50, min object size 4, min object / relationship /
    attribute instances 2, 2-4 objects and 1-3 relationships per image:

    * object vocab (training counts; ties by name): man (4, incl. alias 'Guy'), dog (2, incl.
      'dog '), tree (2); 'cat' is not in a kept training image -> dropped. Predicates: near
      (2), on (2, 'ON' and alias 'on top of'); 'under' (1) -> dropped. Attributes: red (2),
      tall (2); 'happy' (1) -> dropped.
    * image 1 (train): man, dog, tree, man -> kept, 3 relationships.
    * image 2 (train): man, tree, dog (+ a 2 px man, dropped) -> kept.
    * image 3 (train): 40 px wide -> dropped for size.
    * image 4 (val): man, tree (+ a cat) and 1 relationship -> kept.
    * image 5 (test): man, dog, but no relationship between kept objects -> dropped, so
      test.h5 is empty.
    """
    raw.mkdir(parents=True, exist_ok=True)
    (images_root / "VG_100K").mkdir(parents=True, exist_ok=True)
    sizes = {1: (100, 80), 2: (120, 90), 3: (40, 100), 4: (64, 64), 5: (70, 70)}
    image_data = [{"image_id": i, "width": w, "height": h, "coco_id": None, "flickr_id": None,
                   "url": f"https://cs.stanford.edu/people/rak248/VG_100K/{i}.jpg"}
                  for i, (w, h) in sizes.items()]
    for i, (w, h) in sizes.items():
        Image.new("RGB", (w, h), (10 * i, 20, 30)).save(images_root / "VG_100K" / f"{i}.jpg")

    def obj(oid: int, name: str, x: int, y: int, w: int, h: int) -> dict:
        return {"object_id": oid, "x": x, "y": y, "w": w, "h": h, "names": [name],
                "synsets": []}

    per_image = {
        1: [obj(11, "man", 0, 0, 20, 40), obj(12, "dog", 30, 40, 20, 20),
            obj(13, "tree", 60, 0, 30, 70), obj(14, "Guy", 10, 50, 10, 10)],
        2: [obj(21, "man", 5, 5, 30, 60), obj(22, "tree", 50, 0, 40, 80),
            obj(23, "dog ", 80, 60, 20, 20), obj(24, "man", 0, 0, 2, 2)],
        3: [obj(31, "man", 0, 0, 20, 20), obj(32, "tree", 0, 30, 20, 20),
            obj(33, "cat", 0, 60, 20, 20)],
        4: [obj(41, "man", 0, 0, 20, 30), obj(42, "tree", 30, 0, 30, 60),
            obj(43, "cat", 5, 40, 10, 10)],
        5: [obj(51, "man", 0, 0, 20, 30), obj(52, "dog", 30, 30, 20, 20)],
    }
    objects = [{"image_id": i, "objects": objs} for i, objs in per_image.items()]

    def rel(rid: int, s: dict, p: str, o: dict) -> dict:
        return {"relationship_id": rid, "predicate": p, "synsets": [], "subject": s, "object": o}

    o = {x["object_id"]: x for im in objects for x in im["objects"]}
    relationships = [
        {"image_id": 1, "relationships": [rel(101, o[11], "ON", o[12]),
                                          rel(102, o[14], "near", o[13]),
                                          rel(103, o[12], "under", o[13])]},
        {"image_id": 2, "relationships": [rel(201, o[21], "on top of", o[22]),
                                          rel(202, o[23], "near", o[21]),
                                          rel(203, o[24], "on", o[22])]},   # 24 too small
        {"image_id": 3, "relationships": [rel(301, o[31], "on", o[32])]},
        {"image_id": 4, "relationships": [rel(401, o[41], "on", o[42])]},
        # object 999 is not in objects.json, so image 5 has no usable relationship
        {"image_id": 5, "relationships": [rel(501, o[51], "near", obj(999, "man", 0, 0, 9, 9))]},
    ]
    attributes = [
        {"image_id": 1, "attributes": [{**o[11], "attributes": ["red", "tall"]},
                                       {**o[13], "attributes": ["tall"]}]},
        {"image_id": 2, "attributes": [{**o[21], "attributes": ["red", "happy"]}]},
        {"image_id": 3, "attributes": []},
        {"image_id": 4, "attributes": [{**o[42], "attributes": ["tall", "green"]}]},
        {"image_id": 5, "attributes": []},
    ]
    splits = {"train": [1, 2, 3], "val": [4], "test": [5]}
    for name, data in (("image_data", image_data), ("objects", objects),
                       ("relationships", relationships), ("attributes", attributes),
                       ("vg_splits", splits)):
        (raw / f"{name}.json").write_text(json.dumps(data))
    (raw / "object_alias.txt").write_text("man,guy,gentleman\n")
    (raw / "relationship_alias.txt").write_text("on,on top of\n")


VG_THRESHOLD_ARGS = ["--min-image-size", "50", "--min-object-size", "4",
                     "--min-object-instances", "2", "--min-attribute-instances", "2",
                     "--min-relationship-instances", "2", "--min-objects-per-image", "2",
                     "--max-objects-per-image", "4", "--min-relationships-per-image", "1",
                     "--max-relationships-per-image", "3", "--max-attributes-per-object", "3"]
