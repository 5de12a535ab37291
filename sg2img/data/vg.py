"""Visual Genome scene graphs from the HDF5 files written by ``data_tools/preprocess_vg.py``.

The h5 fields are sg2im's (``object_names``, ``object_boxes`` as pixel x, y, w, h, padded
with -1, ``relationship_*``, ``image_paths``...). An item keeps at most ``max_objects``
objects, preferring objects that take part in relationships (sg2im's rule), and the
relationships among them; VG has no masks, so ``masks`` is None.
"""

from __future__ import annotations

import logging
from os import PathLike
from pathlib import Path

import h5py
import numpy as np
import torch
from PIL import Image

from ..scene_graph import GraphSample
from ..vocab import Vocab
from .common import RowDataset, item_rng, load_image, require_path

logger = logging.getLogger(__name__)

_REQUIRED = ("image_ids", "object_names", "object_boxes", "objects_per_image",
             "relationship_subjects", "relationship_predicates", "relationship_objects",
             "relationships_per_image", "image_paths")


def select_objects(num_objects: int, subjects: np.ndarray, objects: np.ndarray,
                   max_objects: int, rng: np.random.Generator, *,
                   use_orphaned_objects: bool = True) -> np.ndarray:
    """Which objects of an image to keep: those in relationships first, then others.

    Args:
        num_objects: objects in the image.
        subjects, objects: (R,) object indices of its relationships.
        max_objects: keep at most this many objects.
        rng: picks a random subset when there are too many.
        use_orphaned_objects: fill up with objects that are in no relationship.

    Returns:
        Sorted object indices, at most ``max_objects`` of them.
    """
    in_rels = np.unique(np.concatenate([subjects, objects]).astype(np.int64))
    in_rels = in_rels[(in_rels >= 0) & (in_rels < num_objects)]
    if len(in_rels) >= max_objects:
        return np.sort(rng.choice(in_rels, max_objects, replace=False))
    chosen = in_rels
    if use_orphaned_objects:
        orphans = np.setdiff1d(np.arange(num_objects), in_rels)
        k = min(len(orphans), max_objects - len(in_rels))
        chosen = np.concatenate([in_rels, rng.choice(orphans, k, replace=False)])
    return np.sort(chosen)


