"""Textures of the stuff classes: one function per class, computed for the whole canvas.

``TEXTURE`` maps stuff names to the functions; the region's coverage decides where a texture
shows. ``FINE_TEXTURES`` have thin lines and are sampled 2 x 2 per pixel.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from .paint import jitter, shade, value_noise


# Texture functions: (x (1, W), y (H, 1) pixel-centre coordinates in [0, 1], rng, region, plan)
# -> (H, W, 3) colours in [0, 1] (or broadcastable to it) for the whole canvas; the region's
# coverage decides where they show.
def _tex_sky(x, y, rng, region, plan):
    top = jitter(rng, (0.28, 0.5, 0.88), 0.05)
    low = jitter(rng, (0.7, 0.83, 0.96), 0.03)
    t = np.broadcast_to(np.clip(y / max(plan.horizon, 0.2), 0, 1), np.broadcast(x, y).shape)
    t = t[..., None]
    return top * (1 - t) + low * t


def _tex_mountain(x, y, rng, region, plan):
    base = jitter(rng, (0.46, 0.46, 0.56), 0.05)
    rock = value_noise(rng, x.ravel(), y.ravel(), (6, 26))
    below_ridge = y - region.top(x)                          # >= 0 inside the region
    col = shade(base, 0.75 + 0.35 * rock - 0.9 * np.clip(below_ridge, 0, 0.35))
    cap = rng.uniform(0.02, 0.06) if plan.template == "snow" or rng.random() < 0.5 else 0.0
    snowy = below_ridge < cap * (0.6 + 0.8 * value_noise(rng, x.ravel(), y.ravel(), (2, 18)))
    col[snowy] = np.array([0.94, 0.95, 0.98], np.float32)
    return col


def _tex_grass(x, y, rng, region, plan):
    base = jitter(rng, (0.32, 0.62, 0.2), 0.05)
    blades = value_noise(rng, x.ravel(), y.ravel(), (4, 40))
    patches = value_noise(rng, x.ravel(), y.ravel(), (4, 5))
    haze = np.clip(1 - (y - plan.horizon) * 4, 0, 1) * 0.12
    return shade(base, 0.7 + 0.3 * blades + 0.3 * patches) + haze[..., None]


def _tex_water(x, y, rng, region, plan):
    base = jitter(rng, (0.12, 0.36, 0.66), 0.04)
    warp = value_noise(rng, x.ravel(), y.ravel(), (6, 6))
    waves = 0.5 + 0.5 * np.sin(2 * np.pi * (y * 22 + 1.5 * warp))
    depth = np.clip((y - plan.horizon) * 1.2, 0, 0.4)
    return shade(base, 0.85 + 0.3 * waves - depth)


def _tex_sand(x, y, rng, region, plan):
    base = jitter(rng, (0.88, 0.78, 0.54), 0.03)
    ripples = value_noise(rng, x.ravel(), y.ravel(), (12, 4))
    grain = rng.uniform(0.93, 1.04, np.broadcast(x, y).shape).astype(np.float32)
    return shade(base, (0.9 + 0.12 * ripples) * grain)


def _tex_road(x, y, rng, region, plan):
    base = jitter(rng, (0.33, 0.33, 0.35), 0.03)
    col = shade(base, 0.9 + 0.15 * value_noise(rng, x.ravel(), y.ravel(), (8, 8)))
    top = region.top.y
    kerb = np.broadcast_to(y - top < 0.035, col.shape[:2])
    mid = (top + 1.0) / 2
    lane = (np.abs(y - mid) < 0.014) & ((x * 5 + rng.uniform()) % 1.0 < 0.55)
    col[kerb] = np.array([0.62, 0.62, 0.6], np.float32)
    col[lane] = np.array([0.97, 0.97, 0.92], np.float32)
    return col


def _tex_wall(x, y, rng, region, plan):
    brick = jitter(rng, (0.66, 0.32, 0.22), 0.06)
    mortar = np.array([0.8, 0.77, 0.72], np.float32)
    bh, bw = 1 / 15, 1 / 7
    row = np.floor(y / bh)
    xs = x / bw + 0.5 * (row % 2)
    shades = rng.uniform(0.8, 1.1, (20, 12)).astype(np.float32)
    f = shades[row.astype(np.int64) % 20, np.floor(xs).astype(np.int64) % 12]
    line = ((y / bh) % 1.0 < 0.14) | (xs % 1.0 < 0.06)
    return np.where(line[..., None], mortar, shade(brick, f))


def _tex_snow(x, y, rng, region, plan):
    base = jitter(rng, (0.95, 0.96, 0.99), 0.015)
    drifts = value_noise(rng, x.ravel(), y.ravel(), (3, 5))
    sparkle = rng.uniform(0.97, 1.02, np.broadcast(x, y).shape).astype(np.float32)
    blue = np.array([0.1, 0.06, 0.0], np.float32)
    return np.clip((base - drifts[..., None] * blue) * sparkle[..., None]
                   - 0.06 * np.clip(1 - (y - plan.horizon) * 5, 0, 1)[..., None] * blue * 4,
                   0, 1)


FINE_TEXTURES = {"wall", "road"}
TEXTURE: dict[str, Callable[..., np.ndarray]] = {
    "sky": _tex_sky, "mountain": _tex_mountain, "grass": _tex_grass, "water": _tex_water,
    "sand": _tex_sand, "road": _tex_road, "wall": _tex_wall, "snow": _tex_snow,
}
