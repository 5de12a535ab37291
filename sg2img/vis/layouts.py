"""Layout drawings: boxes and masks as a picture (``draw_layout``) and layout tensors in colour.

``colorize_layout`` paints a semantic layout tensor in ``draw_layout``'s colours, for the
trainer's sample grids.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
from PIL import Image, ImageDraw

from ..vocab import Vocab
from .colors import class_color, class_palette, name_color
from .pil import as_array, load_font

if TYPE_CHECKING:
    from torch import Tensor


def _resize_mask(mask: np.ndarray, w: int, h: int) -> np.ndarray:
    im = Image.fromarray(np.clip(mask * 255.0, 0, 255).astype(np.uint8), "L")
    return np.asarray(im.resize((w, h), Image.BILINEAR), dtype=np.float32) / 255.0


def draw_layout(boxes: Any, masks: Any | None, labels: Sequence[str], size: int = 256, *,
                class_ids: Sequence[int] | None = None, vocab: Vocab | None = None,
                alpha: float = 0.75, draw_boxes: bool = True,
                draw_labels: bool = True) -> Image.Image:
    """Draw a layout: coloured masks warped into their boxes, box outlines and labels.

    Objects are painted from the largest box to the smallest, so small objects stay visible
    on top of large background regions. ``__image__`` objects (id 0) are skipped.

    Args:
        boxes: ``(O, 4)`` as (x0, y0, x1, y1) in [0, 1].
        masks: ``(O, M, M)`` in [0, 1], or ``None`` to fill each box.
        labels: O names, written at the top-left corner of each box.
        size: the output is ``size x size`` pixels.
        class_ids: O class ids for the colours; else looked up in ``vocab``, else derived from
            the label text.
        vocab: used to find class ids from ``labels`` when ``class_ids`` is not given.
        alpha: opacity of the masks over the white background.
        draw_boxes: draw the box outlines.
        draw_labels: write the labels (only when ``size >= 96``; smaller drawings have no
            room for text).

    Returns:
        An RGB image of ``size x size`` pixels.

    Raises:
        ValueError: the shapes of ``boxes``, ``masks``, ``labels`` and ``class_ids`` disagree.
    """
    b = as_array(boxes).reshape(-1, 4) if len(labels) or np.size(boxes) else np.zeros((0, 4))
    n = b.shape[0]
    if len(labels) != n:
        raise ValueError(f"draw_layout: {n} boxes but {len(labels)} labels")
    m = None
    if masks is not None:
        m = as_array(masks)
        if m.ndim != 3 or m.shape[0] != n:
            raise ValueError(f"draw_layout: masks must be (O, M, M) with O={n}, got "
                             f"{tuple(m.shape)}")
    if class_ids is not None and len(class_ids) != n:
        raise ValueError(f"draw_layout: {n} boxes but {len(class_ids)} class ids")
    colors = [class_color(int(class_ids[i])) if class_ids is not None
              else name_color(labels[i], vocab) for i in range(n)]
    skip = [class_ids is not None and int(class_ids[i]) == 0 or labels[i] == "__image__"
            for i in range(n)]

    canvas = np.full((size, size, 3), 255.0, dtype=np.float32)
    areas = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    order = [i for i in np.argsort(-areas, kind="stable") if not skip[i]]
    pix = []
    for i in range(n):
        x0, y0, x1, y1 = np.clip(b[i], 0.0, 1.0) * size
        px0, py0 = int(math.floor(x0)), int(math.floor(y0))
        px1, py1 = max(px0 + 1, int(math.ceil(x1))), max(py0 + 1, int(math.ceil(y1)))
        pix.append((px0, py0, min(px1, size), min(py1, size)))
    for i in order:
        px0, py0, px1, py1 = pix[i]
        w, h = px1 - px0, py1 - py0
        if w <= 0 or h <= 0:
            continue
        a = _resize_mask(m[i], w, h) if m is not None else np.ones((h, w), np.float32)
        a = (a * alpha)[..., None]
        region = canvas[py0:py1, px0:px1]
        canvas[py0:py1, px0:px1] = region * (1 - a) + np.asarray(colors[i], np.float32) * a
    img = Image.fromarray(np.clip(canvas, 0, 255).astype(np.uint8), "RGB")

    draw = ImageDraw.Draw(img)
    font = load_font(max(9, size // 22))
    line = max(1, size // 128)
    darks = {i: tuple(int(c * 0.6) for c in colors[i]) for i in order}
    if draw_boxes:
        for i in order:
            px0, py0, px1, py1 = pix[i]
            draw.rectangle((px0, py0, px1 - 1, py1 - 1), outline=darks[i], width=line)
    if draw_labels and size >= 96:
        placed: list[tuple[int, int, int, int]] = []
        for i in order:
            px0, py0, px1, py1 = pix[i]
            tx, ty = px0 + line + 1, py0 + line
            rect = draw.textbbox((tx, ty), labels[i], font=font)
            step = rect[3] - rect[1] + 4
            # Objects with coinciding boxes: stack their labels instead of overprinting.
            for _ in range(len(placed)):
                if not any(rect[0] < r[2] and r[0] < rect[2] and rect[1] < r[3] and r[1] < rect[3]
                           for r in placed) or rect[3] + step > size:
                    break
                ty += step
                rect = (rect[0], rect[1] + step, rect[2], rect[3] + step)
            placed.append(rect)
            left, top, right, bottom = rect
            draw.rectangle((left - 1, top - 1, right + 1, bottom + 1), fill=darks[i])
            draw.text((tx, ty), labels[i], fill=(255, 255, 255), font=font)
    # A light frame shows the canvas' extent where no object covers it.
    draw.rectangle((0, 0, size - 1, size - 1), outline=(200, 200, 200), width=1)
    return img


def colorize_layout(layout: Tensor) -> Tensor:
    """A semantic layout as a colour image in the class palette (``draw_layout``'s colours).

    The class channels ``c >= 1`` are painted over white as ``draw_layout`` paints objects:
    in ``class_color(c)``, with the channel's value as opacity, the class covering most of
    the image first, so that small objects stay visible on top of the regions they overlap.
    A one-hot pixel of class ``c`` is therefore exactly ``class_color(c)`` and a pixel that no
    class covers is white. Channel 0 (the unlabelled region in ``layout.semantic_layout``) is
    background. NaNs count as 0.

    Args:
        layout: ``(N, C, H, W)`` in [0, 1] (a torch tensor on any device).

    Returns:
        ``(N, 3, H, W)`` float32 in [-1, 1] on the CPU, ready for ``to_pil`` or ``save_image``.

    Raises:
        ValueError: ``layout`` does not have 4 dimensions or has no channel.
    """
    if layout.dim() != 4 or layout.shape[1] < 1:
        raise ValueError(f"colorize_layout expects an (N, C, H, W) layout with C >= 1, got "
                         f"shape {tuple(layout.shape)}")
    x = layout.detach().float().cpu().nan_to_num(0.0).clamp_(0.0, 1.0)
    n, c, h, w = x.shape
    if c == 1:                                                        # nothing but background
        return x.new_ones(n, 3, h, w)
    lut = x.new_tensor(class_palette(c)[1:] / 255.0)                 # (C - 1, 3)
    fg = x[:, 1:]                                                      # (N, C - 1, H, W)
    # Composite like draw_layout paints: the class covering least of the image is on top.
    # With the channels sorted top first, channel k shows through the ones above it:
    # weight_k = a_k * prod_{j < k} (1 - a_j); white shows through all of them.
    order = fg.mean(dim=(2, 3)).argsort(dim=1, stable=True)            # (N, C - 1), top first
    weight = fg.gather(1, order[:, :, None, None].expand_as(fg))       # a_k, top first
    through = (1.0 - weight).cumprod_(1)                               # prod_{j <= k} (1 - a_j)
    weight[:, 1:] *= through[:, :-1]
    color = lut[order].transpose(1, 2) @ weight.view(n, c - 1, h * w)  # (N, 3, H * W)
    return (color.view(n, 3, h, w) + through[:, -1:]) * 2.0 - 1.0    # white where uncovered
