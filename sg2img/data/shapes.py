"""Procedural scenes: a renderer whose output is a dataset in the COCO-Stuff file format.

COCO-Stuff and Visual Genome cannot be downloaded everywhere, so this module draws structured
outdoor scenes of its own and writes them exactly like COCO-Stuff (``instances_{split}.json``
and ``stuff_{split}.json`` with RLE segmentations, plus PNG images), so that the same loader,
training and evaluation code run on them end to end. It can also write the raw Visual Genome
JSON files that ``data_tools/preprocess_vg.py`` reads.

A scene is planned in resolution-free coordinates (``plan_scene``) and then rasterised
(``render_scene``):

* **Stuff** fills regions stacked from top to bottom (sky above mountains above the ground;
  water below the horizon; a sand or grass foreground; building walls above a road). Each
  region's upper edge is a curve ``y(x)`` and each stuff class has its own texture.
* **Things** have class-typical supports, positions and sizes: the sun, clouds, birds,
  airplanes and kites lie inside the sky; boats stand on water, cars and buses on roads,
  trees, sheep, cows and houses on grass, snowmen on snow; windows lie inside walls. Things
  standing on the ground are smaller near the horizon and larger near the bottom (perspective),
  down to 2.5% of the image, just above the loader's 2% box filter.

Every pixel belongs to exactly one annotation (like COCO-Stuff): thing masks are the visible
pixels of the thing and stuff masks the visible pixels of the region, so the image and its
masks agree. Each image has 3 to 8 annotations whose box covers more than 2% of the image.
Everything drawn for one image comes from ``image_rng(seed, split, index)``, so the output is
the same for any number of worker processes.
"""

from __future__ import annotations

import json
import logging
import math
import multiprocessing
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from os import PathLike
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image
from pycocotools import mask as mask_utils

from ..vocab import COCO_PREDICATES, Vocab
from .coco import spatial_predicate

logger = logging.getLogger(__name__)

SHAPES_VERSION = 1
SPLITS = ("train", "val", "test")
_SPLIT_CODE = {"train": 0, "val": 1, "test": 2}
# Image ids are unique over the three splits (the VG-format files put all splits together).
IMAGE_ID_BASE = {"train": 0, "val": 100_000_000, "test": 200_000_000}
MIN_BOX_AREA = 0.02          # the COCO loader keeps objects whose box covers more than this
MIN_OBJECTS, MAX_OBJECTS = 3, 8
OTHER_NAME = "other"         # COCO-Stuff's stuff class covering all thing pixels
RGB = tuple[float, float, float]
Box = tuple[float, float, float, float]


# ----------------------------------------------------------------------------- classes
@dataclass(frozen=True)
class StuffClass:
    """A stuff class: fills a region of the image."""

    name: str
    supercategory: str


@dataclass(frozen=True)
class ThingClass:
    """A thing class and its structural prior.

    Args:
        name: category name.
        supercategory: COCO-style supercategory.
        placement: ``"sky"`` (the box lies inside the sky), ``"ground"`` (the bottom edge
            stands on a support and the size grows towards the bottom of the image) or
            ``"inside"`` (the box lies inside a support region, e.g. a window in a wall).
        supports: stuff names the thing may stand on or lie in.
        area: range of the box area as a fraction of the image.
        aspect: range of the box width / height.
        max_count: most instances in one image.
    """

    name: str
    supercategory: str
    placement: str
    supports: tuple[str, ...]
    area: tuple[float, float]
    aspect: tuple[float, float]
    max_count: int = 2


STUFF_CLASSES: tuple[StuffClass, ...] = (
    StuffClass("sky", "sky"),
    StuffClass("mountain", "solid"),
    StuffClass("grass", "plant"),
    StuffClass("water", "water"),
    StuffClass("sand", "ground"),
    StuffClass("road", "ground"),
    StuffClass("wall", "building"),
    StuffClass("snow", "ground"),
)

THING_CLASSES: tuple[ThingClass, ...] = (
    ThingClass("sun", "sky", "sky", ("sky",), (0.025, 0.06), (1.0, 1.0), 1),
    ThingClass("cloud", "sky", "sky", ("sky",), (0.04, 0.12), (1.6, 2.4), 2),
    ThingClass("bird", "animal", "sky", ("sky",), (0.025, 0.045), (1.5, 2.0), 3),
    ThingClass("airplane", "vehicle", "sky", ("sky",), (0.03, 0.08), (1.9, 2.6), 1),
    ThingClass("kite", "sports", "sky", ("sky",), (0.025, 0.05), (0.65, 0.8), 1),
    ThingClass("boat", "vehicle", "ground", ("water",), (0.03, 0.12), (0.8, 1.2), 2),
    ThingClass("car", "vehicle", "ground", ("road",), (0.03, 0.12), (1.7, 2.2), 3),
    ThingClass("bus", "vehicle", "ground", ("road",), (0.06, 0.2), (2.0, 2.6), 1),
    ThingClass("sign", "outdoor", "ground", ("road", "grass"), (0.025, 0.05), (0.38, 0.48), 1),
    ThingClass("tree", "plant", "ground", ("grass",), (0.05, 0.22), (0.65, 0.85), 3),
    ThingClass("pine", "plant", "ground", ("grass", "snow"), (0.04, 0.18), (0.5, 0.65), 3),
    ThingClass("sheep", "animal", "ground", ("grass",), (0.025, 0.09), (1.3, 1.6), 3),
    ThingClass("cow", "animal", "ground", ("grass",), (0.03, 0.11), (1.35, 1.7), 2),
    ThingClass("house", "building", "ground", ("grass", "snow"), (0.06, 0.2), (0.9, 1.2), 1),
    ThingClass("person", "person", "ground", ("grass", "sand", "snow", "road"),
               (0.025, 0.07), (0.38, 0.48), 3),
    ThingClass("umbrella", "accessory", "ground", ("sand",), (0.03, 0.09), (0.9, 1.2), 2),
    ThingClass("snowman", "outdoor", "ground", ("snow",), (0.03, 0.09), (0.55, 0.7), 2),
    ThingClass("window", "building", "inside", ("wall",), (0.025, 0.05), (0.7, 1.0), 3),
)

_THING = {c.name: c for c in THING_CLASSES}
_STUFF_NAMES = tuple(s.name for s in STUFF_CLASSES)

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


def categories() -> list[dict[str, Any]]:
    """COCO-style category records: things get ids 1..K, stuff K+1.., and ``other`` last.

    Returns:
        Dicts with ``id``, ``name``, ``supercategory`` and ``isthing`` (0 or 1); things go in
        the instances file and stuff (with ``other``) in the stuff file, as in COCO-Stuff.
    """
    cats = [{"id": i + 1, "name": c.name, "supercategory": c.supercategory, "isthing": 1}
            for i, c in enumerate(THING_CLASSES)]
    k = len(cats)
    cats += [{"id": k + i + 1, "name": s.name, "supercategory": s.supercategory, "isthing": 0}
             for i, s in enumerate(STUFF_CLASSES)]
    cats.append({"id": len(cats) + 1, "name": OTHER_NAME, "supercategory": "other",
                 "isthing": 0})
    return cats


