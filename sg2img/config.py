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
from .files import short


class ConfigError(ValueError):
    """A config value, key or preset is invalid; the message says how to fix it."""


def _check(cond: bool, msg: str) -> None:
    if not cond:
        raise ConfigError(msg)


GLOBAL_GENERATOR_CHOICES = ("spade", "cc", "dp")
DISCRIMINATOR_CHOICES = ("multiscale", "fpse", "dp")
NOISE_CHOICES = ("vector", "spatial")
RECON_NOISE_CHOICES = ("same", "zero")


@dataclass
class LayoutConfig:
    """Scene graph -> layout: the embeddings, the graph network, the box and mask heads."""

    embedding_dim: int = 128             # object / predicate embedding size
    gconv_dim: int = 128                 # width of the graph convolution
    gconv_hidden_dim: int = 512          # hidden width of each triple MLP
    num_gconv_layers: int = 5
    use_attributes: bool = True          # add embedded object attributes before the GCN
    head: str = "regress"                # box head: "regress" (one box per object) | "sample"
                                         # (boxes drawn from a learned mixture)
    num_components: int = 5              # head=sample: mixture components K
    sequential: bool = True              # head=sample: place objects one by one, each
                                         # conditioned on the boxes already placed
    respect_relations: bool = True       # head=sample: place objects one by one, keeping the
                                         # mixture components whose box satisfies the graph's
                                         # geometric triples with the objects already placed
    use_own_gconv: bool = False          # a graph network of its own for the box and mask
                                         # heads (same size as the main one), so that training
                                         # the layout leaves the vectors the renderer reads alone
    mask_size: int = 16                  # M: predicted masks are (M, M)

    def __post_init__(self) -> None:
        _check(self.head in ("regress", "sample"),
               f"model.layout.head must be 'regress' (deterministic boxes) or 'sample' (boxes "
               f"drawn from a learned mixture), got {self.head!r}")
        _check(self.mask_size in (8, 16, 32, 64),
               f"model.layout.mask_size must be 8, 16, 32 or 64, got {self.mask_size}")
        for name in ("embedding_dim", "gconv_dim", "gconv_hidden_dim"):
            _check(getattr(self, name) > 0, f"model.layout.{name} must be positive")
        _check(self.num_gconv_layers >= 0, "model.layout.num_gconv_layers must be >= 0")


@dataclass
class RendererConfig:
    """Layout -> image: size, noise, conditioning, the global and local generators, fusion."""

    image_size: int = 64                 # output H = W; 64 or 128 (any multiple of 16 works)
    noise: str = "vector"                # "vector" (z broadcast) | "spatial" (OASIS 3-D noise)
    noise_dim: int = 64                  # z for the global generator
    layout_noise_dim: int = 32           # per-image noise channels appended to the layout
    # With noise=spatial: this many more conditioning channels of per-pixel (white) noise,
    # made from each object's noise vector, so texture can vary from pixel to pixel and a
    # resampled object gets a new texture. 0: none.
    texture_noise_dim: int = 0
    cond_dim: int = 128                  # conditioning map width (1x1 conv over the layouts)
    use_instance_edges: bool = False     # pix2pixHD boundary map as an extra layout channel
    # Also paint each object's multi-hot attributes into the layout as channels (through its
    # mask, into the shared conditioning map), so colour reaches the renderer directly and
    # not only through graph vectors that the layout losses train. Builds nothing for a
    # vocabulary without attributes.
    paint_attributes: bool = True
    channels: int = 64                   # base width of the generators (coarsest stage x 8)
    use_global: bool = True
    global_generator: str = "spade"      # "spade" (SPADE) | "cc" (CC-FPSE) | "dp" (DP-GAN)
    coarse_to_fine: bool = False         # global generator = H/2 generator + enhancer stage
    narrow_upsample: bool = False        # SPADE global generator only: change width by a 1x1
                                         # conv before each x2 upsampling (a quarter fewer
                                         # FLOPs; the paper-scale presets set it)
    use_local: bool = True
    local_channels: int = 16             # per-class feature width in the local generator
    local_combine: str = "conv"          # "conv" (LGGAN Eq. 4) | "sum" (Eq. 3)
    use_class_loss: bool = True          # LGGAN's classification module on class features
    fusion: str = "weight_map"           # "weight_map" | "average"; needs both generators

    def __post_init__(self) -> None:
        _check(self.global_generator in GLOBAL_GENERATOR_CHOICES,
               f"model.renderer.global_generator must be one of {GLOBAL_GENERATOR_CHOICES}, "
               f"got {self.global_generator!r}")
        _check(self.noise in NOISE_CHOICES,
               f"model.renderer.noise must be one of {NOISE_CHOICES}, got {self.noise!r}")
        _check(self.noise != "spatial" or self.layout_noise_dim > 0,
               "model.renderer.noise=spatial needs model.renderer.layout_noise_dim > 0 (the "
               "number of per-pixel noise channels)")
        _check(self.texture_noise_dim == 0 or self.noise == "spatial",
               "model.renderer.texture_noise_dim needs model.renderer.noise=spatial (the "
               "texture is made from each object's noise vector)")
        _check(self.image_size % 16 == 0 and self.image_size >= 32,
               f"model.renderer.image_size must be a multiple of 16 and >= 32 (64 or 128), "
               f"got {self.image_size}")
        _check(not self.coarse_to_fine or self.image_size % 32 == 0,
               f"model.renderer.coarse_to_fine needs model.renderer.image_size divisible by 32 "
               f"(its coarse generator works at half size), got {self.image_size}")
        _check(self.use_global or self.use_local,
               "model.renderer.use_global and model.renderer.use_local cannot both be false")
        _check(self.fusion in ("weight_map", "average"),
               f"model.renderer.fusion must be 'weight_map' or 'average', got {self.fusion!r}")
        _check(self.local_combine in ("conv", "sum"),
               f"model.renderer.local_combine must be 'conv' or 'sum', got "
               f"{self.local_combine!r}")
        for name in ("cond_dim", "channels", "local_channels"):
            _check(getattr(self, name) > 0, f"model.renderer.{name} must be positive")


