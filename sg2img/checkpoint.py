"""Checkpoints as plain dicts: the schema, atomic saves, ``weights_only`` loads, upgrades.

A training checkpoint (``training_state`` builds it, ``restore_training_state`` reads it back)
holds ``format_version``, ``kind="training"``, ``step``, ``config`` (``Config.to_dict()``),
``vocab`` (``Vocab.to_dict()``), the module states ``generator``, ``generator_ema``,
``discriminator``, the optimizer states ``optim_g`` / ``optim_d``, ``scaler``, ``rng``,
``data_state`` and ``nonfinite_skipped``. An inference export keeps ``config``, ``vocab`` and
the (EMA) generator weights as ``generator``. Nothing pickled: no classes, no code.

A checkpoint of an older format is upgraded when it loads, one function per format step
(``UPGRADES``): a config key it lacks means the default of the version that wrote it.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from .config import Config, ConfigError, ignored_settings
from .config_aliases import nest_model_section
from .files import atomic_torch_save, load_torch_file, short
from .torch_archive import tensor_problem
from .vocab import Vocab, VocabError

logger = logging.getLogger(__name__)

FORMAT_VERSION = 2
_WRAPPER_PREFIXES = ("module.", "_orig_mod.")
# The keys ``restore_training_state`` needs (``training_state`` writes these and more).
TRAINING_KEYS = ("vocab", "step", "generator", "generator_ema", "discriminator", "optim_g",
                 "optim_d", "rng", "data_state")


class CheckpointError(ValueError):
    """A checkpoint file is missing, damaged, not an sg2img checkpoint or too new."""


# ------------------------------------------------------------------------ format upgrades
# Format 1 (sg2img 0.1.0): the config defaults of its ModelConfig where they differ from
# format 2's, under 0.1.0's flat key names (the model section is grouped after these steps).
# A format-1 config without one of these keys was trained with this value.
_V1_CHANGED_DEFAULTS = {"model": {"attribute_layout": False, "object_disc_attributes": False}}
# Keys that format 2 no longer has: the value every format-1 model without that option
# computed, and why the option left.
_V1_REMOVED = {
    ("model", "spade_kernel"): (3, "the 1x1 SPADE kernel failed its quality gate"),
}


def _upgrade_v1_config(config: Mapping[str, Any]) -> dict[str, Any] | Any:
    """A format-1 config as format 2 reads it.

    Missing keys whose default changed get format 1's default; removed keys at the value
    every model computes with go; the flat model section is grouped (``layout``, ``renderer``,
    ``discriminator``: ``sg2img.config_aliases``); settings the model ignored (format 1 did
    not check them) go back to their default, which computes the same.

    Raises:
        CheckpointError: the model was trained with a removed option set to another value.
    """
    out = {sec: dict(keys) if isinstance(keys, Mapping) else keys
           for sec, keys in config.items()}
    for sec, defaults in _V1_CHANGED_DEFAULTS.items():
        if isinstance(out.get(sec), dict):
            for key, value in defaults.items():
                out[sec].setdefault(key, value)
    for (sec, key), (kept, why) in _V1_REMOVED.items():
        if isinstance(out.get(sec), dict) and key in out[sec]:
            value = out[sec].pop(key)
            if value != kept:
                raise CheckpointError(
                    f"this model was trained with {sec}.{key}={value!r}, an option removed in "
                    f"sg2img 0.2.0 ({why}); sg2img 0.1.0 is the last version that reads it "
                    f"(pip install 'sg2img==0.1.0')")
    if isinstance(out.get("model"), dict):
        out["model"] = nest_model_section(out["model"])[0]
    try:
        ignored = ignored_settings(out)
    except (AttributeError, TypeError, ValueError, RuntimeError):
        ignored = []        # a malformed config: Config.from_dict says what is wrong
    for key, _ in ignored:
        *sections, name = key.split(".")
        default = Config()
        target = out
        for sec in sections:
            target, default = target[sec], getattr(default, sec)
        target[name] = getattr(default, name)
    return out


def _upgrade_v1(ckpt: dict[str, Any]) -> dict[str, Any]:
    """Format 1 -> 2: the config's defaults became the recommended model's, and its model
    section is grouped."""
    if isinstance(ckpt.get("config"), Mapping):
        ckpt = {**ckpt, "config": _upgrade_v1_config(ckpt["config"])}
    return {**ckpt, "format_version": 2}


# UPGRADES[v] turns a format-v checkpoint into format v + 1.
UPGRADES = {1: _upgrade_v1}


def upgrade_checkpoint(ckpt: Mapping[str, Any]) -> dict[str, Any]:
    """``ckpt`` brought to ``FORMAT_VERSION`` through each format step; a new dict.

    Raises:
        CheckpointError: no ``format_version``, one newer than this code reads, or a
            checkpoint that a step refuses (an option this version no longer has).
    """
    version = ckpt.get("format_version")
    if type(version) is not int or version < 1:  # not True, 2.0, a tensor or an int subclass
        raise CheckpointError(f"not an sg2img checkpoint (format_version {short(version)}, "
                              f"where sg2img writes a whole number from 1 to {FORMAT_VERSION})")
    if version > FORMAT_VERSION:
        raise CheckpointError(f"checkpoint format version {version} is newer than this sg2img "
                              f"reads ({FORMAT_VERSION}); upgrade sg2img")
    out = dict(ckpt)
    while out["format_version"] < FORMAT_VERSION:
        out = UPGRADES[out["format_version"]](out)
    return out


def save_checkpoint(path: str | os.PathLike, state: Mapping[str, Any]) -> Path:
    """Write ``state`` atomically: a temp file in the same folder, fsync, then ``os.replace``.

    ``format_version`` is added when missing. A crash mid-write leaves any previous file at
    ``path`` intact.

    Returns:
        The path written.
    """
    state = dict(state)
    state.setdefault("format_version", FORMAT_VERSION)
    return atomic_torch_save(state, path, "checkpoint")


def load_checkpoint(path: str | os.PathLike,
                    map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Load a checkpoint saved by ``save_checkpoint`` (``torch.load(weights_only=True)``),
    upgraded to ``FORMAT_VERSION`` (``upgrade_checkpoint``).

    Raises:
        CheckpointError: the file is missing, truncated or corrupt, is not an sg2img checkpoint
            (no ``format_version``), has a newer format version than this code reads, or
            was trained with an option this version no longer has.
    """
    path = Path(path)
    if path.is_dir():
        raise CheckpointError(f"{path} is a directory; give a checkpoint file such as "
                              f"{path / 'checkpoints' / 'ckpt_<step>.pt'} or {path / 'export.pt'}")
    ckpt = load_torch_file(path, "checkpoint", CheckpointError, map_location)
    if not isinstance(ckpt, dict) or "format_version" not in ckpt:
        raise CheckpointError(f"{path} is not an sg2img checkpoint (no 'format_version')")
    try:
        return upgrade_checkpoint(ckpt)
    except CheckpointError as e:
        raise CheckpointError(f"{path}: {e}") from None