CATEGORY_ID = {c["name"]: c["id"] for c in categories()}


def shapes_vocab() -> Vocab:
    """The vocabulary the COCO loader builds for this dataset (raw ids are object ids)."""
    return Vocab.from_coco_categories(categories())


def image_rng(seed: int, split: str, index: int) -> np.random.Generator:
    """The random generator for one image; independent of the order images are drawn in."""
    return np.random.default_rng(np.random.SeedSequence([int(seed), _SPLIT_CODE[split],
                                                         int(index)]))


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


_PALETTES: dict[str, dict[str, RGB]] = {
    "car": {"red": (0.8, 0.1, 0.1), "blue": (0.15, 0.3, 0.85), "white": (0.92, 0.92, 0.9),
            "green": (0.1, 0.55, 0.25), "black": (0.12, 0.12, 0.14)},
    "person": {"red": (0.85, 0.15, 0.15), "blue": (0.2, 0.4, 0.9), "green": (0.2, 0.65, 0.3),
               "orange": (0.95, 0.55, 0.1), "purple": (0.55, 0.25, 0.7)},
    "house": {"white": (0.93, 0.92, 0.88), "yellow": (0.95, 0.85, 0.55),
              "blue": (0.65, 0.78, 0.92), "pink": (0.95, 0.75, 0.75)},
    "umbrella": {"red": (0.9, 0.12, 0.12), "blue": (0.15, 0.35, 0.9),
                 "green": (0.1, 0.65, 0.3)},
    "boat": {"white": (0.97, 0.97, 0.95), "red": (0.9, 0.2, 0.15),
             "yellow": (0.98, 0.85, 0.3)},
}
_STUFF_ATTRIBUTES = {"sky": ("blue",), "mountain": ("gray",), "grass": ("green",),
                     "water": ("blue",), "sand": ("yellow",), "road": ("gray",),
                     "wall": ("brick",), "snow": ("white",)}
_THING_ATTRIBUTES = {"sun": "yellow", "cloud": "white", "bird": "black", "airplane": "white",
                     "kite": "colorful", "bus": "yellow", "sign": "red", "tree": "green",
                     "pine": "green", "sheep": "white", "cow": "brown", "snowman": "white",
                     "window": "glass"}


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
            if present & set(_THING[n].supports)}
    n_things = int(rng.integers(max(1, MIN_OBJECTS - len(stuff)),
                                MAX_OBJECTS - len(stuff) + 1))
    things: list[ThingPlacement] = []
    counts: dict[str, int] = {}
    for _ in range(3 * n_things):
        if len(things) == n_things or not pool:
            break
        cands = [n for n in pool if counts.get(n, 0) < _THING[n].max_count]
        if not cands:
            break
        p = np.array([pool[n] for n in cands])
        name = cands[int(rng.choice(len(cands), p=p / p.sum()))]
        box = _place_thing(_THING[name], stuff, horizon, [t.box for t in things], rng)
        if box is None:
            continue
        palette = _PALETTES.get(name)
        colour = (list(palette)[int(rng.integers(len(palette)))] if palette
                  else _THING_ATTRIBUTES[name])
        area = (box[2] - box[0]) * (box[3] - box[1])
        size = ("small",) if area < 0.04 else ("large",) if area > 0.12 else ()
        things.append(ThingPlacement(name, box, int(rng.integers(2**31)),
                                     bool(rng.random() < 0.5), (colour, *size)))
        counts[name] = counts.get(name, 0) + 1
    light = tuple(float(v) for v in 1.0 + rng.uniform(-0.06, 0.06, 3))
    return ScenePlan(template, horizon, tuple(stuff), tuple(things), light)


# ----------------------------------------------------------------------------- noise
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
class _Canvas:
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


class _ThingPainter:
    """Paints the parts of one thing in its box's local coordinates.

    Local coordinates: u runs 0 -> 1 across the box (mirrored when the thing faces the other
    way), v runs 0 -> 1 down the box. ``k`` is the box aspect (width / height), used to draw
    round parts with radii in units of the box height.
    """

    def __init__(self, canvas: _Canvas, box: Box, label: int, flip: bool) -> None:
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
        cover = _block_mean(hit.astype(np.float32), ss)
        col = colour(self.u, self.v) if callable(colour) else np.asarray(colour, np.float32)
        self.canvas.composite(self.sl, cover, col, self.label)
        np.maximum(self.coverage, cover, out=self.coverage)


def _block_mean(a: np.ndarray, ss: int) -> np.ndarray:
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
def _rect(u0: float, v0: float, u1: float, v1: float) -> Callable:
    return lambda u, v: (u >= u0) & (u <= u1) & (v >= v0) & (v <= v1)


def _ellipse(cu: float, cv: float, ru: float, rv: float) -> Callable:
    return lambda u, v: ((u - cu) / ru) ** 2 + ((v - cv) / rv) ** 2 <= 1.0


def _circle(cu: float, cv: float, r: float, k: float) -> Callable:
    """A circle of radius r (in box heights) in a box of aspect k."""
    return lambda u, v: ((u - cu) * k) ** 2 + (v - cv) ** 2 <= r * r


def _polygon(points: Sequence[tuple[float, float]]) -> Callable:
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


def _union(*parts: Callable) -> Callable:
    def inside(u: np.ndarray, v: np.ndarray) -> np.ndarray:
        out = parts[0](u, v)
        for p in parts[1:]:
            out = out | p(u, v)
        return out
    return inside


def _jitter(rng: np.random.Generator, rgb: RGB, amount: float = 0.06) -> np.ndarray:
    return np.clip(np.asarray(rgb, np.float32) + rng.uniform(-amount, amount, 3), 0, 1)


def _shade(base: np.ndarray, factor: np.ndarray) -> np.ndarray:
    """(3,) colour times an (h, w) factor -> (h, w, 3)."""
    return np.clip(base * factor[..., None], 0, 1).astype(np.float32)


# ----------------------------------------------------------------------------- things
def _draw_sun(p: _ThingPainter, rng: np.random.Generator, t: ThingPlacement) -> None:
    core, rim = _jitter(rng, (1.0, 0.97, 0.7), 0.03), _jitter(rng, (1.0, 0.72, 0.12), 0.05)

    def colour(u: np.ndarray, v: np.ndarray) -> np.ndarray:
        d = np.clip(np.sqrt((u - 0.5) ** 2 + (v - 0.5) ** 2) / 0.5, 0, 1)[..., None]
        return core * (1 - d) + rim * d
    p.fill(_circle(0.5, 0.5, 0.48, p.k), colour)