@dataclass
class DiscriminatorConfig:
    """The image discriminator and the object discriminator (training only)."""

    kind: str = "multiscale"             # "multiscale" (pix2pixHD) | "fpse" (CC-FPSE) | "dp"
    channels: int = 64
    num_scales: int = 2                  # kind=multiscale: image scales judged
    num_layers: int = 3
    use_spectral_norm: bool = True
    use_object_disc: bool = True         # judge and classify each object's crop
    object_crop_size: int = 32           # object crops are resized to this (roi_align)
    # The object discriminator also names each crop's attributes (multi-label, learned on
    # real crops; the generator is scored on its fakes: loss.obj_attr_weight), as the class
    # auxiliary classifier does for classes.
    classify_attributes: bool = True

    def __post_init__(self) -> None:
        _check(self.kind in DISCRIMINATOR_CHOICES,
               f"model.discriminator.kind must be one of {DISCRIMINATOR_CHOICES}, "
               f"got {self.kind!r}")
        for name in ("channels", "num_scales", "num_layers", "object_crop_size"):
            _check(getattr(self, name) > 0, f"model.discriminator.{name} must be positive")


@dataclass
class ModelConfig:
    """Architecture of the generator (graph -> layout -> images) and the discriminators.

    The defaults are the recommended model (GALS-GAN with attributes painted into the layout
    and named by the object discriminator); a checkpoint written with older defaults is
    upgraded when it loads (``sg2img.checkpoint.upgrade_checkpoint``). 0.1.0's flat names
    are deprecated aliases (``sg2img.config_aliases``).
    """

    layout: LayoutConfig = field(default_factory=LayoutConfig)
    renderer: RendererConfig = field(default_factory=RendererConfig)
    discriminator: DiscriminatorConfig = field(default_factory=DiscriminatorConfig)


@dataclass
class LossConfig:
    """Loss weights; a term with weight 0 is not computed."""

    gan_mode: str = "hinge"              # "hinge" | "lsgan"
    gan_weight: float = 1.0
    feat_match_weight: float = 10.0
    vgg_weight: float = 0.0              # needs train.vgg_weights (a VGG19 state dict file)
    l1_weight: float = 1.0               # image L1 against the real image
    box_weight: float = 10.0             # L1 of the "regress" layout head's boxes
    box_nll_weight: float = 1.0          # NLL of the true box under the "sample" head's mixture
    mask_weight: float = 1.0
    layout_anchor_weight: float = 1.0    # layout stage: MSE pull of the object vectors towards
                                         # the starting model's (the renderer reads them)
    local_l1_weight: float = 1.0         # LGGAN Eq. 2, masked L1 of each class output
    class_weight: float = 1.0            # LGGAN Eq. 5, cross-entropy on class features
    obj_gan_weight: float = 0.1
    obj_aux_weight: float = 0.1          # auxiliary classification of object crops
    obj_attr_weight: float = 0.1         # attribute classification of object crops (only
    #                                      with model.discriminator.classify_attributes)
    seg_weight: float = 1.0              # model.discriminator.kind=dp: (N+1)-class pixel loss
    mode_seek_weight: float = 0.0        # MSGAN diversity term (a second G forward per step)
    recon_noise: str = "same"            # "same": l1 / local_l1 / feat_match / vgg score the
    #                                      sample the adversarial terms score; "zero": they score
    #                                      a second sample with all noise zero (BicycleGAN's
    #                                      split: one anchored sample, the rest free to differ)

    def __post_init__(self) -> None:
        _check(self.gan_mode in ("hinge", "lsgan"),
               f"loss.gan_mode must be 'hinge' or 'lsgan', got {self.gan_mode!r}")
        _check(self.recon_noise in RECON_NOISE_CHOICES,
               f"loss.recon_noise must be one of {RECON_NOISE_CHOICES}, got {self.recon_noise!r}")
        for f in dataclasses.fields(self):
            if f.name.endswith("_weight"):
                _check(getattr(self, f.name) >= 0, f"loss.{f.name} must be >= 0")


