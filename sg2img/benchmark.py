"""Timing helpers the benchmark scripts share: medians of timed calls, interleaved rounds, threads,
machine load and JSON reports.

The scripts under ``scripts/`` time the library on shared machines, where one measurement means
little: they repeat a call and take the median, interleave the variants they compare (so that a
burst of load from another job hits every variant alike) and report the load average beside
the figures. These functions are that method, written once.
"""

from __future__ import annotations

import json
import math
import os
import statistics
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

# generate()'s precisions (sg2img.model.PRECISIONS), named here without importing torch so a
# benchmark's parent process that only starts workers stays light.
PRECISION_CHOICES = ("fp32", "bf16")


def synchronize(device: Any = None) -> None:
    """Wait for the device's queued work (CUDA kernels run asynchronously); a no-op on the CPU
    and for None."""
    if device is None:
        return
    import torch

    device = torch.device(device)
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed_calls(fn: Callable[[], Any], repeats: int, *, device: Any = None) -> list[float]:
    """Seconds of ``repeats`` calls of ``fn``, one after another (no warm-up); on a CUDA
    ``device`` each time includes waiting for the call's kernels."""
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        synchronize(device)
        times.append(time.perf_counter() - t0)
    return times


def median_time(fn: Callable[[], Any], repeats: int, warmup: int = 1, *,
                device: Any = None) -> float:
    """Median seconds of ``repeats`` calls of ``fn`` after ``warmup`` untimed calls (on a CUDA
    ``device``, each call's kernels included; the warm-up's are waited for first)."""
    for _ in range(warmup):
        fn()
    synchronize(device)
    return statistics.median(timed_calls(fn, repeats, device=device))


def interleaved_times(fns: Mapping[Any, Callable[[], Any]], rounds: int
                      ) -> dict[Any, list[float]]:
    """Seconds of each variant's call over ``rounds`` rounds; in every round each variant runs
    once, the order rotating by one from round to round (reversed every other round for two).

    Args:
        fns: variant name -> the call to time, in the order of round 0.
        rounds: rounds (each gives one time per variant).

    Returns:
        Variant name -> ``rounds`` times in seconds, in round order.
    """
    names = list(fns)
    times: dict[Any, list[float]] = {k: [] for k in names}
    for r in range(rounds):
        shift = r % len(names) if names else 0
        for name in names[shift:] + names[:shift]:
            t0 = time.perf_counter()
            fns[name]()
            times[name].append(time.perf_counter() - t0)
    return times


def per_round_ratios(a: Sequence[float], b: Sequence[float]) -> list[float]:
    """Per-round ratios ``a[i] / b[i]`` of two interleaved series of times.

    Raises:
        ValueError: if the series have different lengths.
    """
    return [x / y for x, y in zip(a, b, strict=True)]


def set_threads(threads: int) -> int:
    """Set torch's intra-op CPU threads; returns the count torch reports afterwards.

    Raises:
        ValueError: if ``threads`` < 1.
    """
    import torch

    if threads < 1:
        raise ValueError(f"threads must be at least 1, got {threads}")
    torch.set_num_threads(threads)
    return torch.get_num_threads()


def thread_env(threads: int) -> dict[str, str]:
    """This process's environment with OpenMP and MKL limited to ``threads`` threads, for a
    child process that must run with that many from its start."""
    return dict(os.environ, OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads))


def load_average() -> tuple[float, float, float]:
    """The machine's 1, 5 and 15 minute load averages (nan where the platform has none)."""
    try:
        return os.getloadavg()
    except (AttributeError, OSError):
        return (math.nan, math.nan, math.nan)


def write_json(path: str | os.PathLike, report: Any, indent: int = 2) -> None:
    """Write ``report`` as indented JSON (no trailing newline), as the scripts' ``--out`` /
    ``--json`` files are."""
    Path(path).write_text(json.dumps(report, indent=indent))


def parse_variants(specs: Sequence[str], option: str = "--also"
                   ) -> tuple[dict[str, list[str]], dict[str, str]]:
    """Parse variant specs ``LABEL:KEY=VALUE[,KEY=VALUE...]`` of a benchmark against sg2im.

    ``precision=fp32|bf16`` is ``generate()``'s argument, not a config key; every other pair is
    a config override (``model.renderer.channels=32``).

    Args:
        specs: the specs as given on the command line.
        option: the option's name, for the messages.

    Returns:
        ({"sg2img[LABEL]": config overrides}, {"sg2img[LABEL]": precision}); a variant
        without ``precision=`` has no entry in the second dict.

    Raises:
        ValueError: naming the spec, for a missing label or pairs, a reserved label
            (``sg2im``, ``sg2img``), a label given twice, a pair without ``=`` or an unknown
            precision.
    """
    variants: dict[str, list[str]] = {}
    precisions: dict[str, str] = {}
    for spec in specs:
        label, _, sets = spec.partition(":")
        if not label or not sets or label in ("sg2im", "sg2img"):
            raise ValueError(f"{option} {spec!r}: expected LABEL:KEY=VALUE[,KEY=VALUE...]")
        impl = f"sg2img[{label}]"
        if impl in variants:
            raise ValueError(f"{option} {spec!r}: the label {label!r} is given twice")
        variants[impl] = []
        for kv in sets.split(","):
            key, eq, value = kv.partition("=")
            if not eq:
                raise ValueError(f"{option} {spec!r}: {kv!r} is not KEY=VALUE")
            if key == "precision":
                if value not in PRECISION_CHOICES:
                    raise ValueError(f"{option} {spec!r}: precision must be "
                                     f"{' or '.join(PRECISION_CHOICES)}")
                precisions[impl] = value
            else:
                variants[impl].append(kv)
    return variants, precisions
