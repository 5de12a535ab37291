"""Slow and surplus clients against the real server on 127.0.0.1 (small timeouts).

Probe case V2: a client that sends its headers or body a byte at a time held a connection
for ever; enough of them locked every user out, and running out of file descriptors made
asyncio log a traceback per accept. Bounds here are generous (a loaded 2-core box): a
deadline of 1 s must fire within 15 s, a normal request must answer within 20 s.
"""

import errno
import json
import logging
import os
import socket
import threading
import time

import pytest
import torch

pytest.importorskip("uvicorn", reason="the serve extra is not installed: pip install "
                                      "'sg2img[serve]'")

from sg2img import cli, load_model  # noqa: E402
from sg2img.checkpoint import export_inference  # noqa: E402
from sg2img.config import Config  # noqa: E402
from sg2img.model import GALSGenerator  # noqa: E402
from sg2img.serve import ConnectionLimits, EditorServer, ModelRegistry, ServedModel  # noqa: E402
from sg2img.serve.transport import GuardedSocket, guarded_protocol  # noqa: E402
from sg2img.vocab import Vocab  # noqa: E402

FAST = ConnectionLimits(header_timeout_s=1.0, body_timeout_s=1.0, idle_timeout_s=1.0,
                        max_connections=16)
SLOW_HEAD = b"GET /api/models HTTP/1.1\r\nHost: 127.0.0.1\r\nX-a: "
GRAPH = json.dumps({"graph": {"objects": ["sky", "grass"],
                              "relationships": [[0, "above", 1]]}, "seed": 0}).encode()
BOUND_S = 15.0


@pytest.fixture(scope="module")
def registry(tmp_path_factory):
    vocab = Vocab.from_names(["sky", "grass", "sheep"], ["above", "below"])
    cfg = Config.from_preset("tiny")
    torch.manual_seed(0)
    gen = GALSGenerator(cfg.model, vocab.num_objects, vocab.num_preds)
    path = export_inference(tmp_path_factory.mktemp("model") / "tiny.pt", cfg, vocab, gen)
    return ModelRegistry([ServedModel("tiny", "tiny.pt", load_model(path, "cpu"))])


@pytest.fixture(scope="module")
def server(registry):
    srv = EditorServer(registry, "127.0.0.1", 0, connections=FAST).start()
    yield srv
    srv.stop()


def connect(port: int) -> socket.socket:
    s = socket.create_connection(("127.0.0.1", port), timeout=BOUND_S)
    return s


def read_until_closed(s: socket.socket, trickle: bytes = b"", every: float = 0.2,
                      bound: float = BOUND_S) -> tuple[bytes, float]:
    """Send ``trickle`` a byte at a time (as a slow client does) until the server closes the
    connection; returns what it sent back and the seconds it took."""
    t0 = time.monotonic()
    got = b""
    s.settimeout(every)
    i = 0
    while time.monotonic() - t0 < bound:
        try:
            chunk = s.recv(65536)
        except TimeoutError:
            chunk = None
        except ConnectionResetError:
            break
        if chunk == b"":
            break
        if chunk:
            got += chunk
        if trickle:
            try:
                s.sendall(trickle[i % len(trickle):i % len(trickle) + 1])
            except OSError:
                break
            i += 1
    else:
        raise AssertionError(f"the server kept the connection open for {bound:g} s")
    return got, time.monotonic() - t0


def post_generate(port: int) -> tuple[int, dict]:
    s = connect(port)
    try:
        s.sendall(b"POST /api/generate HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                  b"Content-Type: application/json\r\nConnection: close\r\n"
                  b"Content-Length: %d\r\n\r\n" % len(GRAPH) + GRAPH)
        data = b""
        while chunk := s.recv(65536):
            data += chunk
    finally:
        s.close()
    head, _, body = data.partition(b"\r\n\r\n")
    return int(head.split()[1]), json.loads(body)


def test_slow_header_sender_is_closed_with_408(server):
    with connect(server.port) as s:
        s.sendall(SLOW_HEAD)
        got, took = read_until_closed(s, trickle=b"aaaa")
    assert got.startswith(b"HTTP/1.1 408 "), got[:200]
    body = json.loads(got.partition(b"\r\n\r\n")[2])
    assert "--header-timeout" in body["error"]["message"]
    assert "SG2IMG_SERVE_HEADER_TIMEOUT" in body["error"]["message"]
    assert took >= 0.5  # a deadline, not an immediate refusal


def test_silent_connection_is_closed_quietly(server):
    with connect(server.port) as s:
        got, _ = read_until_closed(s)
    assert got == b""


