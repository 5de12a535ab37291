"""Writing a procedural dataset: COCO-Stuff JSON and PNG files, optionally raw VG JSON.

Images are rendered in worker processes; image ``i`` of a split depends only on (seed,
split, i, size), so the files are the same for any number of workers.
"""

from __future__ import annotations

import json
import logging
import multiprocessing
import time
from os import PathLike
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image
from pycocotools import mask as mask_utils

from .classes import (
    CATEGORY_ID,
    IMAGE_ID_BASE,
    MAX_OBJECTS,
    MIN_BOX_AREA,
    MIN_OBJECTS,
    OTHER_NAME,
    SHAPES_VERSION,
    SPLIT_CODE,
    SPLITS,
    STUFF_NAMES,
    THING_CLASSES,
    attribute_names,
    categories,
)
from .render import generate_scene, mask_bbox
from .templates import TEMPLATES
from .vg_raw import OBJECT_ALIASES, REL_ALIASES, vg_records

logger = logging.getLogger(__name__)


def encode_rle(mask: np.ndarray) -> dict[str, Any]:
    """COCO compressed RLE of an (H, W) bool mask, with ``counts`` as a str (JSON-safe)."""
    rle = mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))
    return {"size": [int(v) for v in rle["size"]], "counts": rle["counts"].decode("ascii")}


_OBJECT_ID_STRIDE = 64       # VG object ids: image_id * stride + index (unique over splits)


def _render_one(job: tuple[int, str, int, int, str, bool]) -> dict[str, Any]:
    seed, split, index, size, image_dir, vg = job
    scene = generate_scene(seed, split, index, size)
    image_id = IMAGE_ID_BASE[split] + index + 1
    file_name = f"{index:07d}.png"
    Image.fromarray(scene.image).save(Path(image_dir) / file_name, compress_level=1)
    anns = []
    for a in scene.annotations:
        anns.append({"category_id": a.category_id, "isthing": a.isthing,
                     "segmentation": encode_rle(a.mask), "area": int(a.mask.sum()),
                     "bbox": a.bbox, "attributes": list(a.attributes)})
    things = [a.mask for a in scene.annotations if a.isthing]
    if things:   # COCO-Stuff's 'other': all thing pixels, in the stuff file
        other = np.any(things, axis=0)
        anns.append({"category_id": CATEGORY_ID[OTHER_NAME], "isthing": False,
                     "segmentation": encode_rle(other), "area": int(other.sum()),
                     "bbox": mask_bbox(other), "attributes": []})
    out: dict[str, Any] = {
        "image": {"id": image_id, "file_name": file_name, "width": size, "height": size},
        "annotations": anns, "template": scene.plan.template}
    if vg:
        rng = np.random.default_rng(np.random.SeedSequence([seed, SPLIT_CODE[split], index,
                                                            1]))
        out["vg"] = vg_records(scene, image_id, rng, image_id * _OBJECT_ID_STRIDE)
        out["vg_image"] = {"image_id": image_id, "width": size, "height": size,
                           "url": f"https://shapes.invalid/images/{split}/{file_name}",
                           "coco_id": None, "flickr_id": None}
    return out


def _coco_file(images: list[dict], anns: list[dict], thing: bool, info: dict) -> dict:
    cats = [c for c in categories() if bool(c["isthing"]) == thing]
    keep = [dict(a) for a in anns if a["isthing"] == thing]
    for i, a in enumerate(keep):
        a.pop("isthing")
        a["id"] = i + 1
        a["iscrowd"] = 0
    cats = [{k: c[k] for k in ("id", "name", "supercategory")} for c in cats]
    # Attributes: names per annotation, and the file's attribute vocabulary at the top level
    # (like "categories"), so that every split builds the same vocabulary. pycocotools
    # ignores both keys.
    return {"info": info, "licenses": [], "images": images, "annotations": keep,
            "categories": cats, "attributes": list(attribute_names())}


