"""One inference at a time per device, behind a bounded queue.

A request's work (a plain function) runs on the device's single worker thread, so the event
loop stays free to answer other requests (and to refuse them quickly when the queue is full)
while a forward pass runs. A job counts against the queue from the moment it is admitted
until its function has returned, even when the request that sent it stopped waiting (a
function that already started on the worker cannot be interrupted).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import math
import threading
import time
from collections.abc import Callable
from typing import TypeVar

logger = logging.getLogger(__name__)

T = TypeVar("T")


class QueueFull(RuntimeError):
    """The device is busy and its queue is full; retry after ``retry_after`` seconds."""

    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class InferenceQueue:
    """Runs jobs one at a time on a worker thread; at most ``1 + max_waiting`` are admitted.

    Args:
        name: the device name, for messages and logs.
        max_waiting: jobs that may wait while one runs; one more is refused with ``QueueFull``.
        timeout: seconds a request waits for its job (queueing and running) before it is
            answered with ``QueueFull``; a job that had not started by then is dropped.
    """

    def __init__(self, name: str, max_waiting: int = 8, timeout: float = 60.0) -> None:
        if max_waiting < 0:
            raise ValueError(f"max_waiting must be >= 0, got {max_waiting}")
        if timeout <= 0:
            raise ValueError(f"timeout must be > 0 seconds, got {timeout}")
        self.name = name
        self.max_waiting = max_waiting
        self.timeout = timeout
        self._executor = concurrent.futures.ThreadPoolExecutor(
            max_workers=1, thread_name_prefix=f"sg2img-infer-{name}")
        self._lock = threading.Lock()
        self._admitted = 0
        self._mean_seconds = 0.5          # running mean of job durations, for Retry-After
        self.completed = 0
        self.refused = 0

    @property
    def capacity(self) -> int:
        """Jobs admitted at once: the running one and those waiting."""
        return 1 + self.max_waiting

    @property
    def pending(self) -> int:
        """Jobs admitted and not yet finished (running or waiting)."""
        with self._lock:
            return self._admitted

    def retry_after(self) -> int:
        """Whole seconds until a slot is likely free (at least 1)."""
        with self._lock:
            ahead = max(1, self._admitted - self.max_waiting)
            return max(1, math.ceil(ahead * self._mean_seconds))

    def _finished(self, seconds: float | None) -> None:
        with self._lock:
            self._admitted -= 1
            if seconds is not None:
                self._mean_seconds = 0.8 * self._mean_seconds + 0.2 * seconds
                self.completed += 1

    def _wrap(self, fn: Callable[[], T]) -> Callable[[], T]:
        def job() -> T:
            start = time.perf_counter()
            try:
                return fn()
            finally:
                self._finished(time.perf_counter() - start)
        return job

    async def run(self, fn: Callable[[], T]) -> T:
        """Run ``fn()`` on the worker thread and return its result (or raise its exception).

        Raises:
            QueueFull: the queue is full, or the job did not finish within ``timeout``.
        """
        with self._lock:
            if self._admitted >= self.capacity:
                self.refused += 1
                full = True
            else:
                self._admitted += 1
                full = False
        if full:
            raise QueueFull(f"the server is busy: {self.capacity} requests are already queued "
                            f"for device {self.name}; try again shortly", self.retry_after())
        future = self._executor.submit(self._wrap(fn))
        # A job cancelled before it started (timeout, client gone) frees its slot here; a
        # started one frees it when its function returns.
        future.add_done_callback(lambda f: self._finished(None) if f.cancelled() else None)
        try:
            return await asyncio.wait_for(asyncio.wrap_future(future), self.timeout)
        except asyncio.TimeoutError:
            future.cancel()
            raise QueueFull(f"the server is busy: the request waited {self.timeout:g} s for "
                            f"device {self.name} without finishing; try again shortly",
                            self.retry_after()) from None

    def close(self) -> None:
        """Stop the worker thread after the running job (queued jobs are dropped)."""
        self._executor.shutdown(wait=False, cancel_futures=True)
