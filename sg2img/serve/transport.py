"""Slow and surplus clients: read deadlines, a connection cap, and a listener that sheds load.

uvicorn's only timer is the keep-alive one, armed after a response and cancelled by the next
byte: nothing times a new connection, the request headers or the body, so a client can hold a
connection open for ever by sending a byte now and then. A thousand of them exhaust the file
descriptors, and asyncio then logs a traceback per failed ``accept``. This module closes that
hole at the protocol layer, under the app:

- ``GuardedH11Protocol`` (uvicorn's h11 protocol with deadlines): the request headers must
  arrive within ``header_timeout_s`` of the connection (or of the request's first byte on a
  kept-alive connection), the body within ``body_timeout_s`` of the headers, and a kept-alive
  connection may sit idle ``idle_timeout_s``. Each is a deadline, not reset by progress.
- A cap on open connections: a new connection beyond ``max_connections`` closes the one that
  has waited longest on its client (a slow sender, or an idle keep-alive); only when every
  connection has a request being answered is the new one refused with a 503. A normal client
  sends its request at once, so slow senders cannot crowd it out.
- ``GuardedSocket``, the listening socket: when the process is out of file descriptors it
  accepts and closes the waiting connection with a spare descriptor kept for that, instead of
  letting asyncio log a traceback per try.

Closures are logged as one warning per kind and minute, so an attack cannot fill the log.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import os
import socket
import time
from collections import OrderedDict
from dataclasses import asdict, dataclass, replace
from typing import Any

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol

logger = logging.getLogger(__name__)

HEADER_TIMEOUT_ENV = "SG2IMG_SERVE_HEADER_TIMEOUT"
BODY_TIMEOUT_ENV = "SG2IMG_SERVE_BODY_TIMEOUT"
IDLE_TIMEOUT_ENV = "SG2IMG_SERVE_IDLE_TIMEOUT"
MAX_CONNECTIONS_ENV = "SG2IMG_SERVE_MAX_CONNECTIONS"
FD_RESERVE = 32           # descriptors kept free for files, pipes and the spare
NOTICE_INTERVAL_S = 60.0  # at most one warning per kind of closure per minute
ACCEPT_BATCH = 64         # connections accepted per event loop iteration

_ENV = {"header_timeout_s": HEADER_TIMEOUT_ENV, "body_timeout_s": BODY_TIMEOUT_ENV,
        "idle_timeout_s": IDLE_TIMEOUT_ENV, "max_connections": MAX_CONNECTIONS_ENV}
_FLAG = {"header_timeout_s": "--header-timeout", "body_timeout_s": "--body-timeout",
         "idle_timeout_s": "--idle-timeout", "max_connections": "--max-connections"}


@dataclass(frozen=True)
class ConnectionLimits:
    """How long a client may take, and how many connections may be open at once.

    Attributes:
        header_timeout_s: seconds from the connection (or, on a kept-alive connection, the
            request's first byte) to the end of the request headers; 0 turns it off.
        body_timeout_s: seconds from the end of the headers to the end of the body; 0: off.
        idle_timeout_s: seconds a kept-alive connection may wait for its next request (> 0).
        max_connections: open connections at most (lowered to fit the open-file limit);
            0: only the open-file limit caps. With the two timeouts and the cap all 0 the
            server is plain uvicorn.
    """

    header_timeout_s: float = 10.0
    body_timeout_s: float = 20.0
    idle_timeout_s: float = 5.0
    max_connections: int = 256

    def __post_init__(self) -> None:
        for name, value in asdict(self).items():
            where = f"{_FLAG[name]} / ${_ENV[name]}"
            kind = int if name == "max_connections" else (int, float)
            if isinstance(value, bool) or not isinstance(value, kind) or value != value:
                raise ValueError(f"{name} ({where}) must be a number, got {value!r}")
            if value < 0 or (name == "idle_timeout_s" and value == 0) or value > 10**6:
                rule = "positive" if name == "idle_timeout_s" else "0 (off) or positive"
                raise ValueError(f"{name} ({where}) must be {rule} and at most 1e6, "
                                 f"got {value!r}")

    @property
    def guarded(self) -> bool:
        """False when every protection is off: the server then runs uvicorn's own protocol."""
        return bool(self.header_timeout_s or self.body_timeout_s or self.max_connections)

    @classmethod
    def from_env(cls, **overrides: Any) -> ConnectionLimits:
        """The defaults, then the ``SG2IMG_SERVE_*`` environment variables, then ``overrides``.

        Args:
            overrides: field values (``None`` ones are ignored), e.g. from command line flags.

        Raises:
            ValueError: a variable or value that is not a number in range; the message names it.
        """
        values: dict[str, Any] = {}
        for name, env in _ENV.items():
            raw = os.environ.get(env, "").strip()
            if not raw:
                continue
            try:
                values[name] = int(raw) if name == "max_connections" else float(raw)
            except ValueError:
                shown = raw if len(raw) <= 40 else raw[:37] + "..."
                raise ValueError(f"${env} must be a number, got {shown!r}") from None
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)


