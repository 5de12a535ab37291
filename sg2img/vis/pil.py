"""Tensor <-> PIL conversion and the helpers every drawing shares (arrays, fonts, labels)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from PIL import Image, ImageFont

MAX_LABEL_CHARS = 32
"""Longer object and predicate names are cut in graph drawings (and loss-term names in plots)."""


def as_array(x: Any, dtype: Any = np.float32) -> np.ndarray:
    """A numpy copy of ``x`` (numpy array, nested lists or a torch tensor on any device)."""
    if hasattr(x, "detach"):
        x = x.detach().float().cpu().numpy()
    return np.asarray(x, dtype=dtype)


def load_font(size: int) -> ImageFont.ImageFont | ImageFont.FreeTypeFont:
    """Pillow's default font at ``size`` pixels (the fixed bitmap font without FreeType)."""
    try:
        return ImageFont.load_default(size=size)
    except (TypeError, OSError):  # Pillow without FreeType: the fixed bitmap font.
        return ImageFont.load_default()


def short_label(text: Any, limit: int = MAX_LABEL_CHARS) -> str:
    """``text`` as a label of at most ``limit`` characters (cut with an ellipsis)."""
    text = str(text)
    return text if len(text) <= limit else text[:limit - 1] + "\u2026"


def to_pil(images: Any) -> Image.Image | list[Image.Image]:
    """Images in [-1, 1] to RGB PIL images.

    Args:
        images: ``(3, H, W)`` or ``(N, 3, H, W)`` in [-1, 1] (tensor or array); values outside
            are clipped. One channel is repeated to three.

    Returns:
        One image for a ``(3, H, W)`` input, a list of N images for ``(N, 3, H, W)``.

    Raises:
        ValueError: the input does not have 3 or 4 dimensions with 1 or 3 channels.
    """
    arr = as_array(images)
    if arr.ndim not in (3, 4) or arr.shape[-3] not in (1, 3):
        raise ValueError(f"to_pil expects (3, H, W) or (N, 3, H, W) images, got shape "
                         f"{tuple(arr.shape)}")
    single = arr.ndim == 3
    arr = arr[None] if single else arr
    if arr.shape[1] == 1:
        arr = np.repeat(arr, 3, axis=1)
    u8 = np.clip(np.rint((arr + 1.0) * 127.5), 0, 255).astype(np.uint8)  # (N, 3, H, W)
    out = [Image.fromarray(np.ascontiguousarray(a.transpose(1, 2, 0)), "RGB") for a in u8]
    return out[0] if single else out


def from_pil(images: Image.Image | Sequence[Image.Image]) -> Any:
    """PIL images to a float tensor in [-1, 1], the inverse of ``to_pil``.

    Args:
        images: one image or a list of images of equal size.

    Returns:
        ``(3, H, W)`` for one image, ``(N, 3, H, W)`` for a list (a ``torch.Tensor``).
    """
    import torch

    single = isinstance(images, Image.Image)
    imgs = [images] if single else list(images)
    arr = np.stack([np.asarray(im.convert("RGB"), dtype=np.float32) for im in imgs])
    t = torch.from_numpy(arr).permute(0, 3, 1, 2) / 127.5 - 1.0  # (N, 3, H, W)
    return t[0] if single else t
