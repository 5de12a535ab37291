"""Rasterising a plan into an image with one annotation per visible region or thing.

``render_scene`` draws the stuff regions top to bottom and the things far to near; every
pixel belongs to exactly one annotation, so masks are visible pixels. ``generate_scene``
plans and renders image ``index`` of a split, redrawing until every thing is annotated and
the loader's filters keep 3 to 8 objects.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace

import numpy as np

from .classes import (
    CATEGORY_ID,
    MAX_OBJECTS,
    MIN_BOX_AREA,
    MIN_OBJECTS,
    STUFF_ATTRIBUTES,
    THING_BY_NAME,
    image_rng,
)
from .paint import Canvas, ThingPainter, block_mean
from .stuff import FINE_TEXTURES, TEXTURE
from .templates import ScenePlan, ThingPlacement, plan_scene
from .things import DRAW


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


def mask_bbox(mask: np.ndarray) -> list[float]:
    rows, cols = np.flatnonzero(mask.any(1)), np.flatnonzero(mask.any(0))
    return [float(cols[0]), float(rows[0]), float(cols[-1] - cols[0] + 1),
            float(rows[-1] - rows[0] + 1)]


def _draw_order(things: Sequence[ThingPlacement]) -> list[int]:
    """Sky things first, then things inside walls, then ground things far to near."""
    rank = {"sky": 0, "inside": 1, "ground": 2}
    return sorted(range(len(things)),
                  key=lambda i: (rank[THING_BY_NAME[things[i].name].placement], things[i].box[3]))


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
    canvas = Canvas(size, supersample)
    c = ((np.arange(size) + 0.5) / size).astype(np.float32)
    x, y = c[None, :], c[:, None]
    c2 = ((np.arange(2 * size) + 0.5) / (2 * size)).astype(np.float32)
    full = (slice(0, size), slice(0, size))
    for k, region in enumerate(plan.stuff):
        rng = np.random.default_rng(region.seed)
        cover = np.clip((y - region.top(x)) * size + 0.5, 0.0, 1.0)        # (S, S)
        if region.name in FINE_TEXTURES:     # thin lines: 2 x 2 samples per pixel
            tex = block_mean(TEXTURE[region.name](c2[None, :], c2[:, None], rng, region,
                                                  plan).astype(np.float32), 2)
        else:
            tex = TEXTURE[region.name](x, y, rng, region, plan)          # (S, S, 3)
        canvas.composite(full, cover.astype(np.float32), tex, k)
    n_stuff = len(plan.stuff)
    own: dict[int, int] = {}
    for i in _draw_order(plan.things):
        t = plan.things[i]
        painter = ThingPainter(canvas, t.box, n_stuff + i, t.flip)
        DRAW[t.name](painter, np.random.default_rng(t.seed), t)
        own[i] = int((painter.coverage >= 0.5).sum())
    image = np.clip(canvas.image * np.asarray(plan.light, np.float32), 0, 1)
    image = (image * 255 + 0.5).astype(np.uint8)
    anns = []
    for k, region in enumerate(plan.stuff):
        mask = canvas.label == k
        if mask.any():
            anns.append(SceneAnnotation(region.name, CATEGORY_ID[region.name], False, mask,
                                        mask_bbox(mask), STUFF_ATTRIBUTES[region.name]))
    for i, t in enumerate(plan.things):
        mask = canvas.label == n_stuff + i
        if mask.any():
            anns.append(SceneAnnotation(t.name, CATEGORY_ID[t.name], True, mask, mask_bbox(mask),
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
