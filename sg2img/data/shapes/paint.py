"""Painting primitives: value noise, the canvas, a thing painter and shape tests.

Things are painted part by part in the local coordinates of their box with supersampled
coverage (anti-aliased edges); each canvas pixel also records which annotation owns it.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import numpy as np

from .classes import RGB, Box


def _lerp_index(coords: np.ndarray, cells: int) -> tuple[np.ndarray, np.ndarray]:
    """Lattice cell index and smoothstep weight of coordinates in [0, 1]."""
    p = np.clip(np.asarray(coords, dtype=np.float32).ravel(), 0.0, 1.0) * cells
    i = np.minimum(p.astype(np.int64), cells - 1)
    f = p - i
    return i, f * f * (3 - 2 * f)


def value_noise(rng: np.random.Generator, xs: np.ndarray, ys: np.ndarray,
                cells: tuple[int, int]) -> np.ndarray:
    """Smooth value noise in [0, 1] sampled on the grid ``ys x xs``.

    A random (cy + 1, cx + 1) lattice is interpolated separably with gathers (small matrix
    products would be neater, but multithreaded BLAS stalls for milliseconds on some shapes).

    Args:
        rng: random generator for the lattice.
        xs: (W,) coordinates in [0, 1]; ys: (H,) coordinates in [0, 1].
        cells: lattice cells (cy, cx) across the unit square.

    Returns:
        (H, W) float32.
    """
    cy, cx = cells
    lattice = rng.random((cy + 1, cx + 1), dtype=np.float32)
    iy, fy = _lerp_index(ys, cy)
    ix, fx = _lerp_index(xs, cx)
    rows = lattice[iy] * (1 - fy)[:, None] + lattice[iy + 1] * fy[:, None]     # (H, cx + 1)
    return rows[:, ix] * (1 - fx) + rows[:, ix + 1] * fx                      # (H, W)


# ----------------------------------------------------------------------------- canvas
class Canvas:
    """An RGB image with a label map (annotation index per pixel, -1 = none)."""

    def __init__(self, size: int, supersample: int = 3) -> None:
        self.size = size
        self.ss = supersample
        self.image = np.zeros((size, size, 3), dtype=np.float32)
        self.label = np.full((size, size), -1, dtype=np.int16)

    def composite(self, sl: tuple[slice, slice], cover: np.ndarray, colour: np.ndarray,
                  label: int) -> None:
        """Blend ``colour`` with alpha ``cover`` into a window; label pixels covered >= half."""
        a = cover[..., None]
        self.image[sl] = self.image[sl] * (1 - a) + colour * a
        self.label[sl][cover >= 0.5] = label


class ThingPainter:
    """Paints the parts of one thing in its box's local coordinates.

    Local coordinates: u runs 0 -> 1 across the box (mirrored when the thing faces the other
    way), v runs 0 -> 1 down the box. ``k`` is the box aspect (width / height), used to draw
    round parts with radii in units of the box height.
    """

    def __init__(self, canvas: Canvas, box: Box, label: int, flip: bool) -> None:
        s, ss = canvas.size, canvas.ss
        x0, y0, x1, y1 = box
        j0, j1 = max(0, math.floor(x0 * s)), min(s, math.ceil(x1 * s))
        i0, i1 = max(0, math.floor(y0 * s)), min(s, math.ceil(y1 * s))
        self.canvas, self.label = canvas, label
        self.sl = (slice(i0, i1), slice(j0, j1))
        self.h, self.w = i1 - i0, j1 - j0
        self.k = (x1 - x0) / (y1 - y0)

        def local(lo: int, n: int, a: float, b: float, sub: int) -> np.ndarray:
            return ((lo + (np.arange(n * sub) + 0.5) / sub) / s - a) / (b - a)

        u_ss, u = local(j0, self.w, x0, x1, ss), local(j0, self.w, x0, x1, 1)
        if flip:
            u_ss, u = 1 - u_ss, 1 - u
        self.u_ss, self.v_ss = u_ss[None, :], local(i0, self.h, y0, y1, ss)[:, None]
        self.u, self.v = u[None, :], local(i0, self.h, y0, y1, 1)[:, None]
        self.coverage = np.zeros((self.h, self.w), dtype=np.float32)

    def fill(self, inside: Callable[[np.ndarray, np.ndarray], np.ndarray],
             colour: RGB | np.ndarray | Callable[[np.ndarray, np.ndarray], np.ndarray]) -> None:
        """Paint a part: ``inside(u, v) -> bool`` on the supersampled grid, a colour or
        ``colour(u, v) -> (h, w, 3)`` at pixel centres."""
        if self.h <= 0 or self.w <= 0:
            return
        ss = self.canvas.ss
        hit = np.broadcast_to(inside(self.u_ss, self.v_ss), (self.h * ss, self.w * ss))
        cover = block_mean(hit.astype(np.float32), ss)
        col = colour(self.u, self.v) if callable(colour) else np.asarray(colour, np.float32)
        self.canvas.composite(self.sl, cover, col, self.label)
        np.maximum(self.coverage, cover, out=self.coverage)


def block_mean(a: np.ndarray, ss: int) -> np.ndarray:
    """Mean over ss x ss blocks: (H ss, W ss, ...) -> (H, W, ...) (faster than reshape-mean)."""
    h, w = a.shape[0] // ss, a.shape[1] // ss
    rows = a.reshape(h, ss, w * ss, *a.shape[2:])
    r = rows[:, 0].copy()
    for k in range(1, ss):
        r += rows[:, k]
    r = r.reshape(h, w, ss, *a.shape[2:])
    out = r[:, :, 0].copy()
    for k in range(1, ss):
        out += r[:, :, k]
    return out * np.float32(1.0 / (ss * ss))


# Shape tests in local coordinates; each returns a boolean array.
def rect(u0: float, v0: float, u1: float, v1: float) -> Callable:
    """The axis-aligned rectangle [u0, u1] x [v0, v1]."""
    return lambda u, v: (u >= u0) & (u <= u1) & (v >= v0) & (v <= v1)


def ellipse(cu: float, cv: float, ru: float, rv: float) -> Callable:
    """An ellipse centred at (cu, cv) with radii ru, rv in local units."""
    return lambda u, v: ((u - cu) / ru) ** 2 + ((v - cv) / rv) ** 2 <= 1.0


def circle(cu: float, cv: float, r: float, k: float) -> Callable:
    """A circle of radius r (in box heights) in a box of aspect k."""
    return lambda u, v: ((u - cu) * k) ** 2 + (v - cv) ** 2 <= r * r


def polygon(points: Sequence[tuple[float, float]]) -> Callable:
    """Even-odd point-in-polygon test for a simple polygon."""
    pts = list(points)

    def inside(u: np.ndarray, v: np.ndarray) -> np.ndarray:
        out = np.zeros(np.broadcast(u, v).shape, dtype=bool)
        for (ua, va), (ub, vb) in zip(pts, pts[1:] + pts[:1], strict=True):
            if va == vb:
                continue
            crosses = (va > v) != (vb > v)
            out ^= crosses & (u < (ub - ua) * (v - va) / (vb - va) + ua)
        return out
    return inside


def union(*parts: Callable) -> Callable:
    """Points inside any of the parts."""
    def inside(u: np.ndarray, v: np.ndarray) -> np.ndarray:
        out = parts[0](u, v)
        for p in parts[1:]:
            out = out | p(u, v)
        return out
    return inside


def jitter(rng: np.random.Generator, rgb: RGB, amount: float = 0.06) -> np.ndarray:
    """(3,) float32 colour ``rgb`` with each channel moved by up to ``amount``."""
    return np.clip(np.asarray(rgb, np.float32) + rng.uniform(-amount, amount, 3), 0, 1)


def shade(base: np.ndarray, factor: np.ndarray) -> np.ndarray:
    """(3,) colour times an (h, w) factor -> (h, w, 3)."""
    return np.clip(base * factor[..., None], 0, 1).astype(np.float32)