def test_slow_body_sender_is_closed_without_a_traceback(server, caplog):
    caplog.set_level(logging.DEBUG)
    with connect(server.port) as s:
        s.sendall(b"POST /api/generate HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                  b"Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n{")
        got, _ = read_until_closed(s, trickle=b" ")
    assert got.startswith(b"HTTP/1.1 408 "), got[:200]
    assert b"--body-timeout" in got
    # The app sees the body cut short: that is no internal error (each one logged a traceback).
    deadline = time.monotonic() + BOUND_S
    while time.monotonic() < deadline and not any(
            "whole body" in r.getMessage() for r in caplog.records):
        time.sleep(0.1)
    assert not [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]


def test_idle_keep_alive_connection_is_closed(server):
    with connect(server.port) as s:
        s.sendall(b"GET /api/models HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        got, _ = read_until_closed(s)
    assert got.startswith(b"HTTP/1.1 200 ")


def test_normal_request_is_served_while_slow_clients_fill_the_cap(server, caplog):
    caplog.set_level(logging.WARNING, logger="sg2img.serve.transport")
    slow = []
    try:
        for _ in range(48):  # three times the cap
            s = connect(server.port)
            s.sendall(SLOW_HEAD)
            slow.append(s)
        t0 = time.monotonic()
        status, body = post_generate(server.port)
        assert status == 200, body
        assert time.monotonic() - t0 < 20
        # Every slow connection is closed: the oldest to make room, the rest at their deadline.
        deadline = time.monotonic() + BOUND_S
        for s in slow:
            read_until_closed(s, bound=max(0.5, deadline - time.monotonic()))
    finally:
        for s in slow:
            s.close()
    # One warning per kind, not one per connection.
    assert 1 <= len(caplog.records) <= 4, [r.getMessage() for r in caplog.records]


class _BlockingApp:
    """An ASGI app whose every response waits for ``release``: connections stay busy."""

    def __init__(self) -> None:
        self.release = threading.Event()

    async def __call__(self, scope, receive, send):
        import asyncio

        if scope["type"] != "http":
            return
        while not self.release.is_set():
            await asyncio.sleep(0.02)
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", b"text/plain")]})
        await send({"type": "http.response.body", "body": b"ok"})


def test_cap_refuses_the_surplus_cleanly_when_every_connection_is_busy():
    import uvicorn

    app = _BlockingApp()
    limits = ConnectionLimits(header_timeout_s=5, body_timeout_s=5, idle_timeout_s=5,
                              max_connections=2)
    sock = GuardedSocket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    sock.listen(64)
    port = sock.getsockname()[1]
    srv = uvicorn.Server(uvicorn.Config(app, http=guarded_protocol(limits), log_level="error"))
    thread = threading.Thread(target=srv.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    busy = []
    try:
        for _ in range(100):
            if srv.started:
                break
            time.sleep(0.05)
        for _ in range(2):
            s = connect(port)
            s.sendall(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
            busy.append(s)
        time.sleep(0.5)  # both requests reach the app and wait there
        with connect(port) as extra:
            extra.sendall(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
            got, _ = read_until_closed(extra)
        assert got.startswith(b"HTTP/1.1 503 "), got[:200]
        assert b"retry-after: 1" in got.lower()
        body = json.loads(got.partition(b"\r\n\r\n")[2])
        assert "--max-connections" in body["error"]["message"]
        app.release.set()
        for s in busy:  # the busy ones were not touched
            s.settimeout(BOUND_S)
            assert s.recv(65536).startswith(b"HTTP/1.1 200 ")
    finally:
        app.release.set()
        for s in busy:
            s.close()
        srv.should_exit = True
        thread.join(timeout=10)
        sock.close()


def test_listener_sheds_a_connection_when_out_of_file_descriptors():
    resource = pytest.importorskip("resource")
    if not os.path.isdir("/proc/self/fd"):
        pytest.skip("needs /proc/self/fd")
    listener = GuardedSocket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    listener.setblocking(False)
    client = socket.create_connection(listener.getsockname(), timeout=BOUND_S)
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    fillers = []
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE,
                           (len(os.listdir("/proc/self/fd")) + 8, hard))
        while True:  # use up every descriptor below the limit
            try:
                fillers.append(os.open(os.devnull, os.O_RDONLY))
            except OSError as e:
                assert e.errno == errno.EMFILE
                break
        with pytest.raises(BlockingIOError):
            listener.accept()
    finally:
        for fd in fillers:
            os.close(fd)
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    got, _ = read_until_closed(client)
    client.close()
    listener.close()
    assert got.startswith(b"HTTP/1.1 503 "), got[:200]


def test_limits_are_checked_and_name_their_flag_and_variable(monkeypatch):
    with pytest.raises(ValueError, match="--idle-timeout / \\$SG2IMG_SERVE_IDLE_TIMEOUT"):
        ConnectionLimits(idle_timeout_s=0)
    with pytest.raises(ValueError, match="--max-connections"):
        ConnectionLimits(max_connections=-1)
    monkeypatch.setenv("SG2IMG_SERVE_HEADER_TIMEOUT", "2.5")
    monkeypatch.setenv("SG2IMG_SERVE_MAX_CONNECTIONS", "")
    limits = ConnectionLimits.from_env(body_timeout_s=3, max_connections=None)
    assert (limits.header_timeout_s, limits.body_timeout_s, limits.max_connections) == (2.5, 3, 256)
    assert not ConnectionLimits(0, 0, 5, 0).guarded


def test_cli_rejects_bad_values_with_exit_2(monkeypatch, capsys):
    assert cli.main(["serve", "--header-timeout", "soon"]) == 2
    assert "--header-timeout" in capsys.readouterr().err
    monkeypatch.setenv("SG2IMG_SERVE_MAX_CONNECTIONS", "many")
    assert cli.main(["serve", "--port", "0"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "SG2IMG_SERVE_MAX_CONNECTIONS" in err[0], err