def same_vocabulary(saved: Any, vocab: Vocab) -> bool:
    """Whether a checkpoint's vocabulary (its dict form) names the same ids as ``vocab``;
    the class table and the stuff names may differ (a table counted from another run's
    data, or none in a checkpoint written before tables)."""
    try:
        return Vocab.from_dict(saved) == vocab
    except VocabError:
        return False


def with_vocabulary(ckpt: Mapping[str, Any], vocab: Vocab) -> dict[str, Any]:
    """``ckpt`` with ``vocab`` as its vocabulary, everything else (weights, config, format
    version) as it is: e.g. an old export given the class table of its training data.

    Raises:
        CheckpointError: ``vocab`` names other ids than the checkpoint's vocabulary.
    """
    if not same_vocabulary(ckpt.get("vocab"), vocab):
        raise CheckpointError("the new vocabulary names other ids than the checkpoint's; "
                              "give the vocabulary of the data the model was trained on")
    return {**ckpt, "vocab": vocab.to_dict()}


def read_vocabulary(path: str | os.PathLike) -> Vocab:
    """The vocabulary of a checkpoint file (``Vocab.describe()`` says what it holds).

    Raises:
        CheckpointError: the file cannot be read as a checkpoint, or has no valid vocabulary.
    """
    ckpt = load_checkpoint(path)
    try:
        return Vocab.from_dict(ckpt.get("vocab"))
    except VocabError as e:
        raise CheckpointError(f"{path}: the checkpoint's vocabulary is invalid: {e}") from None


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


