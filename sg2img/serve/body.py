"""Reading a request's JSON body under the command line's rules.

The body is read no further than the size limit, then parsed by ``files.parse_json``, the
parser of every JSON file the command line reads: duplicate keys, integers too long to
convert and nesting too deep are errors, never a last key silently winning or a 500. A
request is also refused when it nests deeper than :data:`MAX_DEPTH`, far below the depth at
which Python's own recursion would fail while a message is formatted; no request field needs
more than six levels (``edits[0].relationships[0][2]``).
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request

from ..files import parse_json, short
from .errors import APIError

MAX_DEPTH = 32   # arrays and objects inside each other in one request body


class _BodyError(ValueError):
    """What ``parse_json`` raises for a bad body; becomes a 400."""


async def read_json_body(request: Request, limit: int) -> dict[str, Any]:
    """The request body as a JSON object, read no further than ``limit`` bytes.

    Raises:
        APIError: 415 for a body that is not ``application/json``, 413 for one over
            ``limit`` bytes, 400 for one that is not a strict JSON object of at most
            :data:`MAX_DEPTH` levels.
    """
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if ctype != "application/json":
        # Also keeps other web sites out: a cross-site form or fetch cannot send this type
        # without the browser asking first, and the server never says yes.
        got = short(ctype) if ctype else "no content type"
        raise APIError(415, f"send the request body as JSON with 'Content-Type: "
                            f"application/json' (got {got})")
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and (len(declared) > 18 or int(declared) > limit):
        shown = declared if len(declared) <= 18 else declared[:15] + "..."
        raise APIError(413, f"the request body has {shown} bytes, more than the limit of "
                            f"{limit}", limit=limit)
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise APIError(413, f"the request body is larger than the limit of {limit} bytes",
                           limit=limit)
        chunks.append(chunk)
    try:
        data = parse_json(b"".join(chunks), "the request body", _BodyError)
    except _BodyError as e:
        raise APIError(400, str(e)) from None
    if not isinstance(data, dict):
        raise APIError(400, f"the request body must be a JSON object, got "
                            f"{type(data).__name__}")
    depth = json_depth(data)
    if depth > MAX_DEPTH:
        raise APIError(400, f"the request body nests arrays and objects {depth} levels deep, "
                            f"more than the limit of {MAX_DEPTH}", limit=MAX_DEPTH)
    return data


def json_depth(value: Any) -> int:
    """How many arrays and objects are nested in ``value`` at most (``{}`` is 1, ``1`` is 0),
    counted level by level, without recursion."""
    depth, level = 0, [value]
    while True:
        # Keep the containers of this level; list.extend collects the next one in C.
        level = [v for v in level if isinstance(v, (dict, list))]
        if not level:
            return depth
        depth += 1
        children: list[Any] = []
        for item in level:
            children.extend(item.values() if isinstance(item, dict) else item)
        level = children
