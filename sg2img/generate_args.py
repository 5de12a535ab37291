"""The arguments of ``generate`` that go per graph, checked and spread over the graphs.

``boxes``, ``attributes`` and ``resample_object`` each take one entry per graph, or for a
single graph its entry alone; the functions here tell the two forms apart, check every
entry, and return the graphs (or rows) that ``generate`` runs. ``GenerationError`` is the
error of a bad argument to ``generate`` / ``manipulate``.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

from .files import short
from .scene_graph import SceneGraph, SceneGraphError

__all__ = ["DEFAULT_MAX_IMAGES", "MAX_IMAGES_ENV", "MAX_SAMPLE", "GenerationError",
           "apply_attributes", "apply_boxes", "check_image_count", "check_sample_number",
           "max_images", "resample_rows"]

MAX_IMAGES_ENV = "SG2IMG_MAX_IMAGES"
DEFAULT_MAX_IMAGES = 2048
"""Images (graphs x samples) one ``generate`` call makes: all are held until it returns."""


class GenerationError(ValueError):
    """A bad argument to ``generate`` / ``manipulate`` (device, sizes, boxes, model).

    Args:
        message: names the bad value and how to fix it.
        graph: when the error is about one graph of the list, its position; the message then
            starts with ``graph {graph}: ``.
    """

    def __init__(self, message: str, *, graph: int | None = None) -> None:
        super().__init__(message)
        self.graph = graph


def max_images() -> int:
    """The most images one ``generate`` call makes: ``$SG2IMG_MAX_IMAGES`` (default 2048)."""
    raw = os.environ.get(MAX_IMAGES_ENV, "").strip()
    if not raw:
        return DEFAULT_MAX_IMAGES
    try:
        value = int(raw)
    except ValueError:
        raise GenerationError(f"${MAX_IMAGES_ENV} must be a whole number of images, got "
                              f"{short(raw)}") from None
    if value < 1:
        raise GenerationError(f"${MAX_IMAGES_ENV} must be positive, got {short(raw)}")
    return value


def check_image_count(num_graphs: int, num_samples: int, samples_flag: str = "num_samples"
                      ) -> None:
    """Raise ``GenerationError`` when ``num_graphs * num_samples`` is over :func:`max_images`.

    Every image of a call is held in memory until it returns, so the count is bounded before
    anything is generated. ``samples_flag`` names the samples argument in the message.
    """
    limit, total = max_images(), num_graphs * num_samples
    if total > limit:
        raise GenerationError(
            f"{num_graphs} graph{'s' * (num_graphs != 1)} x {num_samples} sample"
            f"{'s' * (num_samples != 1)} make {total} images, more than the {limit} one call "
            f"holds in memory; split the graphs over several calls, lower {samples_flag}, or "
            f"raise the limit with ${MAX_IMAGES_ENV}")


MAX_SAMPLE = 2**32 - 1   # the largest sample number


def check_sample_number(first_sample: Any, num_samples: int, flag: str = "first_sample") -> None:
    """Raise ``GenerationError`` unless samples ``first_sample .. + num_samples - 1`` are
    sample numbers (integers in 0..2**32 - 1)."""
    if not _is_index(first_sample) or not 0 <= first_sample <= MAX_SAMPLE - num_samples + 1:
        raise GenerationError(f"{flag} must be a sample number, an integer in 0..{MAX_SAMPLE}"
                              f" (with {num_samples} sample{'s' * (num_samples != 1)} from "
                              f"it), got {short(first_sample)}")


def _is_index(x: Any) -> bool:
    return isinstance(x, int) and not isinstance(x, bool)


def resample_rows(value: Any, graphs: list[SceneGraph]) -> list[tuple[int, ...]] | None:
    """Per graph, the sorted object indices whose noise ``resample_object`` redraws (None
    when it is None); see ``generate`` for the accepted forms."""
    if value is None:
        return None
    if hasattr(value, "tolist"):
        value = value.tolist()
    form = ("resample_object must be an object index, a list of object indices, or one "
            "entry (an index, a list of indices or None) per graph")
    if _is_index(value):
        per_graph: list | tuple = [[value]] * len(graphs)
    elif isinstance(value, (list, tuple)):
        if not value:
            raise GenerationError("resample_object is an empty list; give at least one object "
                                  "index, or None to resample nothing")
        if all(_is_index(v) for v in value):
            per_graph = [value] * len(graphs)             # the same objects in every graph
        else:
            per_graph = _per_graph(value, graphs, lambda v: False, "resample_object",
                                   "object indices (or null)")
    else:
        raise GenerationError(f"{form}, got {short(value)}")
    out = []
    for i, (g, entry) in enumerate(zip(graphs, per_graph, strict=True)):
        if entry is None:
            out.append(())
            continue
        items = [entry] if _is_index(entry) else entry
        if not isinstance(items, (list, tuple)) or not all(_is_index(v) for v in items):
            raise GenerationError(f"graph {i}: resample_object entry must be an object index, "
                                  f"a list of object indices or None, got {short(entry)}",
                                  graph=i)
        n = len(g.objects)
        for v in items:
            if not 0 <= v < n:
                raise GenerationError(f"graph {i}: resample_object {v} is out of range; the "
                                      f"graph has {n} objects (0..{n - 1})", graph=i)
        out.append(tuple(sorted(set(items))))
    return out



def _is_box_entry(x: Any) -> bool:
    return x is None or (isinstance(x, (list, tuple)) and len(x) == 4 and
                         all(isinstance(v, (int, float)) for v in x))


def apply_boxes(graphs: list[SceneGraph], boxes: Any) -> list[SceneGraph]:
    """Graphs with ``boxes`` pinned (one list of box-or-None per graph, or one list for one
    graph)."""
    if boxes is None:
        return graphs
    if hasattr(boxes, "tolist"):
        boxes = boxes.tolist()
    if not isinstance(boxes, (list, tuple)):
        raise GenerationError(f"boxes must be a list of [x0, y0, x1, y1] (or null) per object, "
                              f"got {type(boxes).__name__}")
    per_graph = _per_graph(boxes, graphs, _is_box_entry, "boxes", "boxes")
    out = []
    for i, (g, bx) in enumerate(zip(graphs, per_graph, strict=True)):
        if bx is None:
            out.append(g)
            continue
        if hasattr(bx, "tolist"):
            bx = bx.tolist()
        try:
            out.append(SceneGraph(g.objects, g.relationships, tuple(bx), g.attributes))
        except SceneGraphError as e:
            raise e.located(f"boxes for graph {i}") from None
    return out


def _per_graph(values: list | tuple, graphs: list[SceneGraph], is_entry: Callable[[Any], bool],
               name: str, what: str) -> list | tuple:
    """One entry per graph: ``values`` itself when it is the per-object list of a single graph
    (every item passes ``is_entry``), else ``values`` checked to have one entry per graph."""
    if len(graphs) == 1 and values and all(is_entry(v) for v in values):
        return [values]
    if len(values) != len(graphs):
        raise GenerationError(f"{name} has {len(values)} entries for {len(graphs)} graphs; "
                              f"give one list of {what} per graph")
    return values


def _is_attribute_list(x: Any) -> bool:
    return isinstance(x, (list, tuple)) and all(isinstance(a, str) for a in x)


def apply_attributes(graphs: list[SceneGraph], attributes: Any) -> list[SceneGraph]:
    """Graphs with new ``attributes`` (per graph one list of names per object, or for one
    graph that list alone)."""
    if attributes is None:
        return graphs
    if not isinstance(attributes, (list, tuple)):
        raise GenerationError(f"attributes must be a list with one list of attribute names per "
                              f"object, got {type(attributes).__name__}")
    per_graph = _per_graph(attributes, graphs, _is_attribute_list, "attributes",
                           "attribute lists")
    out = []
    for i, (g, at) in enumerate(zip(graphs, per_graph, strict=True)):
        if at is None:
            out.append(g)
            continue
        if not isinstance(at, (list, tuple)) or not all(_is_attribute_list(a) for a in at):
            raise GenerationError(f"attributes for graph {i} must be one list of attribute "
                                  f"names per object, got {at!r}")
        try:
            out.append(SceneGraph(g.objects, g.relationships, g.boxes,
                                  tuple(tuple(a) for a in at)))
        except SceneGraphError as e:
            raise e.located(f"attributes for graph {i}") from None
    return out
