"""Memory and time of ``generate`` at a number of samples, and of writing them all or nothing.

Generates ``--samples`` images of one scene graph with ``sg2img.api.generate`` (every image is
held until the call returns, which is why ``SG2IMG_MAX_IMAGES`` bounds the count), then writes
them as PNGs through ``sg2img.files.StagedOutput`` into ``--out`` (the path ``sg2img generate``
takes). Prints one JSON line: seconds to generate, to write into the staging folder and to
move into place, and the process's peak RSS (``ru_maxrss``) after loading the model and at the
end. Run once per sample count: the peak is the process's.

Usage::

    python scripts/bench_output.py --samples 2048 --out /tmp/bench_out
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import sys
import time


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--samples", type=int, default=64)
    p.add_argument("--out", required=True, help="output folder (removed first)")
    p.add_argument("--checkpoint", default=None, help="the bundled model when left out")
    p.add_argument("--threads", type=int, default=2)
    args = p.parse_args()

    from sg2img.api import generate, load_model
    from sg2img.benchmark import set_threads
    from sg2img.files import StagedOutput

    set_threads(args.threads)
    shutil.rmtree(args.out, ignore_errors=True)
    model = load_model(args.checkpoint)
    loaded = _peak_mb()
    graph = {"objects": ["sky", "grass", "sheep"],
             "relationships": [[0, "above", 1], [2, "inside", 1]]}
    t0 = time.perf_counter()
    result = generate(graph, model, seed=0, num_samples=args.samples)
    t1 = time.perf_counter()
    stage = StagedOutput(args.out)
    with stage:
        for k, im in enumerate(result.images):
            im.save(stage.path(f"sheep_000_s{k}.png"))
        t2 = time.perf_counter()
    t3 = time.perf_counter()
    print(json.dumps({"samples": args.samples, "image_size": result.images[0].size[0],
                      "generate_s": round(t1 - t0, 2), "write_s": round(t2 - t1, 2),
                      "commit_s": round(t3 - t2, 3), "rss_after_load_mb": round(loaded),
                      "peak_rss_mb": round(_peak_mb())}))
    shutil.rmtree(args.out, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