def _draw_cloud(p: _ThingPainter, rng: np.random.Generator, t: ThingPlacement) -> None:
    b = rng.uniform(-0.05, 0.05, 4)
    shape = _union(_ellipse(0.5, 0.72, 0.48, 0.26), _ellipse(0.3 + b[0], 0.55, 0.2, 0.38),
                   _ellipse(0.55 + b[1], 0.42 + b[2], 0.24, 0.42),
                   _ellipse(0.76 + b[3], 0.6, 0.18, 0.32))
    base = _jitter(rng, (0.98, 0.98, 1.0), 0.02)
    p.fill(shape, lambda u, v: _shade(base, 1.0 - 0.22 * np.clip(v, 0, 1) ** 2))


def _draw_bird(p: _ThingPainter, rng: np.random.Generator, t: ThingPlacement) -> None:
    dip = rng.uniform(0.5, 0.65)
    p.fill(_polygon([(0.0, 0.0), (0.5, dip), (1.0, 0.0), (1.0, 0.42), (0.5, 1.0),
                     (0.0, 0.42)]), _jitter(rng, (0.12, 0.1, 0.12), 0.04))


def _draw_airplane(p: _ThingPainter, rng: np.random.Generator, t: ThingPlacement) -> None:
    body = _jitter(rng, (0.93, 0.94, 0.96), 0.03)
    p.fill(_polygon([(0.0, 0.52), (0.02, 0.02), (0.14, 0.02), (0.3, 0.5)]),
           _jitter(rng, (0.85, 0.15, 0.15), 0.05))                       # tail fin
    p.fill(_polygon([(0.48, 0.45), (0.58, 0.45), (0.5, 0.12), (0.45, 0.12)]),
           body * 0.7)                                                   # far wing
    p.fill(_ellipse(0.5, 0.52, 0.5, 0.15), body)                         # fuselage
    p.fill(_rect(0.35, 0.46, 0.88, 0.51), np.array([0.3, 0.45, 0.65], np.float32))
    p.fill(_polygon([(0.38, 0.55), (0.58, 0.55), (0.45, 1.0), (0.32, 1.0)]),
           body * 0.62)                                                  # near wing


def _draw_kite(p: _ThingPainter, rng: np.random.Generator, t: ThingPlacement) -> None:
    cols = np.array([(0.9, 0.1, 0.1), (1.0, 0.85, 0.1), (0.15, 0.35, 0.9), (0.1, 0.7, 0.3)],
                    np.float32)[rng.permutation(4)]

    def colour(u: np.ndarray, v: np.ndarray) -> np.ndarray:
        q = (u >= 0.5).astype(np.int64) + 2 * (v >= 0.38).astype(np.int64)
        return cols[np.broadcast_to(q, np.broadcast(u, v).shape)]
    p.fill(_rect(0.47, 0.7, 0.53, 1.0), np.array([0.25, 0.2, 0.2], np.float32))
    p.fill(_polygon([(0.0, 0.9), (0.12, 0.82), (0.12, 0.98)]), cols[0])
    p.fill(_polygon([(0.5, 0.0), (1.0, 0.38), (0.5, 0.78), (0.0, 0.38)]), colour)


def _draw_boat(p: _ThingPainter, rng: np.random.Generator, t: ThingPlacement) -> None:
    sail = np.asarray(_PALETTES["boat"][t.attributes[0]], np.float32)
    wood = _jitter(rng, (0.45, 0.27, 0.13), 0.05)
    p.fill(_rect(0.47, 0.04, 0.53, 0.74), wood * 0.7)                      # mast
    p.fill(_polygon([(0.55, 0.04), (0.55, 0.68), (0.95, 0.68)]), sail)
    p.fill(_polygon([(0.45, 0.18), (0.45, 0.68), (0.12, 0.68)]), sail * 0.88)
    p.fill(_polygon([(0.0, 0.7), (1.0, 0.7), (0.8, 1.0), (0.2, 1.0)]),
           lambda u, v: _shade(wood, 1.0 - 0.35 * ((v > 0.84) & (v < 0.89))))


def _wheels(p: _ThingPainter, us: Sequence[float], v: float, r: float) -> None:
    for cu in us:
        p.fill(_circle(cu, v, r, p.k), np.array([0.07, 0.07, 0.08], np.float32))
        p.fill(_circle(cu, v, r * 0.42, p.k), np.array([0.62, 0.62, 0.65], np.float32))


def _draw_car(p: _ThingPainter, rng: np.random.Generator, t: ThingPlacement) -> None:
    body = _jitter(rng, _PALETTES["car"][t.attributes[0]], 0.04)
    glass = np.array([0.62, 0.78, 0.9], np.float32)
    p.fill(_polygon([(0.2, 0.42), (0.32, 0.06), (0.7, 0.06), (0.84, 0.42)]), body)
    p.fill(_polygon([(0.27, 0.4), (0.36, 0.13), (0.49, 0.13), (0.49, 0.4)]), glass)
    p.fill(_polygon([(0.53, 0.4), (0.53, 0.13), (0.67, 0.13), (0.77, 0.4)]), glass)
    p.fill(_union(_rect(0.02, 0.38, 0.98, 0.82), _ellipse(0.04, 0.6, 0.04, 0.22),
                  _ellipse(0.96, 0.6, 0.04, 0.22)), body)
    p.fill(_rect(0.94, 0.48, 1.0, 0.58), np.array([1.0, 0.92, 0.5], np.float32))
    _wheels(p, (0.22, 0.78), 0.8, 0.2)


def _draw_bus(p: _ThingPainter, rng: np.random.Generator, t: ThingPlacement) -> None:
    body = _jitter(rng, (0.97, 0.77, 0.1), 0.03)
    p.fill(_rect(0.0, 0.04, 1.0, 0.84), body)
    win = np.array([0.2, 0.3, 0.45], np.float32)
    p.fill(lambda u, v: (v > 0.14) & (v < 0.42) & (u > 0.04) & (u < 0.96)
           & ((u * 6.5) % 1.0 > 0.18), win)
    p.fill(_rect(0.0, 0.56, 1.0, 0.62), np.array([0.15, 0.15, 0.15], np.float32))
    _wheels(p, (0.2, 0.8), 0.84, 0.16)


