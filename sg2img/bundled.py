"""The models shipped with the package, by name.

``load_model``, ``generate``, ``sg2img generate / evaluate / vocab / serve --checkpoint`` and the
editor's model menu take a bundled model's name where they take a checkpoint file:

    ``default``      64 x 64, sg2img/assets/default_model.pt (what None means)
    ``default-128``  128 x 128, sg2img/assets/default_model_128.pt

Only a ``str`` spelled exactly as a name means the bundled model; any other string, and every
``Path``, is a file (``./default-128`` reaches a file of that name in the working directory).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from os import PathLike
from pathlib import Path

from .checkpoint import CheckpointError

logger = logging.getLogger(__name__)

ASSETS = Path(__file__).resolve().parent / "assets"


@dataclass(frozen=True)
class BundledModel:
    """A model shipped in ``sg2img/assets``: its name, file and image size."""

    name: str
    path: Path
    image_size: int

    @property
    def installed(self) -> bool:
        return self.path.is_file()


BUNDLED_MODELS: dict[str, BundledModel] = {
    m.name: m for m in (BundledModel("default", ASSETS / "default_model.pt", 64),
                        BundledModel("default-128", ASSETS / "default_model_128.pt", 128))}
DEFAULT_NAME = "default"


def checkpoint_path(checkpoint: str | PathLike | None) -> Path:
    """The file ``checkpoint`` stands for: ``None`` is the ``default`` model, a bundled name its
    asset, anything else a path (returned as it is, not checked).

    Raises:
        CheckpointError: a bundled model that is not installed (the message says what to pass).
    """
    if checkpoint is None:
        checkpoint = DEFAULT_NAME
    if not (isinstance(checkpoint, str) and checkpoint in BUNDLED_MODELS):
        return Path(checkpoint)
    model = BUNDLED_MODELS[checkpoint]
    if not model.installed:
        raise CheckpointError(
            f"the bundled model {checkpoint!r} is not installed ({model.path} is missing); "
            f"give a checkpoint file instead (--checkpoint RUN/export.pt), e.g. one trained "
            f"with 'sg2img train'")
    if Path(checkpoint).exists():
        logger.warning("%r names the bundled model, not the file of that name here; pass "
                       "./%s for the file", checkpoint, checkpoint)
    return model.path


def installed_models() -> list[BundledModel]:
    """The bundled models whose weights are present, ``default`` first."""
    return [m for m in BUNDLED_MODELS.values() if m.installed]