class VGSceneGraphDataset(RowDataset):
    """Visual Genome images with their (preprocessed) scene graphs.

    Items are ``GraphSample``s with the image node appended: ``objs (O,)``, ``triples (T, 3)``,
    ``boxes (O, 4)`` in [0, 1], ``box_given`` all True, ``masks=None``, ``image (3, S, S)`` in
    [-1, 1], ``attributes (O, A)`` multi-hot when the vocabulary has attributes, ``image_id``.

    Args:
        h5_path: ``{split}.h5`` from ``preprocess_vg.py``.
        vocab: a ``Vocab`` or the path of ``vocab.json``.
        image_dir: folder the h5 ``image_paths`` are relative to.
        image_size: S.
        min_objects: skip images with fewer objects than this.
        max_objects: keep at most this many objects per image (the image node not counted).
        use_orphaned_objects: fill up to ``max_objects`` with objects in no relationship.
        include_relationships: keep VG's relationships (else only ``__in_image__``).
        deterministic: object subsets seeded by ``seed + index`` (evaluation); else random.
        seed: see ``deterministic``.
        max_samples: use at most this many images.

    Raises:
        DatasetNotFoundError: the h5 file, vocab or image folder is missing.
        ValueError: the h5 file lacks a required field.
    """

    def __init__(self, h5_path: str | PathLike, vocab: Vocab | str | PathLike,
                 image_dir: str | PathLike, *, image_size: int = 64, min_objects: int = 1,
                 max_objects: int = 10, use_orphaned_objects: bool = True,
                 include_relationships: bool = True, deterministic: bool = False,
                 seed: int = 0, max_samples: int | None = None) -> None:
        super().__init__()
        h5_path = require_path(Path(h5_path), "Visual Genome h5 file",
                               "{train,val,test}.h5 written by data_tools/preprocess_vg.py")
        if not isinstance(vocab, Vocab):
            vocab = Vocab.load(require_path(Path(vocab), "Visual Genome vocab",
                                            "vocab.json written by data_tools/preprocess_vg.py"))
        self.vocab = vocab
        self.image_dir = require_path(Path(image_dir), "Visual Genome image directory",
                                      "a folder holding the h5 image_paths (e.g. VG_100K/)")
        self.image_size, self.max_objects = int(image_size), int(max_objects)
        self.use_orphaned_objects = use_orphaned_objects
        self.include_relationships = include_relationships
        self.deterministic, self.seed = bool(deterministic), int(seed)
        with h5py.File(h5_path, "r") as f:
            missing = [k for k in _REQUIRED if k not in f]
            if missing:
                raise ValueError(f"{h5_path} lacks the fields {missing}; rewrite it with "
                                 f"data_tools/preprocess_vg.py")
            data = {k: f[k][()] for k in f.keys()}
        self.image_paths = [p.decode() if isinstance(p, bytes) else str(p)
                            for p in data.pop("image_paths")]
        self.data = data
        self._attributes = self._per_image_attributes(data)
        keep = np.flatnonzero(data["objects_per_image"] >= min_objects)
        if max_samples is not None:
            keep = keep[:max_samples]
        self._rows = keep
        logger.info("VG %s: %d of %d images with >= %d objects; at most %d objects per item",
                    h5_path.name, len(keep), len(data["objects_per_image"]), min_objects,
                    self.max_objects)

    def _per_image_attributes(self, data: dict) -> np.ndarray | None:
        """(N, O_max, A_max) attribute ids (-1 padded), or None without attributes.

        sg2im's own files store ``object_attributes`` flattened over the objects of all
        images, (sum of objects, A_max); that form is regrouped per image here.
        """
        attrs = data.get("object_attributes")
        if attrs is None or self.vocab.attribute_names is None:
            return None
        if attrs.ndim == 3:
            return attrs
        n, o_max = data["object_names"].shape
        out = np.full((n, o_max, attrs.shape[1]), -1, dtype=attrs.dtype)
        start = 0
        for i, count in enumerate(data["objects_per_image"]):
            out[i, :count] = attrs[start:start + count]
            start += count
        return out

    def __getitem__(self, index: int) -> GraphSample:
        r = self._row(index)
        d = self.data
        n_obj, n_rel = int(d["objects_per_image"][r]), int(d["relationships_per_image"][r])
        subs = d["relationship_subjects"][r, :n_rel].astype(np.int64)
        preds = d["relationship_predicates"][r, :n_rel].astype(np.int64)
        objs_ = d["relationship_objects"][r, :n_rel].astype(np.int64)
        rng = item_rng(self.deterministic, self.seed, index)
        chosen = select_objects(n_obj, subs, objs_, self.max_objects, rng,
                                use_orphaned_objects=self.use_orphaned_objects)
        path = self.image_dir / self.image_paths[r]
        with Image.open(path) as im:
            width, height = im.size
        image = load_image(path, self.image_size)
        x, y, w, h = d["object_boxes"][r, chosen].astype(np.float32).T
        boxes = np.stack([x / width, y / height, (x + w) / width, (y + h) / height], 1)
        remap = np.full(max(n_obj, 1), -1, dtype=np.int64)
        remap[chosen] = np.arange(len(chosen))
        triples = np.zeros((0, 3), dtype=np.int64)
        if self.include_relationships and n_rel:
            s, o = remap[subs], remap[objs_]
            ok = (s >= 0) & (o >= 0)
            triples = np.stack([s[ok], preds[ok], o[ok]], 1)
        attributes = None
        if self._attributes is not None:
            attributes = torch.zeros(len(chosen), self.vocab.num_attributes)
            ids = self._attributes[r, chosen]                        # (O, A_max)
            rows, cols = np.nonzero(ids >= 0)
            attributes[rows, ids[rows, cols]] = 1.0
        return GraphSample(
            objs=torch.from_numpy(d["object_names"][r, chosen].astype(np.int64)),
            triples=torch.from_numpy(triples.astype(np.int64)),
            boxes=torch.from_numpy(np.clip(boxes, 0.0, 1.0).astype(np.float32)),
            box_given=torch.ones(len(chosen), dtype=torch.bool), masks=None, image=image,
            attributes=attributes, image_id=int(d["image_ids"][r])).with_image_node()
