"""``generate()`` time and memory of two models on the same graphs, side by side.

Both models draw eight graphs per call (the six of ``examples/scenes.json`` and
``examples/sheep.json``, then the first two again) in interleaved rounds, so a busy machine
slows both alike; the figure to read is the median of the per-round ratios. ``--precision fp32
bf16`` times each model at each precision in the same rounds. ``--memory`` (Linux) also runs
one call per model and precision in a fresh process, after a warm-up call: the process's
resident memory with the model loaded, and its peak during the call (``VmHWM`` after resetting
it through ``/proc/self/clear_refs``; Python and torch included). Prints one JSON line with the
medians, the ratios and the load average.

Usage::

    python scripts/bench_generate_models.py --checkpoint runs/third.pt \
        --against sg2img/assets/default_model.pt --rounds 15
    python scripts/bench_generate_models.py --checkpoint default-128 --against default \
        --precision fp32 bf16 --memory --rounds 15
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys


def _graphs():
    from sg2img.api import load_scene_graphs

    graphs = (load_scene_graphs("examples/scenes.json")
              + load_scene_graphs("examples/sheep.json"))
    return (graphs * 2)[:8], 1


def _status_gib(field: str) -> float:
    with open("/proc/self/status") as f:
        kib = next(int(line.split()[1]) for line in f if line.startswith(field + ":"))
    return kib / 2**20


def _memory_worker(checkpoint: str, precision: str, threads: int) -> None:
    """One process: load, warm up, reset the peak, one call; print the memory as JSON."""
    from sg2img.api import generate, load_model
    from sg2img.benchmark import set_threads

    set_threads(threads)
    graphs, samples = _graphs()
    model = load_model(checkpoint)
    generate(graphs, model, seed=0, num_samples=samples, precision=precision)   # warm-up
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")                                  # VmHWM := VmRSS
    loaded = _status_gib("VmRSS")
    generate(graphs, model, seed=0, num_samples=samples, precision=precision)
    peak = _status_gib("VmHWM")
    print(json.dumps({"loaded_gib": round(loaded, 3), "call_peak_gib": round(peak, 3),
                      "call_adds_gib": round(peak - loaded, 3)}))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--checkpoint", required=True, help="the model timed (a file or a name)")
    p.add_argument("--against", default=None, help="the baseline (default: the bundled model)")
    p.add_argument("--rounds", type=int, default=15)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--precision", nargs="+", default=["fp32"], choices=["fp32", "bf16"])
    p.add_argument("--memory", action="store_true",
                   help="also the peak memory of one call per model, in fresh processes")
    p.add_argument("--worker", nargs=2, metavar=("CHECKPOINT", "PRECISION"),
                   help=argparse.SUPPRESS)
    a = p.parse_args()
    if a.worker:
        _memory_worker(a.worker[0], a.worker[1], a.threads)
        return

    from sg2img.api import generate, load_model
    from sg2img.benchmark import interleaved_times, load_average, per_round_ratios, set_threads

    set_threads(a.threads)
    graphs, samples = _graphs()
    paths = {"model": a.checkpoint, "baseline": a.against}
    models = {name: load_model(path) for name, path in paths.items()}
    calls = {f"{name}_{prec}": (lambda m=m, prec=prec: generate(graphs, m, seed=0,
                                                                num_samples=samples,
                                                                precision=prec))
             for name, m in models.items() for prec in a.precision}
    for call in calls.values():
        call()                                              # first-call set-up, not timed
    load_before = load_average()
    times = interleaved_times(calls, a.rounds)
    ratios = {prec: per_round_ratios(times[f"model_{prec}"], times[f"baseline_{prec}"])
              for prec in a.precision}
    report = {
        "graphs": len(graphs), "samples_per_graph": samples, "rounds": a.rounds,
        "threads": a.threads, "model": a.checkpoint, "baseline": a.against or "bundled",
        "image_size": {name: m.image_size for name, m in models.items()},
        "median_s": {k: round(statistics.median(v), 4) for k, v in times.items()},
        "ratio_median": {k: round(statistics.median(r), 3) for k, r in ratios.items()},
        "ratio_range": {k: [round(min(r), 3), round(max(r), 3)] for k, r in ratios.items()},
        "load_average": {"before": load_before, "after": load_average()}}
    if a.memory:
        report["memory"] = {
            f"{name}_{prec}": json.loads(subprocess.run(
                [sys.executable, __file__, "--checkpoint", a.checkpoint, "--threads",
                 str(a.threads), "--worker", str(path) if path else "default", prec],
                check=True, capture_output=True, text=True).stdout.splitlines()[-1])
            for name, path in paths.items() for prec in a.precision}
    print(json.dumps(report))


if __name__ == "__main__":
    main()
