"""Checkpoints as plain dicts: save atomically, load with ``weights_only=True``, export.

A training checkpoint holds ``format_version``, ``kind="training"``, ``step``, ``config``
(``Config.to_dict()``), ``vocab`` (``Vocab.to_dict()``), the module states ``generator``,
``generator_ema``, ``discriminator``, the optimizer states ``optim_g`` / ``optim_d``, ``scaler``,
``rng`` and ``data_state``. An inference export keeps ``config``, ``vocab`` and the (EMA)
generator weights as ``generator``. Nothing pickled: no classes, no code.
"""

from __future__ import annotations

import logging
import os
import pickle
import tempfile
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn

from .config import Config, ConfigError
from .vocab import Vocab, VocabError

logger = logging.getLogger(__name__)

FORMAT_VERSION = 1
_WRAPPER_PREFIXES = ("module.", "_orig_mod.")


class CheckpointError(ValueError):
    """A checkpoint file is missing, damaged, not an sg2img checkpoint or too new."""


def save_checkpoint(path: str | os.PathLike, state: Mapping[str, Any]) -> Path:
    """Write ``state`` atomically: a temp file in the same folder, fsync, then ``os.replace``.

    ``format_version`` is added when missing. A crash mid-write leaves any previous file at
    ``path`` intact.

    Returns:
        The path written.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    state = dict(state)
    state.setdefault("format_version", FORMAT_VERSION)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            torch.save(state, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    try:  # make the rename itself durable; not possible on every platform
        dir_fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
    except OSError:
        pass
    return path


def load_checkpoint(path: str | os.PathLike,
                    map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Load a checkpoint saved by ``save_checkpoint`` (``torch.load(weights_only=True)``).

    Raises:
        CheckpointError: the file is missing, truncated or corrupt, is not an sg2img checkpoint
            (no ``format_version``), or has a newer format version than this code reads.
    """
    path = Path(path)
    if not path.exists():
        raise CheckpointError(f"checkpoint not found: {path}")
    if path.is_dir():
        raise CheckpointError(f"{path} is a directory; give a checkpoint file such as "
                              f"{path / 'checkpoints' / 'ckpt_<step>.pt'} or {path / 'export.pt'}")
    try:
        ckpt = torch.load(path, map_location=map_location, weights_only=True)
    except (RuntimeError, EOFError, zipfile.BadZipFile, pickle.UnpicklingError, ValueError,
            OSError, KeyError) as e:   # a non-zip, non-pickle file gives a bare KeyError
        # torch's own message runs to many lines of advice about weights_only; keep its
        # first line, which names the actual failure.
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        if isinstance(e, KeyError):
            first = "neither a zip nor a pickle file"
        first = first.replace("\x1b[1m", "").replace("\x1b[0m", "")
        raise CheckpointError(f"cannot read checkpoint {path}: the file is truncated, corrupt, "
                              f"not a torch file, or holds more than plain tensors and "
                              f"containers ({first[:200]})") from None
    if not isinstance(ckpt, dict) or "format_version" not in ckpt:
        raise CheckpointError(f"{path} is not an sg2img checkpoint (no 'format_version')")
    version = ckpt["format_version"]
    if not isinstance(version, int) or version > FORMAT_VERSION:
        raise CheckpointError(f"{path} has checkpoint format version {version!r}, newer than "
                              f"this sg2img reads ({FORMAT_VERSION}); upgrade sg2img")
    return ckpt


def unwrap_state_dict(module: nn.Module | Mapping[str, Any]) -> dict[str, Any]:
    """State dict without DDP (``module.``) or ``torch.compile`` (``_orig_mod.``) prefixes.

    Accepts a module (wrapped or not) or a state dict.
    """
    state = module.state_dict() if isinstance(module, nn.Module) else module
    out = {}
    for key, value in state.items():
        changed = True
        while changed:
            changed = False
            for prefix in _WRAPPER_PREFIXES:
                if key.startswith(prefix):
                    key, changed = key[len(prefix):], True
            key = key.replace("._orig_mod.", ".")
        out[key] = value
    return out


def export_inference(path: str | os.PathLike, config: Config | Mapping[str, Any],
                     vocab: Vocab | Mapping[str, Any],
                     generator_state: nn.Module | Mapping[str, Any], *,
                     step: int | None = None) -> Path:
    """Write an inference export: config, vocab and generator weights only.

    Args:
        config: ``Config`` or its dict form.
        vocab: ``Vocab`` or its dict form.
        generator_state: the (EMA) generator or its state dict (wrappers are stripped).
        step: the training step the weights are from (recorded when given).
    """
    ckpt = {
        "format_version": FORMAT_VERSION,
        "kind": "inference",
        "config": config.to_dict() if isinstance(config, Config) else dict(config),
        "vocab": vocab.to_dict() if isinstance(vocab, Vocab) else dict(vocab),
        "generator": unwrap_state_dict(generator_state),
    }
    if step is not None:
        ckpt["step"] = int(step)
    return save_checkpoint(path, ckpt)


def build_generator(ckpt: Mapping[str, Any] | str | os.PathLike,
                    map_location: str | torch.device = "cpu"):
    """The generator of a checkpoint, in eval mode, with its config and vocab.

    Prefers ``generator_ema`` over ``generator``.

    Args:
        ckpt: a loaded checkpoint dict or a path.

    Returns:
        (GALSGenerator, Config, Vocab).

    Raises:
        CheckpointError: missing entries, a bad config or vocab, or weights that do not fit.
    """
    from .model import GALSGenerator

    if not isinstance(ckpt, Mapping):
        ckpt = load_checkpoint(ckpt, map_location)
    for key in ("config", "vocab"):
        if key not in ckpt:
            raise CheckpointError(f"checkpoint has no '{key}' entry")
    try:
        config = Config.from_dict(ckpt["config"])
        vocab = Vocab.from_dict(ckpt["vocab"])
    except (ConfigError, VocabError) as e:
        raise CheckpointError(f"checkpoint config or vocab is invalid: {e}") from None
    state = ckpt.get("generator_ema") or ckpt.get("generator")
    if state is None:
        raise CheckpointError("checkpoint has no generator weights ('generator_ema' or "
                              "'generator')")
    model = GALSGenerator(config.model, vocab.num_objects, vocab.num_preds,
                          pred_names=vocab.pred_names)
    try:
        model.load_state_dict(unwrap_state_dict(state))
    except RuntimeError as e:
        raise CheckpointError(f"generator weights do not match the checkpoint's config: "
                              f"{e}") from None
    model.to(map_location).eval()
    return model, config, vocab
