"""What diversity the procedural data itself allows at a fixed layout: each scene's plan drawn
twice with redrawn looks, the two renders compared with the evaluation's mean pixel distance.

A model conditioned on a layout can only vary what the data varies at that layout; this is the
reference for its diversity figures. Three levels of look, each including the previous:

* ``texture``: new random seeds for every stuff texture and every thing's jitter and pattern,
  and a new global light tint: what varies with the layout (and the masks) held exactly fixed;
* ``colour``: also a new colour from the class's palette for things that have one (car, boat,
  house, person, umbrella), which the scene graph does not name;
* ``facing``: also a new left/right facing. This mirrors the thing inside its box, so its mask
  changes too: not a fixed layout at mask level, only at box level.
"""

from __future__ import annotations

import statistics
from dataclasses import replace
from typing import Any

import numpy as np
import torch

from ..data.shapes.classes import PALETTES
from ..data.shapes.render import generate_scene, render_scene
from ..data.shapes.templates import ScenePlan
from .diversity import mean_pixel_distance

LOOK_LEVELS = ("texture", "colour", "facing")


def redraw_looks(plan: ScenePlan, rng: np.random.Generator, level: str) -> ScenePlan:
    """The plan with its looks redrawn up to ``level`` (one of ``LOOK_LEVELS``); boxes and
    stuff edges unchanged."""
    stuff = tuple(replace(r, seed=int(rng.integers(2**31))) for r in plan.stuff)
    things = []
    for t in plan.things:
        new = replace(t, seed=int(rng.integers(2**31)))
        palette = PALETTES.get(t.name)
        if level in ("colour", "facing") and palette and t.attributes:
            colour = list(palette)[int(rng.integers(len(palette)))]
            new = replace(new, attributes=(colour, *t.attributes[1:]))
        if level == "facing":
            new = replace(new, flip=bool(rng.random() < 0.5))
        things.append(new)
    light = tuple(float(v) for v in 1.0 + rng.uniform(-0.06, 0.06, 3))
    return replace(plan, stuff=stuff, things=tuple(things), light=light)


def _to_tensor(image: np.ndarray) -> torch.Tensor:
    """(S, S, 3) uint8 -> (1, 3, S, S) in [-1, 1]."""
    return torch.from_numpy(image).permute(2, 0, 1)[None].float() / 127.5 - 1.0


def look_diversity(num: int, size: int, seed: int = 0, look_seed: int = 1) -> dict[str, Any]:
    """Draw each of the first ``num`` validation scenes' plans twice per level of look and
    compare the two renders.

    Args:
        num: validation scenes.
        size: image size S in pixels.
        seed: the dataset's seed (the shapes64 data: 0).
        look_seed: seeds the redrawn looks.

    Returns:
        ``{"num_scenes", "size", "seed", "look_seed", "levels": {level: {
        "mean_pixel_distance", "median", "std", "relabelled"}}}``: the mean, median and
        population standard deviation over scenes of ``mean |a - b| / 2`` (pixels in [0, 1]),
        and the mean fraction of pixels whose annotation differs between the two renders.

    Raises:
        ValueError: if ``num`` < 1.
    """

    if num < 1:
        raise ValueError(f"num must be at least 1, got {num}")
    rng = np.random.default_rng(look_seed)
    dist: dict[str, list[float]] = {k: [] for k in LOOK_LEVELS}
    relabel: dict[str, list[float]] = {k: [] for k in LOOK_LEVELS}
    for i in range(num):
        plan = generate_scene(seed, "val", i, size).plan
        for level in LOOK_LEVELS:
            a = render_scene(redraw_looks(plan, rng, level), size)
            b = render_scene(redraw_looks(plan, rng, level), size)
            dist[level].append(float(mean_pixel_distance(_to_tensor(a.image),
                                                         _to_tensor(b.image))[0]))
            relabel[level].append(float((a.label != b.label).mean()))
    levels = {level: {"mean_pixel_distance": statistics.fmean(dist[level]),
                      "median": statistics.median(dist[level]),
                      "std": statistics.pstdev(dist[level]),
                      "relabelled": statistics.fmean(relabel[level])}
              for level in LOOK_LEVELS}
    return {"num_scenes": num, "size": size, "seed": seed, "look_seed": look_seed,
            "levels": levels}