def _draw_sign(p: _ThingPainter, rng: np.random.Generator, t: ThingPlacement) -> None:
    p.fill(_rect(0.4, 0.3, 0.6, 1.0), np.array([0.5, 0.5, 0.54], np.float32))
    r = 0.5 * p.k                                      # octagon as wide as the box
    ang = np.pi / 8 + np.arange(8) * np.pi / 4
    pts = [(0.5 + 0.5 * math.cos(a), r + r * math.sin(a)) for a in ang]
    p.fill(_polygon(pts), _jitter(rng, (0.86, 0.1, 0.1), 0.04))
    p.fill(_rect(0.22, r - 0.025, 0.78, r + 0.025), np.array([1.0, 1.0, 1.0], np.float32))


def _draw_tree(p: _ThingPainter, rng: np.random.Generator, t: ThingPlacement) -> None:
    p.fill(_rect(0.42, 0.5, 0.58, 1.0), _jitter(rng, (0.4, 0.24, 0.1), 0.04))
    green = _jitter(rng, (0.2, 0.55, 0.15), 0.05)
    b = rng.uniform(-0.04, 0.04, 3)
    noise = value_noise(rng, p.u.ravel(), p.v.ravel(), (5, 5))
    p.fill(_union(_ellipse(0.5, 0.36 + b[0], 0.48, 0.33), _ellipse(0.3, 0.5 + b[1], 0.28, 0.2),
                  _ellipse(0.7, 0.5 + b[2], 0.28, 0.2)),
           lambda u, v: _shade(green, 0.7 + 0.6 * noise - 0.25 * np.clip(v, 0, 1)))


def _draw_pine(p: _ThingPainter, rng: np.random.Generator, t: ThingPlacement) -> None:
    p.fill(_rect(0.43, 0.8, 0.57, 1.0), _jitter(rng, (0.35, 0.2, 0.1), 0.04))
    green = _jitter(rng, (0.07, 0.33, 0.18), 0.03)
    for top, bot, half in ((0.0, 0.36, 0.32), (0.17, 0.6, 0.42), (0.37, 0.86, 0.5)):
        p.fill(_polygon([(0.5, top), (0.5 + half, bot), (0.5 - half, bot)]),
               lambda u, v, bot=bot: _shade(green, 1.15 - 0.5 * np.clip(v - bot + 0.3, 0, 1)))


def _draw_sheep(p: _ThingPainter, rng: np.random.Generator, t: ThingPlacement) -> None:
    dark = np.array([0.1, 0.1, 0.1], np.float32)
    p.fill(_union(_rect(0.28, 0.6, 0.35, 1.0), _rect(0.68, 0.6, 0.75, 1.0)), dark)
    wool = _jitter(rng, (0.95, 0.94, 0.87), 0.03)
    noise = value_noise(rng, p.u.ravel(), p.v.ravel(), (4, 7))
    bumps = [_circle(0.25 + 0.5 * i / 4, 0.2, 0.16, p.k) for i in range(5)]
    p.fill(_union(_ellipse(0.55, 0.42, 0.4, 0.3), *bumps),
           lambda u, v: _shade(wool, 0.78 + 0.3 * noise))
    p.fill(_ellipse(0.13, 0.36, 0.12, 0.17), dark)


def _draw_cow(p: _ThingPainter, rng: np.random.Generator, t: ThingPlacement) -> None:
    brown = _jitter(rng, (0.55, 0.32, 0.15), 0.05)
    white = np.array([0.96, 0.95, 0.92], np.float32)
    legs = [_rect(a, 0.6, a + 0.07, 1.0) for a in (0.22, 0.34, 0.72, 0.84)]
    p.fill(_union(*legs), brown * 0.7)
    noise = value_noise(rng, p.u.ravel(), p.v.ravel(), (3, 5))

    def coat(u: np.ndarray, v: np.ndarray) -> np.ndarray:
        return np.where((noise > 0.58)[..., None], white, brown)
    p.fill(_union(_rect(0.18, 0.2, 0.94, 0.66), _ellipse(0.2, 0.43, 0.06, 0.23),
                  _ellipse(0.92, 0.43, 0.06, 0.23)), coat)
    p.fill(_rect(0.02, 0.1, 0.2, 0.45), brown)                           # head
    p.fill(_rect(0.0, 0.32, 0.08, 0.46), np.array([0.92, 0.66, 0.62], np.float32))
    p.fill(_rect(0.14, 0.04, 0.19, 0.13), white * 0.9)                  # horn


def _draw_house(p: _ThingPainter, rng: np.random.Generator, t: ThingPlacement) -> None:
    wall = _jitter(rng, _PALETTES["house"][t.attributes[0]], 0.03)
    roof = _jitter(rng, (0.68, 0.16, 0.1), 0.05)
    p.fill(_rect(0.68, 0.06, 0.8, 0.3), roof * 0.8)                       # chimney
    p.fill(_rect(0.1, 0.42, 0.9, 1.0), wall)
    p.fill(_polygon([(0.0, 0.47), (0.5, 0.0), (1.0, 0.47)]),
           lambda u, v: _shade(roof, 1.0 - 0.2 * ((v * 9) % 1.0 < 0.25)))
    p.fill(_rect(0.42, 0.68, 0.58, 1.0), np.array([0.38, 0.22, 0.1], np.float32))
    glass = np.array([0.5, 0.7, 0.9], np.float32)
    p.fill(_union(_rect(0.18, 0.56, 0.33, 0.74), _rect(0.67, 0.56, 0.82, 0.74)), glass)


def _draw_person(p: _ThingPainter, rng: np.random.Generator, t: ThingPlacement) -> None:
    shirt = _jitter(rng, _PALETTES["person"][t.attributes[0]], 0.04)
    trousers = _jitter(rng, (0.15, 0.18, 0.38), 0.04)
    p.fill(_union(_rect(0.24, 0.56, 0.47, 1.0), _rect(0.53, 0.56, 0.76, 1.0)), trousers)
    p.fill(_union(_rect(0.16, 0.24, 0.84, 0.6), _rect(0.04, 0.26, 0.96, 0.5)), shirt)
    p.fill(_circle(0.5, 0.13, 0.115, p.k), _jitter(rng, (0.93, 0.76, 0.6), 0.05))
    p.fill(lambda u, v: _circle(0.5, 0.13, 0.12, p.k)(u, v) & (v < 0.09),
           _jitter(rng, (0.2, 0.13, 0.08), 0.05))                        # hair


def _draw_umbrella(p: _ThingPainter, rng: np.random.Generator, t: ThingPlacement) -> None:
    main = np.asarray(_PALETTES["umbrella"][t.attributes[0]], np.float32)
    white = np.array([0.98, 0.98, 0.96], np.float32)
    p.fill(_rect(0.47, 0.38, 0.53, 1.0), np.array([0.85, 0.85, 0.82], np.float32))
    k = p.k

    def stripes(u: np.ndarray, v: np.ndarray) -> np.ndarray:
        ang = np.arctan2(0.45 - v, (u - 0.5) * k)
        return np.where(((ang / np.pi * 6).astype(np.int64) % 2 == 0)[..., None], main, white)
    p.fill(lambda u, v: _ellipse(0.5, 0.45, 0.5, 0.43)(u, v) & (v <= 0.45), stripes)


