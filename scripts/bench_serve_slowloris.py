"""Slow clients against ``sg2img serve``: does a normal request get in, does the log stay small?

Starts the real server (``python -m sg2img serve --port 0``, the bundled model, CPU) on
127.0.0.1 with its open-file limit lowered (``--nofile``, as ``prlimit --nofile`` would), then:

1. opens ``--connections`` sockets that each send the start of a request
   (``GET / HTTP/1.1``, a Host header, half a header) and stop: a slowloris; with
   ``--half body``, the whole headers of a POST and the first of its 1000 body bytes;
2. times one normal ``POST /api/generate`` (timeout ``--request-timeout``);
3. watches the half-sent sockets for ``--watch`` seconds: when the last one was closed by the
   server (or how many are still open);
4. reports the server's stderr size: with descriptors exhausted, the old accept loop logged
   a traceback per try.

``--compare`` runs it twice: with the default protections and with them off
(``--header-timeout 0 --body-timeout 0 --max-connections 0``: plain uvicorn, the old
behaviour). Prints a JSON report. Linux only (``resource``).

    python scripts/bench_serve_slowloris.py
    python scripts/bench_serve_slowloris.py --connections 1100 --nofile 1024 --compare
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import select
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
HALF = {"headers": b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nX-a: ",
        "body": b"POST /api/generate HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                b"Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n{"}
GRAPH = {"graph": json.loads((ROOT / "examples" / "sheep.json").read_text()), "seed": 0}
UNGUARDED = ["--header-timeout", "0", "--body-timeout", "0", "--max-connections", "0"]


def start_server(extra: list[str], nofile: int, log: Path) -> tuple[subprocess.Popen, int]:
    """``sg2img serve --port 0`` with RLIMIT_NOFILE lowered; returns it and its port."""

    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_NOFILE, (nofile, nofile))

    env = dict(os.environ, PYTHONPATH=str(ROOT))
    cmd = [sys.executable, "-m", "sg2img", "serve", "--host", "127.0.0.1", "--port", "0",
           "--device", "cpu", *extra]
    with open(log, "wb") as err:
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=err, env=env,
                                preexec_fn=limit, cwd=ROOT)
    t0 = time.monotonic()
    while time.monotonic() - t0 < 120:
        m = re.search(r"http://127\.0\.0\.1:(\d+)/", log.read_text(errors="replace"))
        if m:
            return proc, int(m.group(1))
        if proc.poll() is not None:
            raise RuntimeError(f"the server exited: {log.read_text(errors='replace')[-2000:]}")
        time.sleep(0.2)
    proc.kill()
    raise RuntimeError("the server did not start within 120 s")


def post_generate(port: int, timeout: float) -> tuple[int | str, float]:
    req = urllib.request.Request(f"http://127.0.0.1:{port}/api/generate",
                                 data=json.dumps(GRAPH).encode(),
                                 headers={"Content-Type": "application/json"})
    t0 = time.perf_counter()
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            resp.read()
            status: int | str = resp.status
    except urllib.error.HTTPError as e:
        status = e.code
    except OSError as e:  # timeout, refused, reset
        status = type(e).__name__
    return status, time.perf_counter() - t0


def open_slow(port: int, n: int, half: bytes) -> list[socket.socket]:
    socks = []
    for _ in range(n):
        s = socket.socket()
        s.settimeout(5)
        try:
            s.connect(("127.0.0.1", port))
            s.sendall(half)
        except OSError:
            s.close()
            continue
        s.setblocking(False)
        socks.append(s)
    return socks


def watch_closed(socks: list[socket.socket], seconds: float) -> tuple[float | None, int]:
    """Seconds until the server closed every socket (None if not within ``seconds``), and how
    many it had not closed by then."""
    by_fd = {s.fileno(): s for s in socks}
    poller = select.poll()  # not select(): these descriptors are above FD_SETSIZE
    for fd in by_fd:
        poller.register(fd, select.POLLIN)
    t0 = time.monotonic()
    while by_fd and time.monotonic() - t0 < seconds:
        for fd, _ in poller.poll(250):
            try:
                data = by_fd[fd].recv(65536)
            except BlockingIOError:
                continue
            except OSError:  # reset
                data = b""
            if data == b"":
                poller.unregister(fd)
                del by_fd[fd]
    return (None if by_fd else round(time.monotonic() - t0, 1)), len(by_fd)


def run(label: str, extra: list[str], args: argparse.Namespace) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        log = Path(tmp) / "stderr.log"
        proc, port = start_server(extra, args.nofile, log)
        socks: list[socket.socket] = []
        try:
            before = log.stat().st_size
            status0, t_alone = post_generate(port, args.request_timeout)
            t0 = time.monotonic()
            socks = open_slow(port, args.connections, HALF[args.half])
            t_open = time.monotonic() - t0
            status, t_req = post_generate(port, args.request_timeout)
            closed_after, still_open = watch_closed(socks, args.watch)
            size = log.stat().st_size - before
            tail = log.read_text(errors="replace").strip().splitlines()[-3:]
        finally:
            for s in socks:
                s.close()
            proc.terminate()
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
    return {"run": label, "flags": extra, "half_sent": args.half,
            "connections_opened": len(socks),
            "open_seconds": round(t_open, 2),
            "generate_alone": {"status": status0, "seconds": round(t_alone, 3)},
            "generate_during": {"status": status, "seconds": round(t_req, 3)},
            "all_slow_closed_after_s": closed_after, "still_open_after_watch": still_open,
            "watch_s": args.watch, "stderr_bytes": size, "stderr_tail": tail}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--connections", type=int, default=1000, help="half-sent connections")
    p.add_argument("--nofile", type=int, default=512,
                   help="the server's open-file limit (below --connections: they exhaust it)")
    p.add_argument("--watch", type=float, default=35.0,
                   help="seconds to wait for the server to close the slow connections")
    p.add_argument("--request-timeout", type=float, default=20.0,
                   help="timeout of the normal request, seconds")
    p.add_argument("--half", choices=sorted(HALF), default="headers",
                   help="what the slow clients leave unfinished: the headers, or the body "
                        "(headers sent, 1 of 1000 body bytes)")
    p.add_argument("--compare", action="store_true",
                   help="also run with the protections off (plain uvicorn)")
    args = p.parse_args()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    need = args.connections + 256
    if soft < need:  # this process holds every client socket
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(need, hard), hard))
    runs = [run("protected (defaults)", [], args)]
    if args.compare:
        runs.append(run("unprotected (plain uvicorn)", UNGUARDED, args))
    print(json.dumps({"connections": args.connections, "server_nofile": args.nofile,
                      "runs": runs}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