def generator_state(ckpt: Mapping[str, Any]) -> dict[str, Any]:
    """The generator weights users get: ``generator_ema`` when present, else ``generator``.

    Raises:
        CheckpointError: neither entry is there.
    """
    state = ckpt.get("generator_ema") or ckpt.get("generator")
    if not isinstance(state, Mapping):
        raise CheckpointError("checkpoint has no generator weights ('generator_ema' or "
                              "'generator')")
    return unwrap_state_dict(state)


def check_weights(state: Mapping[str, Any], what: str) -> None:
    """Raise ``CheckpointError`` unless ``state`` maps names to dense, real, finite tensors.

    NaN or infinite weights would make black images (or a training run that skips every
    step) without any error; they are refused when the checkpoint loads, and so are sparse,
    meta, complex and absurdly large ones (``sg2img.torch_archive.tensor_problem``). Run
    ``check_fits`` first where a module is known, so that unexpected entries are refused by
    name before their values are scanned.
    """
    for key, value in state.items():
        if not isinstance(key, str):
            raise CheckpointError(f"{what} weights: entry {short(key)} is not named by a string")
        problem = tensor_problem(value)
        if problem is None:
            continue
        hint = ("the run diverged before this checkpoint: use an earlier one"
                if problem.startswith("holds NaN") else
                "the file is damaged or was not written by sg2img")
        raise CheckpointError(f"{what} weights: tensor {short(key)} {problem}; {hint}")


def check_fits(module: nn.Module, state: Mapping[str, Any], what: str) -> None:
    """Raise ``CheckpointError`` unless ``state`` has exactly ``module``'s names and shapes.

    ``module`` may live on the meta device, so a config that asks for a huge network is
    refused before anything is allocated.
    """
    own = module.state_dict()
    missing = [k for k in own if k not in state]
    extra = [k for k in state if k not in own]
    leaves = [k for k in own if k in state and not isinstance(state[k], torch.Tensor)]
    wrong = [k for k in own if k in state and k not in leaves
             and tuple(own[k].shape) != tuple(state[k].shape)]
    if missing or extra or leaves or wrong:
        parts = [f"{name}: {', '.join(map(short, keys[:3]))}" + (" ..." if len(keys) > 3 else "")
                 for name, keys in (("missing", missing), ("unexpected", extra),
                                    ("not a tensor", leaves), ("wrong shape", wrong)) if keys]
        raise CheckpointError(f"{what} weights do not match the checkpoint's config ("
                              f"{'; '.join(parts)})")


