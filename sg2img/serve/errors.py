"""Errors the server answers with: an HTTP status and a JSON body the page can place.

Every error body is ``{"error": {"message": ..., "field": ..., ...}}``. ``field`` names the
request field that caused it (``"graph.objects[2]"``, ``"graph.relationships[0].predicate"``,
``"edits[1].object"``, ``"num_samples"``) or is null; an unknown name also carries
``"suggestions"``, the closest names in the model's vocabulary, and graph and edit errors
``"detail"``, the message without its location prefix.

Graph and edit errors come from the library's ``SceneGraphError`` / ``EditError``, whose
``field``, ``suggestions`` and ``detail`` attributes say all this; the message is passed on
as it is, except that the server names a model by its label, never by its file
(:func:`without_paths`), and no message is longer than :data:`MAX_MESSAGE` characters.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..edits import EditError
    from ..scene_graph import SceneGraphError

MAX_MESSAGE = 1000   # characters of an error message or detail; user values inside are shorter

class APIError(Exception):
    """A request the server refuses; becomes ``status`` with a JSON error body.

    Args:
        status: HTTP status (4xx, or 503 for a busy device).
        message: one sentence naming the problem and how to fix it.
        field: the request field at fault, or None.
        extra: more members of the error object (``suggestions``, ``limit``).
        headers: extra response headers (``Retry-After``).
    """

    def __init__(self, status: int, message: str, field: str | None = None, *,
                 headers: dict[str, str] | None = None, **extra: Any) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.field = field
        self.extra = extra
        self.headers = headers or {}

    def body(self) -> dict[str, Any]:
        return {"error": {"message": self.message, "field": self.field, **self.extra}}


def _library_error(error: SceneGraphError, field: str | None) -> APIError:
    extra: dict[str, Any] = {"detail": error.detail}
    if error.suggestions:
        extra["suggestions"] = list(error.suggestions)
    return APIError(400, str(error), field, **extra)


def scene_graph_error(error: SceneGraphError, parent: str = "graph") -> APIError:
    """A 400 for a graph the parser rejected, with its field and any closest names.

    Args:
        error: the parser's error; its ``field`` is a path inside the graph.
        parent: the request field that holds the graph; the error's field goes under it
            (``"graph"`` and ``"objects[2]"`` give ``"graph.objects[2]"``). An error about
            the graph as a whole gets ``parent`` itself (None when ``parent`` is empty).
    """
    field = f"{parent}.{error.field}" if parent and error.field else parent or error.field
    return _library_error(error, field)


def edit_error(error: EditError) -> APIError:
    """A 400 for an edit that is malformed or does not fit the graph; the field is the
    edit's (``"edits[2].box"``), or ``"edits"`` for the list as a whole."""
    return _library_error(error, error.field or "edits")


def without_paths(error: APIError, paths: Mapping[str, str]) -> APIError:
    """``error`` with each file path of ``paths`` replaced by its label, and its message and
    detail cut to :data:`MAX_MESSAGE` characters.

    The library's messages name a model by its file (``"this model (/home/alice/x.pt)"``),
    which helps on the command line; a client of the server gets the label the page shows.

    Args:
        error: the error to answer with (changed in place and returned).
        paths: file path -> label, e.g. ``{"/home/alice/runs/x.pt": "x.pt"}``.
    """
    def clean(text: str) -> str:
        for path in sorted(paths, key=len, reverse=True):
            text = text.replace(path, paths[path])
        return text if len(text) <= MAX_MESSAGE else text[:MAX_MESSAGE - 3] + "..."

    error.message = clean(error.message)
    if isinstance(error.extra.get("detail"), str):
        error.extra["detail"] = clean(error.extra["detail"])
    return error
