"""The ASGI app behind ``sg2img serve``: the editor page and its JSON API.

Starlette, not FastAPI: the request bodies are scene graphs and edits that
``sg2img.scene_graph`` and ``sg2img.edits`` already validate, with messages that name the bad
field and the closest vocabulary names; a second, pydantic layer would only add a dependency
and a different wording of the same errors. Everything the page does goes through these
endpoints (see ``README.md``, "Interactive editor"):

================  ===========================================================================
endpoint          does
================  ===========================================================================
GET  /api/models  the models offered (ids, sizes, ``resample_object``), limits, features
GET  /api/vocab   ``?model=ID``: the model's names (``Vocab.describe()``): ``objects``,
                  ``things``, ``stuff``, ``predicates``, ``attributes``, ``class_attributes``
POST /api/generate  a graph (+ pinned ``boxes``, ``seed``, ``sample``, ``num_samples``,
                  ``resample_object``) -> images, layout
POST /api/layout  a graph (+ ``boxes``, ``seed``, ``sample``) -> the boxes and the layout
                  drawing, no image
POST /api/manipulate  a graph (+ ``boxes``), ``edits``, ``seed`` and ``sample`` -> the image
                  after the edits, starting from that sample's picture
POST /api/export  a graph (+ ``boxes``, ``seed``, ``sample``) and a ``format`` (gligen, seg,
                  coco) -> the layout ``/api/generate`` draws as files for other renderers
                  (``files``: ``name``, ``media_type``, ``data``: base64 for PNG, the text
                  for JSON)
================  ===========================================================================

Requests are validated on the event loop before they queue (a bad request costs no
inference); the work itself runs on the device's queue (``InferenceQueue``), one forward
pass at a time. Every error is a JSON body (``errors.APIError``); an unexpected exception is
logged with its traceback and answered with a 500 that carries no trace.
"""

from __future__ import annotations

import base64
import contextlib
import io
import logging
import math
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import ClientDisconnect, Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from ..files import short
from ..generate_args import MAX_SAMPLE
from .body import read_json_body
from .errors import APIError, edit_error, scene_graph_error, without_paths
from .guard import GuardMiddleware
from .hosts import AllowedHosts
from .models import ModelRegistry, ServedModel
from .queue import InferenceQueue, QueueFull

logger = logging.getLogger(__name__)

STATIC_DIR = Path(__file__).parent / "static"
MAX_SEED = 2**53 - 1          # exact in JavaScript numbers
MAX_FIELD = 80                # characters of a request's key named as an error's field
LAYOUT_SIZE = 256
INCLUDE_CHOICES = ("image", "layout", "graph", "sheet")
DEFAULT_INCLUDE = ("image", "layout", "graph")
# Features of this server; the page shows their controls only when they are true. A feature
# that depends on the model is also reported per model (``GET /api/models``): resample_object
# needs per-object noise (model.renderer.noise=spatial).
FEATURES = {"resample_object": True}


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


# --------------------------------------------------------------------------- request parsing
def _check_keys(data: Mapping[str, Any], allowed: Sequence[str], endpoint: str) -> None:
    unknown = sorted(set(data) - set(allowed))
    if unknown:
        shown = ", ".join(short(k) for k in unknown[:5])
        more = f", ... {len(unknown) - 5} more" if len(unknown) > 5 else ""
        raise APIError(400, f"unknown keys [{shown}{more}] for {endpoint}; it takes "
                            f"{sorted(allowed)}", unknown[0][:MAX_FIELD])