def open_file_budget() -> int | None:
    """Connections this process can still open: the soft open-file limit less the descriptors
    open now and a reserve; None when there is no limit (or it cannot be read)."""
    try:
        import resource
    except ImportError:  # Windows
        return None
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY:
        return None
    try:
        in_use = len(os.listdir("/proc/self/fd"))
    except OSError:
        in_use = 64  # not Linux: a typical count for this process
    return max(1, soft - in_use - FD_RESERVE)


def _soft_file_limit() -> float:
    try:
        import resource
    except ImportError:  # Windows
        return float("inf")
    return float(resource.getrlimit(resource.RLIMIT_NOFILE)[0])


def effective_limits(limits: ConnectionLimits) -> ConnectionLimits:
    """``limits`` with ``max_connections`` lowered to what the open-file limit allows."""
    budget = open_file_budget()
    if budget is None or not limits.guarded:
        return limits
    if limits.max_connections == 0 or limits.max_connections > budget:
        logger.warning("max connections lowered to %d to fit the open-file limit (ulimit -n); "
                       "raise the limit to allow more", budget)
        return replace(limits, max_connections=budget)
    return limits


class _Notices:
    """Counts closures by kind and logs each kind at most once per ``NOTICE_INTERVAL_S``."""

    TEXT = {
        "header": "closed %d connection(s) that did not send request headers within %g s",
        "body": "closed %d connection(s) that did not send the request body within %g s",
        "evicted": "closed %d waiting connection(s) to make room under the cap of %g",
        "refused": "refused %d connection(s) beyond the cap of %g (all busy)",
        "shed": "closed %d new connection(s): out of file descriptors (open-file limit %g)",
    }

    def __init__(self) -> None:
        self.counts: dict[str, int] = {}
        self.last: dict[str, float] = {}

    def note(self, kind: str, value: float) -> None:
        self.counts[kind] = self.counts.get(kind, 0) + 1
        now = time.monotonic()
        if now - self.last.get(kind, -NOTICE_INTERVAL_S) >= NOTICE_INTERVAL_S:
            logger.warning(self.TEXT[kind], self.counts[kind], value)
            self.counts[kind] = 0
            self.last[kind] = now


def _error_response(status: int, reason: str, message: str, extra: str = "") -> bytes:
    """A complete HTTP/1.1 response with the server's JSON error body; the connection closes."""
    import json

    body = json.dumps({"error": {"message": message, "field": None}}).encode()
    head = (f"HTTP/1.1 {status} {reason}\r\ncontent-type: application/json\r\n"
            f"content-length: {len(body)}\r\nconnection: close\r\n{extra}\r\n")
    return head.encode("ascii") + body


class _Guard:
    """State shared by the connections of one server: the limits, who waits, the notices."""

    def __init__(self, limits: ConnectionLimits) -> None:
        self.limits = limits
        self.open: set[GuardedH11Protocol] = set()
        # Connections waiting on their client, oldest wait first: the eviction order.
        self.waiting: OrderedDict[GuardedH11Protocol, None] = OrderedDict()
        self.notices = _Notices()


