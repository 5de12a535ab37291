"""The root ``Config`` with its sections, named presets and ``key=value`` overrides.

Only the composition roots (model construction, the trainer, the CLI) read a ``Config``;
modules below them take plain arguments. Every field is a plain type so ``asdict`` is JSON-safe
and a checkpoint holding it loads with ``torch.load(weights_only=True)``.
"""

from __future__ import annotations

import dataclasses
import json
import math
import typing
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from .config_aliases import nest_model_section, new_model_key, warn_old_model_key
from .config_bounds import config_problem
from .config_sections import (  # noqa: F401  (re-exported: the sections' public home is here)
    DISCRIMINATOR_CHOICES,
    GLOBAL_GENERATOR_CHOICES,
    LAYOUT_MODULE_CHOICES,
    NOISE_CHOICES,
    RECON_NOISE_CHOICES,
    ConfigError,
    DataConfig,
    DiscriminatorConfig,
    LayoutConfig,
    LossConfig,
    ModelConfig,
    RendererConfig,
    TrainConfig,
    require,
)
from .files import short


@dataclass
class Config:
    model: ModelConfig = field(default_factory=ModelConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    data: DataConfig = field(default_factory=DataConfig)
    train: TrainConfig = field(default_factory=TrainConfig)

    # ------------------------------------------------------------ dict form
    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Config:
        """Inverse of ``to_dict``; unknown sections or keys are errors.

        A model section with 0.1.0 flat keys (``{"model": {"gconv_dim": 64}}``) is read with a
        ``FutureWarning`` per old key naming its new place.
        """
        if not isinstance(d, Mapping):
            raise ConfigError(f"a config must be a mapping, got {type(d).__name__}")
        if isinstance(d.get("model"), Mapping):
            d = {**d, "model": _nest_model(d["model"])}
        return _build(cls, d, "")

    def __post_init__(self) -> None:
        d = self.to_dict()
        require(not (problem := config_problem(d)), problem)    # config_bounds.py
        ignored = ignored_settings(d)
        if ignored:
            key, needs = ignored[0]
            path = key.split(".")
            raise ConfigError(f"{key}={_lookup(self, path)!r} has no effect unless {needs}; "
                              f"drop the setting (its default is {_lookup(_defaults(), path)!r}) "
                              f"or set {needs}")
        require(not self.train.freeze_layout or self.model.layout.use_own_gconv,
                "train.freeze_layout=true needs model.layout.use_own_gconv=true: without a "
                "layout graph network of its own the box and mask heads read the renderer's "
                "graph network, which this stage trains, so the layout would still move. Set "
                "model.layout.use_own_gconv=true (train.init_from starts it as a copy of the "
                "starting model's graph network, so the layout starts as that model's) or drop "
                "train.freeze_layout")

    # ------------------------------------------------------------- overrides
    def with_overrides(self, overrides: Iterable[str] | Mapping[str, Any]) -> Config:
        """A new config with ``section.key=value`` overrides applied (cast to the field type).

        Keys of the model section name their group: ``model.layout.gconv_dim=64``. The 0.1.0
        names (``model.gconv_dim``) still work, with a ``FutureWarning`` naming the new key.

        Raises:
            ConfigError: unknown section or key, a value that does not parse, an old name
                given with its new one, or a setting the chosen architecture does not read.
        """
        return Config.from_dict(_apply(self.to_dict(), _items(overrides)))

    @classmethod
    def from_preset(cls, name: str, overrides: Iterable[str] | Mapping[str, Any] = ()) -> Config:
        """The preset ``name`` with ``overrides`` on top (keys as in ``with_overrides``).

        A preset's setting that the overrides make pointless (the paper-scale presets'
        ``model.renderer.narrow_upsample`` with ``model.renderer.global_generator=cc``) goes
        back to its default; the same setting given in ``overrides`` is an error.

        Raises:
            ConfigError: unknown preset, key or value, or an override that the chosen
                architecture does not read.
        """
        if name not in PRESETS:
            raise ConfigError(f"unknown preset {name!r}; choose one of {sorted(PRESETS)}")
        user = _items(overrides)
        d = _apply(_apply(Config().to_dict(), list(PRESETS[name].items())), user)
        given = {key for key, _ in user}
        for key, _ in ignored_settings(d):
            if key in PRESETS[name] and key not in given:
                path = key.split(".")
                _lookup(d, path[:-1])[path[-1]] = _lookup(_defaults(), path)
        return Config.from_dict(d)


# Settings that only some architectures read: key -> the values it needs to be read.
_READ_ONLY_WITH: dict[str, dict[str, Any]] = {
    "model.renderer.narrow_upsample": {"model.renderer.global_generator": "spade",
                                       "model.renderer.use_global": True},
    "model.renderer.fusion": {"model.renderer.use_global": True, "model.renderer.use_local": True},
    "model.renderer.local_combine": {"model.renderer.use_local": True},
    "model.layout.num_components": {"model.layout.head": "sample"},
    "model.layout.sequential": {"model.layout.head": "sample"},
    "model.layout.respect_relations": {"model.layout.head": "sample"},
    "loss.seg_weight": {"model.discriminator.kind": "dp"},
    "loss.own_layout_weight": {"train.stage": "gan"},
    "train.freeze_layout": {"train.stage": "gan"},
    "train.layout_jitter": {"train.stage": "gan", "train.teacher_forcing": True},
    "loss.obj_attr_weight": {"model.discriminator.use_object_disc": True,
                             "model.discriminator.classify_attributes": True,
                             "model.layout.use_attributes": True},
}


def ignored_settings(config: Mapping[str, Mapping[str, Any]]) -> list[tuple[str, str]]:
    """The settings of ``config`` (``Config.to_dict()`` form) that its architecture ignores.

    Only a value that differs from the default counts as set: a default is never an error.

    Args:
        config: sections mapping keys to values (the model section grouped); a missing key
            is its default.

    Returns:
        ``(key, what it needs)`` for each ignored setting, e.g.
        ``("model.renderer.narrow_upsample", "model.renderer.global_generator=spade and ...")``.
    """
    defaults = _defaults()
    full = _merged(defaults, config)
    out = []
    for key, needs in _READ_ONLY_WITH.items():
        path = key.split(".")
        if (_lookup(full, path) != _lookup(defaults, path)
                and any(_lookup(full, k.split(".")) != v for k, v in needs.items())):
            said = [f"{k}={str(v).lower() if isinstance(v, bool) else v}" for k, v in needs.items()]
            out.append((key, " and ".join([", ".join(said[:-1]), said[-1]] if len(said) > 2
                                          else said)))
    return out


def _defaults() -> dict[str, Any]:
    """``Config().to_dict()`` without the cross-option checks (which read these defaults)."""
    return {f.name: asdict(f.default_factory()) for f in dataclasses.fields(Config)}


def _merged(defaults: dict[str, Any], given: Mapping[str, Any]) -> dict[str, Any]:
    """``defaults`` (nested dicts) with the values of ``given`` on top, section by section."""
    return {**defaults, **{k: _merged(defaults[k], v) if isinstance(defaults.get(k), dict)
                           and isinstance(v, Mapping) else v for k, v in given.items()}}


def _lookup(obj: Any, path: Iterable[str]) -> Any:
    """The value at ``path`` in nested dicts or dataclasses."""
    for name in path:
        obj = obj[name] if isinstance(obj, Mapping) else getattr(obj, name)
    return obj


def _build(cls: type, d: Any, where: str) -> Any:
    """The dataclass ``cls`` from its dict form ``d``, nested sections included."""
    what = f"config section '{where}'" if where else "a config"
    if not isinstance(d, Mapping):
        raise ConfigError(f"{what} must be a mapping, got {type(d).__name__}")
    hints = typing.get_type_hints(cls)
    unknown = set(d) - set(hints)
    if unknown:
        names = short(sorted(map(str, unknown)))
        raise ConfigError(f"unknown keys in {what}: {names}" if where else
                          f"unknown config sections {names}; known: {sorted(hints)}")
    kwargs = {}
    for name, value in d.items():
        key = f"{where}.{name}" if where else name
        typ = hints[name]
        kwargs[name] = (_build(typ, value, key) if dataclasses.is_dataclass(typ)
                        else _checked(_coerce(value, typ), typ, key))
    return cls(**kwargs)


def _nest_model(model: Mapping[str, Any]) -> dict[str, Any]:
    """The model section grouped, with a FutureWarning per 0.1.0 flat key found."""
    try:
        nested, old = nest_model_section(model)
    except ValueError as e:
        raise ConfigError(str(e)) from None
    for name in old:
        warn_old_model_key(name)
    return nested


def _items(overrides: Iterable[str] | Mapping[str, Any]) -> list[tuple[str, Any]]:
    """``(key, value)`` pairs with old model names replaced by the new ones (warned once each).

    Raises:
        ConfigError: an override that is not ``key=value``, or an old name and its new one
            both given.
    """
    items = list(overrides.items() if isinstance(overrides, Mapping) else map(_split, overrides))
    out, warned, by_new = [], set(), {}
    for key, value in items:
        new = new_model_key(key, value)
        if new != key and key not in warned:
            warned.add(key)
            warn_old_model_key(key.partition(".")[2])
        if new in by_new and by_new[new] != key:
            old = key if new != key else by_new[new]
            raise ConfigError(f"{old} and {new} are the same setting ({old} is its old "
                              f"name); give only {new}")
        by_new[new] = key
        out.append((new, value))
    return out


def _apply(d: dict[str, Any], items: Iterable[tuple[str, Any]]) -> dict[str, Any]:
    """``d`` (``Config.to_dict()`` form) with ``section.key`` values set, cast to field types."""
    for key, value in items:
        path = key.split(".")
        if path[0] not in d or len(path) < 2:
            raise ConfigError(f"unknown config key {key!r}; keys look like "
                              f"'train.batch_size' or 'model.layout.gconv_dim', with sections "
                              f"{sorted(d)}")
        parent, cls = d, Config
        for i, name in enumerate(path[:-1]):
            hints = typing.get_type_hints(cls)
            if name not in hints or not dataclasses.is_dataclass(hints[name]):
                raise ConfigError(f"unknown config key {key!r}; "
                                  f"{'.'.join(path[:i]) or 'the config'} has no section "
                                  f"{name!r}")
            parent, cls = parent[name], hints[name]
        hints, name = typing.get_type_hints(cls), path[-1]
        if name not in hints:
            leaves = _leaf_keys(parent)
            close = [k for k in leaves if name.split("_")[0] in k.rpartition(".")[2]]
            raise ConfigError(f"unknown config key {key!r}; section '{'.'.join(path[:-1])}' "
                              f"has {close or leaves}")
        if dataclasses.is_dataclass(hints[name]):
            raise ConfigError(f"{key} is a section; set one of its keys, e.g. "
                              f"{key}.{next(iter(parent[name]))}=...")
        parent[name] = _parse(value, hints[name], key)
    return d


def _leaf_keys(section: Mapping[str, Any], prefix: str = "") -> list[str]:
    """The sorted keys of ``section``, those of its sub-sections as ``sub.key``."""
    return sorted(k for name, v in section.items() for k in (
        _leaf_keys(v, f"{prefix}{name}.") if isinstance(v, Mapping) else [prefix + name]))


def _split(item: str) -> tuple[str, str]:
    if "=" not in item:
        raise ConfigError(f"override {item!r} must look like section.key=value")
    k, v = item.split("=", 1)
    return k.strip(), v.strip()


def _parse(value: Any, typ: Any, key: str) -> Any:
    """Cast a command-line string (or a Python value) to the field's type."""
    if not isinstance(value, str):
        return _coerce(value, typ)
    base = [t for t in typing.get_args(typ) if t is not type(None)] or [typ]
    t = base[0] if typ not in (int, float, bool, str) else typ
    try:
        if t is bool:
            low = value.lower()
            if low not in ("true", "false", "1", "0", "yes", "no"):
                raise ValueError
            return low in ("true", "1", "yes")
        if t is int:
            return int(value)
        if t is float:
            return float(value)
        return value
    except ValueError:
        raise ConfigError(f"cannot read {short(value)} as {getattr(t, '__name__', t)} for "
                          f"{key}") from None


def _checked(value: Any, typ: Any, key: str) -> Any:
    """``value`` if it has the field's plain type (int, float, bool or str), else ConfigError."""
    ok = {int: lambda v: isinstance(v, int) and not isinstance(v, bool),
          float: lambda v: isinstance(v, float),
          bool: lambda v: isinstance(v, bool),
          str: lambda v: isinstance(v, str)}.get(typ)
    if ok is not None and not ok(value):
        raise ConfigError(f"config value {key} must be {typ.__name__}, got "
                          f"{type(value).__name__}")
    if isinstance(value, float) and not math.isfinite(value):
        raise ConfigError(f"config value {key} must be a finite number, got {value}")
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) >= 2**63:
        raise ConfigError(f"config value {key} is out of range, got {short(value)}")
    if isinstance(value, str) and len(value) > 4096:
        raise ConfigError(f"config value {key} is {len(value)} characters long; at most 4096")
    return value


