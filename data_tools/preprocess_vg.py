"""Turn Visual Genome's raw JSON into ``{train,val,test}.h5`` and ``vocab.json`` (sg2im's format).

    python data_tools/preprocess_vg.py --raw-dir datasets/vg --splits-json vg_splits.json \\
        --out-dir data/vg [--image-dir datasets/vg/images]

Inputs (in ``--raw-dir`` unless given one by one): ``image_data.json``, ``objects.json``,
``relationships.json``, ``attributes.json``, ``object_alias.txt``, ``relationship_alias.txt``
and a splits file ``{"train": [image ids], "val": [...], "test": [...]}`` (``vg_splits.json``).

Filters, with sg2im's thresholds as the defaults (all flags): drop images whose shorter side
is under 200 px; the object vocabulary holds names with >= 2000 training instances,
attributes >= 2000, predicates >= 500 (counted on relationships between kept objects);
objects smaller than 32 px in width or height are dropped; images keep 3-30 objects and 1-30
relationships. Names are normalised our way, not sg2im's: object names, attributes and
predicates are stripped, lower-cased, inner white space collapsed, and mapped through the
alias files, in every split (sg2im lower-cases and strips training predicates only). This and
the other differences from sg2im's script (vocabulary order, de-duplication, id dtypes,
``object_attributes`` per image) are listed in docs/datasets.md.

h5 fields: ``image_ids``, ``object_ids``, ``object_names`` (-1 padded vocab ids),
``object_boxes`` (pixel x, y, w, h), ``objects_per_image``, ``relationship_ids``,
``relationship_subjects``, ``relationship_predicates``, ``relationship_objects``,
``relationships_per_image``, ``object_attributes``, ``attributes_per_object``,
``image_paths`` (relative to the images folder, e.g. ``VG_100K/1.jpg``).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from sg2img.vocab import IMAGE_OBJECT, IN_IMAGE_PREDICATE, Vocab

logger = logging.getLogger("preprocess_vg")


@dataclass
class Thresholds:
    """sg2im's filtering thresholds."""

    min_image_size: int = 200
    min_object_instances: int = 2000
    min_attribute_instances: int = 2000
    min_relationship_instances: int = 500
    min_object_size: int = 32
    min_objects_per_image: int = 3
    max_objects_per_image: int = 30
    max_attributes_per_object: int = 30
    min_relationships_per_image: int = 1
    max_relationships_per_image: int = 30


def normalise(name: str) -> str:
    """Stripped, lower-cased, inner white space collapsed (our choice; sg2im keeps names as
    written and only lower-cases and strips training predicates)."""
    return " ".join(str(name).strip().lower().split())


def load_aliases(path: Path | None) -> dict[str, str]:
    """Alias file: each line ``canonical,alias,alias...`` -> {alias or canonical: canonical}."""
    aliases: dict[str, str] = {}
    if path is None:
        return aliases
    for line in path.read_text().splitlines():
        names = [normalise(s) for s in line.split(",") if s.strip()]
        for n in names:
            aliases[n] = names[0]
    return aliases


def _frequent(counter: Counter[str], min_count: int) -> list[str]:
    """Names seen at least ``min_count`` times, most frequent first, ties by name."""
    return [n for n, c in sorted(counter.items(), key=lambda nc: (-nc[1], nc[0]))
            if c >= min_count]


def _load(path: Path, what: str) -> Any:
    if not path.exists():
        raise FileNotFoundError(f"{what} not found: {path}")
    with open(path) as f:
        return json.load(f)


def image_path(url: str) -> str:
    """``.../VG_100K_2/1.jpg`` -> ``VG_100K_2/1.jpg`` (relative to the images folder)."""
    parts = url.rstrip("/").split("/")
    return "/".join(parts[-2:])


def _obj_name(obj: dict) -> list[str]:
    names = obj.get("names")
    if names is None:
        names = [obj["name"]] if "name" in obj else []
    return list(names)