def _draw_snowman(p: _ThingPainter, rng: np.random.Generator, t: ThingPlacement) -> None:
    k = p.k
    white, shadow = np.array([0.99, 0.99, 1.0], np.float32), np.array([0.7, 0.76, 0.9],
                                                                          np.float32)
    for cv, r in ((0.72, 0.27), (0.42, 0.19), (0.2, 0.12)):
        def ball(u: np.ndarray, v: np.ndarray, cv: float = cv, r: float = r) -> np.ndarray:
            d = np.clip(np.sqrt(((u - 0.5) * k) ** 2 + (v - cv) ** 2) / r, 0, 1)[..., None]
            return white * (1 - d**3) + shadow * d**3
        p.fill(_circle(0.5, cv, r, k), ball)
    black = np.array([0.08, 0.08, 0.08], np.float32)
    p.fill(_union(_rect(0.36, 0.0, 0.64, 0.1), _rect(0.24, 0.08, 0.76, 0.12)), black)
    p.fill(_polygon([(0.5, 0.19), (0.72, 0.22), (0.5, 0.24)]),
           np.array([1.0, 0.5, 0.1], np.float32))
    p.fill(_union(_circle(0.5, 0.36, 0.022, k), _circle(0.5, 0.46, 0.022, k)), black)


def _draw_window(p: _ThingPainter, rng: np.random.Generator, t: ThingPlacement) -> None:
    p.fill(_rect(0.0, 0.0, 1.0, 1.0), _jitter(rng, (0.93, 0.91, 0.86), 0.03))
    glass = _jitter(rng, (0.42, 0.62, 0.85), 0.04)
    p.fill(lambda u, v: (u > 0.12) & (u < 0.88) & (v > 0.12) & (v < 0.88)
           & (np.abs(u - 0.5) > 0.05) & (np.abs(v - 0.5) > 0.05),
           lambda u, v: _shade(glass, 1.0 + 0.3 * (u + v < 0.7)))


_DRAW: dict[str, Callable[[_ThingPainter, np.random.Generator, ThingPlacement], None]] = {
    "sun": _draw_sun, "cloud": _draw_cloud, "bird": _draw_bird, "airplane": _draw_airplane,
    "kite": _draw_kite, "boat": _draw_boat, "car": _draw_car, "bus": _draw_bus,
    "sign": _draw_sign, "tree": _draw_tree, "pine": _draw_pine, "sheep": _draw_sheep,
    "cow": _draw_cow, "house": _draw_house, "person": _draw_person,
    "umbrella": _draw_umbrella, "snowman": _draw_snowman, "window": _draw_window,
}


# ----------------------------------------------------------------------------- stuff
# Texture functions: (x (1, W), y (H, 1) pixel-centre coordinates in [0, 1], rng, region, plan)
# -> (H, W, 3) colours in [0, 1] (or broadcastable to it) for the whole canvas; the region's
# coverage decides where they show.
def _tex_sky(x, y, rng, region, plan):
    top = _jitter(rng, (0.28, 0.5, 0.88), 0.05)
    low = _jitter(rng, (0.7, 0.83, 0.96), 0.03)
    t = np.broadcast_to(np.clip(y / max(plan.horizon, 0.2), 0, 1), np.broadcast(x, y).shape)
    t = t[..., None]
    return top * (1 - t) + low * t


def _tex_mountain(x, y, rng, region, plan):
    base = _jitter(rng, (0.46, 0.46, 0.56), 0.05)
    rock = value_noise(rng, x.ravel(), y.ravel(), (6, 26))
    below_ridge = y - region.top(x)                          # >= 0 inside the region
    col = _shade(base, 0.75 + 0.35 * rock - 0.9 * np.clip(below_ridge, 0, 0.35))
    cap = rng.uniform(0.02, 0.06) if plan.template == "snow" or rng.random() < 0.5 else 0.0
    snowy = below_ridge < cap * (0.6 + 0.8 * value_noise(rng, x.ravel(), y.ravel(), (2, 18)))
    col[snowy] = np.array([0.94, 0.95, 0.98], np.float32)
    return col


def _tex_grass(x, y, rng, region, plan):
    base = _jitter(rng, (0.32, 0.62, 0.2), 0.05)
    blades = value_noise(rng, x.ravel(), y.ravel(), (4, 40))
    patches = value_noise(rng, x.ravel(), y.ravel(), (4, 5))
    haze = np.clip(1 - (y - plan.horizon) * 4, 0, 1) * 0.12
    return _shade(base, 0.7 + 0.3 * blades + 0.3 * patches) + haze[..., None]


def _tex_water(x, y, rng, region, plan):
    base = _jitter(rng, (0.12, 0.36, 0.66), 0.04)
    warp = value_noise(rng, x.ravel(), y.ravel(), (6, 6))
    waves = 0.5 + 0.5 * np.sin(2 * np.pi * (y * 22 + 1.5 * warp))
    depth = np.clip((y - plan.horizon) * 1.2, 0, 0.4)
    return _shade(base, 0.85 + 0.3 * waves - depth)


def _tex_sand(x, y, rng, region, plan):
    base = _jitter(rng, (0.88, 0.78, 0.54), 0.03)
    ripples = value_noise(rng, x.ravel(), y.ravel(), (12, 4))
    grain = rng.uniform(0.93, 1.04, np.broadcast(x, y).shape).astype(np.float32)
    return _shade(base, (0.9 + 0.12 * ripples) * grain)


def _tex_road(x, y, rng, region, plan):
    base = _jitter(rng, (0.33, 0.33, 0.35), 0.03)
    col = _shade(base, 0.9 + 0.15 * value_noise(rng, x.ravel(), y.ravel(), (8, 8)))
    top = region.top.y
    kerb = np.broadcast_to(y - top < 0.035, col.shape[:2])
    mid = (top + 1.0) / 2
    lane = (np.abs(y - mid) < 0.014) & ((x * 5 + rng.uniform()) % 1.0 < 0.55)
    col[kerb] = np.array([0.62, 0.62, 0.6], np.float32)
    col[lane] = np.array([0.97, 0.97, 0.92], np.float32)
    return col


def _tex_wall(x, y, rng, region, plan):
    brick = _jitter(rng, (0.66, 0.32, 0.22), 0.06)
    mortar = np.array([0.8, 0.77, 0.72], np.float32)
    bh, bw = 1 / 15, 1 / 7
    row = np.floor(y / bh)
    xs = x / bw + 0.5 * (row % 2)
    shades = rng.uniform(0.8, 1.1, (20, 12)).astype(np.float32)
    f = shades[row.astype(np.int64) % 20, np.floor(xs).astype(np.int64) % 12]
    line = ((y / bh) % 1.0 < 0.14) | (xs % 1.0 < 0.06)
    return np.where(line[..., None], mortar, _shade(brick, f))


