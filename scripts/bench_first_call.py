"""What the first ``generate(graph)`` of a process pays for, against later calls.

``generate(graph)`` without a model loads the bundled model on its first call and keeps it
(cached by file and device), so that call is slower than ``generate(graph, model)`` with a
loaded model. This script measures where the difference goes, each round in two fresh Python
processes (a first call happens once per process):

* the newcomer's timing: ``generate(graph)`` twice, the second from the cache, and the cost of
  the cache lookup alone (``resolve_model``: the path's ``resolve()`` and ``stat()``);
* the breakdown: ``import sg2img.api`` (torch included), ``load_model()``, the first
  ``generate(graph, model)`` and a second one.

Prints the median of each figure over ``--repeats`` rounds, with the load average before and
after (other jobs on a shared machine move these figures; compare rounds, not runs).

Usage::

    python scripts/bench_first_call.py --repeats 7 --threads 2
    python scripts/bench_first_call.py --device cuda --json first_call.json
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time

GRAPH = {"objects": ["sky", "grass", "sheep"],
         "relationships": [[0, "above", 1], [2, "above", 1]]}
# (key, label) of the figures, in the order printed.
FIGURES = [
    ("newcomer_first_s", "generate(graph), first call (loads the model)"),
    ("newcomer_cached_s", "generate(graph), second call (cached model)"),
    ("cache_lookup_s", "  of which the cache lookup (resolve_model)"),
    ("import_s", "import sg2img.api (torch included)"),
    ("load_s", "load_model()"),
    ("first_forward_s", "generate(graph, model), first call"),
    ("second_forward_s", "generate(graph, model), second call"),
]


def child(mode: str, device: str, threads: int) -> dict[str, float]:
    """One fresh process's figures (seconds) for ``mode`` ("newcomer" or "breakdown")."""
    t0 = time.perf_counter()
    from sg2img.api import generate, load_model, resolve_model
    from sg2img.benchmark import set_threads
    t1 = time.perf_counter()
    set_threads(threads)
    if mode == "newcomer":
        a = time.perf_counter()
        generate(GRAPH, seed=0, device=device)
        b = time.perf_counter()
        generate(GRAPH, seed=0, device=device)
        c = time.perf_counter()
        n = 1000
        for _ in range(n):
            resolve_model(None, device)
        d = time.perf_counter()
        return {"newcomer_first_s": b - a, "newcomer_cached_s": c - b,
                "cache_lookup_s": (d - c) / n}
    a = time.perf_counter()
    model = load_model(device=device)
    b = time.perf_counter()
    generate(GRAPH, model, seed=0)
    c = time.perf_counter()
    generate(GRAPH, model, seed=0)
    d = time.perf_counter()
    return {"import_s": t1 - t0, "load_s": b - a, "first_forward_s": c - b,
            "second_forward_s": d - c}


def run_child(mode: str, device: str, threads: int) -> dict[str, float]:
    from sg2img.benchmark import thread_env

    out = subprocess.run([sys.executable, __file__, "--child", mode, "--device", device,
                          "--threads", str(threads)], capture_output=True, text=True,
                         env=thread_env(threads), check=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--repeats", type=int, default=7, help="rounds (two processes each)")
    p.add_argument("--threads", type=int, default=2, help="torch CPU threads")
    p.add_argument("--device", default="cpu")
    p.add_argument("--json", default=None, help="also write the figures here")
    p.add_argument("--child", choices=("newcomer", "breakdown"), help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.child:
        print(json.dumps(child(args.child, args.device, args.threads)))
        return 0

    from sg2img.benchmark import load_average, write_json

    load_before = load_average()
    rounds: dict[str, list[float]] = {key: [] for key, _ in FIGURES}
    for r in range(args.repeats):
        # The two processes alternate which goes first, so a burst of load hits both alike.
        modes = ("newcomer", "breakdown") if r % 2 == 0 else ("breakdown", "newcomer")
        for mode in modes:
            for key, value in run_child(mode, args.device, args.threads).items():
                rounds[key].append(value)
    load_after = load_average()
    med = {key: statistics.median(values) for key, values in rounds.items()}
    print(f"device {args.device}, {args.threads} threads, {args.repeats} rounds; load average "
          f"{load_before[0]:.2f} before, {load_after[0]:.2f} after")
    for key, label in FIGURES:
        unit = 1e6 if key == "cache_lookup_s" else 1e3
        print(f"{label:50s} {med[key] * unit:8.1f} {'us' if unit == 1e6 else 'ms'}  "
              f"(min {min(rounds[key]) * unit:.1f})")
    warmup = med["first_forward_s"] - med["second_forward_s"]
    extra = med["newcomer_first_s"] - med["newcomer_cached_s"]
    load = med["load_s"]
    print(f"first call's extra: {extra * 1e3:.1f} ms; model load {load * 1e3:.1f} ms + "
          f"first-forward warm-up {warmup * 1e3:.1f} ms = {(load + warmup) * 1e3:.1f} ms")
    if args.json:
        write_json(args.json, {"device": args.device, "threads": args.threads,
                               "repeats": args.repeats, "load_average": [load_before, load_after],
                               "median_s": med, "rounds_s": rounds})
    return 0


if __name__ == "__main__":
    sys.exit(main())
