"""Validating the editor API's request bodies, before they queue: the fields each endpoint
takes, their bounds (``Limits``), and the graph, pins and edits parsed by the same code as the
command line. A bad request is an ``APIError`` naming the field, and costs no inference.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from ..files import short
from ..generate_args import MAX_SAMPLE
from .errors import APIError, edit_error, scene_graph_error
from .models import ModelRegistry, ServedModel

__all__ = ["DEFAULT_INCLUDE", "INCLUDE_CHOICES", "MAX_FIELD", "MAX_SEED", "Limits", "Parsed",
           "check_keys", "graph_field", "include_field", "int_field", "parse_export",
           "parse_generate", "parse_manipulate", "pinned", "resample_object_field",
           "served_model"]

MAX_SEED = 2**53 - 1          # exact in JavaScript numbers
MAX_FIELD = 80                # characters of a request's key named as an error's field
INCLUDE_CHOICES = ("image", "layout", "graph", "sheet")
DEFAULT_INCLUDE = ("image", "layout", "graph")


@dataclass(frozen=True)
class Limits:
    """What one request may ask for; beyond it the answer is a 4xx JSON error.

    Attributes:
        max_body_bytes: request body size (413 beyond).
        max_objects: objects per graph.
        max_relationships: relationships per graph.
        max_samples: images per ``/api/generate`` request.
        max_edits: edits per ``/api/manipulate`` request.
        max_waiting: requests that may wait per device while one runs (503 beyond).
        timeout_s: seconds a request waits for its result before a 503.
    """

    max_body_bytes: int = 256 * 1024
    max_objects: int = 32
    max_relationships: int = 256
    max_samples: int = 4
    max_edits: int = 64
    max_waiting: int = 8
    timeout_s: float = 60.0

    def __post_init__(self) -> None:
        for name, value in asdict(self).items():
            if not value > 0 and not (name == "max_waiting" and value == 0):
                raise ValueError(f"Limits.{name} must be positive, got {value!r}")


def check_keys(data: Mapping[str, Any], allowed: Sequence[str], endpoint: str) -> None:
    unknown = sorted(set(data) - set(allowed))
    if unknown:
        shown = ", ".join(short(k) for k in unknown[:5])
        more = f", ... {len(unknown) - 5} more" if len(unknown) > 5 else ""
        raise APIError(400, f"unknown keys [{shown}{more}] for {endpoint}; it takes "
                            f"{sorted(allowed)}", unknown[0][:MAX_FIELD])


def int_field(data: Mapping[str, Any], key: str, default: int | None, lo: int, hi: int,
               what: str) -> int | None:
    value = data.get(key, default)
    if value is None:
        return None
    if not isinstance(value, int) or isinstance(value, bool):
        raise APIError(400, f"{key} must be an integer {what}, got {short(value)}", key)
    if not lo <= value <= hi:
        raise APIError(400, f"{key} must be between {lo} and {hi}, got {short(value)}", key,
                       limit=hi)
    return value


def include_field(data: Mapping[str, Any]) -> tuple[str, ...]:
    inc = data.get("include", list(DEFAULT_INCLUDE))
    if not isinstance(inc, list) or not all(isinstance(x, str) for x in inc):
        raise APIError(400, f"include must be a list of names from {list(INCLUDE_CHOICES)}, "
                            f"got {short(inc)}", "include")
    bad = [x for x in inc if x not in INCLUDE_CHOICES]
    if bad:
        raise APIError(400, f"include: unknown parts {short(bad)}; choose from "
                            f"{list(INCLUDE_CHOICES)}", "include")
    return tuple(inc)


class Parsed:
    """A validated request: the model, the graph and the rest of its fields."""

    def __init__(self, served: ServedModel, graph: Any, **fields: Any) -> None:
        self.served, self.graph = served, graph
        self.__dict__.update(fields)


def served_model(registry: ModelRegistry, data: Mapping[str, Any]) -> ServedModel:
    mid = data.get("model")
    if mid is not None and not isinstance(mid, str):
        raise APIError(400, f"model must be a model id string, got {short(mid)}", "model")
    served = registry.get(mid)
    if served is None:
        raise APIError(400, f"unknown model {short(mid)}; this server has {registry.ids}",
                       "model", choices=registry.ids)
    return served


def graph_field(data: Mapping[str, Any], served: ServedModel, limits: Limits) -> Any:
    """The request's ``graph``, validated by the same parser as the command line."""
    from ..scene_graph import SceneGraph, SceneGraphError

    raw = data.get("graph")
    if raw is None:
        raise APIError(400, "the request needs a 'graph': {\"objects\": [...], "
                            "\"relationships\": [[s, \"predicate\", o], ...]}", "graph")
    if not isinstance(raw, dict):
        # Never a string: the library would read a string as a file path.
        raise APIError(400, f"graph must be a JSON object in sg2im's scene graph form, got "
                            f"{type(raw).__name__}", "graph")
    try:
        graph = SceneGraph.from_dict(raw, max_objects=limits.max_objects)
        graph.check_vocab(served.model.vocab)
    except SceneGraphError as e:
        err = scene_graph_error(e)
        if err.field == "graph.objects" and "maximum" in err.message:
            err.extra["limit"] = limits.max_objects
        raise err from None
    if len(graph.relationships) > limits.max_relationships:
        raise APIError(400, f"the scene graph has {len(graph.relationships)} relationships, "
                            f"more than this server's limit of {limits.max_relationships}",
                       "graph.relationships", limit=limits.max_relationships)
    return graph