def _tex_snow(x, y, rng, region, plan):
    base = _jitter(rng, (0.95, 0.96, 0.99), 0.015)
    drifts = value_noise(rng, x.ravel(), y.ravel(), (3, 5))
    sparkle = rng.uniform(0.97, 1.02, np.broadcast(x, y).shape).astype(np.float32)
    blue = np.array([0.1, 0.06, 0.0], np.float32)
    return np.clip((base - drifts[..., None] * blue) * sparkle[..., None]
                   - 0.06 * np.clip(1 - (y - plan.horizon) * 5, 0, 1)[..., None] * blue * 4,
                   0, 1)


_FINE_TEXTURES = {"wall", "road"}
_TEXTURE: dict[str, Callable[..., np.ndarray]] = {
    "sky": _tex_sky, "mountain": _tex_mountain, "grass": _tex_grass, "water": _tex_water,
    "sand": _tex_sand, "road": _tex_road, "wall": _tex_wall, "snow": _tex_snow,
}


# ----------------------------------------------------------------------------- rendering
@dataclass
class SceneAnnotation:
    """One annotation of a rendered scene.

    Args:
        name: category name; ``category_id``: its raw id; ``isthing``: instances vs stuff file.
        mask: (S, S) bool visible pixels.
        bbox: [x, y, w, h] in pixels (COCO convention, from the mask).
        attributes: attribute names (written to the VG-format files).
        placement: the planned thing, or None for stuff.
        drawn_pixels: pixels the thing covered when drawn, before later things hid any.
    """

    name: str
    category_id: int
    isthing: bool
    mask: np.ndarray
    bbox: list[float]
    attributes: tuple[str, ...] = ()
    placement: ThingPlacement | None = None
    drawn_pixels: int = 0

    @property
    def box_fraction(self) -> float:
        """Box area as a fraction of the image."""
        s = self.mask.shape[0] * self.mask.shape[1]
        return self.bbox[2] * self.bbox[3] / s


@dataclass
class RenderedScene:
    """A rasterised scene.

    Args:
        image: (S, S, 3) uint8.
        annotations: stuff regions, then things (plan order); empty ones left out.
        plan: the plan it was drawn from.
        label: (S, S) int16 index of the annotation owning each pixel, in the order stuff
            regions then things of the plan.
    """

    image: np.ndarray
    annotations: list[SceneAnnotation]
    plan: ScenePlan
    label: np.ndarray = field(repr=False, default_factory=lambda: np.zeros(0))

    def kept(self, min_box_area: float = MIN_BOX_AREA) -> list[SceneAnnotation]:
        """Annotations the COCO loader keeps (box area > ``min_box_area``, not ``other``)."""
        return [a for a in self.annotations if a.box_fraction > min_box_area]


def _bbox(mask: np.ndarray) -> list[float]:
    rows, cols = np.flatnonzero(mask.any(1)), np.flatnonzero(mask.any(0))
    return [float(cols[0]), float(rows[0]), float(cols[-1] - cols[0] + 1),
            float(rows[-1] - rows[0] + 1)]


def _draw_order(things: Sequence[ThingPlacement]) -> list[int]:
    """Sky things first, then things inside walls, then ground things far to near."""
    rank = {"sky": 0, "inside": 1, "ground": 2}
    return sorted(range(len(things)),
                  key=lambda i: (rank[_THING[things[i].name].placement], things[i].box[3]))


def render_scene(plan: ScenePlan, size: int, *, supersample: int = 3) -> RenderedScene:
    """Rasterise a plan at ``size`` x ``size``.

    Args:
        plan: from ``plan_scene``.
        size: S, image side in pixels (64 and 128 are the intended sizes).
        supersample: samples per pixel side for anti-aliased thing edges.

    Returns:
        The scene; annotations are stuff regions (in plan order) then things (in plan order),
        each with its visible mask. Empty annotations are left out.
    """
    canvas = _Canvas(size, supersample)
    c = ((np.arange(size) + 0.5) / size).astype(np.float32)
    x, y = c[None, :], c[:, None]
    c2 = ((np.arange(2 * size) + 0.5) / (2 * size)).astype(np.float32)
    full = (slice(0, size), slice(0, size))
    for k, region in enumerate(plan.stuff):
        rng = np.random.default_rng(region.seed)
        cover = np.clip((y - region.top(x)) * size + 0.5, 0.0, 1.0)        # (S, S)
        if region.name in _FINE_TEXTURES:     # thin lines: 2 x 2 samples per pixel
            tex = _block_mean(_TEXTURE[region.name](c2[None, :], c2[:, None], rng, region,
                                                    plan).astype(np.float32), 2)
        else:
            tex = _TEXTURE[region.name](x, y, rng, region, plan)          # (S, S, 3)
        canvas.composite(full, cover.astype(np.float32), tex, k)
    n_stuff = len(plan.stuff)
    own: dict[int, int] = {}
    for i in _draw_order(plan.things):
        t = plan.things[i]
        painter = _ThingPainter(canvas, t.box, n_stuff + i, t.flip)
        _DRAW[t.name](painter, np.random.default_rng(t.seed), t)
        own[i] = int((painter.coverage >= 0.5).sum())
    image = np.clip(canvas.image * np.asarray(plan.light, np.float32), 0, 1)
    image = (image * 255 + 0.5).astype(np.uint8)
    anns = []
    for k, region in enumerate(plan.stuff):
        mask = canvas.label == k
        if mask.any():
            anns.append(SceneAnnotation(region.name, CATEGORY_ID[region.name], False, mask,
                                        _bbox(mask), _STUFF_ATTRIBUTES[region.name]))
    for i, t in enumerate(plan.things):
        mask = canvas.label == n_stuff + i
        if mask.any():
            anns.append(SceneAnnotation(t.name, CATEGORY_ID[t.name], True, mask, _bbox(mask),
                                        t.attributes, t, own[i]))
    return RenderedScene(image, anns, plan, canvas.label)


