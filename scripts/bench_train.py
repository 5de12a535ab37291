"""Training throughput as users get it: where the time of the ``sg2img train`` loop goes.

Builds the real ``sg2img.train.Trainer`` for a preset and a COCO-format dataset (e.g. the
procedural scenes) and measures, each as a median of repeated runs:

* ``decode``: one dataset item (image decoding, masks, relationships), in this process;
* ``loader``: batches/s of the trainer's own ``DataLoader`` (its ``data.num_workers``) with
  nothing else running, compared with the trainer's consumption (batches/s of the loop);
* ``step``: forward + D step + G step (the trainer's ``train_step``) on a
  batch already in memory, under the loop's kernel setting (``train.deterministic``; on CPU
  also without it, alternating, for its cost), on one batch and over several different ones
  (whose object counts, hence shapes, differ as in the loop); ``ema``: one EMA update;
* ``sample`` and ``checkpoint``: one ``save_samples()`` / ``save()``, amortized over the
  preset's ``sample_every`` / ``checkpoint_every``;
* ``loop``: ``Trainer.train(num_steps=K)`` as a whole (K steps, loader workers competing with
  the step for the cores), minus its one closing sample grid and checkpoint (``train(K)``
  always writes both at its end; measured above and subtracted).

The report splits the loop's time per step into step + EMA + logging + the rest (waiting for
the loader, worker start-up and CPU contention). With ``--device cuda`` it also gives images/s,
peak GPU memory, the step's FLOPs (``torch.utils.flop_counter``, forward and backward of both
networks) and the achieved TFLOP/s as a fraction of ``--peak-tflops`` (MFU; by default looked
up from the GPU's name, bf16 dense).

Usage::

    python scripts/bench_train.py --preset small --data data/shapes64 --steps 20
    python scripts/bench_train.py --preset coco128 --data /tmp/shapes128 --device cuda \\
        --steps 300 --json out.json
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

# bf16 dense tensor-core peaks in TFLOP/s (vendor data sheets, without sparsity).
PEAK_BF16_TFLOPS = {"H200": 989.0, "H100 PCIe": 756.0, "H100": 989.0, "A100": 312.0,
                    "L40S": 362.0, "A10": 125.0, "L4": 121.0, "4090": 165.0}


def peak_tflops(device: torch.device, override: float | None) -> tuple[float | None, str]:
    if override:
        return override, "given with --peak-tflops"
    if device.type != "cuda":
        return None, "no peak on CPU"
    name = torch.cuda.get_device_name(device)
    for key, value in PEAK_BF16_TFLOPS.items():   # "H100 PCIe" is checked before "H100"
        if key in name:
            return value, f"{name}: bf16 dense peak of the {key}"
    return None, f"{name}: unknown peak, pass --peak-tflops"


class _Results(dict):
    """A dict that prints each measured figure as it is set (a run cut short by a time limit
    still leaves its figures in the log)."""

    def __setitem__(self, key, value):
        super().__setitem__(key, value)
        if isinstance(value, float):
            print(f"  .. {key} = {value:.4g}", file=sys.stderr, flush=True)


def bench(args: argparse.Namespace) -> dict:
    from sg2img.benchmark import median_time, synchronize
    from sg2img.config import Config
    from sg2img.optimization import ema_decay_at, update_ema
    from sg2img.train import Trainer

    overrides = [f"data.root={args.data}", "data.dataset=coco", *args.set]
    if args.workers is not None:
        overrides.append(f"data.num_workers={args.workers}")
    cfg = Config.from_preset(args.preset, overrides)
    tc = cfg.train
    device = torch.device(args.device)
    run_dir = Path(args.run_dir or tempfile.mkdtemp(prefix="bench_train_"))
    for sub in ("samples", "checkpoints"):
        (run_dir / sub).mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    trainer = Trainer(cfg, run_dir, device=args.device)
    build_s = time.perf_counter() - t0
    bs = tc.batch_size
    res: dict = _Results({"preset": args.preset, "overrides": overrides, "device": str(device),
                 "threads": torch.get_num_threads(), "batch_size": bs,
                 "num_workers": cfg.data.num_workers, "image_size": cfg.model.renderer.image_size,
                 "build_s": build_s, "run_dir": str(run_dir)})
    if device.type == "cuda":
        res["gpu"] = torch.cuda.get_device_name(device)

    # Decoding one item, in this process.
    ds = trainer.dataset
    n_items = min(len(ds), args.decode_items)
    t0 = time.perf_counter()
    for i in range(n_items):
        ds[i]
    res["decode_ms_per_item"] = 1000 * (time.perf_counter() - t0) / n_items

    # The trainer's own loader alone.
    it = iter(trainer.loader)
    t0 = time.perf_counter()
    next(it)
    res["loader_first_batch_s"] = time.perf_counter() - t0
    n_batches = min(args.loader_batches, len(trainer.loader) - 1)
    t0 = time.perf_counter()
    batches = [next(it) for _ in range(n_batches)]
    res["loader_batches_per_s"] = n_batches / (time.perf_counter() - t0)
    del it

    if args.loader_only:
        res["load_average"] = os.getloadavg()
        return res

    def on_device(b):   # as the loop does it: channels-last images on CUDA
        b = b.to(device)
        if trainer.channels_last and b.images is not None:
            b.images = b.images.contiguous(memory_format=torch.channels_last)
        return b

    # The step alone on a batch in memory.
    batch = on_device(batches[0])
    trainer.G.train()
    trainer.D.train()

    def step():
        trainer.train_step(batch)

    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    # Under the loop's own kernel setting: train.deterministic switches torch's deterministic
    # kernels on for the loop on CPU. Where it is on, the step is also timed without them,
    # alternating, to give the setting's cost.
    with trainer.deterministic_kernels():            # the trainer's own rule decides
        deterministic = torch.are_deterministic_algorithms_enabled()

    def timed_step(loop_setting: bool) -> float:
        with trainer.deterministic_kernels() if loop_setting else contextlib.nullcontext():
            t0 = time.perf_counter()
            step()
            synchronize(device)
            return time.perf_counter() - t0

    for _ in range(2):
        timed_step(True)
    on, free = [], []
    for _ in range(args.repeats):
        on.append(timed_step(True))
        if deterministic:
            free.append(timed_step(False))
    res["step_s"] = statistics.median(on)
    res["deterministic_kernels"] = deterministic
    if free:
        res["step_free_kernels_s"] = statistics.median(free)
    if device.type == "cuda":
        res["peak_gpu_mem_gib"] = torch.cuda.max_memory_allocated(device) / 2**30
    else:   # the process's peak resident set so far: model, optimizers, one batch, the step
        res["peak_rss_gib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    # The same step over the loader's different batches, as the loop sees them: graphs of
    # different sizes give different object counts, so shapes (object crops, graph tensors)
    # change from batch to batch and cached kernels and allocations are not reused as with
    # one batch.
    times = []
    for b in batches[1:1 + max(args.repeats, 2)]:
        batch = on_device(b)
        times.append(timed_step(True))
    res["step_varied_s"] = statistics.median(times)
    res["step_varied_batches"] = len(times)
    batch = on_device(batches[0])
    res["ema_s"] = median_time(lambda: update_ema(trainer.G_ema, trainer.G,
                                                  ema_decay_at(10, tc)), args.repeats,
                               device=device)
    from torch.utils.flop_counter import FlopCounterMode

    with FlopCounterMode(display=False) as fc:
        step()
    res["flops_per_step"] = fc.get_total_flops()
    res["sample_s"] = median_time(trainer.save_samples, 1, warmup=0, device=device)
    res["checkpoint_s"] = median_time(trainer.save, 1, warmup=0, device=device)
    res["amortized_sample_checkpoint_s"] = (res["sample_s"] / tc.sample_every
                                            + res["checkpoint_s"] / tc.checkpoint_every)

    # The whole loop (a fresh loader iterator: worker start-up is part of what users get).
    synchronize(device)
    t0 = time.perf_counter()
    trainer.train(num_steps=args.steps)
    synchronize(device)
    loop = time.perf_counter() - t0
    res["loop_s_per_step"] = (loop - res["sample_s"] - res["checkpoint_s"]) / args.steps
    res["loop_steps"] = args.steps
    res["images_per_s"] = bs / res["loop_s_per_step"]
    res["step_images_per_s"] = bs / res["step_s"]
    res["trainer_batches_per_s"] = 1 / res["loop_s_per_step"]
    res["loader_vs_trainer"] = res["loader_batches_per_s"] / res["trainer_batches_per_s"]
    res["gap_s_per_step"] = res["loop_s_per_step"] - res["step_s"] - res["ema_s"]
    res["gap_after_varied_s_per_step"] = (res["loop_s_per_step"] - res["step_varied_s"]
                                          - res["ema_s"])
    peak, why = peak_tflops(device, args.peak_tflops)
    res["achieved_tflops"] = res["flops_per_step"] / res["loop_s_per_step"] / 1e12
    res["achieved_tflops_step_alone"] = res["flops_per_step"] / res["step_s"] / 1e12
    res["peak_tflops"], res["peak_source"] = peak, why
    if peak:
        res["mfu"] = res["achieved_tflops"] / peak
        res["mfu_step_alone"] = res["achieved_tflops_step_alone"] / peak
    res["load_average"] = os.getloadavg()
    return res


def report(r: dict) -> str:
    if "step_s" not in r:   # --loader-only
        return (f"== {r['preset']}: batch {r['batch_size']}, {r['image_size']} px, "
                f"{r['num_workers']} loader workers, load average {r['load_average'][0]:.1f}\n"
                f"  decode one item (1 process) {r['decode_ms_per_item']:.1f} ms; loader alone "
                f"{r['loader_batches_per_s']:.2f} batches/s "
                f"({r['loader_batches_per_s'] * r['batch_size']:.0f} images/s)")
    lines = [
        f"== {r['preset']} on {r['device']}{' (' + r['gpu'] + ')' if 'gpu' in r else ''}, "
        f"batch {r['batch_size']}, {r['image_size']} px, {r['num_workers']} loader workers, "
        f"{r['threads']} threads, load average {r['load_average'][0]:.1f}",
        f"  loop (Trainer.train, {r['loop_steps']} steps)  {r['loop_s_per_step'] * 1000:8.1f} "
        f"ms/step  {r['trainer_batches_per_s']:.2f} it/s  {r['images_per_s']:.1f} images/s",
        f"  step alone (fwd + D + G)       {r['step_s'] * 1000:8.1f} ms  "
        f"({r['step_images_per_s']:.1f} images/s) on one batch, "
        f"{r['step_varied_s'] * 1000:.1f} ms over {r['step_varied_batches']} different ones"
        + (f"; {r['step_free_kernels_s'] * 1000:.1f} ms on one batch without the loop's "
           f"deterministic kernels" if "step_free_kernels_s" in r else ""),
        f"  EMA update                     {r['ema_s'] * 1000:8.1f} ms",
        f"  rest of the loop (loader wait, contention, logging)  {r['gap_s_per_step'] * 1000:8.1f}"
        f" ms/step; {r['gap_after_varied_s_per_step'] * 1000:.1f} ms/step against the step "
        f"over different batches",
        f"  samples + checkpoints, amortized {r['amortized_sample_checkpoint_s'] * 1000:6.1f} "
        f"ms/step (one grid {r['sample_s'] * 1000:.0f} ms, one checkpoint "
        f"{r['checkpoint_s'] * 1000:.0f} ms)",
        f"  decode one item (1 process)    {r['decode_ms_per_item']:8.1f} ms  -> "
        f"{1000 / r['decode_ms_per_item'] / r['batch_size']:.2f} batches/s per worker",
        f"  loader alone                   {r['loader_batches_per_s']:8.2f} batches/s  = "
        f"{r['loader_vs_trainer']:.1f}x what the loop consumes (first batch "
        f"{r['loader_first_batch_s']:.1f} s)",
        f"  FLOPs per step {r['flops_per_step'] / 1e12:.3f} TFLOP -> "
        f"{r['achieved_tflops']:.3f} TFLOP/s in the loop, "
        f"{r['achieved_tflops_step_alone']:.3f} step alone",
    ]
    if "peak_gpu_mem_gib" in r:
        lines.append(f"  peak GPU memory {r['peak_gpu_mem_gib']:.2f} GiB")
    if "peak_rss_gib" in r:
        lines.append(f"  peak resident memory of the process (after the step) "
                     f"{r['peak_rss_gib']:.2f} GiB")
    if r.get("mfu") is not None:
        lines.append(f"  MFU {100 * r['mfu']:.1f} % in the loop, {100 * r['mfu_step_alone']:.1f} "
                     f"% step alone (peak {r['peak_tflops']:.0f} TFLOP/s: {r['peak_source']})")
    return "\n".join(lines)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--preset", default="small")
    p.add_argument("--data", required=True, help="COCO-format dataset root")
    p.add_argument("--device", default="cpu")
    p.add_argument("--steps", type=int, default=20, help="steps of the whole-loop run")
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--workers", type=int, help="data.num_workers (default: the preset's)")
    p.add_argument("--threads", type=int, default=None, help="torch threads (CPU)")
    p.add_argument("--loader-batches", type=int, default=20)
    p.add_argument("--decode-items", type=int, default=64)
    p.add_argument("--peak-tflops", type=float, help="the accelerator's peak, for MFU")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    p.add_argument("--json", type=Path, help="also write the figures here")
    p.add_argument("--loader-only", action="store_true",
                   help="only decoding and the loader (no step, no training loop)")
    p.add_argument("--run-dir", type=Path, help="keep the run (checkpoints, samples) here")
    args = p.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    import logging

    logging.basicConfig(level=logging.WARNING)
    res = bench(args)
    print(report(res), flush=True)
    if args.json:
        res["command"] = " ".join(sys.argv)
        args.json.write_text(json.dumps(res, indent=1))


if __name__ == "__main__":
    main()
