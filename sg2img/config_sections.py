"""The config's sections: one dataclass per group of settings, each checking its own values.

``sg2img.config`` composes them into the root ``Config`` (with presets and ``key=value``
overrides) and re-exports every name here; import them from there.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field


class ConfigError(ValueError):
    """A config value, key or preset is invalid; the message says how to fix it."""


def require(cond: bool, msg: str) -> None:
    """Raise ``ConfigError(msg)`` unless ``cond``."""
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
    sample_temperature: float = 1.0      # head=sample: scales each sampled box's normal draws
                                         # (1: the learned spread; < 1 nearer each component's
                                         # mean: likelier layouts, less varied)
    max_thing_iou: float = 1.0           # head=sample: placement drops the components whose
                                         # box overlaps a thing already placed by more (IoU);
                                         # 1 keeps them all
    stuff_partition: bool = False        # predicted stuff partitions the canvas as in the data:
                                         # each pixel goes to one stuff object (things on top)
    partition_size: int = 0              # stuff_partition: the side of the grid the regions
                                         # are decided on (0: the image size); a 128 px model at
                                         # 64 lays a graph out as a 64 px model with its layout
                                         # branch does

    def __post_init__(self) -> None:
        require(self.head in ("regress", "sample"),
                f"model.layout.head must be 'regress' (deterministic boxes) or 'sample' (boxes "
                f"drawn from a learned mixture), got {self.head!r}")
        require(self.mask_size in (8, 16, 32, 64),
                f"model.layout.mask_size must be 8, 16, 32 or 64, got {self.mask_size}")
        for name in ("embedding_dim", "gconv_dim", "gconv_hidden_dim"):
            require(getattr(self, name) > 0, f"model.layout.{name} must be positive")
        require(self.num_gconv_layers >= 0, "model.layout.num_gconv_layers must be >= 0")
        require(0.0 <= self.max_thing_iou <= 1.0,
                f"model.layout.max_thing_iou must be in [0, 1] (1: no rule), got "
                f"{self.max_thing_iou}")
        require(0 <= self.partition_size <= 1024,
                f"model.layout.partition_size must be in [0, 1024] (0: the image size), got "
                f"{self.partition_size}")
        require(0.0 <= self.sample_temperature <= 2.0,
                f"model.layout.sample_temperature must be in [0, 2] (1 samples the learned "
                f"spread), got {self.sample_temperature}")


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
        require(self.global_generator in GLOBAL_GENERATOR_CHOICES,
                f"model.renderer.global_generator must be one of {GLOBAL_GENERATOR_CHOICES}, "
                f"got {self.global_generator!r}")
        require(self.noise in NOISE_CHOICES,
                f"model.renderer.noise must be one of {NOISE_CHOICES}, got {self.noise!r}")
        require(self.noise != "spatial" or self.layout_noise_dim > 0,
                "model.renderer.noise=spatial needs model.renderer.layout_noise_dim > 0 (the "
                "number of per-pixel noise channels)")
        require(self.texture_noise_dim == 0 or self.noise == "spatial",
                "model.renderer.texture_noise_dim needs model.renderer.noise=spatial (the "
                "texture is made from each object's noise vector)")
        require(self.image_size % 16 == 0 and self.image_size >= 32,
                f"model.renderer.image_size must be a multiple of 16 and >= 32 (64 or 128), "
                f"got {self.image_size}")
        require(not self.coarse_to_fine or self.image_size % 32 == 0,
                f"model.renderer.coarse_to_fine needs model.renderer.image_size divisible by 32 "
                f"(its coarse generator works at half size), got {self.image_size}")
        require(self.use_global or self.use_local,
                "model.renderer.use_global and model.renderer.use_local cannot both be false")
        require(self.fusion in ("weight_map", "average"),
                f"model.renderer.fusion must be 'weight_map' or 'average', got {self.fusion!r}")
        require(self.local_combine in ("conv", "sum"),
                f"model.renderer.local_combine must be 'conv' or 'sum', got "
                f"{self.local_combine!r}")
        for name in ("cond_dim", "channels", "local_channels"):
            require(getattr(self, name) > 0, f"model.renderer.{name} must be positive")


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
        require(self.kind in DISCRIMINATOR_CHOICES,
                f"model.discriminator.kind must be one of {DISCRIMINATOR_CHOICES}, "
                f"got {self.kind!r}")
        for name in ("channels", "num_scales", "num_layers", "object_crop_size"):
            require(getattr(self, name) > 0, f"model.discriminator.{name} must be positive")


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
    own_layout_weight: float = 0.0       # > 0: every GAN step also renders the graphs from the
    #                                      model's own predicted layout and scores those images
    #                                      with the adversarial terms only (no paired real
    #                                      image), weighted by this times each term's weight

    def __post_init__(self) -> None:
        require(self.gan_mode in ("hinge", "lsgan"),
                f"loss.gan_mode must be 'hinge' or 'lsgan', got {self.gan_mode!r}")
        require(self.recon_noise in RECON_NOISE_CHOICES,
                f"loss.recon_noise must be one of {RECON_NOISE_CHOICES}, got {self.recon_noise!r}")
        for f in dataclasses.fields(self):
            if f.name.endswith("_weight"):
                require(getattr(self, f.name) >= 0, f"loss.{f.name} must be >= 0")


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
        require(self.dataset in ("coco", "vg"),
                f"data.dataset must be 'coco' or 'vg', got {self.dataset!r}")
        require(1 <= self.min_objects <= self.max_objects,
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
    freeze_layout: bool = False          # stage "gan": the embeddings, the layout graph network
                                         # and the box and mask heads do not train, so the
                                         # layout stays the starting model's; the renderer and
                                         # its graph network do (needs model.layout.use_own_gconv)
    layout_jitter: float = 0.0           # stage "gan", teacher forcing: std of a random shift of
                                         # each true box's centre (in box sizes) and of its
                                         # sides' log-scale; the true masks are blurred and
                                         # re-thresholded too. 0: the true layout as it is

    def __post_init__(self) -> None:
        for name in ("batch_size", "num_steps", "log_every", "sample_every",
                     "checkpoint_every", "keep_checkpoints"):
            require(getattr(self, name) > 0, f"train.{name} must be positive")
        require(0.0 <= self.ema_decay < 1.0, "train.ema_decay must be in [0, 1)")
        require(self.lr_g > 0 and self.lr_d > 0, "train.lr_g and train.lr_d must be positive")
        require(0 <= self.seed < 2**32, f"train.seed must be in 0..2**32 - 1, got {self.seed}")
        require(self.stage in ("gan", "layout"),
                f"train.stage must be 'gan' (GAN training) or 'layout' (the graph network and "
                f"layout heads alone, renderer frozen), got {self.stage!r}")
        require(self.layout_lr > 0, "train.layout_lr must be positive")
        require(0.0 <= self.layout_jitter <= 1.0,
                f"train.layout_jitter must be in [0, 1] (the std of a box's shift in box sizes "
                f"and of its log-scale; 0.1 is a mild jitter), got {self.layout_jitter}")
        require(self.layout_modules in LAYOUT_MODULE_CHOICES,
                f"train.layout_modules must be one of {LAYOUT_MODULE_CHOICES} (what the layout "
                f"stage trains), got {self.layout_modules!r}")


LAYOUT_MODULE_CHOICES = ("branch", "heads")
