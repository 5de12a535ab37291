"""Running the editor app on uvicorn: bind first, so a taken port is a clear error."""

from __future__ import annotations

import socket
import threading
from collections.abc import Sequence
from os import PathLike

from .app import Limits, create_app
from .hosts import AllowedHosts, check_host_names
from .models import ModelRegistry, load_registry
from .transport import (
    ConnectionLimits,
    GuardedSocket,
    effective_limits,
    guarded_protocol,
)


class EditorServer:
    """The editor app on a bound socket, ready to ``run()`` (blocking) or ``start()`` (thread).

    Args:
        registry: the models to offer.
        host: address to bind; loopback unless the server should be reachable from others.
        port: port to bind; 0 picks a free one (``self.port`` tells which).
        limits: request limits.
        log_level: uvicorn's log level (``"info"`` logs every request).
        allowed_hosts: names clients may use besides the bound address and the loopback
            names (``--allowed-host``; ``AllowedHosts.for_binding``).
        connections: read deadlines and the connection cap (default: ``ConnectionLimits``
            from the ``SG2IMG_SERVE_*`` environment variables); the cap is lowered to fit
            the open-file limit.

    Raises:
        OSError: the address cannot be bound (port taken, unknown host).
        ValueError: a port outside 0..65535, or an allowed host that is not a host name.
    """

    def __init__(self, registry: ModelRegistry, host: str = "127.0.0.1", port: int = 8000,
                 limits: Limits | None = None, log_level: str = "warning",
                 allowed_hosts: Sequence[str] = (),
                 connections: ConnectionLimits | None = None) -> None:
        import uvicorn

        if not isinstance(port, int) or not 0 <= port <= 65535:
            raise ValueError(f"port must be 0..65535 (0 picks a free port), got {port!r}")
        check_host_names(allowed_hosts)  # before binding
        self.host = host
        family = socket.AF_INET6 if ":" in host.strip("[]") else socket.AF_INET
        conns = connections if connections is not None else ConnectionLimits.from_env()
        # With every protection off this is plain uvicorn (the baseline the benchmark compares).
        self.socket = (GuardedSocket if conns.guarded else socket.socket)(family,
                                                                          socket.SOCK_STREAM)
        try:
            self.socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            self.socket.bind((host.strip("[]"), port))
            # Listening now: a client that connects before uvicorn's loop runs waits in the
            # backlog instead of being refused.
            self.socket.listen(2048)
        except OSError:
            self.socket.close()
            raise
        self.port = self.socket.getsockname()[1]
        self.allowed_hosts = AllowedHosts.for_binding(host, self.port, allowed_hosts)
        self.app = create_app(registry, limits, allowed_hosts=self.allowed_hosts)
        self.connections = effective_limits(conns)
        config = uvicorn.Config(
            self.app, log_level=log_level, timeout_graceful_shutdown=5,
            http=guarded_protocol(self.connections) if conns.guarded else "h11",
            timeout_keep_alive=self.connections.idle_timeout_s)  # type: ignore[arg-type]
        self.server = uvicorn.Server(config)
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host = f"[{self.host.strip('[]')}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}/"

    def run(self) -> None:
        """Serve until interrupted (Ctrl+C) or ``stop()``."""
        self.server.run(sockets=[self.socket])

    def start(self, timeout: float = 30.0) -> EditorServer:
        """Serve on a background thread; returns once the server accepts connections."""
        self._thread = threading.Thread(target=self.run, name="sg2img-serve", daemon=True)
        self._thread.start()
        for _ in range(int(timeout * 20)):
            if self.server.started:
                return self
            if not self._thread.is_alive():
                break
            threading.Event().wait(0.05)
        raise RuntimeError(f"the editor server did not start within {timeout:g} s")

    def stop(self) -> None:
        """Ask the server to finish and wait for its thread (when started with ``start``)."""
        self.server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=10)


def make_server(checkpoints: Sequence[str | PathLike] = (), *, host: str = "127.0.0.1",
                port: int = 8000, device: str | None = None, limits: Limits | None = None,
                log_level: str = "warning", allowed_hosts: Sequence[str] = (),
                connections: ConnectionLimits | None = None) -> EditorServer:
    """Load the models and bind the editor server (``sg2img serve``).

    Args:
        checkpoints: checkpoints to offer besides the bundled model.
        host, port: address to bind (port 0: a free one).
        device: ``"cpu"``, ``"cuda"``, ``"cuda:N"``; None picks CUDA when available.
        limits: request limits.
        log_level: uvicorn's log level.
        allowed_hosts: names clients may use besides the bound address and the loopback
            names (``sg2img serve --allowed-host``).
        connections: read deadlines and the connection cap (default: from the environment).

    Raises:
        CheckpointError: a checkpoint cannot be loaded.
        OSError: the address cannot be bound.
        ValueError: an allowed host that is not a host name.
    """
    check_host_names(allowed_hosts)  # before loading the models
    registry = load_registry(checkpoints, device)
    return EditorServer(registry, host, port, limits, log_level, allowed_hosts, connections)