def preprocess(images: list[dict], objects: list[dict], relationships: list[dict],
               attributes: list[dict], splits: dict[str, list[int]],
               obj_aliases: dict[str, str], rel_aliases: dict[str, str],
               t: Thresholds, train_split: str = "train",
               ) -> tuple[Vocab, dict[str, dict[str, np.ndarray]], dict[str, list[str]]]:
    """Vocabulary and per-split arrays from the loaded raw VG data.

    Returns:
        (vocab, arrays per split, image paths per split).
    """
    by_id = {im["image_id"]: im for im in images}
    new_splits = {}
    for split, ids in splits.items():
        known = [i for i in ids if i in by_id]
        if len(known) < len(ids):
            logger.warning("split %s: %d of %d image ids are not in image_data.json; skipped",
                           split, len(ids) - len(known), len(ids))
        keep = [i for i in known
                if min(by_id[i]["width"], by_id[i]["height"]) >= t.min_image_size]
        logger.info("split %s: %d of %d images are at least %d px", split, len(keep),
                    len(known), t.min_image_size)
        new_splits[split] = keep
    splits = new_splits
    train_ids = set(splits.get(train_split, []))
    all_ids = set().union(*map(set, splits.values())) if splits else set()

    def obj_names(obj: dict) -> list[str]:
        return [obj_aliases.get(normalise(n), normalise(n)) for n in _obj_name(obj)]

    counter: Counter[str] = Counter()
    for im in objects:
        if im["image_id"] in train_ids:
            for obj in im["objects"]:
                counter.update(list(dict.fromkeys(obj_names(obj))))  # once per object
    object_names = _frequent(counter, t.min_object_instances)
    name_idx = {n: i + 1 for i, n in enumerate(object_names)}
    logger.info("%d object names with >= %d training instances", len(object_names),
                t.min_object_instances)

    attr_counter: Counter[str] = Counter()
    for im in attributes:
        if im["image_id"] in train_ids:
            for a in im["attributes"]:
                names = (normalise(x) for x in a.get("attributes") or [])
                attr_counter.update(list(dict.fromkeys(names)))
    attribute_names = _frequent(attr_counter, t.min_attribute_instances)
    attr_idx = {n: i for i, n in enumerate(attribute_names)}

    kept_objects: dict[int, tuple[int, list[int]]] = {}      # object id -> (name id, box)
    too_small = 0
    for im in objects:
        if im["image_id"] not in all_ids:
            continue
        for obj in im["objects"]:
            idx = next((name_idx[n] for n in obj_names(obj) if n in name_idx), None)
            small = obj["w"] < t.min_object_size or obj["h"] < t.min_object_size
            too_small += small
            if idx is not None and not small:
                kept_objects[obj["object_id"]] = (idx, [obj["x"], obj["y"], obj["w"], obj["h"]])
    logger.info("%d objects kept; %d smaller than %d px", len(kept_objects), too_small,
                t.min_object_size)

    def pred_name(rel: dict) -> str:
        p = normalise(rel["predicate"])
        return rel_aliases.get(p, p)

    pred_counter: Counter[str] = Counter()
    for im in relationships:
        if im["image_id"] in train_ids:
            for rel in im["relationships"]:
                if rel["subject"]["object_id"] in kept_objects and \
                        rel["object"]["object_id"] in kept_objects:
                    pred_counter[pred_name(rel)] += 1
    pred_names = _frequent(pred_counter, t.min_relationship_instances)
    pred_idx = {p: i + 1 for i, p in enumerate(pred_names)}
    logger.info("%d predicates with >= %d training instances", len(pred_names),
                t.min_relationship_instances)
    vocab = Vocab((IMAGE_OBJECT, *object_names), (IN_IMAGE_PREDICATE, *pred_names),
                  tuple(attribute_names))

    objs_of = {im["image_id"]: im["objects"] for im in objects}
    rels_of = {im["image_id"]: im["relationships"] for im in relationships}
    attrs_of = {im["image_id"]: im["attributes"] for im in attributes}
    out, paths = {}, {}
    o_max, r_max, a_max = (t.max_objects_per_image, t.max_relationships_per_image,
                           t.max_attributes_per_object)
    for split, ids in splits.items():
        rows: dict[str, list] = {k: [] for k in (
            "image_ids", "object_ids", "object_names", "object_boxes", "objects_per_image",
            "relationship_ids", "relationship_subjects", "relationship_predicates",
            "relationship_objects", "relationships_per_image", "object_attributes",
            "attributes_per_object")}
        skipped: Counter[str] = Counter()
        split_paths = []
        for image_id in ids:
            oids = [o["object_id"] for o in objs_of.get(image_id, [])
                    if o["object_id"] in kept_objects]
            oids = list(dict.fromkeys(oids))                  # duplicates listed twice
            if not t.min_objects_per_image <= len(oids) <= o_max:
                skipped["too few objects" if len(oids) < t.min_objects_per_image
                        else "too many objects"] += 1
                continue
            local = {oid: i for i, oid in enumerate(oids)}
            rels = []
            for rel in rels_of.get(image_id, []):
                p = pred_idx.get(pred_name(rel))
                s, o = local.get(rel["subject"]["object_id"]), local.get(rel["object"]["object_id"])
                if p is not None and s is not None and o is not None:
                    rels.append((rel.get("relationship_id", -1), s, p, o))
            if not t.min_relationships_per_image <= len(rels) <= r_max:
                skipped["too few relationships" if len(rels) < t.min_relationships_per_image
                        else "too many relationships"] += 1
                continue
            obj_attrs = {a["object_id"]: a.get("attributes") or []
                         for a in attrs_of.get(image_id, [])}
            attr_rows, attr_counts = [], []
            for oid in oids:
                ids_ = [attr_idx[normalise(a)] for a in obj_attrs.get(oid, [])
                        if normalise(a) in attr_idx]
                ids_ = list(dict.fromkeys(ids_))[:a_max]
                attr_rows.append(ids_ + [-1] * (a_max - len(ids_)))
                attr_counts.append(len(ids_))
            pad_o, pad_r = o_max - len(oids), r_max - len(rels)
            rows["image_ids"].append(image_id)
            rows["object_ids"].append(oids + [-1] * pad_o)
            rows["object_names"].append([kept_objects[o][0] for o in oids] + [-1] * pad_o)
            rows["object_boxes"].append([kept_objects[o][1] for o in oids] + [[-1] * 4] * pad_o)
            rows["objects_per_image"].append(len(oids))
            for key, col in (("relationship_ids", 0), ("relationship_subjects", 1),
                             ("relationship_predicates", 2), ("relationship_objects", 3)):
                rows[key].append([r[col] for r in rels] + [-1] * pad_r)
            rows["relationships_per_image"].append(len(rels))
            rows["object_attributes"].append(attr_rows + [[-1] * a_max] * pad_o)
            rows["attributes_per_object"].append(attr_counts + [-1] * pad_o)
            split_paths.append(image_path(by_id[image_id]["url"]))
        logger.info("split %s: %d images kept; skipped %s", split, len(rows["image_ids"]),
                    dict(skipped) or "none")
        shapes = {"object_ids": (o_max,), "object_names": (o_max,), "object_boxes": (o_max, 4),
                  "relationship_ids": (r_max,), "relationship_subjects": (r_max,),
                  "relationship_predicates": (r_max,), "relationship_objects": (r_max,),
                  "object_attributes": (o_max, a_max), "attributes_per_object": (o_max,)}
        # Ids stay int64 (sg2im casts everything to int32): the procedural scenes' VG object
        # ids (image id x 64 + index) pass 2**31.
        out[split] = {k: np.asarray(v, dtype=np.int64 if k in ("image_ids", "object_ids",
                                                                "relationship_ids")
                                    else np.int32).reshape(-1, *shapes.get(k, ()))
                      for k, v in rows.items()}
        paths[split] = split_paths
    return vocab, out, paths


