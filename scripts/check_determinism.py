"""Are two identical training runs bit-identical? And what does determinism cost?

Trains the ``tiny`` preset for ``--steps`` steps several times, each run in a fresh process
(as two users' runs would be), with ``--threads`` intra-op threads, in each ``--modes``:

* ``default``: ``train.deterministic=false``, torch's default kernels;
* ``deterministic``: ``train.deterministic=true`` (sg2img's default), which switches on
  ``torch.use_deterministic_algorithms`` for the training loop on CPU.

Runs of the modes are interleaved. Prints, per mode, how many of the weight tensors
(generator, EMA generator, discriminator) differ between run 0 and each other run, the
largest absolute difference, and the median seconds of the training loop (startup excluded),
with the ratio to the first mode.

    python scripts/check_determinism.py --data data/shapes64 --steps 40 --threads 2 --runs 2
    python scripts/check_determinism.py --data data/shapes64 --bench-pairs 8   # cost only
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

MODES = ("default", "deterministic")


def child(args: argparse.Namespace) -> None:
    import torch

    from sg2img.benchmark import set_threads
    from sg2img.config import Config
    from sg2img.train import Trainer

    set_threads(args.threads)
    cfg = Config.from_preset("tiny", [f"data.root={args.data}", f"train.num_steps={args.steps}",
                                      "train.sample_every=100000",
                                      "train.checkpoint_every=100000", "train.log_every=100000",
                                      f"train.deterministic={args.mode == 'deterministic'}"])
    with tempfile.TemporaryDirectory() as run_dir:
        trainer = Trainer(cfg, run_dir, device="cpu")
        t0 = time.perf_counter()
        trainer.train(num_steps=args.steps)
        seconds = time.perf_counter() - t0
    torch.save({"seconds": seconds,
                "weights": {f"{prefix}.{k}": v.detach().clone()
                            for prefix, m in (("G", trainer.G), ("G_ema", trainer.G_ema),
                                              ("D", trainer.D))
                            for k, v in m.state_dict().items()}}, args.child)


def bench(args: argparse.Namespace) -> None:
    """Cost only: one process, one trainer, blocks of steps alternating between the modes."""
    import dataclasses

    from sg2img.benchmark import set_threads
    from sg2img.config import Config
    from sg2img.train import Trainer

    set_threads(args.threads)
    cfg = Config.from_preset("tiny", [f"data.root={args.data}", "train.num_steps=1000000",
                                      "train.sample_every=100000",
                                      "train.checkpoint_every=100000", "train.log_every=100000"])
    times: dict[str, list[float]] = {m: [] for m in MODES}
    with tempfile.TemporaryDirectory() as run_dir:
        trainer = Trainer(cfg, run_dir, device="cpu")
        # Each block ends a train() call, which would write a checkpoint and samples: time
        # the steps only.
        trainer.save = trainer.save_samples = lambda: None
        trainer.train(num_steps=2)  # warm-up
        for _ in range(args.bench_pairs):
            for mode in MODES:
                trainer.cfg = dataclasses.replace(cfg, train=dataclasses.replace(
                    cfg.train, deterministic=mode == "deterministic"))
                t0 = time.perf_counter()
                trainer.train(num_steps=args.bench_steps)
                times[mode].append((time.perf_counter() - t0) / args.bench_steps)
    base = statistics.median(times["default"])
    print(f"tiny preset, {args.threads} threads, {args.bench_pairs} interleaved blocks of "
          f"{args.bench_steps} steps per mode")
    for mode, ts in times.items():
        med = statistics.median(ts)
        print(f"  {mode:13s} median {med:.3f} s/step ({med / base:.2f}x)")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", default="data/shapes64")
    p.add_argument("--steps", type=int, default=40)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--modes", nargs="+", default=list(MODES), choices=MODES)
    p.add_argument("--bench-pairs", type=int, default=0,
                   help="only measure the cost: this many interleaved blocks per mode")
    p.add_argument("--bench-steps", type=int, default=5, help="steps per block")
    p.add_argument("--child", default=None, help=argparse.SUPPRESS)
    p.add_argument("--mode", default="default", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.child:
        child(args)
        return
    if args.bench_pairs:
        bench(args)
        return
    import torch

    results: dict[str, list[dict]] = {m: [] for m in args.modes}
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(args.runs):
            for mode in args.modes:
                out = Path(tmp) / f"{mode}_{r}.pt"
                subprocess.run([sys.executable, __file__, "--child", str(out), "--mode", mode,
                                "--data", args.data, "--steps", str(args.steps),
                                "--threads", str(args.threads)], check=True)
                results[mode].append(torch.load(out, weights_only=True))
    print(f"tiny preset, {args.steps} steps, {args.threads} threads, {args.runs} runs per mode")
    base_median = None
    for mode, runs in results.items():
        ref = runs[0]["weights"]
        for k, run in enumerate(runs[1:], 1):
            diff = [n for n in ref if not torch.equal(ref[n], run["weights"][n])]
            worst = max(((ref[n].float() - run["weights"][n].float()).abs().max().item()
                         for n in diff), default=0.0)
            print(f"  {mode:13s} run 0 vs run {k}: {len(diff)} of {len(ref)} tensors differ, "
                  f"max |diff| {worst:.3g}")
        med = statistics.median(r["seconds"] for r in runs)
        base_median = base_median or med
        print(f"  {mode:13s} median training loop {med:.2f} s ({med / base_median:.2f}x)")


if __name__ == "__main__":
    main()
