"""Drawings of the thing classes: one function per class, painted with ``ThingPainter``.

Each ``_draw_<name>(painter, rng, placement)`` paints the thing's parts far to near inside its
box; ``rng`` (seeded by the placement) picks the details, and colours named by the placement's
attributes come from ``PALETTES``. ``DRAW`` maps class names to the functions.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import numpy as np

from .classes import PALETTES
from .paint import (
    ThingPainter,
    circle,
    ellipse,
    jitter,
    polygon,
    rect,
    shade,
    union,
    value_noise,
)
from .templates import ThingPlacement


def _draw_sun(p: ThingPainter, rng: np.random.Generator, t: ThingPlacement) -> None:
    core, rim = jitter(rng, (1.0, 0.97, 0.7), 0.03), jitter(rng, (1.0, 0.72, 0.12), 0.05)

    def colour(u: np.ndarray, v: np.ndarray) -> np.ndarray:
        d = np.clip(np.sqrt((u - 0.5) ** 2 + (v - 0.5) ** 2) / 0.5, 0, 1)[..., None]
        return core * (1 - d) + rim * d
    p.fill(circle(0.5, 0.5, 0.48, p.k), colour)


def _draw_cloud(p: ThingPainter, rng: np.random.Generator, t: ThingPlacement) -> None:
    b = rng.uniform(-0.05, 0.05, 4)
    shape = union(ellipse(0.5, 0.72, 0.48, 0.26), ellipse(0.3 + b[0], 0.55, 0.2, 0.38),
                  ellipse(0.55 + b[1], 0.42 + b[2], 0.24, 0.42),
                  ellipse(0.76 + b[3], 0.6, 0.18, 0.32))
    base = jitter(rng, (0.98, 0.98, 1.0), 0.02)
    p.fill(shape, lambda u, v: shade(base, 1.0 - 0.22 * np.clip(v, 0, 1) ** 2))


def _draw_bird(p: ThingPainter, rng: np.random.Generator, t: ThingPlacement) -> None:
    dip = rng.uniform(0.5, 0.65)
    p.fill(polygon([(0.0, 0.0), (0.5, dip), (1.0, 0.0), (1.0, 0.42), (0.5, 1.0),
                    (0.0, 0.42)]), jitter(rng, (0.12, 0.1, 0.12), 0.04))


def _draw_airplane(p: ThingPainter, rng: np.random.Generator, t: ThingPlacement) -> None:
    body = jitter(rng, (0.93, 0.94, 0.96), 0.03)
    p.fill(polygon([(0.0, 0.52), (0.02, 0.02), (0.14, 0.02), (0.3, 0.5)]),
           jitter(rng, (0.85, 0.15, 0.15), 0.05))                       # tail fin
    p.fill(polygon([(0.48, 0.45), (0.58, 0.45), (0.5, 0.12), (0.45, 0.12)]),
           body * 0.7)                                                   # far wing
    p.fill(ellipse(0.5, 0.52, 0.5, 0.15), body)                         # fuselage
    p.fill(rect(0.35, 0.46, 0.88, 0.51), np.array([0.3, 0.45, 0.65], np.float32))
    p.fill(polygon([(0.38, 0.55), (0.58, 0.55), (0.45, 1.0), (0.32, 1.0)]),
           body * 0.62)                                                  # near wing


def _draw_kite(p: ThingPainter, rng: np.random.Generator, t: ThingPlacement) -> None:
    cols = np.array([(0.9, 0.1, 0.1), (1.0, 0.85, 0.1), (0.15, 0.35, 0.9), (0.1, 0.7, 0.3)],
                    np.float32)[rng.permutation(4)]

    def colour(u: np.ndarray, v: np.ndarray) -> np.ndarray:
        q = (u >= 0.5).astype(np.int64) + 2 * (v >= 0.38).astype(np.int64)
        return cols[np.broadcast_to(q, np.broadcast(u, v).shape)]
    p.fill(rect(0.47, 0.7, 0.53, 1.0), np.array([0.25, 0.2, 0.2], np.float32))
    p.fill(polygon([(0.0, 0.9), (0.12, 0.82), (0.12, 0.98)]), cols[0])
    p.fill(polygon([(0.5, 0.0), (1.0, 0.38), (0.5, 0.78), (0.0, 0.38)]), colour)


def _draw_boat(p: ThingPainter, rng: np.random.Generator, t: ThingPlacement) -> None:
    sail = np.asarray(PALETTES["boat"][t.attributes[0]], np.float32)
    wood = jitter(rng, (0.45, 0.27, 0.13), 0.05)
    p.fill(rect(0.47, 0.04, 0.53, 0.74), wood * 0.7)                      # mast
    p.fill(polygon([(0.55, 0.04), (0.55, 0.68), (0.95, 0.68)]), sail)
    p.fill(polygon([(0.45, 0.18), (0.45, 0.68), (0.12, 0.68)]), sail * 0.88)
    p.fill(polygon([(0.0, 0.7), (1.0, 0.7), (0.8, 1.0), (0.2, 1.0)]),
           lambda u, v: shade(wood, 1.0 - 0.35 * ((v > 0.84) & (v < 0.89))))


def _wheels(p: ThingPainter, us: Sequence[float], v: float, r: float) -> None:
    for cu in us:
        p.fill(circle(cu, v, r, p.k), np.array([0.07, 0.07, 0.08], np.float32))
        p.fill(circle(cu, v, r * 0.42, p.k), np.array([0.62, 0.62, 0.65], np.float32))


def _draw_car(p: ThingPainter, rng: np.random.Generator, t: ThingPlacement) -> None:
    body = jitter(rng, PALETTES["car"][t.attributes[0]], 0.04)
    glass = np.array([0.62, 0.78, 0.9], np.float32)
    p.fill(polygon([(0.2, 0.42), (0.32, 0.06), (0.7, 0.06), (0.84, 0.42)]), body)
    p.fill(polygon([(0.27, 0.4), (0.36, 0.13), (0.49, 0.13), (0.49, 0.4)]), glass)
    p.fill(polygon([(0.53, 0.4), (0.53, 0.13), (0.67, 0.13), (0.77, 0.4)]), glass)
    p.fill(union(rect(0.02, 0.38, 0.98, 0.82), ellipse(0.04, 0.6, 0.04, 0.22),
                 ellipse(0.96, 0.6, 0.04, 0.22)), body)
    p.fill(rect(0.94, 0.48, 1.0, 0.58), np.array([1.0, 0.92, 0.5], np.float32))
    _wheels(p, (0.22, 0.78), 0.8, 0.2)


def _draw_bus(p: ThingPainter, rng: np.random.Generator, t: ThingPlacement) -> None:
    body = jitter(rng, PALETTES["bus"][t.attributes[0]], 0.03)
    p.fill(rect(0.0, 0.04, 1.0, 0.84), body)
    win = np.array([0.2, 0.3, 0.45], np.float32)
    p.fill(lambda u, v: (v > 0.14) & (v < 0.42) & (u > 0.04) & (u < 0.96)
           & ((u * 6.5) % 1.0 > 0.18), win)
    p.fill(rect(0.0, 0.56, 1.0, 0.62), np.array([0.15, 0.15, 0.15], np.float32))
    _wheels(p, (0.2, 0.8), 0.84, 0.16)


def _draw_sign(p: ThingPainter, rng: np.random.Generator, t: ThingPlacement) -> None:
    p.fill(rect(0.4, 0.3, 0.6, 1.0), np.array([0.5, 0.5, 0.54], np.float32))
    r = 0.5 * p.k                                      # octagon as wide as the box
    ang = np.pi / 8 + np.arange(8) * np.pi / 4
    pts = [(0.5 + 0.5 * math.cos(a), r + r * math.sin(a)) for a in ang]
    p.fill(polygon(pts), jitter(rng, (0.86, 0.1, 0.1), 0.04))
    p.fill(rect(0.22, r - 0.025, 0.78, r + 0.025), np.array([1.0, 1.0, 1.0], np.float32))


def _draw_tree(p: ThingPainter, rng: np.random.Generator, t: ThingPlacement) -> None:
    p.fill(rect(0.42, 0.5, 0.58, 1.0), jitter(rng, (0.4, 0.24, 0.1), 0.04))
    green = jitter(rng, (0.2, 0.55, 0.15), 0.05)
    b = rng.uniform(-0.04, 0.04, 3)
    noise = value_noise(rng, p.u.ravel(), p.v.ravel(), (5, 5))
    p.fill(union(ellipse(0.5, 0.36 + b[0], 0.48, 0.33), ellipse(0.3, 0.5 + b[1], 0.28, 0.2),
                 ellipse(0.7, 0.5 + b[2], 0.28, 0.2)),
           lambda u, v: shade(green, 0.7 + 0.6 * noise - 0.25 * np.clip(v, 0, 1)))


def _draw_pine(p: ThingPainter, rng: np.random.Generator, t: ThingPlacement) -> None:
    p.fill(rect(0.43, 0.8, 0.57, 1.0), jitter(rng, (0.35, 0.2, 0.1), 0.04))
    green = jitter(rng, (0.07, 0.33, 0.18), 0.03)
    for top, bot, half in ((0.0, 0.36, 0.32), (0.17, 0.6, 0.42), (0.37, 0.86, 0.5)):
        p.fill(polygon([(0.5, top), (0.5 + half, bot), (0.5 - half, bot)]),
               lambda u, v, bot=bot: shade(green, 1.15 - 0.5 * np.clip(v - bot + 0.3, 0, 1)))


def _draw_sheep(p: ThingPainter, rng: np.random.Generator, t: ThingPlacement) -> None:
    dark = np.array([0.1, 0.1, 0.1], np.float32)
    p.fill(union(rect(0.28, 0.6, 0.35, 1.0), rect(0.68, 0.6, 0.75, 1.0)), dark)
    wool = jitter(rng, (0.95, 0.94, 0.87), 0.03)
    noise = value_noise(rng, p.u.ravel(), p.v.ravel(), (4, 7))
    bumps = [circle(0.25 + 0.5 * i / 4, 0.2, 0.16, p.k) for i in range(5)]
    p.fill(union(ellipse(0.55, 0.42, 0.4, 0.3), *bumps),
           lambda u, v: shade(wool, 0.78 + 0.3 * noise))
    p.fill(ellipse(0.13, 0.36, 0.12, 0.17), dark)


def _draw_cow(p: ThingPainter, rng: np.random.Generator, t: ThingPlacement) -> None:
    brown = jitter(rng, (0.55, 0.32, 0.15), 0.05)
    white = np.array([0.96, 0.95, 0.92], np.float32)
    legs = [rect(a, 0.6, a + 0.07, 1.0) for a in (0.22, 0.34, 0.72, 0.84)]
    p.fill(union(*legs), brown * 0.7)
    noise = value_noise(rng, p.u.ravel(), p.v.ravel(), (3, 5))

    def coat(u: np.ndarray, v: np.ndarray) -> np.ndarray:
        return np.where((noise > 0.58)[..., None], white, brown)
    p.fill(union(rect(0.18, 0.2, 0.94, 0.66), ellipse(0.2, 0.43, 0.06, 0.23),
                 ellipse(0.92, 0.43, 0.06, 0.23)), coat)
    p.fill(rect(0.02, 0.1, 0.2, 0.45), brown)                           # head
    p.fill(rect(0.0, 0.32, 0.08, 0.46), np.array([0.92, 0.66, 0.62], np.float32))
    p.fill(rect(0.14, 0.04, 0.19, 0.13), white * 0.9)                  # horn


def _draw_house(p: ThingPainter, rng: np.random.Generator, t: ThingPlacement) -> None:
    wall = jitter(rng, PALETTES["house"][t.attributes[0]], 0.03)
    roof = jitter(rng, (0.68, 0.16, 0.1), 0.05)
    p.fill(rect(0.68, 0.06, 0.8, 0.3), roof * 0.8)                       # chimney
    p.fill(rect(0.1, 0.42, 0.9, 1.0), wall)
    p.fill(polygon([(0.0, 0.47), (0.5, 0.0), (1.0, 0.47)]),
           lambda u, v: shade(roof, 1.0 - 0.2 * ((v * 9) % 1.0 < 0.25)))
    p.fill(rect(0.42, 0.68, 0.58, 1.0), np.array([0.38, 0.22, 0.1], np.float32))
    glass = np.array([0.5, 0.7, 0.9], np.float32)
    p.fill(union(rect(0.18, 0.56, 0.33, 0.74), rect(0.67, 0.56, 0.82, 0.74)), glass)


def _draw_person(p: ThingPainter, rng: np.random.Generator, t: ThingPlacement) -> None:
    shirt = jitter(rng, PALETTES["person"][t.attributes[0]], 0.04)
    trousers = jitter(rng, (0.15, 0.18, 0.38), 0.04)
    p.fill(union(rect(0.24, 0.56, 0.47, 1.0), rect(0.53, 0.56, 0.76, 1.0)), trousers)
    p.fill(union(rect(0.16, 0.24, 0.84, 0.6), rect(0.04, 0.26, 0.96, 0.5)), shirt)
    p.fill(circle(0.5, 0.13, 0.115, p.k), jitter(rng, (0.93, 0.76, 0.6), 0.05))
    p.fill(lambda u, v: circle(0.5, 0.13, 0.12, p.k)(u, v) & (v < 0.09),
           jitter(rng, (0.2, 0.13, 0.08), 0.05))                        # hair


def _draw_umbrella(p: ThingPainter, rng: np.random.Generator, t: ThingPlacement) -> None:
    main = np.asarray(PALETTES["umbrella"][t.attributes[0]], np.float32)
    white = np.array([0.98, 0.98, 0.96], np.float32)
    p.fill(rect(0.47, 0.38, 0.53, 1.0), np.array([0.85, 0.85, 0.82], np.float32))
    k = p.k

    def stripes(u: np.ndarray, v: np.ndarray) -> np.ndarray:
        ang = np.arctan2(0.45 - v, (u - 0.5) * k)
        return np.where(((ang / np.pi * 6).astype(np.int64) % 2 == 0)[..., None], main, white)
    p.fill(lambda u, v: ellipse(0.5, 0.45, 0.5, 0.43)(u, v) & (v <= 0.45), stripes)


def _draw_snowman(p: ThingPainter, rng: np.random.Generator, t: ThingPlacement) -> None:
    k = p.k
    white, shadow = np.array([0.99, 0.99, 1.0], np.float32), np.array([0.7, 0.76, 0.9],
                                                                          np.float32)
    for cv, r in ((0.72, 0.27), (0.42, 0.19), (0.2, 0.12)):
        def ball(u: np.ndarray, v: np.ndarray, cv: float = cv, r: float = r) -> np.ndarray:
            d = np.clip(np.sqrt(((u - 0.5) * k) ** 2 + (v - cv) ** 2) / r, 0, 1)[..., None]
            return white * (1 - d**3) + shadow * d**3
        p.fill(circle(0.5, cv, r, k), ball)
    black = np.array([0.08, 0.08, 0.08], np.float32)
    p.fill(union(rect(0.36, 0.0, 0.64, 0.1), rect(0.24, 0.08, 0.76, 0.12)), black)
    p.fill(polygon([(0.5, 0.19), (0.72, 0.22), (0.5, 0.24)]),
           np.array([1.0, 0.5, 0.1], np.float32))
    p.fill(union(circle(0.5, 0.36, 0.022, k), circle(0.5, 0.46, 0.022, k)), black)


def _draw_window(p: ThingPainter, rng: np.random.Generator, t: ThingPlacement) -> None:
    p.fill(rect(0.0, 0.0, 1.0, 1.0), jitter(rng, (0.93, 0.91, 0.86), 0.03))
    glass = jitter(rng, (0.42, 0.62, 0.85), 0.04)
    p.fill(lambda u, v: (u > 0.12) & (u < 0.88) & (v > 0.12) & (v < 0.88)
           & (np.abs(u - 0.5) > 0.05) & (np.abs(v - 0.5) > 0.05),
           lambda u, v: shade(glass, 1.0 + 0.3 * (u + v < 0.7)))


DRAW: dict[str, Callable[[ThingPainter, np.random.Generator, ThingPlacement], None]] = {
    "sun": _draw_sun, "cloud": _draw_cloud, "bird": _draw_bird, "airplane": _draw_airplane,
    "kite": _draw_kite, "boat": _draw_boat, "car": _draw_car, "bus": _draw_bus,
    "sign": _draw_sign, "tree": _draw_tree, "pine": _draw_pine, "sheep": _draw_sheep,
    "cow": _draw_cow, "house": _draw_house, "person": _draw_person,
    "umbrella": _draw_umbrella, "snowman": _draw_snowman, "window": _draw_window,
}
