"""Scene templates and planning: a scene as regions and placed things, without pixels.

A template (meadow, lake, beach, street, snow) stacks stuff regions from top to bottom, each
bounded above by an edge curve ``y(x)``, and places things by their class priors. The plan is
in resolution-free coordinates [0, 1]; ``render.render_scene`` rasterises it at any size.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from .classes import (
    LARGE_AREA,
    MAX_OBJECTS,
    MIN_OBJECTS,
    PALETTES,
    RGB,
    SMALL_AREA,
    THING_ATTRIBUTES,
    THING_BY_NAME,
    Box,
    ThingClass,
)

# Scene templates: which things may appear, with their relative frequencies.
_SKY_THINGS = {"sun": 0.6, "cloud": 1.0, "bird": 0.8, "airplane": 0.6}
TEMPLATES: dict[str, dict[str, float]] = {
    "meadow": {**_SKY_THINGS, "kite": 0.5, "tree": 1.5, "pine": 0.7, "sheep": 1.3,
               "cow": 1.5, "house": 0.8, "person": 0.8, "sign": 0.4},
    "lake": {**_SKY_THINGS, "boat": 2.0, "tree": 1.0, "pine": 0.6, "sheep": 0.5,
             "person": 0.6},
    "beach": {**_SKY_THINGS, "kite": 0.8, "boat": 1.5, "umbrella": 1.6, "person": 1.2},
    "street": {**_SKY_THINGS, "car": 2.0, "bus": 1.5, "sign": 0.8, "person": 1.0,
               "window": 1.5},
    "snow": {**_SKY_THINGS, "snowman": 1.6, "pine": 1.4, "person": 1.0, "house": 0.7},
}


# ----------------------------------------------------------------------------- region edges
@dataclass(frozen=True)
class WaveEdge:
    """Upper edge ``y(x) = y + amp * sin(2 pi freq x + phase)`` of a stuff region."""

    y: float
    amp: float = 0.0
    freq: float = 1.0
    phase: float = 0.0

    def __call__(self, x: np.ndarray) -> np.ndarray:
        return self.y + self.amp * np.sin(2 * np.pi * self.freq * x + self.phase)


@dataclass(frozen=True)
class PolylineEdge:
    """Upper edge through points ``(xs[i], ys[i])`` (mountain ridges)."""

    xs: tuple[float, ...]
    ys: tuple[float, ...]

    def __call__(self, x: np.ndarray) -> np.ndarray:
        return np.interp(x, self.xs, self.ys)


@dataclass(frozen=True)
class StepEdge:
    """Piecewise-constant upper edge: ``ys[i]`` between ``xs[i]`` and ``xs[i+1]`` (rooflines)."""

    xs: tuple[float, ...]
    ys: tuple[float, ...]

    def __call__(self, x: np.ndarray) -> np.ndarray:
        i = np.clip(np.searchsorted(self.xs, x, side="right") - 1, 0, len(self.ys) - 1)
        return np.asarray(self.ys)[i]


Edge = WaveEdge | PolylineEdge | StepEdge


@dataclass(frozen=True)
class StuffRegion:
    """One stuff region: everything below ``top`` not covered by a later region."""

    name: str
    top: Edge
    seed: int


@dataclass(frozen=True)
class ThingPlacement:
    """One thing: its box (x0, y0, x1, y1) in [0, 1], look seed, facing and attributes."""

    name: str
    box: Box
    seed: int
    flip: bool = False
    attributes: tuple[str, ...] = ()


@dataclass(frozen=True)
class ScenePlan:
    """A resolution-free description of a scene (rasterise with ``render_scene``)."""

    template: str
    horizon: float
    stuff: tuple[StuffRegion, ...]
    things: tuple[ThingPlacement, ...]
    light: RGB = (1.0, 1.0, 1.0)


def stuff_index_at(stuff: Sequence[StuffRegion], x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Index into ``stuff`` of the region at points (x, y) in [0, 1] (same shapes)."""
    out = np.zeros(np.broadcast(x, y).shape, dtype=np.int64)
    for k, region in enumerate(stuff):
        out[y >= region.top(x)] = k
    return out


