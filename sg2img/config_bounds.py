"""Bounds on the config's sizes and rates, and the discriminator's fit to the image size.

A value past a bound would fail late: a learning rate of 1e300 overflows in the first step, a
graph network of 10**8 layers or an image of 2**30 pixels a side exhausts memory, a
discriminator deeper than the image is small fails in its first forward. ``config_problem``
finds these when a ``Config`` is built, before anything is allocated or written.

Every preset and the paper-scale model (128 px, graph network 128 / 512 x 5, generator and
discriminator width 64) fit with room to spare: the upper bounds are about 4x the largest
value in use. ``SG2IMG_CONFIG_BOUNDS=off`` lifts the upper bounds for a larger model; the
lower bounds and the fit checks always hold (past them nothing can be built).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

BOUNDS_ENV = "SG2IMG_CONFIG_BOUNDS"

# key -> (lowest, highest) allowed, both inclusive; None: no bound on that side here (the
# section's own check, e.g. a learning rate > 0, holds it). Upper bounds are about 4x the
# largest value in use (the value in use in the comment).
BOUNDS: dict[str, tuple[float | None, float | None]] = {
    "model.layout.embedding_dim": (1, 512),          # 128
    "model.layout.gconv_dim": (1, 512),              # 128
    "model.layout.gconv_hidden_dim": (1, 2048),      # 512
    "model.layout.num_gconv_layers": (0, 20),        # 5
    "model.layout.num_components": (1, 64),          # 5
    "model.renderer.image_size": (32, 512),          # 128
    "model.renderer.noise_dim": (0, 256),            # 64
    "model.renderer.layout_noise_dim": (0, 128),     # 32
    "model.renderer.texture_noise_dim": (0, 64),     # 4 (one row of noise per object)
    "model.renderer.cond_dim": (1, 512),             # 128
    "model.renderer.channels": (1, 256),             # 64 (the coarsest stage is 8x this)
    "model.renderer.local_channels": (1, 64),        # 16 (per class: 184 classes on COCO)
    "model.discriminator.channels": (1, 256),        # 64
    "model.discriminator.num_scales": (1, 4),        # 3
    "model.discriminator.num_layers": (1, 6),        # 3
    "model.discriminator.object_crop_size": (1, 128),  # 32
    "data.max_objects": (1, 64),                     # 10; a scene graph's own limit
    "train.batch_size": (1, 1024),                   # 32 per process
    "train.lr_g": (None, 1.0),                       # 1e-4
    "train.lr_d": (None, 1.0),                       # 4e-4
    "train.layout_lr": (None, 1.0),                  # 1e-3
}


def bounds_lifted() -> bool:
    """True when ``SG2IMG_CONFIG_BOUNDS=off`` lifts the upper bounds."""
    return os.environ.get(BOUNDS_ENV, "").strip().lower() == "off"


def _get(config: Mapping[str, Any], key: str) -> Any:
    value: Any = config
    for name in key.split("."):
        value = value[name]
    return value


def _bound_problem(key: str, value: Any) -> str:
    low, high = BOUNDS[key]
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return ""                           # the type check names it
    shown = f"in {low}..{high}" if low is not None else f"at most {high}"
    if low is not None and value < low:
        return f"{key} must be {shown}, got {value}"
    if high is not None and value > high and not bounds_lifted():
        return (f"{key} must be {shown}, got {value} (sg2img's upper bound is {high}; set "
                f"{BOUNDS_ENV}=off to lift the upper bounds)")
    return ""


def discriminator_fit_problem(model: Mapping[str, Any]) -> str:
    """Why the image discriminator cannot judge images of the model's size, or ``""``.

    Each of the ``num_layers`` stride-2 layers halves its input; the multi-scale kind also
    halves the image between its ``num_scales`` scales; ``dp``'s encoder has one level more,
    and ``fpse``'s pyramid needs every level to halve the image exactly.

    Args:
        model: the model section in ``Config.to_dict()`` form.
    """
    size = model["renderer"]["image_size"]
    disc = model["discriminator"]
    kind, layers, scales = disc["kind"], disc["num_layers"], disc["num_scales"]
    if not all(isinstance(v, int) and v >= 1 for v in (size, layers, scales)):
        return ""                           # the type and lower-bound checks name it
    key = "model.discriminator"
    if kind == "multiscale":
        coarsest = -(-size // 2 ** (scales - 1))
        if coarsest < 2 ** layers:
            return (f"{key}.num_layers={layers} with {key}.num_scales={scales} needs "
                    f"model.renderer.image_size >= {2 ** (layers + scales - 1)} (each layer "
                    f"halves the image, each scale after the first halves it again), got "
                    f"{size}; lower num_layers or num_scales")
        return ""
    if kind == "dp" and size < 2 ** (layers + 1):
        return (f"{key}.kind=dp with {key}.num_layers={layers} needs "
                f"model.renderer.image_size >= {2 ** (layers + 1)} (each of its {layers + 1} "
                f"encoder levels halves the image), got {size}; lower num_layers")
    if kind == "fpse" and size % 2 ** layers:
        return (f"{key}.kind=fpse with {key}.num_layers={layers} needs "
                f"model.renderer.image_size divisible by {2 ** layers} (each of its {layers} "
                f"levels halves the image exactly), got {size}; lower num_layers")
    return ""


def config_problem(config: Mapping[str, Any]) -> str:
    """The first value of ``config`` past its bound, or the discriminator's misfit, or ``""``.

    Args:
        config: ``Config.to_dict()`` form (the model section grouped).

    Returns:
        A message naming the key, its value, the bound and how to lift it, or ``""``.
    """
    for key in BOUNDS:
        if problem := _bound_problem(key, _get(config, key)):
            return problem
    return discriminator_fit_problem(config["model"])
