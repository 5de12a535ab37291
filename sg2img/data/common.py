"""Helpers shared by the dataset loaders and the procedural scenes.

Missing-file errors, sg2im's geometric predicate rule (used by the COCO loader to synthesise
relationships and by the procedural scenes for their raw Visual Genome relationships), image
loading, per-item random generators and the row bookkeeping both loaders share.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from os import PathLike
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch import Tensor
from torch.utils.data import Dataset

from ..files import check_regular_file
from ..vocab import COCO_PREDICATES

_PRED = {name: i for i, name in enumerate(COCO_PREDICATES)}
LEFT_OF, RIGHT_OF, ABOVE, BELOW = (_PRED[n] for n in ("left of", "right of", "above", "below"))
INSIDE, SURROUNDING = _PRED["inside"], _PRED["surrounding"]


class DatasetNotFoundError(FileNotFoundError):
    """A dataset file or directory is missing; the message names it and what is expected."""


class DatasetError(ValueError):
    """A dataset file is malformed (annotations, images); the message names the file and
    the problem."""


def require_path(path: Path, what: str, expected: str) -> Path:
    """Return ``path`` if it exists, else raise ``DatasetNotFoundError`` naming it."""
    if not path.exists():
        raise DatasetNotFoundError(f"{what} not found: {path}; expected {expected}")
    return path


def spatial_predicate(box_s: Sequence[float], box_o: Sequence[float],
                      centre_s: Sequence[float], centre_o: Sequence[float]) -> int:
    """sg2im's geometric predicate of subject s relative to object o.

    Strict box containment gives ``surrounding`` (s contains o) or ``inside`` (o contains s);
    otherwise the angle of the vector from o's centre to s's centre picks ``left of``,
    ``above``, ``right of`` or ``below`` in 90 degree sectors (y points down, so a negative
    angle means s is higher in the image).

    Args:
        box_s, box_o: (4,) boxes (x0, y0, x1, y1).
        centre_s, centre_o: (2,) centres (x, y), normally of the mask pixels.

    Returns:
        A predicate id indexing ``COCO_PREDICATES``.
    """
    sx0, sy0, sx1, sy1 = (float(v) for v in box_s)
    ox0, oy0, ox1, oy1 = (float(v) for v in box_o)
    if sx0 < ox0 and sx1 > ox1 and sy0 < oy0 and sy1 > oy1:
        return SURROUNDING
    if sx0 > ox0 and sx1 < ox1 and sy0 > oy0 and sy1 < oy1:
        return INSIDE
    theta = math.atan2(float(centre_s[1]) - float(centre_o[1]),
                       float(centre_s[0]) - float(centre_o[0]))
    if theta >= 3 * math.pi / 4 or theta <= -3 * math.pi / 4:
        return LEFT_OF
    if theta < -math.pi / 4:
        return ABOVE
    if theta < math.pi / 4:
        return RIGHT_OF
    return BELOW


def load_image(path: str | PathLike, image_size: int) -> Tensor:
    """An RGB image resized to (image_size, image_size).

    Only regular files are opened, and images over PIL's decompression-bomb limit
    (``PIL.Image.MAX_IMAGE_PIXELS``, about 89 megapixels) are refused before decoding.

    Returns:
        (3, S, S) float32 in [-1, 1].

    Raises:
        DatasetNotFoundError: the image is missing.
        DatasetError: it is not a regular file, too large, truncated or not an image.
    """
    path = Path(path)
    if not path.exists():
        raise DatasetNotFoundError(f"image not found: {path}; expected the file named in the "
                                   f"annotations")
    check_regular_file(path, "image", DatasetError)
    try:
        with warnings.catch_warnings():
            # PIL only warns between its limit and twice it; refuse those too.
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as im:
                im = im.convert("RGB")
                if im.size != (image_size, image_size):
                    im = im.resize((image_size, image_size), Image.BILINEAR)
                arr = np.asarray(im, dtype=np.float32)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as e:
        raise DatasetError(f"image {path} is too large to read safely ({e.args[0][:120]})"
                           ) from None
    except (OSError, SyntaxError, ValueError) as e:  # truncated, corrupt, not an image
        raise DatasetError(f"cannot read image {path}: {' '.join(str(e).split())[:200]}"
                           ) from None
    # In numpy: torch would split the transpose and scaling of a 128 px image (> 32k
    # elements) over its intra-op threads, which in a loaded main process (num_workers=0)
    # costs more than the work itself. Same float32 operations, same values.
    arr = np.ascontiguousarray(arr.transpose(2, 0, 1)) / np.float32(127.5) - np.float32(1.0)
    return torch.from_numpy(arr)


def item_rng(deterministic: bool, seed: int, index: int) -> np.random.Generator:
    """Per-item generator: ``seed + index`` when deterministic, else drawn from torch's RNG
    (which DataLoader seeds differently in every worker)."""
    if deterministic:
        return np.random.default_rng(seed + index)
    return np.random.default_rng(int(torch.randint(0, 2**62, (1,)).item()))


class RowDataset(Dataset):
    """A dataset whose items are selected rows of a loaded index (``self._rows``)."""

    _rows: np.ndarray

    def __len__(self) -> int:
        return len(self._rows)

    def _row(self, index: int) -> int:
        """The index row of item ``index``; raises ``IndexError`` outside ``0..len - 1``."""
        if not 0 <= index < len(self._rows):
            raise IndexError(f"index {index} out of range for {len(self._rows)} images")
        return int(self._rows[index])
