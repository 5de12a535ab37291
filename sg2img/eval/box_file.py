"""Box files: other systems' layouts as JSON, written, read, matched to a dataset and scored.

Box file format (to score other systems' layouts the same way)
    A JSON file with boxes as ``[x0, y0, x1, y1]`` fractions of the image width and height
    (in [0, 1]), one box per ground-truth object of the image, in the dataset's object order with
    the ``__image__`` node left out. Two forms are accepted::

        {"format": "sg2img-boxes", "boxes": {"<image_id>": [[x0, y0, x1, y1], ...], ...}}
        {"<image_id>": [[x0, y0, x1, y1], ...], ...}          # the same mapping, bare
        [[[x0, y0, x1, y1], ...], ...]                        # list form: one entry per item
                                                              # in dataset order

    Image ids are compared as strings (JSON keys are strings). Every dataset item must have an
    entry with exactly as many boxes as it has objects; extra entries are an error too, so a
    file made for another split cannot be scored by accident. :func:`write_box_file` writes the
    first form.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping, Sequence
from os import PathLike
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from ..files import read_json, short
from .boxes import (
    DEFAULT_RECALL_THRESHOLDS,
    layout_recall,
    layout_recall_by_size,
    real_object_mask,
)

BOX_FILE_FORMAT = "sg2img-boxes"


class BoxFileError(ValueError):
    """A box file is missing, malformed, or does not match the dataset."""


# --------------------------------------------------------------------------- box files
def write_box_file(path: str | PathLike, boxes: Mapping[Any, Tensor | Sequence]) -> None:
    """Write predicted boxes in the ``sg2img-boxes`` JSON form (see the module docstring).

    Args:
        path: output file.
        boxes: image id -> (O_i, 4) boxes in [0, 1], ``__image__`` excluded.
    """
    data = {str(k): (v.tolist() if isinstance(v, Tensor) else [list(b) for b in v])
            for k, v in boxes.items()}
    Path(path).write_text(json.dumps({"format": BOX_FILE_FORMAT, "boxes": data}))


def load_box_file(path: str | PathLike) -> dict[str, Tensor] | list[Tensor]:
    """Read a box file in one of the forms of the module docstring.

    Returns:
        image id (str) -> (O_i, 4) float boxes, or a list of (O_i, 4) for the list form.

    Raises:
        BoxFileError: the file is missing, not JSON, or a box is not 4 finite numbers in
            [0, 1] (pixel coordinates are refused with a hint to divide by the image size).
    """
    path = Path(path)
    data = read_json(path, "box file", BoxFileError)
    if isinstance(data, dict) and data.get("format") == BOX_FILE_FORMAT:
        data = data.get("boxes")
    if isinstance(data, dict):
        return {str(k): _boxes_tensor(v, f"{path}: image {short(k)}") for k, v in data.items()}
    if isinstance(data, list):
        return [_boxes_tensor(v, f"{path}: item {i}") for i, v in enumerate(data)]
    raise BoxFileError(f"box file {path} must hold a JSON object (image id -> boxes) or a list "
                       f"of box lists, got {type(data).__name__}")


def _boxes_tensor(value: Any, where: str) -> Tensor:
    if not isinstance(value, list) or not all(
            isinstance(b, list) and len(b) == 4 and all(
                isinstance(v, (int, float)) and not isinstance(v, bool) for v in b)
            for b in value):
        raise BoxFileError(f"{where}: expected a list of [x0, y0, x1, y1] boxes, got "
                           f"{short(value)}")
    try:
        t = torch.tensor(value, dtype=torch.float32).reshape(-1, 4)
    except (OverflowError, RuntimeError):  # an integer too large for a float
        raise BoxFileError(f"{where}: box values must be fractions of the image in [0, 1], "
                           f"got a number too large to read") from None
    if not torch.isfinite(t).all():
        raise BoxFileError(f"{where}: box values must be finite")
    if ((t < -1e-3) | (t > 1 + 1e-3)).any():
        raise BoxFileError(f"{where}: box values must be fractions of the image in [0, 1], got "
                           f"values in [{t.min():g}, {t.max():g}]; if these are pixel "
                           f"coordinates, divide x by the image width and y by its height")
    inverted = ((t[:, 2] < t[:, 0]) | (t[:, 3] < t[:, 1])).nonzero().flatten()
    if len(inverted):
        i = int(inverted[0])
        raise BoxFileError(f"{where}: box {i} {[round(float(v), 4) for v in t[i]]} is inverted; "
                           f"boxes are [x0, y0, x1, y1] with x0 <= x1 and y0 <= y1 "
                           f"({len(inverted)} such box{'es' * (len(inverted) > 1)})")
    return t


def _items(samples: Iterable[Any]) -> Iterator[Any]:
    """Items of a map-style dataset by index (plain iteration would not stop at ``len``)."""
    if hasattr(samples, "__len__") and hasattr(samples, "__getitem__"):
        return (samples[i] for i in range(len(samples)))
    return iter(samples)


def gt_boxes_by_image(samples: Iterable[Any]) -> list[tuple[Any, Tensor]]:
    """Ground-truth boxes of real objects per dataset item, in dataset order.

    Args:
        samples: ``GraphSample``-like items with ``objs (O,)``, ``boxes (O, 4)``, ``image_id``.

    Returns:
        ``[(image_id, (O_i, 4) boxes without the __image__ node), ...]``.
    """
    out = []
    for s in _items(samples):
        keep = real_object_mask(s.objs)
        out.append((s.image_id, s.boxes[keep].float()))
    return out


def match_box_file(path: str | PathLike, samples: Iterable[Any]
                   ) -> list[tuple[Any, Tensor, Tensor]]:
    """The boxes of a box file matched to a dataset's items.

    Args:
        path: a box file (module docstring).
        samples: the dataset (``GraphSample`` items with ``objs``, ``boxes``, ``image_id``), in
            the order the list form refers to.

    Returns:
        ``[(image_id, (O_i, 4) predicted boxes, (O_i, 4) ground-truth boxes), ...]`` in
        dataset order, ``__image__`` excluded.

    Raises:
        BoxFileError: an item is missing from the file, has the wrong number of boxes, or the
            file has entries the dataset does not.
    """
    pred = load_box_file(path)
    gt = gt_boxes_by_image(samples)
    if isinstance(pred, list):
        if len(pred) != len(gt):
            raise BoxFileError(f"{path} lists boxes for {len(pred)} images but the dataset has "
                               f"{len(gt)}; the list form needs one entry per item in order")
        pairs = [(image_id, p, g, f"item {i} (image {image_id!r})")
                 for i, ((image_id, g), p) in enumerate(zip(gt, pred, strict=True))]
    else:
        pairs = []
        for image_id, g in gt:
            key = str(image_id)
            if key not in pred:
                raise BoxFileError(f"{path} has no boxes for image {key!r}; give boxes for "
                                   f"every image of the split")
            pairs.append((image_id, pred.pop(key), g, f"image {key!r}"))
        if pred:
            extra = sorted(pred)[:5]
            raise BoxFileError(f"{path} has boxes for {len(pred)} images that are not in the "
                               f"dataset split (e.g. {extra}); is it for another split?")
    for _, p, g, where in pairs:
        if len(p) != len(g):
            raise BoxFileError(f"{path}: {where} has {len(p)} boxes but {len(g)} ground-truth "
                               f"objects (__image__ excluded); give one box per object in "
                               f"dataset order")
    return [(image_id, p, g) for image_id, p, g, _ in pairs]


def score_box_file(path: str | PathLike, samples: Iterable[Any],
                   thresholds: Sequence[float] = DEFAULT_RECALL_THRESHOLDS) -> dict[str, Any]:
    """Layout recall of the boxes in a box file against a dataset's ground truth.

    Args:
        path, samples: as :func:`match_box_file`.
        thresholds: IoU thresholds (strictly above).

    Returns:
        :func:`layout_recall` of all objects, plus ``"num_images"`` and ``"by_size"``
        (:func:`layout_recall_by_size`).

    Raises:
        BoxFileError: as :func:`match_box_file`.
    """
    return score_box_pairs(match_box_file(path, samples), thresholds)


def score_box_pairs(pairs: Sequence[tuple[Any, Tensor, Tensor]],
                    thresholds: Sequence[float] = DEFAULT_RECALL_THRESHOLDS) -> dict[str, Any]:
    """:func:`score_box_file`'s figures for boxes already matched (:func:`match_box_file`)."""
    pred_all = torch.cat([p for _, p, _ in pairs]) if pairs else torch.zeros(0, 4)
    gt_all = torch.cat([g for _, _, g in pairs]) if pairs else torch.zeros(0, 4)
    out: dict[str, Any] = dict(layout_recall(pred_all, gt_all, thresholds))
    out["num_images"] = len(pairs)
    out["by_size"] = layout_recall_by_size(pred_all, gt_all, thresholds=thresholds)
    return out