def write_dataset(out_dir: str | PathLike, *, size: int = 64,
                  num_images: dict[str, int] | None = None, seed: int = 0, workers: int = 2,
                  vg: bool = False, chunksize: int = 32) -> dict[str, Any]:
    """Write a procedural dataset in the COCO-Stuff layout (and optionally raw VG JSON).

    Layout: ``OUT/annotations/{instances,stuff}_{split}.json``, ``OUT/images/{split}/*.png``,
    ``OUT/info.json``, ``OUT/README``; every annotation carries ``"attributes"`` (names, e.g.
    ``["red", "small"]``) and each annotation file lists the attribute vocabulary under a
    top-level ``"attributes"`` key; with ``vg``: ``OUT/vg_raw/`` holding ``image_data.json``,
    ``objects.json``, ``relationships.json``, ``attributes.json``, ``object_alias.txt``,
    ``relationship_alias.txt`` and ``vg_splits.json`` (image paths relative to ``OUT/images``).

    Args:
        out_dir: output directory (created).
        size: image side S.
        num_images: images per split, e.g. ``{"train": 10000, "val": 500, "test": 500}``.
        seed: dataset seed; image i of a split depends only on (seed, split, i, size).
        workers: processes; the output is identical for any number.
        vg: also write the raw Visual Genome files.
        chunksize: images per task sent to a worker.

    Returns:
        The ``info.json`` dict (parameters, counts, timing).
    """
    num_images = dict(num_images or {"train": 100, "val": 20, "test": 20})
    for split in num_images:
        if split not in SPLITS:
            raise ValueError(f"unknown split {split!r}; choose from {SPLITS}")
    out = Path(out_dir)
    (out / "annotations").mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    info: dict[str, Any] = {
        "description": "sg2img procedural scenes (COCO-Stuff format)",
        "generator": "sg2img.data.shapes", "version": SHAPES_VERSION, "seed": seed,
        "image_size": size, "num_images": num_images, "min_box_area": MIN_BOX_AREA,
        "objects_per_image": [MIN_OBJECTS, MAX_OBJECTS], "image_format": "png",
        "things": [c.name for c in THING_CLASSES], "stuff": list(STUFF_NAMES),
        "templates": {k: sorted(v) for k, v in TEMPLATES.items()},
        "categories": categories(),
    }
    vg_all: dict[str, list] = {"image_data": [], "objects": [], "relationships": [],
                               "attributes": []}
    vg_splits: dict[str, list[int]] = {}
    template_counts: dict[str, int] = {}
    ctx = multiprocessing.get_context(
        "fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn")
    pool = ctx.Pool(workers) if workers > 1 else None
    try:
        for split, n in num_images.items():
            image_dir = out / "images" / split
            image_dir.mkdir(parents=True, exist_ok=True)
            jobs = [(seed, split, i, size, str(image_dir), vg) for i in range(n)]
            results = (pool.imap(_render_one, jobs, chunksize=chunksize) if pool
                       else map(_render_one, jobs))
            images, anns = [], []
            for r in results:
                images.append(r["image"])
                template_counts[r["template"]] = template_counts.get(r["template"], 0) + 1
                for a in r["annotations"]:
                    anns.append({"image_id": r["image"]["id"], **a})
                if vg:
                    vg_all["image_data"].append(r["vg_image"])
                    for key, rec in zip(("objects", "relationships", "attributes"), r["vg"],
                                        strict=True):
                        vg_all[key].append(rec)
            vg_splits[split] = [im["id"] for im in images]
            split_info = {**{k: v for k, v in info.items() if k != "categories"},
                          "split": split}
            for kind, thing in (("instances", True), ("stuff", False)):
                path = out / "annotations" / f"{kind}_{split}.json"
                path.write_text(json.dumps(_coco_file(images, anns, thing, split_info)))
            logger.info("shapes %s: %d images, %d annotations", split, len(images), len(anns))
    finally:
        if pool is not None:
            pool.close()
            pool.join()
    if vg:
        raw = out / "vg_raw"
        raw.mkdir(exist_ok=True)
        for key, recs in vg_all.items():
            (raw / f"{key}.json").write_text(json.dumps(recs))
        (raw / "vg_splits.json").write_text(json.dumps(vg_splits))
        (raw / "object_alias.txt").write_text(
            "".join(f"{k},{','.join(v)}\n" for k, v in OBJECT_ALIASES.items()))
        (raw / "relationship_alias.txt").write_text(
            "".join(f"{k},{','.join(v)}\n" for k, v in REL_ALIASES.items()))
    info["templates_drawn"] = template_counts
    info["seconds"] = round(time.perf_counter() - start, 2)
    (out / "info.json").write_text(json.dumps(info, indent=1))
    (out / "README").write_text(_README.format(size=size, seed=seed, counts=num_images))
    return info


_README = """sg2img procedural scenes ({size}x{size}, seed {seed}, images {counts})

Written by sg2img.data.shapes.write_dataset (data_tools/make_shapes.py) in the COCO-Stuff
format: annotations/instances_{{split}}.json (things), annotations/stuff_{{split}}.json (stuff
and 'other' = all thing pixels), images/{{split}}/*.png. Segmentations are compressed RLE.
Load with sg2img.data.build_dataset (data.dataset=coco, data.root=this directory).
Unlike real COCO-Stuff, val and test are their own files (no 1024/2048 split of val), and
every annotation has an "attributes" list of names (its colour, "small"/"large"); the files
list all attribute names under a top-level "attributes" key.
Generator parameters are in info.json. vg_raw/ (if present) holds the same scenes as raw
Visual Genome JSON for data_tools/preprocess_vg.py.
"""
