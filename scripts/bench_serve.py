"""Load check of ``sg2img serve``: latency of one graph, then bursts of concurrent requests.

Starts the real server (``python -m sg2img serve --port 0``, the bundled model, CPU) as a
subprocess on 127.0.0.1, then:

1. latency: ``--repeats`` sequential requests for one graph (examples/sheep.json), alternating
   an image-only request and the page's request (image + layout + graph drawing); p50/p95.
2. load: ``--rounds`` bursts of ``--concurrency`` simultaneous generate requests. Every
   request must get an answer (200, or 503 with Retry-After when the queue is full) within
   ``--timeout`` seconds; none may be lost. The server's resident memory (VmRSS) is sampled
   throughout, so a leak shows as growth from round to round.

Bounded: at most rounds x concurrency + repeats requests, each with a timeout, and the
server is stopped at the end. Prints a JSON report; exits 1 when a request was lost or
answered with anything but 200/503. Linux only for the memory figures (/proc).

    python scripts/bench_serve.py
    python scripts/bench_serve.py --concurrency 50 --rounds 3 --queue-size 8 --out report.json
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from sg2img.benchmark import load_average

ROOT = Path(__file__).resolve().parents[1]


def rss_mb(pid: int) -> float | None:
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    m = re.search(r"VmRSS:\s+(\d+) kB", text)
    return int(m.group(1)) / 1024 if m else None


def post(url: str, body: dict, timeout: float) -> tuple[int | str, float, str | None]:
    """(status or error name, seconds, Retry-After)."""
    data = json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"})
    t0 = time.perf_counter()
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            resp.read()
            return resp.status, time.perf_counter() - t0, None
    except urllib.error.HTTPError as e:
        e.read()
        return e.code, time.perf_counter() - t0, e.headers.get("Retry-After")
    except (urllib.error.URLError, TimeoutError, ConnectionError) as e:
        return type(e).__name__, time.perf_counter() - t0, None


def pct(values: list[float], q: float) -> float | None:
    if not values:
        return None
    values = sorted(values)
    k = min(len(values) - 1, max(0, round(q / 100 * (len(values) - 1))))
    return round(values[k] * 1000, 1)


def start_server(args) -> tuple[subprocess.Popen, str]:
    cmd = [sys.executable, "-m", "sg2img", "serve", "--host", "127.0.0.1", "--port", "0",
           "--device", "cpu", "--queue-size", str(args.queue_size)]
    env = {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    proc = subprocess.Popen(cmd, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True,
                            env=env)
    deadline = time.monotonic() + 120
    lines = []
    while time.monotonic() < deadline:
        line = proc.stderr.readline()
        if not line:
            if proc.poll() is not None:
                break
            continue
        lines.append(line)
        m = re.search(r"(http://127\.0\.0\.1:\d+/)", line)
        if m:
            # Keep draining stderr so the server never blocks on a full pipe.
            threading.Thread(target=lambda: [None for _ in proc.stderr], daemon=True).start()
            return proc, m.group(1)
    proc.kill()
    raise SystemExit("the server did not start:\n" + "".join(lines))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--concurrency", type=int, default=50, help="requests per burst")
    ap.add_argument("--rounds", type=int, default=3, help="bursts")
    ap.add_argument("--repeats", type=int, default=20,
                    help="sequential requests of each kind for the latency figures")
    ap.add_argument("--queue-size", type=int, default=8, help="the server's --queue-size")
    ap.add_argument("--timeout", type=float, default=120.0, help="seconds per request")
    ap.add_argument("--graph", default=str(ROOT / "examples" / "sheep.json"))
    ap.add_argument("--model", default=None, metavar="ID",
                    help="the model the requests name (the menu's id, e.g. default-128; "
                         "default: the server's default)")
    ap.add_argument("--out", default=None, help="also write the report here (JSON)")
    args = ap.parse_args(argv)
    if not 1 <= args.concurrency <= 200 or not 1 <= args.rounds <= 10:
        ap.error("--concurrency must be 1..200 and --rounds 1..10 (the check is bounded)")

    graph = json.loads(Path(args.graph).read_text())
    load0 = load_average()
    proc, url = start_server(args)
    report: dict = {"cpu_count": os.cpu_count(), "loadavg_before": [round(x, 2) for x in load0],
                    "note": "shared machine: other jobs run at the same time, so latencies "
                            "vary between runs", "server_queue_size": args.queue_size}
    try:
        report["rss_mb_started"] = rss_mb(proc.pid)
        gen = url + "api/generate"
        which = {} if args.model is None else {"model": args.model}
        report["model"] = args.model or "default"
        post(gen, {"graph": graph, "seed": 0, **which}, args.timeout)   # warm-up (first drawing)
        kinds = {"image_only": {"graph": graph, "seed": 0, "include": ["image"], **which},
                 "page_request": {"graph": graph, "seed": 0, **which}}
        lat: dict[str, list[float]] = {k: [] for k in kinds}
        for _ in range(args.repeats):                          # interleaved
            for k, body in kinds.items():
                status, sec, _ = post(gen, body, args.timeout)
                if status == 200:
                    lat[k].append(sec)
                else:
                    print(f"latency request answered {status}", file=sys.stderr)
        report["latency_ms_one_graph"] = {k: {"p50": pct(v, 50), "p95": pct(v, 95),
                                              "n": len(v)} for k, v in lat.items()}

        peak = [rss_mb(proc.pid) or 0.0]
        stop = threading.Event()

        def sample():
            while not stop.wait(0.05):
                peak[0] = max(peak[0], rss_mb(proc.pid) or 0.0)

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        rounds = []
        for _ in range(args.rounds):
            barrier = threading.Barrier(args.concurrency)

            def one(k, barrier=barrier):
                barrier.wait()
                return post(gen, {"graph": graph, "seed": k, "include": ["image"], **which},
                            args.timeout)

            t0 = time.perf_counter()
            with ThreadPoolExecutor(args.concurrency) as pool:
                results = list(pool.map(one, range(args.concurrency)))
            wall = time.perf_counter() - t0
            counts: dict[str, int] = {}
            for status, _, _ in results:
                counts[str(status)] = counts.get(str(status), 0) + 1
            ok = [sec for status, sec, _ in results if status == 200]
            busy = [sec for status, sec, _ in results if status == 503]
            retry = sorted({int(ra) for status, _, ra in results if status == 503 and ra})
            rounds.append({"answers": counts, "sent": args.concurrency,
                           "answered": sum(counts.get(s, 0) for s in ("200", "503")),
                           "wall_s": round(wall, 2),
                           "ok_latency_ms": {"p50": pct(ok, 50), "p95": pct(ok, 95)},
                           "busy_latency_ms": {"p50": pct(busy, 50), "p95": pct(busy, 95)},
                           "retry_after_s": retry, "rss_mb_after": rss_mb(proc.pid)})
        stop.set()
        sampler.join()
        report["bursts"] = rounds
        report["rss_mb_peak"] = round(peak[0], 1)
        with urllib.request.urlopen(url + "api/models", timeout=10) as resp:
            report["queue_after"] = json.loads(resp.read())["queues"]
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
    report["loadavg_after"] = [round(x, 2) for x in load_average()]
    lost = sum(b["sent"] - b["answered"] for b in report["bursts"])
    report["lost_or_other"] = lost
    text = json.dumps(report, indent=2)
    print(text)
    if args.out:
        Path(args.out).write_text(text + "\n")
    return 1 if lost else 0


if __name__ == "__main__":
    sys.exit(main())
