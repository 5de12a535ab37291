"""Errors the server answers with: an HTTP status and a JSON body the page can place.

Every error body is ``{"error": {"message": ..., "field": ..., ...}}``. ``field`` names the
request field that caused it (``"graph.objects[2]"``, ``"graph.relationships[0].predicate"``,
``"edits[1].object"``, ``"num_samples"``) or is null; an unknown name also carries
``"suggestions"``, the closest names in the model's vocabulary, and graph and edit errors
``"detail"``, the message without its location prefix.

``SceneGraphError`` carries only a message, so the field is read back from the message's
``objects[2]: ...`` prefix (the scene-graph parser and the edits module both write one). A
structured field on the exception would make this parsing unnecessary.
"""

from __future__ import annotations

import ast
import re
from typing import Any


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


_SUGGESTIONS = re.compile(r"closest (?:names|predicates|attributes): (\[.*?\])")
_INDEXED = re.compile(r"\b(objects|relationships|boxes|attributes)\[(\d+)\]")
_WHOLE = re.compile(r"'(objects|relationships|boxes|attributes)'")
_ROLE = re.compile(r"\b(subject|object|predicate)\b")
_EDIT = re.compile(r"^edit (\d+)(?: \((\w+)\))?: ")
_EDIT_KEY = re.compile(r"'(object|box|index|predicate|relationship|move)'")


def suggestions(message: str) -> list[str]:
    """The closest names a vocabulary error lists (``closest names: ['a', 'b']``), or []."""
    m = _SUGGESTIONS.search(message)
    if not m:
        return []
    try:
        names = ast.literal_eval(m.group(1))
    except (ValueError, SyntaxError):
        return []
    return [n for n in names if isinstance(n, str)] if isinstance(names, list) else []


def graph_field(message: str, prefix: str = "graph") -> str:
    """The field of a graph a ``SceneGraphError`` message is about, e.g. ``graph.objects[2]``.

    Relationship errors name the part: ``graph.relationships[1].predicate`` for an unknown
    predicate, ``...subject`` / ``...object`` for a bad index. Messages about the graph as a
    whole (too many objects, unknown keys) give ``prefix.objects`` or ``prefix``.
    """
    m = _INDEXED.search(message)
    if m:
        field = f"{prefix}.{m.group(1)}[{m.group(2)}]"
        if m.group(1) == "relationships":
            rest = message[m.end():]
            if "unknown predicate" in rest:
                return field + ".predicate"
            role = _ROLE.search(rest.split(";")[0])
            if role and not rest.lstrip().startswith("must be ["):
                return f"{field}.{role.group(1)}"
        return field
    if "unknown scene graph keys" in message:
        return prefix
    m = _WHOLE.search(message)
    if m:
        return f"{prefix}.{m.group(1)}"
    if "objects" in message and "maximum" in message:
        return f"{prefix}.objects"
    return prefix


def edit_field(message: str) -> str:
    """The field of an ``EditError`` message (``edit 2 (add): add: 'object': ...``), e.g.
    ``edits[2].object`` or ``edits[2].relationships[0].subject``."""
    m = _EDIT.match(message)
    if not m:
        return "edits"
    base, rest = f"edits[{m.group(1)}]", message[m.end():]
    if rest.startswith("unknown edit op"):
        return f"{base}.op"
    rel = re.search(r"relationships\[(\d+)\]( (subject|object|predicate))?", rest)
    if rel:
        return f"{base}.relationships[{rel.group(1)}]" + (f".{rel.group(3)}" if rel.group(3)
                                                          else "")
    key = _EDIT_KEY.search(rest)
    if key:
        return f"{base}.{key.group(1)}"
    if "unknown predicate" in rest:
        return f"{base}.predicate"
    return base


_LOCATION = re.compile(r"^(?:edit \d+(?: \(\w+\))?|'?\w+'?|\w+\[\d+\](?: \w+)?): ")


def detail(message: str) -> str:
    """The message without its location prefixes (``edit 2 (add): add: 'object': ``), for a
    page that shows the error next to the field already."""
    short = message
    while (m := _LOCATION.match(short)) and m.end() < len(short):
        short = short[m.end():]
    return short


def scene_graph_error(message: str, prefix: str = "graph") -> APIError:
    """A 400 for a graph the parser rejected, with its field and any closest names."""
    extra = {"detail": detail(message)}
    names = suggestions(message)
    if names:
        extra["suggestions"] = names
    return APIError(400, message, graph_field(message, prefix), **extra)


def edit_error(message: str) -> APIError:
    """A 400 for an edit that is malformed or does not fit the graph."""
    extra = {"detail": detail(message)}
    names = suggestions(message)
    if names:
        extra["suggestions"] = names
    return APIError(400, message, edit_field(message), **extra)