def build_generator(ckpt: Mapping[str, Any] | str | os.PathLike,
                    map_location: str | torch.device = "cpu", overrides: Sequence[str] = ()):
    """The generator of a checkpoint, in eval mode, with its config and vocab.

    Prefers ``generator_ema`` over ``generator``.

    Args:
        ckpt: a loaded checkpoint dict or a path.
        overrides: ``key=value`` settings put on the checkpoint's config before the model is
            built, e.g. ``model.layout.stuff_partition=false``: settings that change how the
            weights are used (the weights must still fit).

    Returns:
        (GALSGenerator, Config, Vocab): the config with ``overrides`` applied.

    Raises:
        CheckpointError: missing entries, a bad config or vocab, or weights that do not fit.
        ConfigError: a bad override.
    """
    from .model import GALSGenerator

    ckpt = (load_checkpoint(ckpt, map_location) if not isinstance(ckpt, Mapping)
            else upgrade_checkpoint(ckpt))
    for key in ("config", "vocab"):
        if key not in ckpt:
            raise CheckpointError(f"checkpoint has no '{key}' entry")
    try:
        config = Config.from_dict(ckpt["config"])
        vocab = Vocab.from_dict(ckpt["vocab"])
    except (ConfigError, VocabError) as e:
        raise CheckpointError(f"checkpoint config or vocab is invalid: {e}") from None
    if overrides:
        config = config.with_overrides(list(overrides))
    state = generator_state(ckpt)
    # Weights from before attributes (e.g. a Visual Genome model whose vocabulary lists
    # attributes it never used) have no attribute embedding: build the model without one.
    num_attributes = vocab.num_attributes if "attr_embeddings.weight" in state else 0
    with torch.device("meta"):  # shapes only: nothing allocated until the weights fit
        model = GALSGenerator(config.model, vocab.num_objects, vocab.num_preds,
                              num_attributes, pred_names=vocab.pred_names,
                              stuff_ids=vocab.stuff_ids())
    check_fits(model, state, "generator")  # names and shapes first: no junk is scanned
    check_weights(state, "generator")
    # Now that the weights fit, the real model is no bigger than the file. It is built afresh
    # (not moved off the meta device) so that buffers kept out of the state dict, such as
    # tables computed from the vocabulary, are computed again.
    model = GALSGenerator(config.model, vocab.num_objects, vocab.num_preds, num_attributes,
                          pred_names=vocab.pred_names, stuff_ids=vocab.stuff_ids())
    model.load_state_dict(state)
    model.to(map_location).eval()
    return model, config, vocab


# ------------------------------------------------------------------ training checkpoints
@dataclass(frozen=True)
class TrainingProgress:
    """Where a restored run stands: what ``restore_training_state`` gives the trainer back.

    Attributes:
        step: optimisation steps done.
        nonfinite_skipped: steps skipped so far for non-finite losses or gradients.
        data_state: ``{"step", "batches_per_epoch", "world_size"}`` of the data order.
    """

    step: int
    nonfinite_skipped: int
    data_state: Mapping[str, Any]


def training_state(*, step: int, config: Config, vocab: Vocab, generator: nn.Module,
                   generator_ema: nn.Module, discriminator: nn.Module,
                   optim_g: torch.optim.Optimizer, optim_d: torch.optim.Optimizer,
                   rng: Mapping[str, Any], batches_per_epoch: int, world_size: int,
                   nonfinite_skipped: int = 0) -> dict[str, Any]:
    """The training checkpoint of a run, as plain data for ``save_checkpoint``.

    Args:
        step: optimisation steps done.
        generator, generator_ema, discriminator: the modules (DDP and ``torch.compile``
            wrappers are stripped from their names).
        optim_g, optim_d: their optimizers.
        rng: the random states of every stream the run draws from (plain data).
        batches_per_epoch, world_size: the data order's shape, to resume it.
        nonfinite_skipped: steps skipped so far.
    """
    return {
        "format_version": FORMAT_VERSION,
        "kind": "training",
        "step": step,
        "config": config.to_dict(),
        "vocab": vocab.to_dict(),
        "generator": unwrap_state_dict(generator),
        "generator_ema": unwrap_state_dict(generator_ema),
        "discriminator": unwrap_state_dict(discriminator),
        "optim_g": optim_g.state_dict(),
        "optim_d": optim_d.state_dict(),
        "scaler": None,  # bf16 autocast needs no loss scaling
        "rng": dict(rng),
        "data_state": {"step": step, "batches_per_epoch": batches_per_epoch,
                       "world_size": world_size},
        "nonfinite_skipped": nonfinite_skipped,
    }


