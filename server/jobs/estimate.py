"""Step rates of training runs on the job device, timed in a low-priority child process.

Timing a step runs the loss network forward and backward a few times: seconds of CPU that
must neither stall the event loop nor take the live viewers' priority. So it runs in a spawned
process at the job worker's priority and thread count, once per kind of run (device, variant,
backbone, norms / fine-tune / own network, crop size, batch); the admin form asks again on
every change, and is answered from the cache.
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
import os
import threading
import time
from collections.abc import Hashable
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool

from stylefusion.train_config import TrainConfig
from stylefusion.train_plan import measure_step_seconds, timing_key

log = logging.getLogger(__name__)

RATE_TTL_S = 600.0  # a rate is timed again after this: the machine's load changes


class StepTimer:
    """Seconds per training step, measured once per timing_key() and kept."""

    def __init__(self, nice: int = 19) -> None:
        self.nice = nice
        self._rates: dict[Hashable, tuple[Future[float], float]] = {}  # key -> (rate, when)
        self._lock = threading.Lock()
        self._pool: ProcessPoolExecutor | None = None

    async def step_seconds(self, config: TrainConfig) -> float:
        """The run's seconds per step: from the cache, or timed in the child process."""
        return await asyncio.wrap_future(self._future(config))

    def _future(self, config: TrainConfig) -> Future[float]:
        key = timing_key(config)
        with self._lock:
            future, when = self._rates.get(key, (None, 0.0))
            if future is None or (future.done() and time.monotonic() - when > RATE_TTL_S):
                log.info("timing a training step of %s", key)
                future = self._executor().submit(measure_step_seconds, config)
                future.add_done_callback(lambda done: self._forget_failure(key, done))
                self._rates[key] = (future, time.monotonic())
        return future

    def _forget_failure(self, key: Hashable, future: Future[float]) -> None:
        """A timing that failed is asked again next time, not cached."""
        error = None if future.cancelled() else future.exception()
        if future.cancelled() or error is not None:
            with self._lock:
                if self._rates.get(key, (None,))[0] is future:
                    del self._rates[key]
                if isinstance(error, BrokenProcessPool):
                    self._pool = None  # the child died: the next timing starts another

    def _executor(self) -> ProcessPoolExecutor:
        if self._pool is None:
            self._pool = ProcessPoolExecutor(
                max_workers=1,
                mp_context=multiprocessing.get_context("spawn"),
                initializer=os.nice,
                initargs=(self.nice,),
            )
        return self._pool

    def close(self) -> None:
        """Stop the timing process (a timing under way is abandoned)."""
        with self._lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=False, cancel_futures=True)