def generate_scene(seed: int, split: str, index: int, size: int, *,
                   template: str | None = None, max_tries: int = 50) -> RenderedScene:
    """The scene for image ``index`` of ``split``: deterministic for (seed, split, index, size).

    Things that end up mostly hidden or with a box at or under the 2% filter are removed from
    the plan and the scene is drawn again, so every drawn thing is annotated and kept by the
    loader; scenes with fewer than 3 or more than 8 kept annotations are redrawn.

    Raises:
        RuntimeError: no valid scene after ``max_tries`` plans (not expected).
    """
    rng = image_rng(seed, split, index)
    for _ in range(max_tries):
        plan = plan_scene(rng, template)
        for _ in range(len(plan.things) + 1):
            scene = render_scene(plan, size)
            drawn = {id(a.placement): a for a in scene.annotations if a.isthing}
            bad = [t for t in plan.things
                   if (a := drawn.get(id(t))) is None
                   or a.box_fraction <= 1.1 * MIN_BOX_AREA
                   or a.mask.sum() < 0.6 * a.drawn_pixels]
            if not bad:
                break
            plan = replace(plan, things=tuple(t for t in plan.things if t not in bad))
        n = len(scene.kept())
        if MIN_OBJECTS <= n <= MAX_OBJECTS and any(a.isthing for a in scene.annotations):
            return scene
    raise RuntimeError(f"could not draw a valid scene for {split} image {index} "
                       f"(seed {seed}) in {max_tries} tries")


# ----------------------------------------------------------------------------- writing
def encode_rle(mask: np.ndarray) -> dict[str, Any]:
    """COCO compressed RLE of an (H, W) bool mask, with ``counts`` as a str (JSON-safe)."""
    rle = mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))
    return {"size": [int(v) for v in rle["size"]], "counts": rle["counts"].decode("ascii")}


def _spatial_name(a: SceneAnnotation, b: SceneAnnotation) -> str:
    """The COCO spatial predicate of a relative to b (same rule as the loader's)."""
    def box(m: SceneAnnotation) -> np.ndarray:
        x, y, w, h = m.bbox
        s = m.mask.shape[0]
        return np.array([x, y, x + w, y + h]) / s

    def centre(m: SceneAnnotation) -> np.ndarray:
        rows, cols = np.nonzero(m.mask)
        return np.array([cols.mean() + 0.5, rows.mean() + 0.5]) / m.mask.shape[0]
    return COCO_PREDICATES[spatial_predicate(box(a), box(b), centre(a), centre(b))]


_OBJECT_ALIASES = {"person": ("man", "woman"), "car": ("automobile",), "sheep": ("lamb",),
                   "airplane": ("plane",), "boat": ("sailboat",), "tree": ("oak",),
                   "road": ("street",), "grass": ("lawn",)}
_REL_ALIASES = {"on": ("on top of", "standing on"), "in": ("inside of",),
                "left of": ("to the left of",), "right of": ("to the right of",)}


def vg_records(scene: RenderedScene, image_id: int, rng: np.random.Generator,
               first_object_id: int) -> tuple[dict, dict, dict]:
    """Raw Visual Genome records (objects, relationships, attributes) for one scene.

    Relationships: every thing is ``on`` its support (ground things) or ``in`` its region
    (sky things, windows); each annotation gets one spatial relation to another annotation
    (the COCO geometric rule); overlapping ground things are ``in front of`` / ``behind``.
    Some names are written as aliases (``lamb``, ``to the left of``) so that alias merging in
    ``preprocess_vg.py`` is exercised.
    """
    anns = list(scene.annotations)
    objects, ids = [], []
    for j, a in enumerate(anns):
        name = a.name
        if name in _OBJECT_ALIASES and rng.random() < 0.2:
            aliases = _OBJECT_ALIASES[name]
            name = aliases[int(rng.integers(len(aliases)))]
        x, y, w, h = (int(v) for v in a.bbox)
        oid = first_object_id + j
        ids.append(oid)
        objects.append({"object_id": oid, "x": x, "y": y, "w": w, "h": h, "names": [name],
                        "synsets": []})

    def ref(j: int) -> dict:
        return {k: objects[j][k] for k in ("object_id", "x", "y", "w", "h", "names")}

    def pred(p: str) -> str:
        if p in _REL_ALIASES and rng.random() < 0.2:
            return _REL_ALIASES[p][int(rng.integers(len(_REL_ALIASES[p])))]
        return p.upper() if rng.random() < 0.05 else p

    rels = []
    stuff_at = {a.name: j for j, a in enumerate(anns) if not a.isthing}
    for j, a in enumerate(anns):
        if a.isthing and a.placement is not None:
            cls = _THING[a.name]
            x0, y0, x1, y1 = a.placement.box
            py = y1 - 0.01 if cls.placement == "ground" else (y0 + y1) / 2
            k = int(stuff_index_at(scene.plan.stuff, np.array([(x0 + x1) / 2]),
                                   np.array([py]))[0])
            support = scene.plan.stuff[k].name
            if support in stuff_at:
                rels.append((j, pred("on" if cls.placement == "ground" else "in"),
                             stuff_at[support]))
        others = [i for i in range(len(anns)) if i != j]
        if others:
            o = others[int(rng.integers(len(others)))]
            rels.append((j, pred(_spatial_name(a, anns[o])), o))
    ground = [j for j, a in enumerate(anns) if a.isthing and a.placement is not None
              and _THING[a.name].placement == "ground"]
    for i in ground:
        for j in ground:
            bi, bj = anns[i].placement.box, anns[j].placement.box  # type: ignore[union-attr]
            if i < j and min(bi[2], bj[2]) > max(bi[0], bj[0]) and \
                    min(bi[3], bj[3]) > max(bi[1], bj[1]):
                front, back = (i, j) if bi[3] > bj[3] else (j, i)
                rels.append((front, pred("in front of"), back))
    relationships = [{"relationship_id": first_object_id * 4 + r, "predicate": p,
                      "synsets": [], "subject": ref(si), "object": ref(oi)}
                     for r, (si, p, oi) in enumerate(rels)]
    attributes = [{**ref(j), "attributes": list(a.attributes)}
                  for j, a in enumerate(anns) if a.attributes]
    return ({"image_id": image_id, "objects": objects},
            {"image_id": image_id, "relationships": relationships},
            {"image_id": image_id, "attributes": attributes})


_OBJECT_ID_STRIDE = 64       # VG object ids: image_id * stride + index (unique over splits)


