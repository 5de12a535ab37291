"""Image sheets: images in a grid with column and row titles (``make_sheet``), and the rows
one may hold (``sheet_rows_that_fit``), to check before making the images."""

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


def _text_height(cell_height: int) -> int:
    font = load_font(max(12, cell_height // 16))
    return ImageDraw.Draw(Image.new("RGB", (1, 1))).textbbox((0, 0), "Ag", font=font)[3] + 4


def _geometry(num_rows: int, col_widths: Sequence[int], titles: bool, row_titles: bool,
              cell_height: int, pad: int) -> tuple[int, int, int, int]:
    """(title band height, row height, sheet width, sheet height) of a sheet."""
    text_h = _text_height(cell_height)
    head = text_h + pad if titles else 0
    row_h = cell_height + (text_h if row_titles else 0) + pad
    width = sum(col_widths) + pad * (len(col_widths) + 1)
    return head, row_h, width, head + num_rows * row_h + pad


def sheet_rows_that_fit(col_widths: Sequence[int], *, titles: bool = False,
                        row_titles: bool = False, cell_height: int = 256, pad: int = 8,
                        max_pixels: int = MAX_SHEET_PIXELS) -> int:
    """How many rows a :func:`make_sheet` sheet may have before it passes ``max_pixels``.

    Lets a caller check a sheet before making its images: with ``col_widths`` the columns'
    widths after scaling to ``cell_height`` (or lower bounds of them, giving an upper bound
    of the rows), ``titles`` / ``row_titles`` whether they are given.
    """
    head, row_h, width, _ = _geometry(0, col_widths, titles, row_titles, cell_height, pad)
    return max(0, (max_pixels // width - head - pad) // row_h)


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
    head, row_h, width, height = _geometry(len(rows), col_w, bool(titles), bool(row_titles),
                                           cell_height, pad)
    if width * height > max_pixels:
        fit = sheet_rows_that_fit(col_w, titles=bool(titles), row_titles=bool(row_titles),
                                  cell_height=cell_height,
                                  pad=pad, max_pixels=max_pixels)
        raise ValueError(f"make_sheet: {len(rows)} rows make a {width} x {height} sheet "
                         f"({width * height / 1e6:.0f} megapixels), more than max_pixels="
                         f"{max_pixels} ({max_pixels / 1e6:.0f} megapixels); about {fit} such "
                         f"rows fit: split the rows over several sheets or lower cell_height")
    row_head = row_h - cell_height - pad
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
