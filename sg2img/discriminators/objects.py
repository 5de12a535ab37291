"""Object discriminator: real/fake and class (and attribute) logits of object crops.

Crops are cut with ``roi_align`` (``sg2img.layout.crop_boxes``) and classified by an auxiliary
classifier, as in sg2im / LostGAN. It works with every image discriminator.
"""

from __future__ import annotations

from torch import Tensor, nn

from ..layout import crop_boxes
from .blocks import maybe_spectral_norm as _sn


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
            ``model.discriminator.classify_attributes``): the crop's attributes, learned on
            real crops, so that the generator is told when a "red car" does not look red.

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


__all__ = ["ObjectDiscriminator"]
