"""Seeded noise for generation, drawn on the CPU so that a seed means the same images on
every device: ``z`` per image, per-object noise, and the rows ``resample_object`` redraws."""

from __future__ import annotations

import hashlib
import random
from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor

from .files import short
from .generate_args import GenerationError

__all__ = ["draw_noise", "draw_object_noise", "redraw_rows"]


def draw_noise(num: int, noise_dim: int, seed: int | None) -> tuple[Tensor, int]:
    """(num, noise_dim) standard normal noise drawn on the CPU, so a seed means the same
    noise on every device; a fresh seed is drawn when ``seed`` is None.

    Returns:
        z (num, noise_dim) and the seed used.
    """
    if seed is None:
        seed = random.SystemRandom().randrange(2**31)
    if not isinstance(seed, int) or isinstance(seed, bool) or not 0 <= seed < 2**64:
        raise GenerationError(f"seed must be an integer in 0..2**64 - 1, got {short(seed)}")
    gen = torch.Generator().manual_seed(seed)
    # One draw per image: row k is then the same whatever the number of images (one
    # (num, D) draw would not be, torch's CPU sampler changes method with the size).
    z = torch.stack([torch.randn(noise_dim, generator=gen) for _ in range(num)])
    return z, seed


def draw_object_noise(samples: Sequence[Any], dim: int, seed: int) -> list[Tensor] | None:
    """Per-object noise for each sample, (O_i, dim), drawn on the CPU from ``seed`` (one
    stream apart from ``z``'s); None when ``dim`` is 0 (the model has no per-object noise)."""
    if not dim:
        return None
    gen = torch.Generator().manual_seed(seed ^ OBJECT_NOISE_STREAM)
    return [torch.randn(len(s.objs), dim, generator=gen) for s in samples]


OBJECT_NOISE_STREAM = 0x0B1EC7  # keeps the per-object stream apart from z's for one seed


def redraw_rows(noise: Tensor, rows: Sequence[int], seed: int, graph: int,
                 sample: int) -> Tensor:
    """A copy of per-object ``noise`` (O, D) with ``rows`` redrawn. Row r of sample
    ``sample`` of graph ``graph`` comes from its own generator, seeded from those four
    numbers: the same look of an object whatever else is resampled or how many samples."""
    out = noise.clone()
    for r in rows:
        key = hashlib.blake2b(f"{seed}/{graph}/{sample}/{r}".encode(), digest_size=8).digest()
        gen = torch.Generator().manual_seed(int.from_bytes(key, "little") >> 1)
        out[r] = torch.randn(noise.shape[1], generator=gen)
    return out
