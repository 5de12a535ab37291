"""Exact resume: a seeded data order that starts mid-epoch, per-item seeding, RNG states, signals.

A run that is stopped and resumed ends with the same weights as one that never stopped when
the data order, the random choices made while loading, and every RNG stream continue where
they were (same seed, same number of processes and threads); on the CPU it also needs torch's
deterministic kernels (``deterministic_kernels``). ``stop_signals`` turns SIGINT and SIGTERM
into a request to stop at the next step boundary, where the trainer checkpoints.
"""

from __future__ import annotations

import contextlib
import os
import random
import signal
import threading
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, Sampler

from .scene_graph import collate_graphs


class ResumableSampler(Sampler):
    """Per-epoch shuffled indices, split across ranks, that can start mid-epoch.

    The order depends only on (seed, epoch), so a resumed run sees the same batches. Yields
    ``(epoch, index)`` pairs so that the dataset wrapper can seed per-item randomness.
    """

    def __init__(self, size: int, batch_size: int, seed: int, rank: int = 0, world_size: int = 1):
        self.size, self.seed = size, seed
        self.rank, self.world_size = rank, world_size
        # Every rank gets the same whole number of batches (drop the remainder).
        self.batches_per_epoch = size // (batch_size * world_size)
        if self.batches_per_epoch == 0:
            raise ValueError(f"the dataset has {size} items, fewer than one batch of "
                             f"{batch_size} per process x {world_size} processes; lower "
                             f"train.batch_size")
        self.per_rank = self.batches_per_epoch * batch_size
        self.epoch, self.start = 0, 0

    def set_epoch(self, epoch: int, start: int = 0) -> None:
        """Start ``epoch`` at item ``start`` of this rank's share."""
        self.epoch, self.start = epoch, start

    def __iter__(self) -> Iterator[tuple[int, int]]:
        g = torch.Generator().manual_seed(self.seed * 1_000_003 + self.epoch)
        order = torch.randperm(self.size, generator=g)
        mine = order[self.rank::self.world_size][: self.per_rank]
        for idx in mine[self.start:].tolist():
            yield self.epoch, idx

    def __len__(self) -> int:
        return self.per_rank - self.start


class SeededItems(Dataset):
    """Seeds python/numpy/torch RNGs from (seed, epoch, index) before reading an item.

    Random choices made while loading (relationship sampling, flips) then depend only on
    which item of which epoch is read, not on worker scheduling: this is what makes resume exact.
    """

    def __init__(self, dataset: Dataset, seed: int):
        self.dataset, self.seed = dataset, seed

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, key: tuple[int, int]):
        epoch, idx = key
        s = (self.seed * 1_000_003 + epoch) * 10_000_019 + idx
        random.seed(s)
        np.random.seed(s % 2**32)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(s % 2**63)  # the same seed as before for all but huge seeds
            return self.dataset[idx]


class _TrainingLoader(DataLoader):
    """A ``DataLoader`` whose workers start with SIGTERM blocked in every thread, so that
    ``_leave_stop_signals_to_the_trainer``'s thread is the only one to take it (a thread a
    worker starts before its init function would otherwise die of it)."""

    def __iter__(self):
        if not hasattr(signal, "sigwaitinfo"):
            return super().__iter__()
        old = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM})   # workers fork here
        try:
            return super().__iter__()
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, old)


def build_loader(dataset: Dataset, sampler: ResumableSampler, *, batch_size: int, seed: int,
                 num_workers: int, pin_memory: bool) -> DataLoader:
    """Batches of ``dataset`` in ``sampler``'s order, each item read under its own seed."""
    return _TrainingLoader(
        SeededItems(dataset, seed), batch_size=batch_size,
        sampler=sampler, collate_fn=collate_graphs, num_workers=num_workers,
        pin_memory=pin_memory, drop_last=True,
        # Workers live across epochs: no re-spawn (and dataset re-pickling) every epoch.
        persistent_workers=num_workers > 0,
        worker_init_fn=_leave_stop_signals_to_the_trainer,
        # Its own generator: creating an iterator must not consume the global torch RNG,
        # or a resumed run (new iterator mid-epoch) would drift from an uninterrupted one.
        generator=torch.Generator().manual_seed(seed))


