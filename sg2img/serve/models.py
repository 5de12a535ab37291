"""The models a server offers: the bundled one and the checkpoints given on the command line.

The page and the JSON API name models by ``id`` only; no file-system path ever comes from a
request. Every model is loaded when the server starts, so a bad checkpoint stops the command
before it binds a port rather than failing a request later.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass
from os import PathLike
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)

@dataclass(eq=False)
class ServedModel:
    """A loaded model and how the page names it.

    Attributes:
        id: the name requests use (``"default"`` for the bundled model, else the file's stem,
            with its folder's name for an ``export.pt`` or ``model.pt``).
        label: what the page shows (``checkpoint_label``): no more of the file's path than
            tells the models apart.
        model: the loaded ``SG2ImgModel``.
    """

    id: str
    label: str
    model: Any

    def describe(self) -> dict[str, Any]:
        m = self.model
        return {"id": self.id, "label": self.label, "image_size": m.image_size,
                "num_objects": len(m.vocab.user_object_names()),
                "num_predicates": len(m.vocab.user_pred_names()),
                "device": str(m.device),
                # Per-object noise (model.renderer.noise=spatial): "another look" for one object.
                "resample_object": m.object_noise_dim > 0}


class ModelRegistry:
    """Models by id, in the order the page lists them (the first is the default)."""

    def __init__(self, models: Sequence[ServedModel]) -> None:
        if not models:
            raise ValueError("a server needs at least one model")
        self._models = {m.id: m for m in models}
        if len(self._models) != len(models):
            raise ValueError("model ids must be unique")
        self.default_id = models[0].id

    def __iter__(self):
        return iter(self._models.values())

    def __len__(self) -> int:
        return len(self._models)

    def get(self, model_id: str | None) -> ServedModel | None:
        """The model with this id (None for the default), or None when there is none."""
        return self._models.get(self.default_id if model_id is None else model_id)

    @property
    def ids(self) -> list[str]:
        return list(self._models)

    @property
    def devices(self) -> list[str]:
        return sorted({str(m.model.device) for m in self})


def _unique_id(stem: str, taken: set[str]) -> str:
    base = re.sub(r"[^A-Za-z0-9._-]+", "-", stem).strip("-") or "model"
    out, k = base, 2
    while out in taken:
        out, k = f"{base}-{k}", k + 1
    return out


GENERIC_STEMS = ("export", "model", "checkpoint", "last", "best", "final")
"""Checkpoint file names that say nothing of the run: their folder names the model."""


def checkpoint_labels(paths: Sequence[str | PathLike]) -> list[str]:
    """How the page names each checkpoint: the file name, with its folder (the run's name)
    when the name is a generic one (``export.pt``) or another checkpoint has the same name,
    e.g. ``small/export.pt``; more folders only while two labels are still equal.

    No more of the path than that: labels appear in the page and in error messages.

    Args:
        paths: the checkpoints, in the order the page lists them.

    Returns:
        One label per path, in the same order; unique when the paths are.
    """
    # The folders and the name, without the root ("/" or a drive).
    parts = [Path(p).parts[1:] if Path(p).anchor else Path(p).parts for p in paths]
    names = [Path(p).name for p in paths]
    depth = [2 if Path(p).stem in GENERIC_STEMS or names.count(Path(p).name) > 1 else 1
             for p in paths]

    def label(i: int) -> str:
        return "/".join(parts[i][-depth[i]:])

    for _ in range(max((len(p) for p in parts), default=0)):
        labels = [label(i) for i in range(len(paths))]
        clash = [i for i, lab in enumerate(labels) if labels.count(lab) > 1
                 and depth[i] < len(parts[i])]
        if not clash:
            break
        for i in clash:
            depth[i] += 1
    return [label(i) for i in range(len(paths))]


def load_registry(checkpoints: Sequence[str | PathLike] = (), device: str | None = None, *,
                  include_default: bool = True) -> ModelRegistry:
    """Load the bundled models (those installed) and every checkpoint given.

    Args:
        checkpoints: checkpoint or inference-export files, in the order to list them; a
            bundled model's name (``default-128``, :mod:`sg2img.bundled`) is that model.
        device: ``"cpu"``, ``"cuda"``, ``"cuda:N"``; None picks CUDA when available.
        include_default: also offer the bundled models, first (``default``, then
            ``default-128``), under their names.

    Returns:
        The registry; its default is the bundled 64 px model, or the first model listed
        without it.

    Raises:
        CheckpointError: a checkpoint is missing or cannot be used, or no model is installed
            and none is given (nothing is served).
        GenerationError: a bad device.
    """
    from ..api import load_model
    from ..bundled import BUNDLED_MODELS, DEFAULT_NAME, checkpoint_path, installed_models
    from ..checkpoint import CheckpointError

    named = {m.path for m in BUNDLED_MODELS.values()}
    paths = [checkpoint_path(c) for c in checkpoints]
    for ckpt, path in zip(checkpoints, paths, strict=True):  # before loading: a typo fails now
        if not path.is_file():
            raise CheckpointError(f"checkpoint not found: {ckpt}")
    bundled = [m for m in installed_models() if include_default or m.path in paths]
    if include_default and not bundled and not checkpoints:
        load_model(None, device)           # raises: the bundled model is not installed
    models: list[ServedModel] = []
    taken: set[str] = set()
    for m in bundled:   # the label of a model but the default is what --checkpoint takes
        label = "bundled model" if m.name == DEFAULT_NAME else m.name
        models.append(ServedModel(m.name, label, load_model(m.path, device)))
        taken.add(m.name)
    given = [p for p in paths if p not in named]
    for path, label in zip(given, checkpoint_labels(given), strict=True):
        model = load_model(path, device)
        mid = _unique_id(path.stem if path.stem not in ("export", "model") else
                         f"{path.parent.name}-{path.stem}", taken)
        taken.add(mid)
        models.append(ServedModel(mid, label, model))
    return ModelRegistry(models)
