"""The classes of the procedural scenes: stuff and thing classes, ids, attributes, seeds.

Stuff classes fill regions of the image; thing classes carry a structural prior (where they
stand, on what, how large). Category ids follow COCO-Stuff's layout (things, then stuff, then
``other``). ``image_rng`` is the one source of randomness for an image.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from ...vocab import Vocab

SHAPES_VERSION = 2           # 2: buses come in three colours; attributes in the COCO files
SPLITS = ("train", "val", "test")
SPLIT_CODE = {"train": 0, "val": 1, "test": 2}
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

THING_BY_NAME = {c.name: c for c in THING_CLASSES}
STUFF_NAMES = tuple(s.name for s in STUFF_CLASSES)


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
    """The vocabulary the COCO loader builds for this dataset (raw ids are object ids), with
    the class table of what the renderer can write (``class_attributes()``); the loader's
    own table is counted from the split it reads, which may lack rare pairs."""
    return Vocab.from_coco_categories(categories(), attribute_names=attribute_names(),
                                      class_attributes=class_attributes())


def image_rng(seed: int, split: str, index: int) -> np.random.Generator:
    """The random generator for one image; independent of the order images are drawn in."""
    return np.random.default_rng(np.random.SeedSequence([int(seed), SPLIT_CODE[split],
                                                         int(index)]))


PALETTES: dict[str, dict[str, RGB]] = {
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
    "bus": {"yellow": (0.97, 0.77, 0.1), "red": (0.85, 0.12, 0.1),
            "blue": (0.15, 0.35, 0.85)},
}
"""Colourable thing classes: the first attribute of each instance names its colour (>= 3 each)."""
STUFF_ATTRIBUTES = {"sky": ("blue",), "mountain": ("gray",), "grass": ("green",),
                    "water": ("blue",), "sand": ("yellow",), "road": ("gray",),
                    "wall": ("brick",), "snow": ("white",)}
THING_ATTRIBUTES = {"sun": "yellow", "cloud": "white", "bird": "black", "airplane": "white",
                    "kite": "colorful", "sign": "red", "tree": "green",
                    "pine": "green", "sheep": "white", "cow": "brown", "snowman": "white",
                    "window": "glass"}
SIZE_ATTRIBUTES = ("small", "large")   # things with box area < 4 % / > 12 % of the image
SMALL_AREA, LARGE_AREA = 0.04, 0.12


def attribute_names() -> tuple[str, ...]:
    """Every attribute name the renderer writes, sorted: the datasets' attribute vocabulary."""
    names = {a for p in PALETTES.values() for a in p} | set(THING_ATTRIBUTES.values())
    names |= {a for v in STUFF_ATTRIBUTES.values() for a in v} | set(SIZE_ATTRIBUTES)
    return tuple(sorted(names))


def class_attributes() -> dict[str, tuple[str, ...]]:
    """Per class the attributes the renderer can write: its colours (sorted), then the sizes
    its box area range allows (``SIZE_ATTRIBUTES``: below ``SMALL_AREA`` small, above
    ``LARGE_AREA`` large); ``other`` takes none. A thing standing on the ground may have
    exactly the area at either end of its range (its perspective size is clipped there), and
    its box's area, computed from the corners, may round past a threshold at that end: such a
    range counts as crossing it."""
    table: dict[str, tuple[str, ...]] = {s: tuple(sorted(STUFF_ATTRIBUTES[s]))
                                         for s in STUFF_NAMES}
    for c in THING_CLASSES:
        colours = sorted(PALETTES[c.name]) if c.name in PALETTES else [THING_ATTRIBUTES[c.name]]
        lo, hi = c.area
        ends = c.placement == "ground"
        large = hi > LARGE_AREA or (ends and hi == LARGE_AREA)
        small = lo < SMALL_AREA or (ends and lo == SMALL_AREA)
        sizes = [n for n, ok in (("large", large), ("small", small)) if ok]
        table[c.name] = (*colours, *sizes)
    table[OTHER_NAME] = ()
    return table
