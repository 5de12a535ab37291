"""The class palette: one colour per class id, for every drawing, and text that contrasts with it.

There is one palette (``class_color``): a layout looks the same in ``draw_layout``,
``colorize_layout`` and the object boxes of ``draw_scene_graph``.
"""

from __future__ import annotations

import colorsys
import functools
import zlib

import numpy as np

from ..vocab import Vocab

_IMAGE_GREY = (160, 160, 160)
# The class palette: a grid of hues x saturations x values (no washed-out, very dark or neon
# colours), and sRGB -> CIE XYZ (D65) for CIELAB distances.
_HUES, _SATURATIONS, _VALUES = 36, (0.4, 0.55, 0.7, 0.85), (0.5, 0.65, 0.8, 0.95)
PALETTE_SIZE = _HUES * len(_SATURATIONS) * len(_VALUES)
"""Number of distinct class colours; ids above it reuse them (id ``PALETTE_SIZE + 1`` is 1's)."""
_RGB_TO_XYZ = np.array([[0.4124, 0.3576, 0.1805], [0.2126, 0.7152, 0.0722],
                        [0.0193, 0.1192, 0.9505]])
_D65_WHITE = np.array([0.95047, 1.0, 1.08883])


def _srgb_to_lab(rgb: np.ndarray) -> np.ndarray:
    """``(K, 3)`` sRGB in [0, 255] to CIELAB (D65), where distances follow perceived difference."""
    c = np.asarray(rgb, dtype=np.float64) / 255.0
    c = np.where(c > 0.04045, ((c + 0.055) / 1.055) ** 2.4, c / 12.92)         # linear RGB
    xyz = c @ _RGB_TO_XYZ.T / _D65_WHITE
    f = np.where(xyz > (6 / 29) ** 3, np.cbrt(xyz), xyz / (3 * (6 / 29) ** 2) + 4 / 29)
    return np.stack([116 * f[:, 1] - 16, 500 * (f[:, 0] - f[:, 1]),
                     200 * (f[:, 1] - f[:, 2])], axis=1)


@functools.lru_cache(maxsize=1)
def _palette() -> np.ndarray:
    """The class colours in order: ``(PALETTE_SIZE, 3)`` uint8.

    The grid colours ordered by greedy farthest-point sampling in CIELAB: each colour is the
    candidate farthest from all colours before it and from white (the layout background), the
    ``__image__`` grey and black. Every prefix is therefore well spread, so class ``k`` keeps
    its colour whatever the vocabulary size, and the first classes differ most.
    """
    grid = [colorsys.hsv_to_rgb(h / _HUES, s, v) for h in range(_HUES) for s in _SATURATIONS
            for v in _VALUES]
    rgb = np.rint(np.array(grid) * 255.0)
    lab = _srgb_to_lab(rgb)
    avoid = _srgb_to_lab(np.array([(255, 255, 255), _IMAGE_GREY, (0, 0, 0)]))
    dist = np.linalg.norm(lab[:, None] - avoid[None], axis=2).min(axis=1)
    order = []
    for _ in range(len(rgb)):
        k = int(dist.argmax())
        order.append(k)
        dist = np.minimum(dist, np.linalg.norm(lab - lab[k], axis=1))
    palette = rgb[order].astype(np.uint8)
    palette.flags.writeable = False  # cached: shared by every caller
    return palette


def class_color(class_id: int) -> tuple[int, int, int]:
    """A fixed RGB colour for a class id (id 0, ``__image__``, is grey).

    The colours come from a fixed palette ordered so that low ids differ most: the first 8 are
    far apart, and COCO-Stuff's 184 classes still differ visibly (CIELAB distance >= 12).
    The same in every process and for every vocabulary size; ``draw_layout``,
    ``draw_scene_graph`` and ``colorize_layout`` all use it.
    """
    class_id = int(class_id)
    if class_id < 0:
        raise ValueError(f"class ids are >= 0, got {class_id}")
    if class_id == 0:
        return _IMAGE_GREY
    r, g, b = _palette()[(class_id - 1) % PALETTE_SIZE]
    return int(r), int(g), int(b)


def class_palette(num_classes: int) -> np.ndarray:
    """``class_color`` for ids ``0 .. num_classes - 1`` as a ``(num_classes, 3)`` uint8 array."""
    if num_classes < 0:
        raise ValueError(f"num_classes must be >= 0, got {num_classes}")
    ids = np.arange(num_classes)
    out = _palette()[(ids - 1) % PALETTE_SIZE]
    out[ids == 0] = _IMAGE_GREY
    return out


def name_color(name: str, vocab: Vocab | None = None) -> tuple[int, int, int]:
    """The colour of a class name: its vocabulary id's colour, else one from a hash of the name.

    The hash is CRC-32 of the UTF-8 name, not Python's ``hash`` (salted per process), so a name
    has the same colour in every run.
    """
    if vocab is not None:
        try:
            return class_color(vocab.object_idx(name))
        except ValueError:
            pass
    return class_color(1 + zlib.crc32(name.encode("utf-8", "replace")) % PALETTE_SIZE)


def _luminance(rgb: tuple[int, int, int]) -> float:
    """WCAG relative luminance of an sRGB colour."""
    c = np.asarray(rgb, dtype=np.float64) / 255.0
    c = np.where(c > 0.04045, ((c + 0.055) / 1.055) ** 2.4, c / 12.92)
    return float(0.2126 * c[0] + 0.7152 * c[1] + 0.0722 * c[2])


def text_color(rgb: tuple[int, int, int]) -> tuple[int, int, int]:
    """Black or white, whichever contrasts more with ``rgb`` (WCAG ratio >= 4.58 for any colour)."""
    lum = _luminance(rgb)
    return (0, 0, 0) if (lum + 0.05) / 0.05 >= 1.05 / (lum + 0.05) else (255, 255, 255)