# ----------------------------------------------------------------------------- planning
def _plan_stuff(template: str, rng: np.random.Generator) -> tuple[float, list[StuffRegion]]:
    """Stuff regions from top to bottom for a template; returns (horizon, regions)."""
    def seed() -> int:
        return int(rng.integers(2**31))

    def mountains(horizon: float) -> StuffRegion:
        n = int(rng.integers(3, 7))
        xs = np.sort(np.concatenate([[-0.05, 1.05], rng.uniform(0, 1, n)]))
        ys = horizon - rng.uniform(0.1, min(0.3, horizon - 0.08), len(xs))
        ys[1:-1:2] = np.minimum(ys[1:-1:2] + rng.uniform(0.03, 0.1, len(ys[1:-1:2])),
                                horizon - 0.08)
        return StuffRegion("mountain", PolylineEdge(tuple(xs), tuple(ys)), seed())

    def gentle(y: float, amp: float) -> WaveEdge:
        return WaveEdge(y, rng.uniform(0, amp), rng.uniform(0.5, 2.0), rng.uniform(0, 2 * np.pi))

    sky = StuffRegion("sky", WaveEdge(-1.0), seed())
    if template == "meadow":
        h = rng.uniform(0.35, 0.6)
        regions = [sky] + ([mountains(h)] if rng.random() < 0.5 else [])
        regions.append(StuffRegion("grass", gentle(h, 0.03), seed()))
    elif template == "lake":
        h = rng.uniform(0.35, 0.55)
        regions = [sky] + ([mountains(h)] if rng.random() < 0.6 else [])
        regions.append(StuffRegion("water", WaveEdge(h), seed()))
        if rng.random() < 0.7:
            regions.append(StuffRegion("grass", gentle(rng.uniform(h + 0.22, 0.82), 0.04),
                                       seed()))
    elif template == "beach":
        h = rng.uniform(0.3, 0.5)
        regions = [sky, StuffRegion("water", WaveEdge(h), seed()),
                   StuffRegion("sand", gentle(rng.uniform(h + 0.14, h + 0.3), 0.04), seed())]
    elif template == "street":
        h = rng.uniform(0.52, 0.72)
        n = int(rng.integers(2, 5))
        widths = 0.12 + rng.dirichlet(np.ones(n)) * (1.0 - 0.12 * n)   # buildings >= 0.12
        xs = np.concatenate([[0.0], np.cumsum(widths)[:-1]])
        if rng.random() < 0.25:          # walls fill the top: no sky
            regions = [StuffRegion("wall", WaveEdge(-1.0), seed())]
        else:
            ys = rng.uniform(0.06, h - 0.25, n)
            regions = [sky, StuffRegion("wall", StepEdge(tuple(xs), tuple(ys)), seed())]
        regions.append(StuffRegion("road", WaveEdge(h), seed()))
    elif template == "snow":
        h = rng.uniform(0.35, 0.6)
        regions = [sky] + ([mountains(h)] if rng.random() < 0.8 else [])
        regions.append(StuffRegion("snow", gentle(h, 0.025), seed()))
    else:
        raise ValueError(f"unknown scene template {template!r}; choose one of {list(TEMPLATES)}")
    return float(h), regions


def _overlap_ok(box: Box, others: Sequence[Box], max_frac: float = 0.12) -> bool:
    """Each box may lose at most ``max_frac`` of its area to another box."""
    area = (box[2] - box[0]) * (box[3] - box[1])
    for o in others:
        iw = min(box[2], o[2]) - max(box[0], o[0])
        ih = min(box[3], o[3]) - max(box[1], o[1])
        if iw <= 0 or ih <= 0:
            continue
        inter = iw * ih
        if inter > max_frac * area or inter > max_frac * (o[2] - o[0]) * (o[3] - o[1]):
            return False
    return True


def _support_fraction(stuff: Sequence[StuffRegion], allowed: set[int], box: Box,
                      n: int = 13) -> float:
    """Fraction of an n x n grid of points over ``box`` (edges included) in allowed regions."""
    t = np.linspace(0.0, 1.0, n)
    x = box[0] + t[None, :] * (box[2] - box[0])
    y = box[1] + t[:, None] * (box[3] - box[1])
    return float(np.isin(stuff_index_at(stuff, x, y), list(allowed)).mean())


