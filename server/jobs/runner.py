"""Supervises the spawned worker processes: starts them when work is queued, restarts the dead."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import multiprocessing
import os
import time
from collections.abc import Awaitable, Callable
from multiprocessing.process import BaseProcess

from . import worker
from .sink import PEERS_SETTING
from .store import JobStore
from .worker import WorkerSettings

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 3  # a job whose worker died this many times is failed, not retried
SUPERVISE_EVERY_S = 0.5
STOP_GRACE_S = 15.0  # time a worker gets to checkpoint and leave before it is killed
QUICK_DEATH_S = 10.0  # a worker that dies sooner than this delays the next start (backoff)


async def supervise(tick: Callable[[], Awaitable[None]], wake: asyncio.Event, name: str) -> None:
    """Run tick() every SUPERVISE_EVERY_S, or sooner when `wake` is set; a failed tick is logged."""
    while True:
        try:
            await tick()
        except Exception:
            log.exception("%s tick failed", name)
        wake.clear()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(wake.wait(), SUPERVISE_EVERY_S)


class JobRunner:
    """Keeps up to `workers` job processes alive while jobs are queued or running."""

    def __init__(
        self,
        store: JobStore,
        settings: WorkerSettings,
        workers: int = 1,
        live_peers: Callable[[], int] | None = None,
    ) -> None:
        self.store = store
        self.settings = settings
        self.workers = max(1, workers)
        self.live_peers = live_peers or (lambda: 0)
        self._ctx = multiprocessing.get_context("spawn")
        self._stop = self._ctx.Event()
        self._procs: list[BaseProcess] = []
        self._task: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()
        self._peers_written: int | None = None
        self._born: dict[int, float] = {}  # worker pid -> monotonic start time
        self._quick_deaths = 0  # workers in a row that died soon after starting
        self._not_before = 0.0  # no respawn before this monotonic time (crash-loop backoff)

    async def start(self) -> None:
        """Re-queue jobs a previous server left running, then supervise in the background."""
        for job in await asyncio.to_thread(self.store.running):
            log.info("re-queueing job %s left running by a previous server", job.id)
            await asyncio.to_thread(self.store.requeue, job.id, None)
        self._task = asyncio.create_task(
            supervise(self._tick, self._wake, "job runner"), name="job-runner"
        )

    def wake(self) -> None:
        """A job was queued: check for work now instead of at the next tick."""
        self._wake.set()

    async def stop(self) -> None:
        """Ask workers to checkpoint and leave (their jobs go back to the queue), then reap."""
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        self._stop.set()
        for proc in self._procs:
            await asyncio.to_thread(proc.join, STOP_GRACE_S)
            if proc.is_alive():
                log.warning("worker %s did not stop in time; killing it", proc.pid)
                proc.kill()
                await asyncio.to_thread(proc.join, 5)
            self._requeue_orphans(proc)
        self._procs.clear()

    async def _tick(self) -> None:
        for proc in [p for p in self._procs if not p.is_alive()]:
            await asyncio.to_thread(self._reap, proc)
        if (
            len(self._procs) < self.workers
            and time.monotonic() >= self._not_before
            and await asyncio.to_thread(self._has_work)
        ):
            await asyncio.to_thread(self._spawn)
        await self._publish_peers()

    def _has_work(self) -> bool:
        return self.store.count("queued") > 0

    def _spawn(self) -> None:
        proc = self._ctx.Process(
            target=worker.main,
            args=(self.settings, self._stop, os.getpid()),
            name="stylefusion-job-worker",
            daemon=True,
        )
        proc.start()
        self._procs.append(proc)
        self._born[proc.pid or 0] = time.monotonic()
        log.info("started job worker %s", proc.pid)

    def _reap(self, proc: BaseProcess) -> None:
        """A worker died: requeue (or fail) its jobs and forget it; the next tick respawns."""
        proc.join(0)
        log.warning("job worker %s exited with code %s", proc.pid, proc.exitcode)
        self._requeue_orphans(proc)
        self._procs.remove(proc)
        lived = time.monotonic() - self._born.pop(proc.pid or 0, 0.0)
        self._quick_deaths = self._quick_deaths + 1 if lived < QUICK_DEATH_S else 0
        if self._quick_deaths:
            self._not_before = time.monotonic() + min(30.0, 0.5 * 2**self._quick_deaths)

    def _requeue_orphans(self, proc: BaseProcess) -> None:
        for job in self.store.running(worker_pid=proc.pid):
            if job.attempts >= MAX_ATTEMPTS:
                self.store.finish(job.id, "failed", error="the job worker crashed repeatedly")
            else:
                log.info("re-queueing job %s after its worker ended", job.id)
                self.store.requeue(job.id, None)

    async def _publish_peers(self) -> None:
        """Tell the worker how many live viewers there are, so it can yield to them."""
        peers = self.live_peers()
        if peers != self._peers_written:
            await asyncio.to_thread(self.store.set_setting, PEERS_SETTING, str(peers))
            self._peers_written = peers
