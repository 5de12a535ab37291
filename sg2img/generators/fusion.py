"""Fusion of the global and local images by a predicted per-pixel weight map (LGGAN Eq. 6-7)."""

from __future__ import annotations

import torch
from torch import Tensor, nn


class WeightMapPredictor(nn.Module):
    """Two-channel weight map from the two branches' final features, softmax over channels.

    LGGAN predicts the map from the shared encoding with deconvolutions; here the branches'
    full-resolution features already exist, so two 3x3 convs over their concatenation suffice.

    Args:
        in_ch: channels of the concatenated features.
        hidden: width of the intermediate conv.

    Shapes:
        features (N, in_ch, H, W) -> (N, 2, H, W), channel 0 weights the global image and
        channel 1 the local image; the two channels sum to 1 at every pixel.
    """

    def __init__(self, in_ch: int, hidden: int = 16):
        super().__init__()
        self.net = nn.Sequential(nn.Conv2d(in_ch, hidden, 3, padding=1), nn.LeakyReLU(0.2),
                                 nn.Conv2d(hidden, 2, 3, padding=1))

    def forward(self, features: Tensor) -> Tensor:
        return torch.softmax(self.net(features), dim=1)


def fuse_images(global_images: Tensor, local_images: Tensor,
                weight_map: Tensor | None) -> Tensor:
    """Eq. 7: ``W_g * I_G + W_l * I_L``; plain averaging when ``weight_map`` is None.

    Shapes:
        global_images, local_images (N, 3, H, W); weight_map (N, 2, H, W) -> (N, 3, H, W)
    """
    if weight_map is None:
        return 0.5 * (global_images + local_images)
    return weight_map[:, :1] * global_images + weight_map[:, 1:] * local_images


__all__ = ["WeightMapPredictor", "fuse_images"]