def _place_thing(cls: ThingClass, stuff: Sequence[StuffRegion], horizon: float,
                 boxes: Sequence[Box], rng: np.random.Generator) -> Box | None:
    """A box for ``cls`` obeying its placement prior, or None after a few failed tries."""
    allowed = {k for k, r in enumerate(stuff) if r.name in cls.supports}
    if not allowed:
        return None
    lo, hi = cls.area
    for _ in range(25):
        aspect = rng.uniform(*cls.aspect)
        if cls.placement == "ground":
            xc, yb = rng.uniform(0, 1), rng.uniform(horizon + 0.02, 1.0)
            # Perspective: things near the horizon are far away and small.
            depth = (yb - horizon) / max(1e-3, 1.0 - horizon)
            t = np.clip(0.05 + 0.9 * depth + rng.normal(0, 0.12), 0, 1)
            area = lo + (hi - lo) * t
            h = math.sqrt(area / aspect)
            w = aspect * h
            box = (xc - w / 2, yb - h, xc + w / 2, yb)
        else:
            area = rng.uniform(lo, hi)
            h = math.sqrt(area / aspect)
            w = aspect * h
            ymax = {"sun": 0.32, "airplane": 0.4}.get(cls.name, 1.0)
            if min(ymax, 1.0) - h <= 0:
                continue
            x0, y0 = rng.uniform(0, 1 - w), rng.uniform(0, min(ymax, 1.0) - h)
            box = (x0, y0, x0 + w, y0 + h)
        if box[0] < 0 or box[1] < 0 or box[2] > 1 or box[3] > 1:
            continue
        if cls.placement == "ground":
            # The bottom edge stands on the support and the box is not mostly in the sky.
            xs = box[0] + np.array([0.3, 0.5, 0.7]) * (box[2] - box[0])
            feet = stuff_index_at(stuff, xs, np.full(3, box[3] - 0.01))
            if not np.isin(feet, list(allowed)).all():
                continue
        elif _support_fraction(stuff, allowed, box) < 1.0:
            continue
        if _overlap_ok(box, boxes):
            return tuple(float(v) for v in box)
    return None


def plan_scene(rng: np.random.Generator, template: str | None = None) -> ScenePlan:
    """Draw a scene: a template, its stuff regions and 1 or more things placed by their priors.

    Args:
        rng: the image's random generator (``image_rng``).
        template: one of ``TEMPLATES`` or None to draw one.

    Returns:
        A ``ScenePlan`` whose stuff and thing count is at most ``MAX_OBJECTS``.
    """
    names = list(TEMPLATES)
    if template is None:
        template = names[int(rng.choice(len(names), p=[0.28, 0.2, 0.17, 0.2, 0.15]))]
    horizon, stuff = _plan_stuff(template, rng)
    present = {r.name for r in stuff}
    pool = {n: w for n, w in TEMPLATES[template].items()
            if present & set(THING_BY_NAME[n].supports)}
    n_things = int(rng.integers(max(1, MIN_OBJECTS - len(stuff)),
                                MAX_OBJECTS - len(stuff) + 1))
    things: list[ThingPlacement] = []
    counts: dict[str, int] = {}
    for _ in range(3 * n_things):
        if len(things) == n_things or not pool:
            break
        cands = [n for n in pool if counts.get(n, 0) < THING_BY_NAME[n].max_count]
        if not cands:
            break
        p = np.array([pool[n] for n in cands])
        name = cands[int(rng.choice(len(cands), p=p / p.sum()))]
        box = _place_thing(THING_BY_NAME[name], stuff, horizon, [t.box for t in things], rng)
        if box is None:
            continue
        palette = PALETTES.get(name)
        colour = (list(palette)[int(rng.integers(len(palette)))] if palette
                  else THING_ATTRIBUTES[name])
        area = (box[2] - box[0]) * (box[3] - box[1])
        size = ("small",) if area < SMALL_AREA else ("large",) if area > LARGE_AREA else ()
        things.append(ThingPlacement(name, box, int(rng.integers(2**31)),
                                     bool(rng.random() < 0.5), (colour, *size)))
        counts[name] = counts.get(name, 0) + 1
    light = tuple(float(v) for v in 1.0 + rng.uniform(-0.06, 0.06, 3))
    return ScenePlan(template, horizon, tuple(stuff), tuple(things), light)
