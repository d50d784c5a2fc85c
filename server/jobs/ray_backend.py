"""Jobs on a Ray cluster: one Ray actor per running job; SQLite on the server stays the truth.

Imported only with `--jobs-backend ray`. The server claims queued jobs from its store, ships
each job's input files to an actor (so worker nodes need no access to the data dir), and polls
the actor for progress, previews, and the outcome, which it writes into the store. A training
job checkpoints into the shared models dir (`.checkpoints/`), so a job whose node died resumes
on another node. Actors are detached and named after their job, so a restarted server
re-attaches to the ones still running.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import os
import shutil
import signal
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import ray
from ray.exceptions import RayError

from stylefusion.fsutil import atomic_write_bytes

from ..errors import ConfigError
from .params import TrainParams
from .runner import MAX_ATTEMPTS, STOP_GRACE_S, supervise
from .sink import PREVIEW_FILE
from .store import FINAL_STATES, Job, JobStore
from .worker import JobContext, Outcome, WorkerSettings, execute, lower_priority, record

log = logging.getLogger(__name__)

NAMESPACE = "stylefusion"
ACTOR_PREFIX = "stylefusion-job-"
CHECKPOINTS = ".checkpoints"  # in the shared models dir: any node can resume a training
POLL_TIMEOUT_S = 30.0  # an actor that answered before and is silent this long is lost
OUTPUTS = {PREVIEW_FILE, "checkpoint.pt", "result.mp4", "result.png"}  # not shipped to actors


def actor_name(job_id: str) -> str:
    """The Ray actor name of a job (detached actors are found again by name)."""
    return ACTOR_PREFIX + job_id


def checkpoint_path(models_dir: Path, job_id: str) -> Path:
    """Where a training job checkpoints: the shared models dir, readable by every node."""
    return Path(models_dir) / CHECKPOINTS / f"{job_id}.pt"


class BufferSink:
    """The actor's sink: reports and the newest preview wait for the server's next poll."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._reports: list[tuple[float, float | None, dict, int]] = []
        self._preview: bytes | None = None
        self.cancelled = False
        self.peers = 0

    def report(self, progress: float, eta_s: float | None, metrics: dict, step: int) -> None:
        """Buffer a progress row."""
        with self._lock:
            self._reports.append((progress, eta_s, metrics, step))

    def preview(self, jpeg: bytes) -> None:
        """Keep the newest preview only."""
        with self._lock:
            self._preview = jpeg

    def cancel_requested(self) -> bool:
        """Set by the server's poll when the user cancelled."""
        return self.cancelled

    def live_peers(self) -> int:
        """The server's live-peer count, passed along with each poll."""
        return self.peers

    def drain(self) -> tuple[list[tuple[float, float | None, dict, int]], bytes | None]:
        """Hand over (and forget) what was buffered since the last poll."""
        with self._lock:
            reports, preview = self._reports, self._preview
            self._reports, self._preview = [], None
        return reports, preview


@ray.remote(max_restarts=0)
class JobActor:
    """Runs one job in a thread on a Ray worker; the server polls it and records what it says."""

    def __init__(self, job: Job, settings: WorkerSettings, files: dict[str, bytes]) -> None:
        self.scratch = Path(tempfile.mkdtemp(prefix=f"stylefusion-job-{job.id}-"))
        for name, data in files.items():
            (self.scratch / name).parent.mkdir(parents=True, exist_ok=True)
            (self.scratch / name).write_bytes(data)
        self.settings = dataclasses.replace(settings, content_dir=self.scratch / "content")
        self.sink = BufferSink()
        self.stopping = threading.Event()
        self.shipped: dict[str, Any] | None = None
        checkpoint = checkpoint_path(settings.models_dir, job.id)
        ctx = JobContext(self.sink, job, self.settings, self.stopping, self.scratch, checkpoint)
        threading.Thread(target=self._run, args=(job, ctx), daemon=True).start()

    def _run(self, job: Job, ctx: JobContext) -> None:
        logging.basicConfig(level=logging.INFO)
        lower_priority(self.settings)
        try:
            outcome = execute(job, ctx)
            try:
                self.shipped = self._ship(outcome, job)
            except OSError as exc:  # the server must hear of an end, whatever happens
                self.shipped = {"state": "failed", "error": f"cannot read the result: {exc}"}
        finally:
            shutil.rmtree(self.scratch, ignore_errors=True)

    def _ship(self, outcome: Outcome, job: Job) -> dict[str, Any]:
        """The outcome; a result file in the scratch folder travels back as bytes."""
        shipped: dict[str, Any] = {"state": outcome.state, "error": outcome.error}
        result = outcome.result
        if result is not None and job.kind != "train":
            shipped["file"] = (result, (self.scratch / result).read_bytes())
        elif result is not None:
            shipped["path"] = result  # relative to the shared models dir
        return shipped

    def poll(self, peers: int, cancel: bool) -> dict[str, Any]:
        """Progress since the last poll, the newest preview, and the outcome once there is one."""
        self.sink.peers = peers
        self.sink.cancelled = self.sink.cancelled or cancel
        shipped = self.shipped  # read before draining: no report made before the end is lost
        reports, preview = self.sink.drain()
        return {"pid": os.getpid(), "reports": reports, "preview": preview, "outcome": shipped}

    def stop(self) -> None:
        """The server is stopping: checkpoint and end (the job goes back to the queue)."""
        self.stopping.set()

    def pid(self) -> int:
        """The worker process id (tests kill it to play a dead node)."""
        return os.getpid()