def _render_one(job: tuple[int, str, int, int, str, bool]) -> dict[str, Any]:
    seed, split, index, size, image_dir, vg = job
    scene = generate_scene(seed, split, index, size)
    image_id = IMAGE_ID_BASE[split] + index + 1
    file_name = f"{index:07d}.png"
    Image.fromarray(scene.image).save(Path(image_dir) / file_name, compress_level=1)
    anns = []
    for a in scene.annotations:
        anns.append({"category_id": a.category_id, "isthing": a.isthing,
                     "segmentation": encode_rle(a.mask), "area": int(a.mask.sum()),
                     "bbox": a.bbox})
    things = [a.mask for a in scene.annotations if a.isthing]
    if things:   # COCO-Stuff's 'other': all thing pixels, in the stuff file
        other = np.any(things, axis=0)
        anns.append({"category_id": CATEGORY_ID[OTHER_NAME], "isthing": False,
                     "segmentation": encode_rle(other), "area": int(other.sum()),
                     "bbox": _bbox(other)})
    out: dict[str, Any] = {
        "image": {"id": image_id, "file_name": file_name, "width": size, "height": size},
        "annotations": anns, "template": scene.plan.template}
    if vg:
        rng = np.random.default_rng(np.random.SeedSequence([seed, _SPLIT_CODE[split], index,
                                                            1]))
        out["vg"] = vg_records(scene, image_id, rng, image_id * _OBJECT_ID_STRIDE)
        out["vg_image"] = {"image_id": image_id, "width": size, "height": size,
                           "url": f"https://shapes.invalid/images/{split}/{file_name}",
                           "coco_id": None, "flickr_id": None}
    return out


def _coco_file(images: list[dict], anns: list[dict], thing: bool, info: dict) -> dict:
    cats = [c for c in categories() if bool(c["isthing"]) == thing]
    keep = [dict(a) for a in anns if a["isthing"] == thing]
    for i, a in enumerate(keep):
        a.pop("isthing")
        a["id"] = i + 1
        a["iscrowd"] = 0
    cats = [{k: c[k] for k in ("id", "name", "supercategory")} for c in cats]
    return {"info": info, "licenses": [], "images": images, "annotations": keep,
            "categories": cats}


def write_dataset(out_dir: str | PathLike, *, size: int = 64,
                  num_images: dict[str, int] | None = None, seed: int = 0, workers: int = 2,
                  vg: bool = False, chunksize: int = 32) -> dict[str, Any]:
    """Write a procedural dataset in the COCO-Stuff layout (and optionally raw VG JSON).

    Layout: ``OUT/annotations/{instances,stuff}_{split}.json``, ``OUT/images/{split}/*.png``,
    ``OUT/info.json``, ``OUT/README``; with ``vg``: ``OUT/vg_raw/`` holding ``image_data.json``,
    ``objects.json``, ``relationships.json``, ``attributes.json``, ``object_alias.txt``,
    ``relationship_alias.txt`` and ``vg_splits.json`` (image paths relative to ``OUT/images``).

    Args:
        out_dir: output directory (created).
        size: image side S.
        num_images: images per split, e.g. ``{"train": 10000, "val": 500, "test": 500}``.
        seed: dataset seed; image i of a split depends only on (seed, split, i, size).
        workers: processes; the output is identical for any number.
        vg: also write the raw Visual Genome files.
        chunksize: images per task sent to a worker.

    Returns:
        The ``info.json`` dict (parameters, counts, timing).
    """
    num_images = dict(num_images or {"train": 100, "val": 20, "test": 20})
    for split in num_images:
        if split not in SPLITS:
            raise ValueError(f"unknown split {split!r}; choose from {SPLITS}")
    out = Path(out_dir)
    (out / "annotations").mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    info: dict[str, Any] = {
        "description": "sg2img procedural scenes (COCO-Stuff format)",
        "generator": "sg2img.data.shapes", "version": SHAPES_VERSION, "seed": seed,
        "image_size": size, "num_images": num_images, "min_box_area": MIN_BOX_AREA,
        "objects_per_image": [MIN_OBJECTS, MAX_OBJECTS], "image_format": "png",
        "things": [c.name for c in THING_CLASSES], "stuff": list(_STUFF_NAMES),
        "templates": {k: sorted(v) for k, v in TEMPLATES.items()},
        "categories": categories(),
    }
    vg_all: dict[str, list] = {"image_data": [], "objects": [], "relationships": [],
                               "attributes": []}
    vg_splits: dict[str, list[int]] = {}
    template_counts: dict[str, int] = {}
    ctx = multiprocessing.get_context(
        "fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn")
    pool = ctx.Pool(workers) if workers > 1 else None
    try:
        for split, n in num_images.items():
            image_dir = out / "images" / split
            image_dir.mkdir(parents=True, exist_ok=True)
            jobs = [(seed, split, i, size, str(image_dir), vg) for i in range(n)]
            results = (pool.imap(_render_one, jobs, chunksize=chunksize) if pool
                       else map(_render_one, jobs))
            images, anns = [], []
            for r in results:
                images.append(r["image"])
                template_counts[r["template"]] = template_counts.get(r["template"], 0) + 1
                for a in r["annotations"]:
                    anns.append({"image_id": r["image"]["id"], **a})
                if vg:
                    vg_all["image_data"].append(r["vg_image"])
                    for key, rec in zip(("objects", "relationships", "attributes"), r["vg"],
                                        strict=True):
                        vg_all[key].append(rec)
            vg_splits[split] = [im["id"] for im in images]
            split_info = {**{k: v for k, v in info.items() if k != "categories"},
                          "split": split}
            for kind, thing in (("instances", True), ("stuff", False)):
                path = out / "annotations" / f"{kind}_{split}.json"
                path.write_text(json.dumps(_coco_file(images, anns, thing, split_info)))
            logger.info("shapes %s: %d images, %d annotations", split, len(images), len(anns))
    finally:
        if pool is not None:
            pool.close()
            pool.join()
    if vg:
        raw = out / "vg_raw"
        raw.mkdir(exist_ok=True)
        for key, recs in vg_all.items():
            (raw / f"{key}.json").write_text(json.dumps(recs))
        (raw / "vg_splits.json").write_text(json.dumps(vg_splits))
        (raw / "object_alias.txt").write_text(
            "".join(f"{k},{','.join(v)}\n" for k, v in _OBJECT_ALIASES.items()))
        (raw / "relationship_alias.txt").write_text(
            "".join(f"{k},{','.join(v)}\n" for k, v in _REL_ALIASES.items()))
    info["templates_drawn"] = template_counts
    info["seconds"] = round(time.perf_counter() - start, 2)
    (out / "info.json").write_text(json.dumps(info, indent=1))
    (out / "README").write_text(_README.format(size=size, seed=seed, counts=num_images))
    return info


_README = """sg2img procedural scenes ({size}x{size}, seed {seed}, images {counts})

Written by sg2img.data.shapes.write_dataset (data_tools/make_shapes.py) in the COCO-Stuff
format: annotations/instances_{{split}}.json (things), annotations/stuff_{{split}}.json (stuff
and 'other' = all thing pixels), images/{{split}}/*.png. Segmentations are compressed RLE.
Load with sg2img.data.build_dataset (data.dataset=coco, data.root=this directory).
Unlike real COCO-Stuff, val and test are their own files (no 1024/2048 split of val).
Generator parameters are in info.json. vg_raw/ (if present) holds the same scenes as raw
Visual Genome JSON for data_tools/preprocess_vg.py.
"""
