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

Requests are validated on the event loop before they queue (``serve.requests``: a bad
request costs no inference); the work itself runs on the device's queue (``InferenceQueue``),
one forward pass at a time. Every error is a JSON body (``errors.APIError``); an unexpected
exception is logged with its traceback and answered with a 500 that carries no trace.
"""

from __future__ import annotations

import base64
import contextlib
import io
import logging
import math
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import ClientDisconnect, Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from .body import read_json_body
from .errors import APIError, edit_error, scene_graph_error, without_paths
from .guard import GuardMiddleware
from .hosts import AllowedHosts
from .models import ModelRegistry, ServedModel
from .queue import InferenceQueue, QueueFull
from .requests import (
    MAX_FIELD,
    Limits,
    Parsed,
    parse_export,
    parse_generate,
    parse_manipulate,
    served_model,
)

logger = logging.getLogger(__name__)

STATIC_DIR = Path(__file__).parent / "static"
LAYOUT_SIZE = 256
# Features of this server; the page shows their controls only when they are true. A feature
# that depends on the model is also reported per model (``GET /api/models``): resample_object
# needs per-object noise (model.renderer.noise=spatial).
FEATURES = {"resample_object": True}


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


def run_generate(p: Parsed, layout_only: bool = False) -> dict[str, Any]:
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


def _run_resample(p: Parsed) -> dict[str, Any]:
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


def run_manipulate(p: Parsed) -> dict[str, Any]:
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


def run_export(p: Parsed) -> dict[str, Any]:
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
        served = served_model(registry, {"model": request.query_params.get("model")})
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