def _leave_stop_signals_to_the_trainer(worker_id: int) -> None:
    """A data-loader worker leaves SIGINT and SIGTERM from others than its trainer alone.

    Ctrl-C, ``kill -- -PGID`` or a cluster's preemption signal the whole process group. torch's
    workers die of a SIGTERM that their parent did not send, and a dead worker stops the trainer
    before the checkpoint that ``stop_signals`` asks for. So a worker ignores SIGINT, and a
    thread of its own takes SIGTERM: from the trainer (shutting its loader down) it exits as
    torch's handler would, from anyone else it is ignored; the trainer's checkpoint comes first
    (Linux; where ``signal.sigwaitinfo`` is missing, SIGTERM is handled as torch does).
    """
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if not hasattr(signal, "sigwaitinfo"):   # macOS, Windows: torch's handling stays
        return
    # SIGTERM is blocked in every thread of the worker already (``_TrainingLoader``).
    threading.Thread(target=_exit_on_sigterm_from, args=(os.getppid(),), daemon=True,
                     name="sigterm").start()


def _exit_on_sigterm_from(parent: int) -> None:
    while True:
        if signal.sigwaitinfo({signal.SIGTERM}).si_pid == parent:
            os._exit(0)


def seed_everything(seed: int) -> None:
    """Seed torch's, Python's and numpy's global RNGs."""
    torch.manual_seed(seed)
    random.seed(seed)
    np.random.seed(seed)


def rng_state() -> dict[str, Any]:
    """Every global RNG state (torch, Python, numpy, CUDA when available) as plain data.

    Tensors, ints and floats only, so that it loads with ``torch.load(weights_only=True)``.
    """
    np_state = np.random.get_state()
    state = {
        "torch": torch.get_rng_state(),
        "python": random.getstate(),
        "numpy": {"key": torch.from_numpy(np_state[1].astype(np.int64)), "pos": int(np_state[2]),
                  "has_gauss": int(np_state[3]), "gauss": float(np_state[4])},
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    """Restore the RNG states that ``rng_state`` returned."""
    torch.set_rng_state(state["torch"])
    py = state["python"]
    random.setstate((py[0], tuple(py[1]), py[2]))
    n = state["numpy"]
    np.random.set_state(("MT19937", n["key"].numpy().astype(np.uint32), n["pos"],
                         n["has_gauss"], n["gauss"]))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


@contextlib.contextmanager
def deterministic_kernels(enabled: bool = True) -> Iterator[None]:
    """Torch's deterministic kernels inside the block when ``enabled``.

    With 2 or more threads, two CPU runs of the same config ended with different weights
    (scripts/check_determinism.py): torch's CPU backward of indexing (``x[idx]``, an
    accumulating ``index_put_``, as in the graph convolution) adds in a run-dependent order at
    larger sizes, and the switch removes every difference at no measurable cost. The previous
    global setting (and its ``warn_only``) is restored on leaving the block either way.
    """
    before = (torch.are_deterministic_algorithms_enabled(),
              torch.is_deterministic_algorithms_warn_only_enabled())
    if enabled:
        torch.use_deterministic_algorithms(True)
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(before[0], warn_only=before[1])


@contextlib.contextmanager
def stop_signals(on_signal: Callable[[int], None]) -> Iterator[None]:
    """Inside the block, SIGINT and SIGTERM call ``on_signal(signum)`` instead of stopping.

    The caller then finishes its step and checkpoints. The previous handlers are restored on
    leaving the block; outside the main thread, where Python cannot install handlers, nothing
    changes.
    """
    old = {}

    def handler(signum, frame):
        on_signal(signum)

    for sig in (signal.SIGINT, signal.SIGTERM):
        try:
            old[sig] = signal.signal(sig, handler)
        except ValueError:  # not the main thread
            pass
    try:
        yield
    finally:
        for sig, h in old.items():
            signal.signal(sig, h)