def check_training_state(ckpt: Mapping[str, Any], vocab: Vocab,
                         modules: Mapping[str, nn.Module] | None = None) -> None:
    """Raise ``CheckpointError`` unless ``ckpt`` is a training checkpoint a run on ``vocab``
    can resume from: every entry there, the same vocabulary, finite weights.

    Args:
        modules: the run's ``generator``, ``generator_ema`` and ``discriminator`` (any of them):
            their weights are checked to fit (``check_fits``) before their values are scanned.

    Raises:
        CheckpointError: an inference export, missing entries, another vocabulary, or weights
            that are not finite tensors.
    """
    if ckpt.get("kind") != "training":
        raise CheckpointError("this checkpoint is an inference export; training can only "
                              "resume from a checkpoint in RUN/checkpoints/")
    missing = [k for k in TRAINING_KEYS if k not in ckpt]
    if missing:
        raise CheckpointError(f"the checkpoint lacks {missing}; resume from a checkpoint "
                              f"that sg2img train wrote")
    if not same_vocabulary(ckpt["vocab"], vocab):
        raise CheckpointError("the checkpoint's vocabulary differs from the dataset's; "
                              "resume with the same --data")
    for key in ("generator", "generator_ema", "discriminator"):
        if not isinstance(ckpt[key], dict):
            raise CheckpointError(f"the checkpoint's {key!r} is not a state dict")
        if modules and key in modules:
            check_fits(modules[key], ckpt[key], key)  # another config's weights, by name
        check_weights(ckpt[key], key)


def restore_training_state(ckpt: Mapping[str, Any], *, vocab: Vocab, generator: nn.Module,
                           generator_ema: nn.Module, discriminator: nn.Module,
                           optim_g: torch.optim.Optimizer, optim_d: torch.optim.Optimizer,
                           set_rng_state: Callable[[Mapping[str, Any]], None],
                           world_size: int = 1) -> TrainingProgress:
    """Load a training checkpoint into a run's modules and optimizers (the inverse of
    ``training_state``), after ``check_training_state``.

    Args:
        ckpt: a loaded training checkpoint (``load_checkpoint``: upgraded to this format).
        vocab: the run's vocabulary; the checkpoint's must be the same.
        set_rng_state: restores the run's random streams from ``ckpt["rng"]``.
        world_size: the run's process count; another one than the checkpoint's is logged
            (the data order then differs).

    Returns:
        The step, skipped-step count and data state to continue from.

    Raises:
        CheckpointError: what ``check_training_state`` refuses, weights of another config,
            or damaged optimizer, step or RNG state.
    """
    check_training_state(ckpt, vocab, {"generator": generator, "generator_ema": generator_ema,
                                       "discriminator": discriminator})
    ws = ckpt["data_state"].get("world_size", 1)
    if ws != world_size:
        logger.warning("resuming with %d processes, checkpoint had %d: data order differs",
                       world_size, ws)
    try:
        generator.load_state_dict(ckpt["generator"])
        generator_ema.load_state_dict(ckpt["generator_ema"])
        discriminator.load_state_dict(ckpt["discriminator"])
        optim_g.load_state_dict(ckpt["optim_g"])
        optim_d.load_state_dict(ckpt["optim_d"])
        progress = TrainingProgress(step=int(ckpt["step"]),
                                    nonfinite_skipped=int(ckpt.get("nonfinite_skipped", 0)),
                                    data_state=dict(ckpt["data_state"]))
        set_rng_state(ckpt["rng"])
    except (KeyError, TypeError, ValueError, IndexError, RuntimeError) as e:
        raise CheckpointError(f"the checkpoint's optimizer, step or RNG state is damaged "
                              f"({' '.join(str(e).split())[:160]}); resume from an earlier "
                              f"checkpoint") from None
    return progress


def starting_weights(ckpt: Mapping[str, Any], vocab: Vocab, source: str
                     ) -> dict[str, dict[str, Any] | None]:
    """The weights a new run can start from (``train.init_from``): a training checkpoint or
    an inference export trained on ``vocab``.

    Args:
        source: the checkpoint's path, for messages.

    Returns:
        ``{"generator": the raw generator's state or None, "generator_ema": the generator
        users get (``generator_state``), "discriminator": its state or None}``.

    Raises:
        CheckpointError: another vocabulary, no generator weights, or weights that are not
            finite tensors.
    """
    if not same_vocabulary(ckpt.get("vocab"), vocab):
        raise CheckpointError(f"train.init_from: {source} was trained on another vocabulary; "
                              f"use a checkpoint trained on the same dataset")
    out = {"generator": ckpt.get("generator"), "generator_ema": generator_state(ckpt),
           "discriminator": ckpt.get("discriminator")}
    for key, state in out.items():
        if isinstance(state, dict):
            check_weights(state, f"train.init_from {source}: {key.replace('_ema', '')}")
    return out