class RayRunner:
    """Claims queued jobs from the store and runs each as a Ray actor, polling it into the store."""

    def __init__(
        self,
        store: JobStore,
        settings: WorkerSettings,
        workers: int = 1,
        address: str | None = None,
        gpus: float | None = None,
        live_peers: Callable[[], int] | None = None,
    ) -> None:
        self.store, self.settings = store, settings
        self.workers = max(1, workers)
        self.address, self.gpus = address, gpus
        self.live_peers = live_peers or (lambda: 0)
        self.actors: dict[str, Any] = {}  # job id -> actor handle
        self._inflight: dict[str, tuple[Any, float]] = {}  # job id -> (poll ref, sent at)
        self._answered: set[str] = set()  # jobs whose actor has answered a poll
        self._owns_ray = False
        self._task: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()

    async def start(self) -> None:
        """Connect to Ray (or start a small local one), re-attach or requeue, then supervise."""
        self._connect()
        for job in await asyncio.to_thread(self.store.running):
            actor = await asyncio.to_thread(_find_actor, job.id)
            if actor is None:
                log.info("re-queueing job %s: its Ray actor is gone", job.id)
                await asyncio.to_thread(self.store.requeue, job.id, None)
            else:
                log.info("re-attached to the Ray actor of job %s", job.id)
                self.actors[job.id] = actor
        self._task = asyncio.create_task(
            supervise(self._tick, self._wake, "ray job runner"), name="ray-job-runner"
        )

    def _connect(self) -> None:
        """Join the cluster at `address`, or start a local Ray bounded to the job CPUs."""
        if not ray.is_initialized():
            local = {} if self.address else {"num_cpus": self.workers * self._job_cpus}
            try:
                with _keep_sigterm():
                    ray.init(
                        address=self.address,
                        namespace=NAMESPACE,
                        include_dashboard=False,
                        configure_logging=False,
                        **local,
                    )
            except (ConnectionError, RuntimeError, ValueError) as exc:
                raise ConfigError(f"cannot start or join Ray at {self.address!r}: {exc}") from exc
            self._owns_ray = True
        if self.gpus is None:
            self.gpus = 1.0 if ray.cluster_resources().get("GPU", 0) > 0 else 0.0
        log.info("jobs run as Ray actors with %d CPU(s), %g GPU(s) each", self._job_cpus, self.gpus)

    @property
    def _job_cpus(self) -> int:
        return self.settings.threads or 1

    def wake(self) -> None:
        """A job was queued: check for work now instead of at the next tick."""
        self._wake.set()

    async def stop(self) -> None:
        """Ask running actors to checkpoint and end; their jobs go back to the queue."""
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        for actor in self.actors.values():
            with contextlib.suppress(RayError):
                actor.stop.remote()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + STOP_GRACE_S
        while self.actors and loop.time() < deadline:
            await self._poll_all(0)
            await asyncio.sleep(0.2)
        for job_id in list(self.actors):
            await asyncio.to_thread(self._forget, job_id, True)
        if self._owns_ray:
            ray.shutdown()

    async def _tick(self) -> None:
        # jobs yield to live viewers only on a local Ray, which shares this box's CPU
        await self._poll_all(0 if self.address else self.live_peers())
        while len(self.actors) < self.workers:
            job = await asyncio.to_thread(self.store.claim, os.getpid())
            if job is None:
                break
            await asyncio.to_thread(self._launch, job)

    async def _poll_all(self, peers: int) -> None:
        for job_id in list(self.actors):
            await asyncio.to_thread(self._poll, job_id, peers)

    def _launch(self, job: Job) -> None:
        """Start the job's actor with its declared resources and its input files."""
        stale = _find_actor(job.id)
        if stale is not None:  # a previous attempt's actor, stopped or stuck
            ray.kill(stale)
        options = {"num_cpus": self._job_cpus, "num_gpus": self.gpus or 0}
        self.actors[job.id] = JobActor.options(  # type: ignore[attr-defined]
            name=actor_name(job.id), namespace=NAMESPACE, lifetime="detached", **options
        ).remote(job, self.settings, self._inputs(job))
        log.info("%s job %s started on Ray (%s)", job.kind, job.id, options)

    def _inputs(self, job: Job) -> dict[str, bytes]:
        """The job folder's input files (and the default training photos when none were sent)."""
        folder = self.store.job_dir(job.id)
        files = {
            str(p.relative_to(folder)): p.read_bytes()
            for p in folder.rglob("*")
            if p.is_file() and p.name not in OUTPUTS and not p.name.startswith(".")
        }
        content = self.settings.content_dir
        default_photos = isinstance(job.params, TrainParams) and job.params.content is None
        if default_photos and content is not None:
            for p in Path(content).rglob("*"):
                if p.is_file():
                    files[f"content/{p.relative_to(content)}"] = p.read_bytes()
        return files

    def _poll(self, job_id: str, peers: int) -> None:
        """Send a poll, or collect the answer of the one in flight (never waits on the actor)."""
        cancel = self.store.cancel_requested(job_id)
        if job_id not in self._inflight:
            ref = self.actors[job_id].poll.remote(peers, cancel)
            self._inflight[job_id] = (ref, time.monotonic())
        ref, sent = self._inflight[job_id]
        ready, _ = ray.wait([ref], timeout=0)
        if not ready:
            self._waiting(job_id, time.monotonic() - sent, cancel)
            return
        del self._inflight[job_id]
        try:
            status = ray.get(ref)
        except RayError as exc:
            log.warning("lost the Ray actor of job %s: %s", job_id, type(exc).__name__)
            self._forget(job_id, True)
            return
        self._answered.add(job_id)
        self._record(job_id, status)

    def _waiting(self, job_id: str, waited_s: float, cancel: bool) -> None:
        """An actor is slow to answer: still starting (or waiting for resources), or lost."""
        if job_id in self._answered and waited_s > POLL_TIMEOUT_S:
            log.warning("the Ray actor of job %s stopped answering", job_id)
            self._forget(job_id, True)
        elif job_id not in self._answered and cancel:
            self._forget(job_id, False)  # cancelled before its actor even started
            self.store.finish(job_id, "cancelled")

    def _record(self, job_id: str, status: dict[str, Any]) -> None:
        """Write one poll's reports, preview and outcome into the store."""
        for progress, eta_s, metrics, step in status["reports"]:
            self.store.report(job_id, progress, eta_s, metrics, step)
        if status["preview"] is not None:
            atomic_write_bytes(self.store.job_dir(job_id) / PREVIEW_FILE, status["preview"])
            self.store.bump_preview(job_id)
        shipped = status["outcome"]
        if shipped is None:
            return
        result = None
        if "file" in shipped:
            result, data = shipped["file"]
            atomic_write_bytes(self.store.job_dir(job_id) / result, data)
        elif "path" in shipped:
            result = shipped["path"]
        record(self.store, job_id, Outcome(shipped["state"], result, shipped["error"]))
        self._forget(job_id, False)

    def _forget(self, job_id: str, requeue: bool) -> None:
        """Kill a job's actor; requeue its job (or fail it after MAX_ATTEMPTS lost actors)."""
        actor = self.actors.pop(job_id, None)
        self._inflight.pop(job_id, None)
        self._answered.discard(job_id)
        if actor is not None:
            with contextlib.suppress(RayError, ValueError):
                ray.kill(actor)
        job = self.store.get(job_id)
        if requeue and job is not None and job.state == "running":
            if job.attempts >= MAX_ATTEMPTS:
                self.store.finish(job_id, "failed", error="the job's Ray worker died repeatedly")
            else:
                log.info("re-queueing job %s; a training resumes from its checkpoint", job_id)
                self.store.requeue(job_id, None)
        job = self.store.get(job_id)
        if job is not None and job.state in FINAL_STATES:  # a queued job keeps its checkpoint
            checkpoint_path(self.settings.models_dir, job_id).unlink(missing_ok=True)


@contextlib.contextmanager
def _keep_sigterm() -> Iterator[None]:
    """Put back the SIGTERM handler that Ray's init replaces (aiohttp's graceful stop)."""
    # Ray's own handler ends the process on the spot; ours lets running jobs checkpoint
    main = threading.current_thread() is threading.main_thread()
    previous = signal.getsignal(signal.SIGTERM) if main else None
    yield
    if main and previous is not None:
        signal.signal(signal.SIGTERM, previous)


def _find_actor(job_id: str) -> Any | None:
    """The running actor of a job, or None."""
    try:
        return ray.get_actor(actor_name(job_id), namespace=NAMESPACE)
    except ValueError:
        return None