def _int_field(data: Mapping[str, Any], key: str, default: int | None, lo: int, hi: int,
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


def _include(data: Mapping[str, Any]) -> tuple[str, ...]:
    inc = data.get("include", list(DEFAULT_INCLUDE))
    if not isinstance(inc, list) or not all(isinstance(x, str) for x in inc):
        raise APIError(400, f"include must be a list of names from {list(INCLUDE_CHOICES)}, "
                            f"got {short(inc)}", "include")
    bad = [x for x in inc if x not in INCLUDE_CHOICES]
    if bad:
        raise APIError(400, f"include: unknown parts {short(bad)}; choose from "
                            f"{list(INCLUDE_CHOICES)}", "include")
    return tuple(inc)


class _Parsed:
    """A validated request: the model, the graph and the rest of its fields."""

    def __init__(self, served: ServedModel, graph: Any, **fields: Any) -> None:
        self.served, self.graph = served, graph
        self.__dict__.update(fields)


def _model(registry: ModelRegistry, data: Mapping[str, Any]) -> ServedModel:
    mid = data.get("model")
    if mid is not None and not isinstance(mid, str):
        raise APIError(400, f"model must be a model id string, got {short(mid)}", "model")
    served = registry.get(mid)
    if served is None:
        raise APIError(400, f"unknown model {short(mid)}; this server has {registry.ids}",
                       "model", choices=registry.ids)
    return served


def _graph(data: Mapping[str, Any], served: ServedModel, limits: Limits) -> Any:
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


def _pinned(data: Mapping[str, Any], graph: Any) -> Any:
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


def _resample_object(data: Mapping[str, Any], served: ServedModel, graph: Any) -> list[int] | None:
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
                   endpoint: str = "/api/generate") -> _Parsed:
    allowed = ["model", "graph", "boxes", "seed", "sample", "num_samples", "include",
               "resample_object"]
    if endpoint == "/api/layout":
        allowed = ["model", "graph", "boxes", "seed", "sample", "include"]
    _check_keys(data, allowed, endpoint)
    served = _model(registry, data)
    graph = _pinned(data, _graph(data, served, limits))
    num_samples = _int_field(data, "num_samples", 1, 1, limits.max_samples, "number of images")
    return _Parsed(served, graph,
                   seed=_int_field(data, "seed", None, 0, MAX_SEED, "seed"),
                   sample=_int_field(data, "sample", 0, 0, MAX_SAMPLE - num_samples + 1,
                                     "sample"),
                   num_samples=num_samples,
                   include=_include(data), resample_object=_resample_object(data, served, graph))


def parse_manipulate(data: Mapping[str, Any], registry: ModelRegistry,
                     limits: Limits) -> _Parsed:
    from ..edits import EditError, apply_edits, load_edits
    from ..manipulation import check_edits_fit_model

    _check_keys(data, ["model", "graph", "boxes", "edits", "seed", "sample", "include"],
                "/api/manipulate")
    served = _model(registry, data)
    graph = _pinned(data, _graph(data, served, limits))
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
    return _Parsed(served, graph, edits=edit_list,
                   seed=_int_field(data, "seed", None, 0, MAX_SEED, "seed"),
                   sample=_int_field(data, "sample", 0, 0, MAX_SAMPLE, "sample"),
                   include=_include(data))


def parse_export(data: Mapping[str, Any], registry: ModelRegistry, limits: Limits) -> _Parsed:
    from ..layout_export import EXPORT_FORMATS

    _check_keys(data, ["model", "graph", "boxes", "seed", "sample", "format"], "/api/export")
    served = _model(registry, data)
    graph = _pinned(data, _graph(data, served, limits))
    fmt = data.get("format")
    if not isinstance(fmt, str) or fmt not in EXPORT_FORMATS:
        raise APIError(400, f"format must be one of {list(EXPORT_FORMATS)}, got {short(fmt)}",
                       "format", choices=list(EXPORT_FORMATS))
    return _Parsed(served, graph, format=fmt,
                   seed=_int_field(data, "seed", None, 0, MAX_SEED, "seed"),
                   sample=_int_field(data, "sample", 0, 0, MAX_SAMPLE, "sample"))