def write_outputs(out_dir: Path, vocab: Vocab, arrays: dict[str, dict[str, np.ndarray]],
                  paths: dict[str, list[str]]) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    for split, data in arrays.items():
        with h5py.File(out_dir / f"{split}.h5", "w") as f:
            for name, a in data.items():
                f.create_dataset(name, data=a)
            f.create_dataset("image_paths", data=paths[split], dtype=h5py.string_dtype())
    vocab.save(out_dir / "vocab.json")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--raw-dir", type=Path, help="folder holding the raw VG files")
    for name in ("image-data", "objects", "relationships", "attributes"):
        p.add_argument(f"--{name}-json", type=Path, help=f"default RAW/{name.replace('-', '_')}"
                       ".json")
    p.add_argument("--object-aliases", type=Path, help="default RAW/object_alias.txt")
    p.add_argument("--relationship-aliases", type=Path,
                   help="default RAW/relationship_alias.txt")
    p.add_argument("--splits-json", type=Path, help="default RAW/vg_splits.json")
    p.add_argument("--out-dir", type=Path, required=True)
    p.add_argument("--image-dir", type=Path, help="link OUT/images to this folder")
    p.add_argument("--train-split", default="train")
    for f in Thresholds.__dataclass_fields__.values():
        p.add_argument(f"--{f.name.replace('_', '-')}", type=int, default=f.default)
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")

    def path(given: Path | None, default: str) -> Path:
        if given is not None:
            return given
        if args.raw_dir is None:
            p.error(f"give --raw-dir or the path of {default}")
        return args.raw_dir / default

    try:
        images = _load(path(args.image_data_json, "image_data.json"), "image data")
        objects = _load(path(args.objects_json, "objects.json"), "objects")
        relationships = _load(path(args.relationships_json, "relationships.json"),
                              "relationships")
        attributes = _load(path(args.attributes_json, "attributes.json"), "attributes")
        splits = _load(path(args.splits_json, "vg_splits.json"), "splits file")
    except (FileNotFoundError, json.JSONDecodeError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    aliases = [path(given, default) for given, default in (
        (args.object_aliases, "object_alias.txt"),
        (args.relationship_aliases, "relationship_alias.txt"))]
    obj_aliases, rel_aliases = (load_aliases(a if a.exists() else None) for a in aliases)
    t = Thresholds(**{k: getattr(args, k) for k in Thresholds.__dataclass_fields__})
    vocab, arrays, paths = preprocess(images, objects, relationships, attributes, splits,
                                      obj_aliases, rel_aliases, t, args.train_split)
    write_outputs(args.out_dir, vocab, arrays, paths)
    if args.image_dir is not None:
        link = args.out_dir / "images"
        if not link.exists():
            os.symlink(os.path.relpath(args.image_dir.resolve(), args.out_dir.resolve()), link)
    print(f"wrote {', '.join(f'{s}.h5 ({len(paths[s])} images)' for s in arrays)} and "
          f"vocab.json ({vocab.num_objects} objects, {vocab.num_preds} predicates, "
          f"{vocab.num_attributes} attributes) to {args.out_dir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