class GuardedH11Protocol(H11Protocol):
    """uvicorn's h11 protocol with header, body and idle deadlines and a connection cap.

    Use ``guarded_protocol(limits)`` for a subclass bound to one server's limits.
    """

    guard: _Guard

    _PHASE_TIMEOUT = {"headers": "header_timeout_s", "body": "body_timeout_s",
                      "idle": "idle_timeout_s"}

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._phase = "new"
        self._deadline: Any = None  # asyncio.TimerHandle
        self._got_bytes = False

    # -------------------------------------------------------------- asyncio.Protocol
    def connection_made(self, transport: Any) -> None:  # type: ignore[override]
        super().connection_made(transport)
        guard = self.guard
        guard.open.add(self)
        self._enter("headers")
        cap = guard.limits.max_connections
        if cap and len(guard.open) > cap:
            oldest = next(iter(guard.waiting))
            if oldest is not self:
                oldest._close()
                guard.notices.note("evicted", cap)
            else:
                guard.notices.note("refused", cap)
                self._close(_error_response(
                    503, "Service Unavailable",
                    f"the server has {cap} connections open, all busy; try again shortly "
                    f"(the cap is {_FLAG['max_connections']} / ${MAX_CONNECTIONS_ENV})",
                    "retry-after: 1\r\n"))

    def data_received(self, data: bytes) -> None:
        if self._phase == "idle":
            self._enter("headers")
        if data:
            self._got_bytes = True
        super().data_received(data)
        self._track(after_response=False)

    def on_response_complete(self) -> None:
        super().on_response_complete()
        self._track(after_response=True)

    def connection_lost(self, exc: Exception | None) -> None:
        self._leave()
        super().connection_lost(exc)

    # -------------------------------------------------------------- phases
    def _track(self, after_response: bool) -> None:
        """Move to the phase that h11's view of the client says we are in."""
        if self.transport.is_closing():
            return
        state = self.conn.their_state
        if state is h11.SEND_BODY:
            phase = "body"
        elif state is h11.IDLE:
            phase = "idle" if after_response else "headers"
        else:  # the client's request is complete (or the connection is switching/closing)
            phase = "app"
        if phase != self._phase:
            if phase == "idle":
                self._got_bytes = False
            self._enter(phase)

    def _enter(self, phase: str) -> None:
        """Start ``phase``: its deadline runs from now, and it joins the back of the queue."""
        self._cancel_deadline()
        self._phase = phase
        self.guard.waiting.pop(self, None)
        if phase == "app":  # the server's turn: nothing to wait for from the client
            return
        self.guard.waiting[self] = None
        timeout = getattr(self.guard.limits, self._PHASE_TIMEOUT[phase])
        if timeout:
            self._deadline = self.loop.call_later(timeout, self._expire)

    def _expire(self) -> None:
        self._deadline = None
        if self.transport.is_closing():
            return
        phase = self._phase
        if phase == "idle" or (phase == "headers" and not self._got_bytes):
            self._close()  # nothing was asked: close quietly, as for a keep-alive timeout
            return
        name = self._PHASE_TIMEOUT[phase]
        timeout = getattr(self.guard.limits, name)
        self.guard.notices.note("header" if phase == "headers" else "body", timeout)
        response = None
        if phase == "headers" or self.cycle is None or not self.cycle.response_started:
            what = "headers" if phase == "headers" else "body"
            response = _error_response(
                408, "Request Timeout",
                f"the request {what} did not arrive within {timeout:g} s "
                f"(the limit is {_FLAG[name]} / ${_ENV[name]})")
        self._close(response)

    def _close(self, response: bytes | None = None) -> None:
        """Close now (after ``response``, if given); the app sees a disconnect."""
        self._leave()
        if not self.transport.is_closing():
            if response is not None:
                self.transport.write(response)
            self.transport.close()

    def _leave(self) -> None:
        self._cancel_deadline()
        self.guard.waiting.pop(self, None)
        self.guard.open.discard(self)
        self._phase = "closed"

    def _cancel_deadline(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None


def guarded_protocol(limits: ConnectionLimits) -> type[GuardedH11Protocol]:
    """A ``GuardedH11Protocol`` subclass whose connections share ``limits`` (one per server);
    pass it as uvicorn's ``http`` protocol class."""
    return type("GuardedH11Protocol", (GuardedH11Protocol,), {"guard": _Guard(limits)})


class GuardedSocket(socket.socket):
    """A listening socket whose ``accept`` survives running out of file descriptors.

    asyncio logs a traceback for every failed ``accept`` and retries the rest of its backlog at
    once, which wrote megabytes a second. Here, on EMFILE/ENFILE, a spare descriptor is freed
    to accept the waiting connection, which is answered 503 and closed (one warning a minute),
    and asyncio is told that nothing is waiting.
    """

    _BUSY = _error_response(503, "Service Unavailable",
                            "the server is out of file descriptors; try again shortly",
                            "retry-after: 1\r\n")

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._spare: int | None = self._open_spare()
        self._notices = _Notices()
        self._batch = 0

    def _count_batch(self) -> None:
        if self._batch == 0:
            try:
                asyncio.get_running_loop().call_soon(self._reset_batch)
            except RuntimeError:  # accepted outside an event loop: no batches
                return
        self._batch += 1

    def _reset_batch(self) -> None:
        self._batch = 0

    @staticmethod
    def _open_spare() -> int | None:
        try:
            return os.open(os.devnull, os.O_RDONLY)
        except OSError:
            return None

    def accept(self) -> tuple[socket.socket, Any]:
        if self._batch >= ACCEPT_BATCH:
            # asyncio accepts up to its whole backlog in one go, before any of them reaches
            # ``connection_made`` and the cap: a burst would take every descriptor. Accept a
            # batch per loop iteration; the rest wait in the kernel's backlog meanwhile.
            raise BlockingIOError(errno.EAGAIN, "accept batch done for this loop iteration")
        try:
            conn = super().accept()
        except OSError as exc:
            if exc.errno not in (errno.EMFILE, errno.ENFILE):
                raise
        else:
            self._count_batch()
            return conn
        self._shed()
        # asyncio reads this as "the backlog is empty" and waits for the next readiness.
        raise BlockingIOError(errno.EAGAIN, "out of file descriptors; connection shed")

    def _shed(self) -> None:
        if self._spare is not None:
            os.close(self._spare)
            self._spare = None
        try:
            conn, _ = super().accept()
        except OSError:
            pass
        else:
            self._notices.note("shed", _soft_file_limit())
            try:
                conn.setblocking(False)
                conn.send(self._BUSY)
            except OSError:
                pass
            conn.close()
        finally:
            self._spare = self._open_spare()

    def close(self) -> None:
        if getattr(self, "_spare", None) is not None:
            os.close(self._spare)  # type: ignore[arg-type]
            self._spare = None
        super().close()