# --------------------------------------------------------------------------- rendering
def _png(image: Any) -> str:
    buf = io.BytesIO()
    image.save(buf, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def _hex(rgb: tuple[int, int, int]) -> str:
    return "#{:02x}{:02x}{:02x}".format(*rgb)


def _objects(graph: Any, boxes: Any, vocab: Any) -> list[dict[str, Any]]:
    from .. import vis

    pins = graph.boxes or (None,) * len(graph.objects)
    return [{"index": i, "name": name, "box": [round(float(v), 5) for v in boxes[i]],
             "pinned": pins[i] is not None, "color": _hex(vis.name_color(name, vocab))}
            for i, name in enumerate(graph.objects)]


def _pictures(graph: Any, boxes: Any, masks: Any, image: Any, vocab: Any,
              include: Sequence[str]) -> dict[str, str]:
    """Data URLs of the layout drawings, the graph drawing and the sheet asked for."""
    from .. import vis

    out: dict[str, str] = {}
    ids = [vocab.object_idx(n) for n in graph.objects]
    labels = graph.object_labels()          # "red car": names with their attributes
    layout = graph_im = None
    if "layout" in include or "sheet" in include:
        layout = vis.draw_layout(boxes, masks, labels, LAYOUT_SIZE, class_ids=ids)
    if "layout" in include:
        out["layout"] = _png(layout)
        out["layout_masks"] = _png(vis.draw_layout(boxes, masks, labels, LAYOUT_SIZE,
                                                   class_ids=ids, draw_boxes=False,
                                                   draw_labels=False))
    if "graph" in include or "sheet" in include:
        graph_im = vis.draw_scene_graph(graph, vocab, rankdir="TB")
    if "graph" in include:
        out["graph_image"] = _png(graph_im)
    if "sheet" in include:
        out["sheet"] = _png(vis.make_sheet([[graph_im, layout, image]],
                                           ["graph", "layout", "image"],
                                           cell_height=LAYOUT_SIZE))
    return out


def run_generate(p: _Parsed, layout_only: bool = False) -> dict[str, Any]:
    """Work of ``/api/generate`` and ``/api/layout`` (on the device's worker thread).

    The images are samples ``sample .. sample + num_samples - 1`` of one seed (the seed
    rule of ``sg2img.noise``), each reproduced by ``sg2img generate --seed S --sample K`` and
    edited further from ``/api/manipulate`` with the same seed and sample. With
    ``resample_object`` sample 0 is the plain image, samples 1.. other looks of those objects
    (``generate(..., resample_object=...)``, ``sg2img generate --resample-object``).
    """
    from .. import generate

    model, vocab = p.served.model, p.served.model.vocab
    if p.resample_object is not None and not layout_only:
        return _run_resample(p)
    count = 1 if layout_only else p.num_samples
    res = generate(p.graph, model, seed=p.seed, num_samples=count, first_sample=p.sample)
    out: dict[str, Any] = {"model": p.served.id, "graph": p.graph.to_dict(),
                           "image_size": model.image_size, "seed": res.seed,
                           "sample": p.sample, "objects": _objects(p.graph, res.boxes[0], vocab)}
    if layout_only:
        out.update(_pictures(p.graph, res.boxes[0], res.masks[0], None, vocab,
                             [x for x in p.include if x in ("layout", "graph")]))
        return out
    out["samples"] = [{"seed": res.seed, "sample": k,
                       **({"image": _png(im)} if "image" in p.include else {})}
                      for k, im in zip(res.sample_index, res.images, strict=True)]
    if "image" in p.include:
        out["image"] = out["samples"][0]["image"]
    out.update(_pictures(p.graph, res.boxes[0], res.masks[0], res.images[0], vocab,
                         p.include))
    return out


def _run_resample(p: _Parsed) -> dict[str, Any]:
    """``/api/generate`` with ``resample_object``: one call, the samples share the seed."""
    from .. import generate

    model, vocab = p.served.model, p.served.model.vocab
    res = generate(p.graph, model, seed=p.seed, num_samples=p.num_samples,
                   first_sample=p.sample, resample_object=p.resample_object)
    out: dict[str, Any] = {"model": p.served.id, "graph": p.graph.to_dict(),
                           "image_size": model.image_size, "seed": res.seed,
                           "resample_object": p.resample_object,
                           "objects": _objects(p.graph, res.boxes[0], vocab)}
    out["samples"] = [{"seed": res.seed, "sample": k,
                       **({"image": _png(im)} if "image" in p.include else {})}
                      for k, im in zip(res.sample_index, res.images, strict=True)]
    if "image" in p.include:
        out["image"] = out["samples"][0]["image"]
    out.update(_pictures(p.graph, res.boxes[0], res.masks[0], res.images[0], vocab,
                         p.include))
    return out


def run_manipulate(p: _Parsed) -> dict[str, Any]:
    """Work of ``/api/manipulate`` (on the device's worker thread)."""
    from .. import manipulate

    vocab = p.served.model.vocab
    res = manipulate(p.graph, p.edits, p.served.model, seed=p.seed, sample=p.sample)
    final = res.graphs[-1]
    steps = []
    for k, step in enumerate(res.steps):
        inside, outside = res.change(k)
        steps.append({"description": step.description,
                      "change_inside": None if math.isnan(inside) else round(inside, 5),
                      "change_outside": None if math.isnan(outside) else round(outside, 5)})
    out: dict[str, Any] = {"model": p.served.id, "seed": res.seed, "sample": res.sample,
                           "graph": final.to_dict(),
                           "image_size": p.served.model.image_size, "steps": steps,
                           "objects": _objects(final, res.boxes[-1], vocab)}
    if "image" in p.include:
        out["image"] = _png(res.images[-1])
    out.update(_pictures(final, res.boxes[-1], res.masks[-1], res.images[-1], vocab,
                         p.include))
    return out


def run_export(p: _Parsed) -> dict[str, Any]:
    """Work of ``/api/export``: the layout ``/api/generate`` draws for the same graph, seed
    and sample, as the files ``sg2img layout --format`` writes (named ``layout_*``)."""
    from .. import generate
    from ..layout_export import layout_files

    res = generate(p.graph, p.served.model, seed=p.seed, first_sample=p.sample,
                   return_layout=True)
    files = layout_files(res, p.format, names=["layout"])
    return {"model": p.served.id, "seed": res.seed, "sample": p.sample, "format": p.format,
            "files": [{"name": f.name, "media_type": f.media_type,
                       "data": (base64.b64encode(f.data).decode("ascii")
                                if f.media_type == "image/png" else f.data.decode("utf-8"))}
                      for f in files]}


# --------------------------------------------------------------------------- app
def _json(body: Any, status: int = 200, headers: Mapping[str, str] | None = None) -> Response:
    return JSONResponse(body, status, headers={"Cache-Control": "no-store", **(headers or {})})


def _error(err: APIError, paths: Mapping[str, str]) -> Response:
    err = without_paths(err, paths)
    return _json(err.body(), err.status, err.headers)


async def client_gone(request: Request, exc: Exception) -> Response:
    """The client left (or was closed for being slow) before its whole body arrived: nobody is
    left to answer, and it is no server error, so a debug line and no traceback."""
    logger.debug("client left before sending its whole body: %s %s", request.method,
                 request.url.path)
    return Response(status_code=400)


def create_app(registry: ModelRegistry, limits: Limits | None = None, *,
               allowed_hosts: Sequence[str] | AllowedHosts | None = None) -> Starlette:
    """The ASGI app serving the editor page and the JSON API.

    Args:
        registry: the models to offer (``load_registry``).
        limits: request limits; the defaults of ``Limits`` when None.
        allowed_hosts: the hosts to answer (``NAME`` or ``NAME:PORT``, see
            ``hosts.AllowedHosts``); requests with another ``Host``, or an ``Origin`` from
            another host, are refused, so that no other web page can drive the server (DNS
            rebinding). None accepts any, for a caller whose own server checks them;
            ``EditorServer`` passes ``AllowedHosts.for_binding`` for every binding.

    Returns:
        A Starlette app; ``app.state.queues`` maps each device to its ``InferenceQueue``.
    """
    limits = limits or Limits()
    if allowed_hosts is not None and not isinstance(allowed_hosts, AllowedHosts):
        allowed_hosts = AllowedHosts(allowed_hosts)
    # Error messages name the models' files (for the command line); clients see the labels.
    paths = {m.model.source: m.label for m in registry if m.model.source}
    queues = {dev: InferenceQueue(dev, limits.max_waiting, limits.timeout_s)
              for dev in registry.devices}

    async def queued(served: ServedModel, fn: Callable[[], Any]) -> Response:
        queue = queues[str(served.model.device)]
        from ..api import GenerationError
        from ..checkpoint import CheckpointError
        from ..edits import EditError
        from ..layout_export import LayoutExportError
        from ..scene_graph import SceneGraphError

        try:
            return _json(await queue.run(fn))
        except EditError as e:
            return _error(edit_error(e), paths)
        except SceneGraphError as e:
            return _error(scene_graph_error(e), paths)
        except (GenerationError, CheckpointError, LayoutExportError) as e:
            return _error(APIError(400, str(e)), paths)
        except QueueFull as e:
            return _error(APIError(503, str(e), retry_after=e.retry_after,
                                   headers={"Retry-After": str(e.retry_after)}), paths)

    async def page(request: Request) -> Response:
        return FileResponse(STATIC_DIR / "index.html", headers=_PAGE_HEADERS)

    async def models(request: Request) -> Response:
        return _json({"default": registry.default_id,
                      "models": [m.describe() for m in registry],
                      "limits": asdict(limits), "features": FEATURES,
                      "queues": {d: {"pending": q.pending, "capacity": q.capacity}
                                 for d, q in queues.items()}})

    async def vocab(request: Request) -> Response:
        served = _model(registry, {"model": request.query_params.get("model")})
        return _json({"model": served.id, **served.model.vocab.describe()})

    async def generate_ep(request: Request) -> Response:
        p = parse_generate(await read_json_body(request, limits.max_body_bytes), registry,
                           limits)
        return await queued(p.served, lambda: run_generate(p))

    async def layout_ep(request: Request) -> Response:
        p = parse_generate(await read_json_body(request, limits.max_body_bytes), registry,
                           limits, "/api/layout")
        return await queued(p.served, lambda: run_generate(p, layout_only=True))

    async def manipulate_ep(request: Request) -> Response:
        p = parse_manipulate(await read_json_body(request, limits.max_body_bytes), registry,
                             limits)
        return await queued(p.served, lambda: run_manipulate(p))

    async def export_ep(request: Request) -> Response:
        p = parse_export(await read_json_body(request, limits.max_body_bytes), registry, limits)
        return await queued(p.served, lambda: run_export(p))

    async def api_error(request: Request, exc: APIError) -> Response:
        return _error(exc, paths)

    async def http_error(request: Request, exc: HTTPException) -> Response:
        path = request.url.path
        where = path if len(path) <= MAX_FIELD else path[:MAX_FIELD - 3] + "..."
        msg = {404: f"no such page or endpoint: {where}",
               405: f"{request.method[:MAX_FIELD]} is not allowed on {where}"}
        return _json({"error": {"message": msg.get(exc.status_code, str(exc.detail)),
                                "field": None}}, exc.status_code, exc.headers)

    async def internal_error(request: Request, exc: Exception) -> Response:
        ref = uuid.uuid4().hex[:8]
        logger.error("internal error %s on %s %s", ref, request.method, request.url.path,
                     exc_info=exc)
        return _json({"error": {"message": f"internal error (reference {ref}); the server "
                                           f"log has the details", "field": None}}, 500)

    routes = [
        Route("/", page),
        Route("/api/models", models),
        Route("/api/vocab", vocab),
        Route("/api/generate", generate_ep, methods=["POST"]),
        Route("/api/layout", layout_ep, methods=["POST"]),
        Route("/api/manipulate", manipulate_ep, methods=["POST"]),
        Route("/api/export", export_ep, methods=["POST"]),
        Mount("/static", StaticFiles(directory=STATIC_DIR), name="static"),
    ]
    middleware = [Middleware(GuardMiddleware, allowed=allowed_hosts)]

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette):
        yield
        for q in queues.values():
            q.close()

    app = Starlette(routes=routes, middleware=middleware, lifespan=lifespan,
                    exception_handlers={APIError: api_error, HTTPException: http_error,
                                        ClientDisconnect: client_gone,
                                        Exception: internal_error})
    app.state.queues = queues
    app.state.registry = registry
    app.state.limits = limits
    return app


# The page's Content-Security-Policy and nosniff are on every response (guard.py).
_PAGE_HEADERS = {"Cache-Control": "no-cache"}
