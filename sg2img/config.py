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
class ModelConfig:
    """Architecture of the generator (graph -> layout -> images) and the discriminators.

    The defaults are the recommended model (GALS-GAN with attributes painted into the layout
    and named by the object discriminator); a checkpoint written with older defaults is
    upgraded when it loads (``sg2img.checkpoint.upgrade_checkpoint``).
    """

    image_size: int = 64                 # output H = W; 64 or 128 (any multiple of 16 works)
    embedding_dim: int = 128             # object / predicate embedding size
    gconv_dim: int = 128                 # width of the graph convolution
    gconv_hidden_dim: int = 512          # hidden width of each triple MLP
    gconv_num_layers: int = 5
    mask_size: int = 16                  # M: predicted masks are (M, M)
    layout_head: str = "regress"         # "regress" (one box per object) | "sample" (mixture)
    layout_components: int = 5           # "sample": mixture components K
    layout_sequential: bool = True       # "sample": place objects one by one, each conditioned
                                         # on the boxes already placed
    layout_respect_relations: bool = True  # "sample": place objects one by one, keeping the
                                         # mixture components whose box satisfies the graph's
                                         # geometric triples with the objects already placed
    layout_gconv: bool = False           # a graph network of its own for the box and mask
                                         # heads (same size as gconv), so that training the
                                         # layout leaves the vectors the renderer reads alone
    layout_noise_dim: int = 32           # per-image noise channels appended to the layout
    noise_dim: int = 64                  # z for the global generator
    cond_dim: int = 128                  # conditioning map width (1x1 conv over the layouts)
    gen_channels: int = 64               # base width of the generators (coarsest stage x 8)
    local_channels: int = 16             # per-class feature width in the local generator
    use_global: bool = True
    use_local: bool = True
    fusion: str = "weight_map"           # "weight_map" | "average"; needs both generators
    coarse_to_fine: bool = False         # global generator = H/2 generator + enhancer stage
    narrow_upsample: bool = False        # SPADE global generator only: change width by a 1x1
                                         # conv before each x2 upsampling (a quarter fewer
                                         # FLOPs; the paper-scale presets set it)
    local_combine: str = "conv"          # "conv" (LGGAN Eq. 4) | "sum" (Eq. 3)
    use_class_loss: bool = True          # LGGAN's classification module on class features
    disc_channels: int = 64
    disc_num_scales: int = 2
    disc_num_layers: int = 3
    use_object_disc: bool = True
    object_disc_size: int = 32           # object crops are resized to this (roi_align)
    spectral_norm: bool = True
    global_generator: str = "spade"      # "spade" (SPADE) | "cc" (CC-FPSE) | "dp" (DP-GAN)
    discriminator: str = "multiscale"    # "multiscale" (pix2pixHD) | "fpse" (CC-FPSE) | "dp"
    noise: str = "vector"                # "vector" (z broadcast) | "spatial" (OASIS 3-D noise)
    # With noise=spatial: this many more conditioning channels of per-pixel (white) noise,
    # made from each object's noise vector, so texture can vary from pixel to pixel and a
    # resampled object gets a new texture. 0: none.
    texture_noise: int = 0
    instance_edges: bool = False         # pix2pixHD boundary map as an extra layout channel
    use_attributes: bool = True          # add embedded object attributes before the GCN
    # Also paint each object's multi-hot attributes into the layout as channels (through its
    # mask, into the shared conditioning map), so colour reaches the renderer directly and
    # not only through graph vectors that the layout losses train. Builds nothing for a
    # vocabulary without attributes.
    attribute_layout: bool = True
    # The object discriminator also names each crop's attributes (multi-label, learned on
    # real crops; the generator is scored on its fakes: loss.obj_attr_weight), as the class
    # auxiliary classifier does for classes.
    object_disc_attributes: bool = True

    def __post_init__(self) -> None:
        _check(self.global_generator in GLOBAL_GENERATOR_CHOICES,
               f"model.global_generator must be one of {GLOBAL_GENERATOR_CHOICES}, "
               f"got {self.global_generator!r}")
        _check(self.discriminator in DISCRIMINATOR_CHOICES,
               f"model.discriminator must be one of {DISCRIMINATOR_CHOICES}, "
               f"got {self.discriminator!r}")
        _check(self.noise in NOISE_CHOICES,
               f"model.noise must be one of {NOISE_CHOICES}, got {self.noise!r}")
        _check(self.noise != "spatial" or self.layout_noise_dim > 0,
               "model.noise=spatial needs model.layout_noise_dim > 0 (the number of "
               "per-pixel noise channels)")
        _check(0 <= self.texture_noise <= 64,
               f"model.texture_noise must be in 0..64, got {self.texture_noise}")
        _check(self.texture_noise == 0 or self.noise == "spatial",
               "model.texture_noise needs model.noise=spatial (the texture is made from each "
               "object's noise vector)")
        _check(self.image_size % 16 == 0 and self.image_size >= 32,
               f"model.image_size must be a multiple of 16 and >= 32 (64 or 128), "
               f"got {self.image_size}")
        _check(not self.coarse_to_fine or self.image_size % 32 == 0,
               f"model.coarse_to_fine needs model.image_size divisible by 32 (its coarse "
               f"generator works at half size), got {self.image_size}")
        _check(self.use_global or self.use_local,
               "model.use_global and model.use_local cannot both be false")
        _check(self.fusion in ("weight_map", "average"),
               f"model.fusion must be 'weight_map' or 'average', got {self.fusion!r}")
        _check(self.local_combine in ("conv", "sum"),
               f"model.local_combine must be 'conv' or 'sum', got {self.local_combine!r}")
        _check(self.layout_head in ("regress", "sample"),
               f"model.layout_head must be 'regress' (deterministic boxes) or 'sample' (boxes "
               f"drawn from a learned mixture), got {self.layout_head!r}")
        _check(1 <= self.layout_components <= 64,
               f"model.layout_components must be in 1..64, got {self.layout_components}")
        _check(self.mask_size in (8, 16, 32, 64),
               f"model.mask_size must be 8, 16, 32 or 64, got {self.mask_size}")
        for name in ("embedding_dim", "gconv_dim", "gconv_hidden_dim", "cond_dim", "gen_channels",
                     "local_channels", "disc_channels", "disc_num_scales", "disc_num_layers",
                     "object_disc_size"):
            _check(getattr(self, name) > 0, f"model.{name} must be positive")
        _check(self.gconv_num_layers >= 0, "model.gconv_num_layers must be >= 0")


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
    #                                      with model.object_disc_attributes)
    seg_weight: float = 1.0              # model.discriminator=dp: (N+1)-class pixel loss
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
                                         # and model.layout_gconv's graph network: the vectors
                                         # the renderer reads, and so the images drawn from a
                                         # given layout, stay as they were)

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
        """Inverse of ``to_dict``; unknown sections or keys are errors."""
        if not isinstance(d, Mapping):
            raise ConfigError(f"a config must be a mapping, got {type(d).__name__}")
        sections = {f.name: f for f in dataclasses.fields(cls)}
        unknown = set(d) - set(sections)
        if unknown:
            raise ConfigError(f"unknown config sections {short(sorted(map(str, unknown)))}; "
                              f"known: {sorted(sections)}")
        kwargs = {}
        for name, sec in d.items():
            sec_cls = _section_types()[name]
            known = {f.name for f in dataclasses.fields(sec_cls)}
            if not isinstance(sec, Mapping):
                raise ConfigError(f"config section '{name}' must be a mapping, got "
                                  f"{type(sec).__name__}")
            bad = set(sec) - known
            if bad:
                raise ConfigError(f"unknown keys in config section '{name}': "
                                  f"{short(sorted(map(str, bad)))}")
            hints = typing.get_type_hints(sec_cls)
            kwargs[name] = sec_cls(**{k: _checked(_coerce(v, hints[k]), hints[k], f"{name}.{k}")
                                      for k, v in sec.items()})
        return cls(**kwargs)

    def __post_init__(self) -> None:
        ignored = ignored_settings(self.to_dict())
        if ignored:
            key, needs = ignored[0]
            sec, _, name = key.partition(".")
            default = getattr(_section_types()[sec](), name)
            raise ConfigError(f"{key}={getattr(getattr(self, sec), name)!r} has no effect "
                              f"unless {needs}; drop the setting (its default is {default!r}) "
                              f"or set {needs}")

    # ------------------------------------------------------------- overrides
    def with_overrides(self, overrides: Iterable[str] | Mapping[str, Any]) -> Config:
        """A new config with ``section.key=value`` overrides applied (cast to the field type).

        Raises:
            ConfigError: unknown section or key, a value that does not parse, or a setting
                that the chosen architecture does not read.
        """
        return Config.from_dict(_apply(self.to_dict(), _items(overrides)))

    @classmethod
    def from_preset(cls, name: str, overrides: Iterable[str] | Mapping[str, Any] = ()) -> Config:
        """The preset ``name`` with ``overrides`` on top.

        A preset's setting that the overrides make pointless (the paper-scale presets'
        ``model.narrow_upsample`` with ``model.global_generator=cc``) goes back to its default;
        the same setting given in ``overrides`` is an error.

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
                sec, _, field_name = key.partition(".")
                d[sec][field_name] = getattr(_section_types()[sec](), field_name)
        return Config.from_dict(d)


# Settings that only some architectures read: (key, whether it is read, what it needs).
_READ_ONLY_WITH = (
    ("model.narrow_upsample",
     lambda m: m["use_global"] and m["global_generator"] == "spade",
     "model.global_generator=spade and model.use_global=true"),
    ("model.fusion", lambda m: m["use_global"] and m["use_local"],
     "model.use_global=true and model.use_local=true"),
    ("model.local_combine", lambda m: m["use_local"], "model.use_local=true"),
    ("model.layout_components", lambda m: m["layout_head"] == "sample",
     "model.layout_head=sample"),
    ("model.layout_sequential", lambda m: m["layout_head"] == "sample",
     "model.layout_head=sample"),
    ("model.layout_respect_relations", lambda m: m["layout_head"] == "sample",
     "model.layout_head=sample"),
    ("loss.seg_weight", lambda m: m["discriminator"] == "dp", "model.discriminator=dp"),
    ("loss.obj_attr_weight",
     lambda m: m["use_object_disc"] and m["object_disc_attributes"] and m["use_attributes"],
     "model.use_object_disc=true, model.object_disc_attributes=true and "
     "model.use_attributes=true"),
)


def ignored_settings(config: Mapping[str, Mapping[str, Any]]) -> list[tuple[str, str]]:
    """The settings of ``config`` (``Config.to_dict()`` form) that its architecture ignores.

    Only a value that differs from the default counts as set: a default is never an error.

    Args:
        config: sections mapping keys to values; a missing key is its default.

    Returns:
        ``(key, what it needs)`` for each ignored setting, e.g.
        ``("model.narrow_upsample", "model.global_generator=spade and ...")``.
    """
    full = {name: {**asdict(sec()), **config.get(name, {})}
            for name, sec in _section_types().items()}
    out = []
    for key, is_read, needs in _READ_ONLY_WITH:
        sec, _, name = key.partition(".")
        default = getattr(_section_types()[sec](), name)
        if full[sec][name] != default and not is_read(full["model"]):
            out.append((key, needs))
    return out


def _items(overrides: Iterable[str] | Mapping[str, Any]) -> list[tuple[str, Any]]:
    return list(overrides.items() if isinstance(overrides, Mapping) else map(_split, overrides))


def _apply(d: dict[str, dict[str, Any]], items: Iterable[tuple[str, Any]]
           ) -> dict[str, dict[str, Any]]:
    """``d`` (``Config.to_dict()`` form) with ``section.key`` values set, cast to field types."""
    hints_by_sec = {n: typing.get_type_hints(t) for n, t in _section_types().items()}
    for key, value in items:
        sec, _, name = key.partition(".")
        if sec not in d or not name:
            raise ConfigError(f"unknown config key {key!r}; keys look like 'model.gconv_dim' "
                              f"with sections {sorted(d)}")
        if name not in d[sec]:
            close = [k for k in d[sec] if name.split("_")[0] in k]
            raise ConfigError(f"unknown config key {key!r}; section '{sec}' has "
                              f"{close or sorted(d[sec])}")
        d[sec][name] = _parse(value, hints_by_sec[sec][name], key)
    return d


def _section_types() -> dict[str, type]:
    return {"model": ModelConfig, "loss": LossConfig, "data": DataConfig, "train": TrainConfig}


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
        "model.image_size": 32, "model.embedding_dim": 16, "model.gconv_dim": 16,
        "model.gconv_hidden_dim": 32, "model.gconv_num_layers": 2, "model.mask_size": 8,
        "model.layout_noise_dim": 4, "model.noise_dim": 8, "model.cond_dim": 8,
        "model.gen_channels": 8, "model.local_channels": 4, "model.disc_channels": 8,
        "model.disc_num_layers": 2, "model.object_disc_size": 16,
        "train.batch_size": 2, "train.num_steps": 4, "train.log_every": 1,
        "train.sample_every": 2, "train.checkpoint_every": 2, "data.num_workers": 0,
    },
    # Trainable on the procedural scenes on 2 CPU cores in about an hour.
    "small": {
        "model.image_size": 64, "model.embedding_dim": 64, "model.gconv_dim": 64,
        "model.gconv_hidden_dim": 128, "model.gconv_num_layers": 3, "model.mask_size": 16,
        "model.layout_noise_dim": 8, "model.noise_dim": 32, "model.cond_dim": 32,
        "model.gen_channels": 16, "model.local_channels": 8, "model.disc_channels": 16,
        "model.disc_num_layers": 3, "model.object_disc_size": 32,
        "train.batch_size": 16, "train.num_steps": 6000, "train.log_every": 25,
        "train.sample_every": 500, "train.checkpoint_every": 250,
    },
    # Paper scale (GPU). Narrow upsampling: a quarter fewer generator FLOPs for FID within
    # the run-to-run noise (docs/reports/performance/README.md);
    # --set model.narrow_upsample=false gives the paper's SPADE generator.
    "coco64": {"model.image_size": 64, "model.narrow_upsample": True, "data.dataset": "coco",
               "train.batch_size": 32},
    "coco128": {"model.image_size": 128, "model.mask_size": 32, "model.disc_num_scales": 3,
                "model.narrow_upsample": True, "data.dataset": "coco", "train.batch_size": 16},
    "vg64": {"model.image_size": 64, "model.narrow_upsample": True, "data.dataset": "vg",
             "data.max_objects": 10, "train.batch_size": 32},
    "vg128": {"model.image_size": 128, "model.mask_size": 32, "model.disc_num_scales": 3,
              "model.narrow_upsample": True, "data.dataset": "vg", "data.max_objects": 10,
              "train.batch_size": 16},
}
