"""The model section's 0.1.0 flat key names and their places in the grouped section.

sg2img 0.1.0 kept every model setting in one flat section (``model.gconv_dim``); 0.2.0 groups
them into ``model.layout``, ``model.renderer`` and ``model.discriminator``. The old names keep
working for one release as deprecated aliases (``sg2img.config`` warns with the new name), and
a format-1 checkpoint's flat model section is nested when it loads (``sg2img.checkpoint``).
Plain data and pure functions: this module imports nothing from sg2img.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from typing import Any

# Old flat name under ``model`` -> its place under ``model`` (section.key). Every 0.1.0 key.
MODEL_KEY_ALIASES: dict[str, str] = {
    # The graph network, the embeddings, the box and mask heads, attributes in the graph.
    "embedding_dim": "layout.embedding_dim",
    "gconv_dim": "layout.gconv_dim",
    "gconv_hidden_dim": "layout.gconv_hidden_dim",
    "gconv_num_layers": "layout.num_gconv_layers",
    "use_attributes": "layout.use_attributes",
    "layout_head": "layout.head",
    "layout_components": "layout.num_components",
    "layout_sequential": "layout.sequential",
    "layout_respect_relations": "layout.respect_relations",
    "layout_gconv": "layout.use_own_gconv",
    "mask_size": "layout.mask_size",
    # Layout -> image: size, noise, conditioning, the generators and their fusion.
    "image_size": "renderer.image_size",
    "noise": "renderer.noise",
    "noise_dim": "renderer.noise_dim",
    "layout_noise_dim": "renderer.layout_noise_dim",
    "texture_noise": "renderer.texture_noise_dim",
    "cond_dim": "renderer.cond_dim",
    "instance_edges": "renderer.use_instance_edges",
    "attribute_layout": "renderer.paint_attributes",
    "gen_channels": "renderer.channels",
    "use_global": "renderer.use_global",
    "global_generator": "renderer.global_generator",
    "coarse_to_fine": "renderer.coarse_to_fine",
    "narrow_upsample": "renderer.narrow_upsample",
    "use_local": "renderer.use_local",
    "local_channels": "renderer.local_channels",
    "local_combine": "renderer.local_combine",
    "use_class_loss": "renderer.use_class_loss",
    "fusion": "renderer.fusion",
    # The image and object discriminators.
    "discriminator": "discriminator.kind",
    "disc_channels": "discriminator.channels",
    "disc_num_scales": "discriminator.num_scales",
    "disc_num_layers": "discriminator.num_layers",
    "spectral_norm": "discriminator.use_spectral_norm",
    "use_object_disc": "discriminator.use_object_disc",
    "object_disc_size": "discriminator.object_crop_size",
    "object_disc_attributes": "discriminator.classify_attributes",
}

# Model settings added after 0.1.0: they never had a flat name.
NEW_MODEL_KEYS: frozenset[str] = frozenset({
    "layout.max_thing_iou",
    "layout.partition_size",
    "layout.sample_temperature",
    "layout.stuff_partition",
})


def is_old_model_key(name: str, value: Any = None) -> bool:
    """Whether ``model.<name>`` (holding ``value``) is a 0.1.0 flat key.

    ``model.discriminator`` is both the old string setting and the new section: it is the old
    key unless its value is a mapping (the section).
    """
    return name in MODEL_KEY_ALIASES and not (name == "discriminator"
                                              and isinstance(value, Mapping))


def nest_model_section(flat: Mapping[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """A model section with its 0.1.0 flat keys moved to their grouped places.

    Keys that are not old names (the new sections, or unknown keys that the config then
    refuses) stay where they are.

    Args:
        flat: a model section in ``Config.to_dict()`` form, grouped, flat or a mix.

    Returns:
        ``(nested, old)``: the grouped section (new dicts; ``flat`` is not changed) and the
        old names found, in order.

    Raises:
        ValueError: an old name and its new place are both given (message names both).
    """
    out: dict[str, Any] = {k: dict(v) if isinstance(v, Mapping) else v
                           for k, v in flat.items() if not is_old_model_key(k, v)}
    old = []
    for name, value in flat.items():
        if not is_old_model_key(name, value):
            continue
        section, _, key = MODEL_KEY_ALIASES[name].partition(".")
        target = out.setdefault(section, {})
        if not isinstance(target, dict):
            continue  # a malformed section: the config's own checks say what is wrong
        if key in target:
            raise ValueError(f"model.{name} and model.{section}.{key} are the same setting "
                             f"(model.{name} is its old name); give only "
                             f"model.{section}.{key}")
        target[key] = value
        old.append(name)
    return out, old


def new_model_key(key: str, value: Any = None) -> str:
    """``key`` itself, or the grouped name of a 0.1.0 ``model.<name>`` key holding ``value``."""
    sec, _, name = key.partition(".")
    if sec == "model" and is_old_model_key(name, value):
        return f"model.{MODEL_KEY_ALIASES[name]}"
    return key


def warn_old_model_key(name: str) -> None:
    """A ``FutureWarning`` (shown to command-line users too) naming ``model.<name>``'s new key."""
    warnings.warn(f"model.{name} is a deprecated name (sg2img 0.2.0 grouped the model "
                  f"settings); use model.{MODEL_KEY_ALIASES[name]}. The old name stops working "
                  f"in the next release.", FutureWarning, stacklevel=4)


def flat_model_section(nested: Mapping[str, Any]) -> dict[str, Any]:
    """A grouped model section under 0.1.0's flat names (the inverse of ``nest_model_section``):
    the form sg2img 0.1.0 wrote into its checkpoints.

    Raises:
        KeyError: ``nested`` lacks a grouped key.
    """
    out = {}
    for old, new in MODEL_KEY_ALIASES.items():
        section, _, key = new.partition(".")
        out[old] = nested[section][key]
    return out