@dataclass
class DataConfig:
    """Which dataset and how its items are built."""

    dataset: str = "coco"                # "coco" (COCO-Stuff and the procedural scenes) | "vg"
    root: str = ""                       # dataset directory (see sg2img.data)
    min_object_size: float = 0.02        # COCO: keep objects whose box covers more than this
    min_objects: int = 3
    max_objects: int = 8
    include_other: bool = False          # COCO: keep the stuff class 'other'
    num_workers: int = 2

    def __post_init__(self) -> None:
        _check(self.dataset in ("coco", "vg"),
               f"data.dataset must be 'coco' or 'vg', got {self.dataset!r}")
        _check(1 <= self.min_objects <= self.max_objects,
               "data.min_objects must be >= 1 and <= data.max_objects")


@dataclass
class TrainConfig:
    """Optimisation and run bookkeeping."""

    batch_size: int = 16
    num_steps: int = 100_000
    lr_g: float = 1e-4
    lr_d: float = 4e-4                   # TTUR
    beta1: float = 0.0
    beta2: float = 0.999
    ema_decay: float = 0.999
    ema_start: int = 0
    ema_rampup: bool = True              # decay (1+k)/(10+k) up to ema_decay (short runs)
    grad_clip: float = 10.0
    teacher_forcing: bool = True         # ground-truth boxes/masks build the layout
    mixed_precision: bool = True         # bf16 autocast on CUDA (ignored on CPU)
    channels_last: bool = True           # on CUDA
    seed: int = 0
    log_every: int = 50
    sample_every: int = 1000
    checkpoint_every: int = 1000
    keep_checkpoints: int = 3
    vgg_weights: str = ""                # path to torchvision VGG19 weights for the VGG loss
    init_from: str = ""                  # checkpoint whose matching weights start a new run
    deterministic: bool = True           # CPU: deterministic kernels (same weights every run)
    stage: str = "gan"                   # "gan" (everything) | "layout" (graph network and
                                         # layout heads on boxes and masks, renderer frozen)
    layout_lr: float = 1e-3              # stage "layout": Adam learning rate
    layout_modules: str = "branch"       # stage "layout": "branch" (embeddings, graph network,
                                         # box and mask heads) | "heads" (box and mask heads,
                                         # and model.layout.use_own_gconv's graph network:
                                         # the vectors the renderer reads, and so the images
                                         # drawn from a given layout, stay as they were)

    def __post_init__(self) -> None:
        for name in ("batch_size", "num_steps", "log_every", "sample_every",
                     "checkpoint_every", "keep_checkpoints"):
            _check(getattr(self, name) > 0, f"train.{name} must be positive")
        _check(0.0 <= self.ema_decay < 1.0, "train.ema_decay must be in [0, 1)")
        _check(self.lr_g > 0 and self.lr_d > 0, "train.lr_g and train.lr_d must be positive")
        _check(0 <= self.seed < 2**32, f"train.seed must be in 0..2**32 - 1, got {self.seed}")
        _check(self.stage in ("gan", "layout"),
               f"train.stage must be 'gan' (GAN training) or 'layout' (the graph network and "
               f"layout heads alone, renderer frozen), got {self.stage!r}")
        _check(self.layout_lr > 0, "train.layout_lr must be positive")
        _check(self.layout_modules in LAYOUT_MODULE_CHOICES,
               f"train.layout_modules must be one of {LAYOUT_MODULE_CHOICES} (what the layout "
               f"stage trains), got {self.layout_modules!r}")


LAYOUT_MODULE_CHOICES = ("branch", "heads")


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
        _check(not (problem := config_problem(d)), problem)    # config_bounds.py
        ignored = ignored_settings(d)
        if ignored:
            key, needs = ignored[0]
            path = key.split(".")
            raise ConfigError(f"{key}={_lookup(self, path)!r} has no effect unless {needs}; "
                              f"drop the setting (its default is {_lookup(_defaults(), path)!r}) "
                              f"or set {needs}")

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
