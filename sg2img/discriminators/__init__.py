"""Discriminators: the image discriminators, the object discriminator and their wrapper.

The image discriminator ``model.discriminator.kind`` names: pix2pixHD's multi-scale PatchGANs on
(image, layout) (``multiscale.py``, the default), CC-FPSE's feature-pyramid
semantics-embedding discriminator (``fpse.py``) or DP-GAN's scale-enhancement U-Net
(``dp.py``). The object discriminator (``objects.py``) judges and classifies object crops and
works with each. ``GALSDiscriminator`` runs both in one forward, so a DDP wrapper sees a single
call per step. Layers shared by the discriminators live in ``blocks.py``; the
discriminator modules do not import each other.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

from ..config import ModelConfig
from ..vocab import IMAGE_OBJECT_ID
from .dp import ScaleEnhancementDiscriminator, ScaleEnhancementOutput
from .fpse import FPSEDiscriminator
from .multiscale import MultiScaleDiscriminator, PatchDiscriminator
from .objects import ObjectDiscriminator

__all__ = ["DiscriminatorOutput", "FPSEDiscriminator", "GALSDiscriminator",
           "MultiScaleDiscriminator", "ObjectDiscriminator", "PatchDiscriminator",
           "ScaleEnhancementDiscriminator", "ScaleEnhancementOutput",
           "build_image_discriminator"]


@dataclass
class DiscriminatorOutput:
    """Outputs of ``GALSDiscriminator``.

    Shapes:
        patch: per scale a list of features, last = patch logits (B, 1, h, w);
        obj_logits (K,), obj_class_logits (K, C), obj_index (K,) long: the objects that were
        judged (indices into the ``objs`` given; ``__image__`` objects are left out), or None
        when the object discriminator is off or no boxes were given; obj_attr_logits (K, A)
        with ``model.discriminator.classify_attributes`` (else None);
        seg_logits (B, C + 1, H, W) and match (decoder features, each (B, c_i, h_i, w_i)):
        the pixel- and feature-level outputs of ``model.discriminator.kind="dp"`` (else None).
    """

    patch: list[list[Tensor]]
    obj_logits: Tensor | None = None
    obj_class_logits: Tensor | None = None
    obj_index: Tensor | None = None
    obj_attr_logits: Tensor | None = None
    seg_logits: Tensor | None = None
    match: list[Tensor] | None = None


def build_image_discriminator(cfg: ModelConfig, num_objects: int) -> nn.Module:
    """The image discriminator ``cfg.discriminator.kind`` names.

    Conditional ones see the semantic layout plus, with ``cfg.renderer.use_instance_edges``, the
    boundary map (pix2pixHD feeds it to D too); DP-GAN's sees the image only.
    """
    layout_ch = num_objects + int(cfg.renderer.use_instance_edges)
    d = cfg.discriminator
    builders = {
        "multiscale": lambda: MultiScaleDiscriminator(layout_ch, d.channels, d.num_layers,
                                                      d.num_scales, d.use_spectral_norm),
        "fpse": lambda: FPSEDiscriminator(layout_ch, d.channels, d.num_layers,
                                          d.use_spectral_norm),
        "dp": lambda: ScaleEnhancementDiscriminator(num_objects, d.channels, d.num_layers,
                                                    d.use_spectral_norm),
    }
    return builders[d.kind]()


class GALSDiscriminator(nn.Module):
    """Image discriminator (multi-scale patch by default) plus the object discriminator.

    Args:
        cfg: the model section of the config.
        num_objects: C (layout channels and classifier classes).
        num_attributes: A, the attribute vocabulary; with ``cfg.discriminator.classify_attributes``
            (and ``cfg.layout.use_attributes``) the object discriminator also classifies each crop's
            attributes. 0 (no attributes) builds no attribute head.
    """

    def __init__(self, cfg: ModelConfig, num_objects: int, num_attributes: int = 0):
        super().__init__()
        self.num_objects = num_objects
        self.kind = cfg.discriminator.kind
        self.instance_edges = cfg.renderer.use_instance_edges
        self.patch = build_image_discriminator(cfg, num_objects)
        d = cfg.discriminator
        attrs = num_attributes if d.classify_attributes and cfg.layout.use_attributes else 0
        self.obj = (ObjectDiscriminator(num_objects, d.channels, d.object_crop_size,
                                        d.use_spectral_norm, attrs)
                    if d.use_object_disc else None)

    def forward(self, images: Tensor, layout: Tensor, boxes: Tensor | None = None,
                objs: Tensor | None = None,
                obj_to_img: Tensor | None = None,
                edges: Tensor | None = None) -> DiscriminatorOutput:
        """Judge images (and their objects).

        Args:
            images: (B, 3, H, W) in [-1, 1].
            layout: (B, C, H, W) semantic layout the images were made from.
            boxes: (O, 4) in [0, 1], objs (O,), obj_to_img (O,) in [0, B): objects to crop;
                leave None to skip the object discriminator.
            edges: (B, 1, H, W) instance boundary map, appended to the layout
                (``model.renderer.use_instance_edges``).
        """
        if self.kind == "dp":
            res = self.patch(images)
            out = DiscriminatorOutput(patch=res.patch, seg_logits=res.seg_logits,
                                      match=res.match)
        else:
            if (edges is not None) != self.instance_edges:
                raise ValueError("pass edges exactly when model.renderer.use_instance_edges is "
                                 f"on (this discriminator was built with instance_edges="
                                 f"{self.instance_edges})")
            if edges is not None:
                layout = torch.cat([layout, edges.to(layout.dtype)], dim=1)
            out = DiscriminatorOutput(patch=self.patch(images, layout))
        if self.obj is not None and boxes is not None:
            if objs is None or obj_to_img is None:
                raise ValueError("the object discriminator needs objs and obj_to_img with boxes")
            index = (objs != IMAGE_OBJECT_ID).nonzero().squeeze(1)                          # (K,)
            if index.numel() > 0:
                logits, cls, attrs = self.obj(images, boxes[index], obj_to_img[index])
                out.obj_logits, out.obj_class_logits, out.obj_index = logits, cls, index
                out.obj_attr_logits = attrs
        return out
