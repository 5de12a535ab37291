"""Datasets of (scene graph, image) pairs: COCO-Stuff, Visual Genome and procedural scenes.

``build_dataset(data_cfg, split, image_size, mask_size)`` is the one entry point the trainer
and the evaluation use. Directory layouts under ``data_cfg.root``:

COCO-Stuff format (``data.dataset = "coco"``; the procedural scenes and a user's own
arrangement of COCO)::

    ROOT/annotations/instances_{split}.json   ROOT/annotations/stuff_{split}.json
    ROOT/images/{split}/

Real COCO-Stuff 2017 file names are accepted too: ``train`` reads
``instances_train2017.json`` / ``stuff_train2017.json`` / ``images/train2017``; ``val`` and
``test`` both read the val2017 files and images, ``val`` being the first 1024 filtered images
and ``test`` the last 2048 (sg2im's split). Visual Genome (``data.dataset = "vg"``)::

    ROOT/{split}.h5   ROOT/vocab.json   ROOT/images/   (written by data_tools/preprocess_vg.py)
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from torch.utils.data import Dataset

from ..config import DataConfig
from .coco import CocoSceneGraphDataset, synthesize_relationships
from .common import DatasetError, DatasetNotFoundError, spatial_predicate
from .vg import VGSceneGraphDataset

logger = logging.getLogger(__name__)

__all__ = ["CocoSceneGraphDataset", "DatasetError", "DatasetNotFoundError", "VGSceneGraphDataset",
           "build_dataset", "spatial_predicate", "synthesize_relationships"]

SPLITS = ("train", "val", "test")
COCO_VAL_SIZE, COCO_TEST_SIZE = 1024, 2048


def _cache_dir(root: Path) -> Path | None:
    """``ROOT/cache`` if it can be written, else None (the loader then works uncached)."""
    cache = root / "cache"
    if cache.is_dir():
        return cache if os.access(cache, os.W_OK) else None
    return cache if os.access(root, os.W_OK) else None


def _coco_paths(root: Path, split: str) -> tuple[Path, Path, Path, slice | None]:
    """(instances, stuff, image_dir, subset) for a split, preferring ``{split}`` names."""
    ann = root / "annotations"
    own = (ann / f"instances_{split}.json", ann / f"stuff_{split}.json", root / "images" / split)
    if own[0].exists() or own[1].exists():
        return (*own, None)
    year = "train2017" if split == "train" else "val2017"
    coco = (ann / f"instances_{year}.json", ann / f"stuff_{year}.json", root / "images" / year)
    if coco[0].exists() or coco[1].exists():
        subset = {"train": None, "val": slice(0, COCO_VAL_SIZE),
                  "test": slice(-COCO_TEST_SIZE, None)}[split]
        return (*coco, subset)
    raise DatasetNotFoundError(
        f"no COCO-Stuff annotations for split {split!r} under {ann}: expected "
        f"{own[0].name} and {own[1].name} (procedural data, or your own arrangement), or "
        f"{coco[0].name} and {coco[1].name} (COCO-Stuff 2017); data.root is {root} (see "
        f"docs/datasets.md)")


def _missing_root_message(dataset: str, root: Path) -> str:
    """What to do about a missing ``data.root``, by dataset: the files Visual Genome and
    COCO-Stuff need (and where they are described); for the procedural scenes (a ``coco``
    root whose folder name holds ``shapes``, as the guides name it) the command that makes
    them."""
    head = f"dataset directory not found: {root} (data.root)"
    if dataset == "vg":
        return (f"{head}; Visual Genome needs {{train,val,test}}.h5, vocab.json and images/ in "
                f"it, written by python data_tools/preprocess_vg.py from the Visual Genome "
                f"download (see docs/datasets.md)")
    if "shapes" in root.name.lower():
        return (f"{head}; make the procedural scenes with python data_tools/make_shapes.py "
                f"--out {root}")
    return (f"{head}; COCO-Stuff 2017 needs annotations/instances_train2017.json, "
            f"annotations/stuff_train2017.json and images/train2017/ in it (val2017 likewise), "
            f"as downloaded (see docs/datasets.md)")


def build_dataset(data_cfg: DataConfig, split: str, image_size: int, mask_size: int, *,
                  deterministic: bool | None = None) -> Dataset:
    """The dataset of ``GraphSample``s (image node appended) for a split.

    Args:
        data_cfg: which dataset (``coco`` or ``vg``), its root and the object filters.
        split: ``"train"``, ``"val"`` or ``"test"``.
        image_size: S, images are (3, S, S) in [-1, 1].
        mask_size: M, COCO masks are (O, M, M) (VG items have ``masks=None``).
        deterministic: fixed per-item sampling (relationships for COCO, object subsets for
            VG) seeded by ``seed + index``; defaults to True for val/test, False for train.

    Returns:
        A ``CocoSceneGraphDataset`` or ``VGSceneGraphDataset`` (both have ``.vocab``).

    Raises:
        ValueError: unknown split or dataset.
        DatasetNotFoundError: a file or folder is missing (the message names it and what the
            dataset needs there).
    """
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; choose one of {SPLITS}")
    if not data_cfg.root:
        raise ValueError("data.root is empty; set it to the dataset directory "
                         "(e.g. --set data.root=data/shapes64)")
    root = Path(data_cfg.root).expanduser()
    if not root.is_dir():
        raise DatasetNotFoundError(_missing_root_message(data_cfg.dataset, root))
    if deterministic is None:
        deterministic = split != "train"
    if data_cfg.dataset == "coco":
        instances, stuff, image_dir, subset = _coco_paths(root, split)
        return CocoSceneGraphDataset(
            image_dir, instances, stuff, image_size=image_size, mask_size=mask_size,
            min_object_size=data_cfg.min_object_size, min_objects=data_cfg.min_objects,
            max_objects=data_cfg.max_objects, include_other=data_cfg.include_other,
            subset=subset, deterministic=deterministic, seed=0, cache_dir=_cache_dir(root))
    if data_cfg.dataset == "vg":
        return VGSceneGraphDataset(
            root / f"{split}.h5", root / "vocab.json", root / "images", image_size=image_size,
            min_objects=data_cfg.min_objects, max_objects=data_cfg.max_objects,
            deterministic=deterministic, seed=0)
    raise ValueError(f"unknown dataset {data_cfg.dataset!r}; choose 'coco' or 'vg'")