def pinned(data: Mapping[str, Any], graph: Any) -> Any:
    """The graph with the request's ``boxes`` pinned (they replace the graph's own)."""
    from ..scene_graph import SceneGraph, SceneGraphError

    boxes = data.get("boxes")
    if boxes is None:
        return graph
    if not isinstance(boxes, list):
        raise APIError(400, "boxes must be a list with one [x0, y0, x1, y1] or null per object",
                       "boxes")
    try:
        return SceneGraph(graph.objects, graph.relationships,
                          tuple(None if b is None else b for b in boxes), graph.attributes)
    except SceneGraphError as e:
        err = scene_graph_error(e, parent="")
        err.field = err.field or "boxes"
        raise err from None
    except TypeError as e:
        text = str(e) if len(str(e)) <= 300 else str(e)[:297] + "..."
        raise APIError(400, text, "boxes", detail=text) from None


def resample_object_field(data: Mapping[str, Any], served: ServedModel, graph: Any
                          ) -> list[int] | None:
    """The request's ``resample_object``: the object indices whose noise the samples after
    the first redraw (sorted, without repeats), or None."""
    value = data.get("resample_object")
    if value is None:
        return None
    items = value if isinstance(value, list) else [value]
    if not items or not all(isinstance(v, int) and not isinstance(v, bool) for v in items):
        raise APIError(400, f"resample_object must be an object index or a non-empty list of "
                            f"object indices, got {short(value)}", "resample_object")
    if not served.model.object_noise_dim:
        noise = served.model.config.model.renderer.noise
        raise APIError(400, f"resample_object needs a model trained with "
                            f"model.renderer.noise=spatial (per-object noise); model "
                            f"{served.id!r} uses {noise!r} noise (GET /api/models says which "
                            f"models have resample_object)", "resample_object")
    n = len(graph.objects)
    for v in items:
        if not 0 <= v < n:
            raise APIError(400, f"resample_object {short(v)} is out of range; the graph has "
                                f"{n} objects (0..{n - 1})", "resample_object")
    return sorted(set(items))


def parse_generate(data: Mapping[str, Any], registry: ModelRegistry, limits: Limits,
                   endpoint: str = "/api/generate") -> Parsed:
    allowed = ["model", "graph", "boxes", "seed", "sample", "num_samples", "include",
               "resample_object"]
    if endpoint == "/api/layout":
        allowed = ["model", "graph", "boxes", "seed", "sample", "include"]
    check_keys(data, allowed, endpoint)
    served = served_model(registry, data)
    graph = pinned(data, graph_field(data, served, limits))
    num_samples = int_field(data, "num_samples", 1, 1, limits.max_samples, "number of images")
    return Parsed(served, graph,
                   seed=int_field(data, "seed", None, 0, MAX_SEED, "seed"),
                   sample=int_field(data, "sample", 0, 0, MAX_SAMPLE - num_samples + 1,
                                     "sample"),
                   num_samples=num_samples,
                   include=include_field(data),
                   resample_object=resample_object_field(data, served, graph))


def parse_manipulate(data: Mapping[str, Any], registry: ModelRegistry,
                     limits: Limits) -> Parsed:
    from ..edits import EditError, apply_edits, load_edits
    from ..manipulation import check_edits_fit_model

    check_keys(data, ["model", "graph", "boxes", "edits", "seed", "sample", "include"],
                "/api/manipulate")
    served = served_model(registry, data)
    graph = pinned(data, graph_field(data, served, limits))
    edits = data.get("edits")
    if not isinstance(edits, list) or not edits:
        raise APIError(400, "edits must be a non-empty list of edits, e.g. [{\"op\": "
                            "\"remove\", \"index\": 2}]", "edits")
    if len(edits) > limits.max_edits:
        raise APIError(400, f"{len(edits)} edits, more than this server's limit of "
                            f"{limits.max_edits}; generate the edited graph afresh to start "
                            f"a new chain", "edits", limit=limits.max_edits)
    try:
        edit_list = load_edits(edits)
        steps = apply_edits(graph, edit_list, served.model.vocab, max_objects=limits.max_objects,
                            max_relationships=limits.max_relationships)
        check_edits_fit_model(steps, served.model)
    except EditError as e:
        err = edit_error(e)
        if e.limit is not None:     # an edit made a graph past this server's limits
            err.extra["limit"] = e.limit
        raise err from None
    return Parsed(served, graph, edits=edit_list,
                   seed=int_field(data, "seed", None, 0, MAX_SEED, "seed"),
                   sample=int_field(data, "sample", 0, 0, MAX_SAMPLE, "sample"),
                   include=include_field(data))


def parse_export(data: Mapping[str, Any], registry: ModelRegistry, limits: Limits) -> Parsed:
    from ..layout_export import EXPORT_FORMATS

    check_keys(data, ["model", "graph", "boxes", "seed", "sample", "format"], "/api/export")
    served = served_model(registry, data)
    graph = pinned(data, graph_field(data, served, limits))
    fmt = data.get("format")
    if not isinstance(fmt, str) or fmt not in EXPORT_FORMATS:
        raise APIError(400, f"format must be one of {list(EXPORT_FORMATS)}, got {short(fmt)}",
                       "format", choices=list(EXPORT_FORMATS))
    return Parsed(served, graph, format=fmt,
                   seed=int_field(data, "seed", None, 0, MAX_SEED, "seed"),
                   sample=int_field(data, "sample", 0, 0, MAX_SAMPLE, "sample"))


