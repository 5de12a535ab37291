"""Raw Visual Genome records (objects, relationships, attributes) for a rendered scene.

They are what ``data_tools/preprocess_vg.py`` reads, so the procedural scenes also exercise
the Visual Genome pipeline, alias files included.
"""

from __future__ import annotations

import numpy as np

from ...vocab import COCO_PREDICATES
from ..common import spatial_predicate
from .classes import THING_BY_NAME
from .render import RenderedScene, SceneAnnotation
from .templates import stuff_index_at


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


OBJECT_ALIASES = {"person": ("man", "woman"), "car": ("automobile",), "sheep": ("lamb",),
                  "airplane": ("plane",), "boat": ("sailboat",), "tree": ("oak",),
                  "road": ("street",), "grass": ("lawn",)}
REL_ALIASES = {"on": ("on top of", "standing on"), "in": ("inside of",),
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
        if name in OBJECT_ALIASES and rng.random() < 0.2:
            aliases = OBJECT_ALIASES[name]
            name = aliases[int(rng.integers(len(aliases)))]
        x, y, w, h = (int(v) for v in a.bbox)
        oid = first_object_id + j
        ids.append(oid)
        objects.append({"object_id": oid, "x": x, "y": y, "w": w, "h": h, "names": [name],
                        "synsets": []})

    def ref(j: int) -> dict:
        return {k: objects[j][k] for k in ("object_id", "x", "y", "w", "h", "names")}

    def pred(p: str) -> str:
        if p in REL_ALIASES and rng.random() < 0.2:
            return REL_ALIASES[p][int(rng.integers(len(REL_ALIASES[p])))]
        return p.upper() if rng.random() < 0.05 else p

    rels = []
    stuff_at = {a.name: j for j, a in enumerate(anns) if not a.isthing}
    for j, a in enumerate(anns):
        if a.isthing and a.placement is not None:
            cls = THING_BY_NAME[a.name]
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
              and THING_BY_NAME[a.name].placement == "ground"]
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
