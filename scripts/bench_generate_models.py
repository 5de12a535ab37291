"""``generate()`` time of two models on the same graphs, side by side.

Both models draw the examples' graphs (``examples/scenes.json`` and ``examples/sheep.json``,
eight samples in all per call) in interleaved rounds, so a busy machine slows both alike; the
figure to read is the median of the per-round ratios. Prints one JSON line with the medians,
the ratio and the load average.

Usage::

    python scripts/bench_generate_models.py --checkpoint runs/third.pt \
        --against sg2img/assets/default_model.pt --rounds 15
"""

from __future__ import annotations

import argparse
import json
import statistics


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--checkpoint", required=True, help="the model timed")
    p.add_argument("--against", default=None, help="the baseline (the bundled model)")
    p.add_argument("--rounds", type=int, default=15)
    p.add_argument("--threads", type=int, default=2)
    a = p.parse_args()

    from sg2img.api import generate, load_model, load_scene_graphs
    from sg2img.benchmark import interleaved_times, load_average, per_round_ratios, set_threads

    set_threads(a.threads)
    graphs = (load_scene_graphs("examples/scenes.json")
              + load_scene_graphs("examples/sheep.json"))
    samples = max(1, 8 // len(graphs))
    models = {"model": load_model(a.checkpoint), "baseline": load_model(a.against)}
    calls = {name: (lambda m=m: generate(graphs, m, seed=0, num_samples=samples))
             for name, m in models.items()}
    for call in calls.values():
        call()                                              # first-call set-up, not timed
    times = interleaved_times(calls, a.rounds)
    ratios = per_round_ratios(times["model"], times["baseline"])
    print(json.dumps({
        "graphs": len(graphs), "samples_per_graph": samples, "rounds": a.rounds,
        "threads": a.threads, "model": a.checkpoint, "baseline": a.against or "bundled",
        "median_s": {k: round(statistics.median(v), 4) for k, v in times.items()},
        "ratio_median": round(statistics.median(ratios), 3),
        "ratio_range": [round(min(ratios), 3), round(max(ratios), 3)],
        "load_average": load_average()}))


if __name__ == "__main__":
    main()
