"""The ASGI middleware in front of the editor app: Host and Origin checks, security headers.

Every request is checked before the app sees it (see :mod:`sg2img.serve.hosts` for why):

* exactly one ``Host`` header, naming an allowed host, else 400;
* no ``Origin`` header, or one naming a page served from an allowed host, else 403
  (``Origin: null``, sent by sandboxed frames and local files, is refused too).

A refusal is the server's JSON error body, ``{"error": {"message", "field": null,
"header"}}``, where ``header`` names the header at fault. Every response, the page, its
``/static/`` files and the JSON API alike, carries the page's Content-Security-Policy (the
page loads nothing from other hosts and may not be framed) and ``nosniff``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from ..files import short
from .hosts import AllowedHosts

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data: blob:; "
                               "style-src 'self'; script-src 'self'; connect-src 'self'; "
                               "object-src 'none'; base-uri 'none'; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}
_ADDED = [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in SECURITY_HEADERS.items()]
_FIX = "start the server with --allowed-host NAME for each name its clients use"


class Refusal(Exception):
    """A request refused for its headers: ``status`` and a JSON error body."""

    def __init__(self, status: int, message: str, header: str) -> None:
        super().__init__(message)
        self.status, self.message, self.header = status, message, header

    def body(self) -> dict[str, Any]:
        return {"error": {"message": self.message, "field": None, "header": self.header}}


def check_headers(headers: list[tuple[bytes, bytes]], allowed: AllowedHosts) -> None:
    """Raise :class:`Refusal` unless ``Host`` and ``Origin`` are allowed.

    Args:
        headers: the request's headers as ASGI gives them (lower-case names, latin-1 bytes).
        allowed: the hosts this server answers.
    """
    hosts = [v.decode("latin-1") for k, v in headers if k == b"host"]
    if len(hosts) != 1:
        raise Refusal(400, f"a request needs exactly one Host header, this one has "
                           f"{len(hosts)}", "Host")
    if not allowed.allows_host(hosts[0]):
        raise Refusal(400, f"this server does not answer to Host {short(hosts[0])}; it "
                           f"answers to {short(list(allowed), 300)}; {_FIX}", "Host")
    origins = [v.decode("latin-1") for k, v in headers if k == b"origin"]
    if len(origins) > 1:
        raise Refusal(403, f"a request may have one Origin header, this one has "
                           f"{len(origins)}", "Origin")
    if origins and not allowed.allows_origin(origins[0]):
        raise Refusal(403, f"requests from the page at Origin {short(origins[0])} are "
                           f"refused: only pages served by this server's allowed hosts may "
                           f"send them; {_FIX}", "Origin")


class GuardMiddleware:
    """Refuses requests whose Host or Origin is not allowed; adds the security headers.

    Args:
        app: the ASGI app behind it.
        allowed: the hosts to answer; None answers any (for a caller whose own server
            checks them; ``sg2img serve`` always passes a list).
    """

    def __init__(self, app: ASGIApp, allowed: AllowedHosts | None) -> None:
        self.app, self.allowed = app, allowed

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        if self.allowed is not None:
            try:
                check_headers(list(scope["headers"]), self.allowed)
            except Refusal as refusal:
                await _refuse(refusal, scope, send)
                return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                present = {k.lower() for k, _ in message.get("headers", [])}
                message["headers"] = [*message.get("headers", []),
                                      *[(k, v) for k, v in _ADDED if k not in present]]
            await send(message)

        await self.app(scope, receive, send_with_headers)


async def _refuse(refusal: Refusal, scope: Scope, send: Send) -> None:
    import json

    if scope["type"] == "websocket":
        await send({"type": "websocket.close", "code": 1008})
        return
    body = json.dumps(refusal.body(), separators=(",", ":")).encode("utf-8")
    await send({"type": "http.response.start", "status": refusal.status,
                "headers": [(b"content-type", b"application/json"),
                            (b"content-length", str(len(body)).encode("latin-1")),
                            (b"cache-control", b"no-store"), *_ADDED]})
    await send({"type": "http.response.body", "body": body})