def _coerce(value: Any, typ: Any) -> Any:
    if typ is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    return value


PRESETS: dict[str, dict[str, Any]] = {
    # Tests: a forward/backward step well under a second on CPU.
    "tiny": {
        "model.layout.embedding_dim": 16, "model.layout.gconv_dim": 16,
        "model.layout.gconv_hidden_dim": 32, "model.layout.num_gconv_layers": 2,
        "model.layout.mask_size": 8,
        "model.renderer.image_size": 32, "model.renderer.layout_noise_dim": 4,
        "model.renderer.noise_dim": 8, "model.renderer.cond_dim": 8,
        "model.renderer.channels": 8, "model.renderer.local_channels": 4,
        "model.discriminator.channels": 8, "model.discriminator.num_layers": 2,
        "model.discriminator.object_crop_size": 16,
        "train.batch_size": 2, "train.num_steps": 4, "train.log_every": 1,
        "train.sample_every": 2, "train.checkpoint_every": 2, "data.num_workers": 0,
    },
    # Trainable on the procedural scenes on 2 CPU cores in about an hour.
    "small": {
        "model.layout.embedding_dim": 64, "model.layout.gconv_dim": 64,
        "model.layout.gconv_hidden_dim": 128, "model.layout.num_gconv_layers": 3,
        "model.layout.mask_size": 16,
        "model.renderer.image_size": 64, "model.renderer.layout_noise_dim": 8,
        "model.renderer.noise_dim": 32, "model.renderer.cond_dim": 32,
        "model.renderer.channels": 16, "model.renderer.local_channels": 8,
        "model.discriminator.channels": 16, "model.discriminator.num_layers": 3,
        "model.discriminator.object_crop_size": 32,
        "train.batch_size": 16, "train.num_steps": 6000, "train.log_every": 25,
        "train.sample_every": 500, "train.checkpoint_every": 250,
    },
    # Paper scale (GPU). Narrow upsampling: a quarter fewer generator FLOPs for FID within
    # the run-to-run noise (docs/reports/performance/README.md);
    # --set model.renderer.narrow_upsample=false gives the paper's SPADE generator.
    "coco64": {"model.renderer.image_size": 64, "model.renderer.narrow_upsample": True,
               "data.dataset": "coco", "train.batch_size": 32},
    "coco128": {"model.renderer.image_size": 128, "model.layout.mask_size": 32,
                "model.discriminator.num_scales": 3, "model.renderer.narrow_upsample": True,
                "data.dataset": "coco", "train.batch_size": 16},
    "vg64": {"model.renderer.image_size": 64, "model.renderer.narrow_upsample": True,
             "data.dataset": "vg", "data.max_objects": 10, "train.batch_size": 32},
    "vg128": {"model.renderer.image_size": 128, "model.layout.mask_size": 32,
              "model.discriminator.num_scales": 3, "model.renderer.narrow_upsample": True,
              "data.dataset": "vg", "data.max_objects": 10, "train.batch_size": 16},
}
