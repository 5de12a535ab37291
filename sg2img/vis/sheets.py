"""Image sheets: images in a grid with column and row titles (``make_sheet``)."""

from __future__ import annotations

from collections.abc import Sequence

from PIL import Image, ImageDraw

from .pil import load_font

MAX_SHEET_PIXELS = 64_000_000
"""``make_sheet`` refuses sheets larger than this (192 MB as RGB) by default."""


def _fit_width(im: Image.Image, height: int) -> int:
    """The width of ``im`` scaled to ``height`` (aspect kept), as ``_fit`` makes it."""
    return im.width if im.height == height else max(1, round(im.width * height / im.height))


def _fit(im: Image.Image, height: int) -> Image.Image:
    if im.height == height:
        return im.convert("RGB")
    w = _fit_width(im, height)
    # Upscaling small generated images: nearest keeps their pixels honest.
    resample = Image.NEAREST if im.height < height and im.height <= 128 else Image.LANCZOS
    return im.convert("RGB").resize((w, height), resample)


def make_sheet(rows: Sequence[Sequence[Image.Image | None]],
               titles: Sequence[str] | None = None, *,
               row_titles: Sequence[str] | None = None, cell_height: int = 256,
               pad: int = 8, background: tuple[int, int, int] = (255, 255, 255),
               max_pixels: int = MAX_SHEET_PIXELS) -> Image.Image:
    """Arrange images in a grid: one row per list, each image scaled to ``cell_height``.

    Columns are as wide as their widest image; narrower images are centred. ``None`` leaves a
    cell empty.

    The sheet's size is checked before any image is resized, and a sheet of more than
    ``max_pixels`` pixels is refused with a ``ValueError`` that says how many rows would fit:
    2,000 rows at the default cell height make a sheet of gigabytes that no viewer opens. We
    refuse rather than shrink the cells, because shrinking them to fit would make every cell
    unreadable; callers split long lists over several sheets instead.

    Args:
        rows: the images, row by row (rows may differ in length).
        titles: column titles written above the first row, e.g.
            ``["graph", "layout", "image"]``.
        row_titles: one title per row, written above that row.
        cell_height: every image is resized to this height, keeping its aspect ratio.
        pad: pixels between cells.
        background: sheet colour.
        max_pixels: the largest sheet (width x height) to make.

    Returns:
        One RGB image.

    Raises:
        ValueError: no rows, a titles list of the wrong length, or a sheet larger than
            ``max_pixels``.
    """
    if not rows or not any(len(r) for r in rows):
        raise ValueError("make_sheet needs at least one image")
    if row_titles is not None and len(row_titles) != len(rows):
        raise ValueError(f"make_sheet: {len(rows)} rows but {len(row_titles)} row titles")
    if cell_height < 1 or pad < 0:
        raise ValueError(f"make_sheet: cell_height must be >= 1 and pad >= 0, got "
                         f"{cell_height} and {pad}")
    ncols = max(len(r) for r in rows)
    if titles is not None and len(titles) > ncols:
        raise ValueError(f"make_sheet: {len(titles)} titles for {ncols} columns")
    col_w = [max([_fit_width(r[c], cell_height) for r in rows if c < len(r) and r[c] is not None]
                 or [cell_height]) for c in range(ncols)]
    font = load_font(max(12, cell_height // 16))
    probe = ImageDraw.Draw(Image.new("RGB", (1, 1)))
    text_h = probe.textbbox((0, 0), "Ag", font=font)[3] + 4
    head = text_h + pad if titles else 0
    row_head = text_h if row_titles else 0
    width = sum(col_w) + pad * (ncols + 1)
    row_h = cell_height + row_head + pad
    height = head + len(rows) * row_h + pad
    if width * height > max_pixels:
        fit = max(0, (max_pixels // width - head - pad) // row_h)
        raise ValueError(f"make_sheet: {len(rows)} rows make a {width} x {height} sheet "
                         f"({width * height / 1e6:.0f} megapixels), more than max_pixels="
                         f"{max_pixels} ({max_pixels / 1e6:.0f} megapixels); about {fit} such "
                         f"rows fit: split the rows over several sheets or lower cell_height")
    fitted = [[None if im is None else _fit(im, cell_height) for im in r] for r in rows]
    sheet = Image.new("RGB", (width, height), background)
    draw = ImageDraw.Draw(sheet)
    x_of = [pad + sum(col_w[:c]) + pad * c for c in range(ncols)]
    for c, title in enumerate(titles or ()):
        tw = draw.textlength(title, font=font)
        draw.text((x_of[c] + (col_w[c] - tw) / 2, pad), title, fill=(0, 0, 0), font=font)
    y = head + pad
    for r, row in enumerate(fitted):
        if row_titles:
            draw.text((pad, y), row_titles[r], fill=(0, 0, 0), font=font)
            y += row_head
        for c, im in enumerate(row):
            if im is not None:
                sheet.paste(im, (x_of[c] + (col_w[c] - im.width) // 2, y))
        y += cell_height + pad
    return sheet
