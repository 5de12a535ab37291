"""Discriminators: multi-scale patch discriminators on (image, layout) and an object discriminator.

``MultiScaleDiscriminator`` follows pix2pixHD: identical PatchGANs on the image and its x2 and
x4 downsampled copies, each returning its intermediate features for the feature-matching loss.
It is conditioned on the semantic layout (LGGAN's semantic-guided discriminator).
``ObjectDiscriminator`` judges object crops cut with ``roi_align`` and classifies them
(auxiliary classifier, as in sg2im / LostGAN). ``GALSDiscriminator`` runs both in one forward,
so a DDP wrapper sees a single call per step. ``model.discriminator`` swaps the image
discriminator for CC-FPSE's (``sg2img.discriminators_fpse``) or DP-GAN's
(``sg2img.discriminators_dp``); the object discriminator works with each.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .config import ModelConfig
from .layout import crop_boxes
from .vocab import IMAGE_OBJECT_ID


def _sn(module: nn.Module, use: bool) -> nn.Module:
    if not use:
        return module
    from torch.nn.utils.parametrizations import spectral_norm

    return spectral_norm(module)


class PatchDiscriminator(nn.Module):
    """PatchGAN on ``concat(image, reduced layout)``.

    ``num_layers`` stride-2 4x4 convs (widths ``ch, 2ch, 4ch, ...`` capped at ``8ch``), one
    stride-1 3x3 conv, then a 3x3 conv to one logit per patch. The layout's C channels are first
    reduced by a 1x1 conv (C is up to 184).

    Args:
        layout_ch: C (0 for an unconditional discriminator).
        channels: width of the first layer.
        num_layers: number of stride-2 layers.
        spectral_norm: wrap every conv in spectral normalization.

    Shapes:
        images (B, 3, H, W), layout (B, C, H, W)
        -> list of features, each (B, c_i, h_i, w_i); the last is the logits (B, 1, h, w)
    """

    def __init__(self, layout_ch: int, channels: int, num_layers: int,
                 spectral_norm: bool = True):
        super().__init__()
        self.layout_proj = None
        in_ch = 3
        if layout_ch > 0:
            red = min(layout_ch, channels)
            self.layout_proj = _sn(nn.Conv2d(layout_ch, red, 1), spectral_norm)
            in_ch += red
        blocks: list[nn.Module] = []
        prev = in_ch
        for i in range(num_layers):
            ch = channels * min(8, 2 ** i)
            blocks.append(nn.Sequential(_sn(nn.Conv2d(prev, ch, 4, 2, 1), spectral_norm),
                                        nn.LeakyReLU(0.2)))
            prev = ch
        ch = channels * min(8, 2 ** num_layers)
        blocks.append(nn.Sequential(_sn(nn.Conv2d(prev, ch, 3, 1, 1), spectral_norm),
                                    nn.LeakyReLU(0.2)))
        blocks.append(_sn(nn.Conv2d(ch, 1, 3, 1, 1), spectral_norm))
        self.blocks = nn.ModuleList(blocks)

    def forward(self, images: Tensor, layout: Tensor | None) -> list[Tensor]:
        x = images
        if self.layout_proj is not None:
            x = torch.cat([images, self.layout_proj(layout.to(images.dtype))], dim=1)
        feats = []
        for block in self.blocks:
            x = block(x)
            feats.append(x)
        return feats


class MultiScaleDiscriminator(nn.Module):
    """``num_scales`` PatchGANs on the image and layout average-pooled by 2 between scales.

    Shapes:
        images (B, 3, H, W), layout (B, C, H, W) -> per scale (finest first) a list of
        features whose last entry is the patch logits.
    """

    def __init__(self, layout_ch: int, channels: int, num_layers: int, num_scales: int,
                 spectral_norm: bool = True):
        super().__init__()
        self.discs = nn.ModuleList(
            PatchDiscriminator(layout_ch, channels, num_layers, spectral_norm)
            for _ in range(num_scales))

    def forward(self, images: Tensor, layout: Tensor | None) -> list[list[Tensor]]:
        out = []
        for i, disc in enumerate(self.discs):
            if i > 0:
                images = F.avg_pool2d(images, 3, 2, 1, count_include_pad=False)
                if layout is not None:
                    layout = F.avg_pool2d(layout, 3, 2, 1, count_include_pad=False)
            out.append(disc(images, layout))
        return out


class ObjectDiscriminator(nn.Module):
    """Real/fake logit and class logits for object crops (``torchvision.ops.roi_align``).

    Stride-2 4x4 convs take the ``crop_size`` crop down to 4x4, then a sum pool and two linear
    heads.

    Args:
        num_classes: C for the auxiliary classifier.
        channels: width of the first conv.
        crop_size: side of the crops (a power of two >= 8).
        spectral_norm: wrap every layer in spectral normalization.
        num_attributes: A > 0 adds a third head, one logit per attribute (multi-label,
            ``model.object_disc_attributes``): the crop's attributes, learned on real crops,
            so that the generator is told when a "red car" does not look red.

    Shapes:
        images (B, 3, H, W), boxes (K, 4) in [0, 1], box_to_img (K,)
        -> logits (K,), class_logits (K, C), attribute_logits (K, A) or None
    """

    def __init__(self, num_classes: int, channels: int, crop_size: int,
                 spectral_norm: bool = True, num_attributes: int = 0):
        super().__init__()
        self.crop_size = crop_size
        layers: list[nn.Module] = []
        prev, size, i = 3, crop_size, 0
        while size > 4:
            ch = channels * min(8, 2 ** i)
            layers += [_sn(nn.Conv2d(prev, ch, 4, 2, 1), spectral_norm), nn.LeakyReLU(0.2)]
            prev, size, i = ch, size // 2, i + 1
        layers += [_sn(nn.Conv2d(prev, prev, 3, 1, 1), spectral_norm), nn.LeakyReLU(0.2)]
        self.net = nn.Sequential(*layers)
        self.real_fake = _sn(nn.Linear(prev, 1), spectral_norm)
        self.classifier = _sn(nn.Linear(prev, num_classes), spectral_norm)
        self.attr_classifier = (_sn(nn.Linear(prev, num_attributes), spectral_norm)
                                if num_attributes > 0 else None)

    def crop(self, images: Tensor, boxes: Tensor, box_to_img: Tensor) -> Tensor:
        """Crops (K, 3, S, S) of the boxes (:func:`sg2img.layout.crop_boxes`)."""
        return crop_boxes(images, boxes, box_to_img, self.crop_size)

    def forward(self, images: Tensor, boxes: Tensor, box_to_img: Tensor
                ) -> tuple[Tensor, Tensor, Tensor | None]:
        x = self.net(self.crop(images, boxes.detach(), box_to_img)).sum(dim=(2, 3))  # (K, c)
        attrs = self.attr_classifier(x) if self.attr_classifier is not None else None
        return self.real_fake(x).squeeze(1), self.classifier(x), attrs


@dataclass
class DiscriminatorOutput:
    """Outputs of ``GALSDiscriminator``.

    Shapes:
        patch: per scale a list of features, last = patch logits (B, 1, h, w);
        obj_logits (K,), obj_class_logits (K, C), obj_index (K,) long: the objects that were
        judged (indices into the ``objs`` given; ``__image__`` objects are left out), or None
        when the object discriminator is off or no boxes were given; obj_attr_logits (K, A)
        with ``model.object_disc_attributes`` (else None);
        seg_logits (B, C + 1, H, W) and match (decoder features, each (B, c_i, h_i, w_i)):
        the pixel- and feature-level outputs of ``model.discriminator="dp"`` (else None).
    """

    patch: list[list[Tensor]]
    obj_logits: Tensor | None = None
    obj_class_logits: Tensor | None = None
    obj_index: Tensor | None = None
    obj_attr_logits: Tensor | None = None
    seg_logits: Tensor | None = None
    match: list[Tensor] | None = None


def build_image_discriminator(cfg: ModelConfig, num_objects: int) -> nn.Module:
    """The image discriminator ``cfg.discriminator`` names.

    Conditional ones see the semantic layout plus, with ``cfg.instance_edges``, the boundary
    map (pix2pixHD feeds it to D too); DP-GAN's sees the image only.
    """
    from .discriminators_dp import ScaleEnhancementDiscriminator
    from .discriminators_fpse import FPSEDiscriminator

    layout_ch = num_objects + int(cfg.instance_edges)
    builders = {
        "multiscale": lambda: MultiScaleDiscriminator(layout_ch, cfg.disc_channels,
                                                      cfg.disc_num_layers, cfg.disc_num_scales,
                                                      cfg.spectral_norm),
        "fpse": lambda: FPSEDiscriminator(layout_ch, cfg.disc_channels, cfg.disc_num_layers,
                                          cfg.spectral_norm),
        "dp": lambda: ScaleEnhancementDiscriminator(num_objects, cfg.disc_channels,
                                                    cfg.disc_num_layers, cfg.spectral_norm),
    }
    return builders[cfg.discriminator]()


class GALSDiscriminator(nn.Module):
    """Image discriminator (multi-scale patch by default) plus the object discriminator.

    Args:
        cfg: the model section of the config.
        num_objects: C (layout channels and classifier classes).
        num_attributes: A, the attribute vocabulary; with ``cfg.object_disc_attributes``
            (and ``cfg.use_attributes``) the object discriminator also classifies each crop's
            attributes. 0 (no attributes) builds no attribute head.
    """

    def __init__(self, cfg: ModelConfig, num_objects: int, num_attributes: int = 0):
        super().__init__()
        self.num_objects = num_objects
        self.kind = cfg.discriminator
        self.instance_edges = cfg.instance_edges
        self.patch = build_image_discriminator(cfg, num_objects)
        attrs = (num_attributes if cfg.object_disc_attributes and cfg.use_attributes else 0)
        self.obj = (ObjectDiscriminator(num_objects, cfg.disc_channels, cfg.object_disc_size,
                                        cfg.spectral_norm, attrs)
                    if cfg.use_object_disc else None)

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
                (``model.instance_edges``).
        """
        if self.kind == "dp":
            res = self.patch(images)
            out = DiscriminatorOutput(patch=res.patch, seg_logits=res.seg_logits,
                                      match=res.match)
        else:
            if (edges is not None) != self.instance_edges:
                raise ValueError("pass edges exactly when model.instance_edges is on (this "
                                 f"discriminator was built with instance_edges="
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
