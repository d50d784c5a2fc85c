"""The job worker process: claims queued jobs and runs them through the stylefusion library."""

from __future__ import annotations

import ctypes
import logging
import os
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from stylefusion.errors import Cancelled, StyleFusionError
from stylefusion.images import encode_jpeg
from stylefusion.progress import CancelFlag, Progress

from .sink import JobSink, StoreSink
from .store import Job, JobStore

log = logging.getLogger(__name__)

LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s[worker]: %(message)s"
REPORT_EVERY_S = 0.25  # progress rows written at most this often (previews always)
CHECK_EVERY_S = 0.25  # cancel flag and live-peer count read at most this often


@dataclass(frozen=True)
class WorkerSettings:
    """What a worker process needs to know; picklable, handed over at spawn."""

    data_dir: Path
    models_dir: Path
    device: str = "auto"
    threads: int | None = 1  # torch threads on CPU (live inference keeps the other cores)
    nice: int = 19  # lowest CPU priority: live viewers come first
    poll_s: float = 0.5
    checkpoint_every_s: float = 30.0
    content_dir: Path | None = None  # photos for training when a job uploads none
    yield_fraction: float = 0.5  # sleep this share of each step's time while peers are live
    preview_every: int = 20


class JobContext:
    """Progress callback and cancel flag of one job, both backed by the job's sink."""

    def __init__(
        self,
        sink: JobSink,
        job: Job,
        settings: WorkerSettings,
        stop: CancelFlag,
        folder: Path,
        checkpoint: Path | None = None,
    ) -> None:
        self.sink, self.job, self.settings, self.stop = sink, job, settings, stop
        self.folder = folder  # the job's inputs and outputs
        self.checkpoint = checkpoint or folder / "checkpoint.pt"
        self._last_report = 0.0
        self._last_check = 0.0
        self._cancelled = False
        self._peers = 0
        self._last_call = time.monotonic()

    def is_set(self) -> bool:
        """The cancel flag: the user asked to cancel, or the server is stopping."""
        if self.stop.is_set() or self._cancelled:
            return True
        self._refresh()
        return self._cancelled

    def _refresh(self) -> None:
        now = time.monotonic()
        if now - self._last_check >= CHECK_EVERY_S:
            self._last_check = now
            self._cancelled = self.sink.cancel_requested()
            self._peers = self.sink.live_peers()

    def progress(self, p: Progress) -> None:
        """Record a progress report (throttled), save its preview, yield to live peers."""
        now = time.monotonic()
        busy = now - self._last_call
        if p.preview is not None:
            self.sink.preview(encode_jpeg(p.preview, quality=75))
        if p.preview is not None or p.done >= p.total or now - self._last_report >= REPORT_EVERY_S:
            self._last_report = now
            metrics = {k: float(v) for k, v in p.metrics.items()}
            self.sink.report(p.fraction, p.eta_s, metrics, p.done)
        self._yield(busy)
        self._last_call = time.monotonic()

    def _yield(self, busy_s: float) -> None:
        """While live viewers are connected, pause between steps so their frames come first."""
        self._refresh()
        if self._peers > 0 and self.settings.yield_fraction > 0:
            time.sleep(min(0.5, busy_s * self.settings.yield_fraction))


def run_video(job: Job, ctx: JobContext) -> Path:
    """Stylize the uploaded clip into result.mp4 (sound kept)."""
    from stylefusion.style_folder import resolve_style
    from stylefusion.video import VideoConfig, stylize_video

    p, s = job.params, ctx.settings
    config = VideoConfig(
        style=resolve_style(p["style"], s.models_dir),
        device=s.device,
        max_side=p.get("max_side"),
        strength=p.get("strength", 1.0),
    )
    output = ctx.folder / "result.mp4"
    stylize_video(ctx.folder / p["input"], output, config, ctx.progress, ctx)
    return output


def run_render(job: Job, ctx: JobContext) -> Path:
    """Iterative (Gatys) render of content in the style image into result.png."""
    from stylefusion.renderer import RenderConfig, render

    p, s = job.params, ctx.settings
    extra = {"style_weight": p["style_weight"]} if p.get("style_weight") is not None else {}
    config = RenderConfig(
        content=ctx.folder / p["content"],
        style_image=ctx.folder / p["style_image"],
        output=ctx.folder / "result.png",
        size=p["size"],
        iterations=p["iterations"],
        optimizer=p.get("optimizer", "lbfgs"),
        device=s.device,
        preview_every=max(1, min(s.preview_every, p["iterations"] // 10 or 1)),
        threads=s.threads,
        **extra,
    )
    return Path(render(config, ctx.progress, ctx).output)


def run_train(job: Job, ctx: JobContext) -> Path:
    """Train a new style into the models dir, resuming from the job's checkpoint if any."""
    from stylefusion.trainer import TrainConfig, train

    p, s = job.params, ctx.settings
    content = ctx.folder / "content" if p.get("content_files") else s.content_dir
    if content is None or not Path(content).is_dir():
        raise StyleFusionError("no content photos: upload some or start the server with content")
    extra = {k: p[k] for k in ("style_weight", "batch_size") if p.get(k) is not None}
    config = TrainConfig(
        style_image=ctx.folder / p["style_image"],
        content_dir=Path(content),
        name=p["name"],
        display_name=p.get("display_name"),
        output_dir=s.models_dir,
        variant=p["variant"],
        steps=p.get("steps"),
        seconds=p.get("seconds"),
        size=p["size"],
        device=s.device,
        resume=True,  # a requeued job continues from its checkpoint
        checkpoint_path=ctx.checkpoint,
        checkpoint_every_s=s.checkpoint_every_s,
        preview_every=s.preview_every,
        threads=s.threads,
        overwrite=bool(p.get("overwrite")),
        **extra,
    )
    earlier = finished_earlier(
        config.output_dir / config.name, config.variant, config.checkpoint_path
    )
    if earlier is not None:  # the server died between writing the style and marking the job
        return earlier
    result = train(config, ctx.progress, ctx)
    return Path(result.folder) / "meta.json"


def finished_earlier(folder: Path, variant: str, checkpoint: Path | None) -> Path | None:
    """The style's meta.json if this very job (same checkpoint path) already wrote the variant."""
    from stylefusion.errors import StyleFormatError
    from stylefusion.style_folder import read_meta

    try:
        meta = read_meta(folder)
    except StyleFormatError:
        return None
    training = meta["variants"].get(variant, {}).get("training", {})
    written_by = training.get("config", {}).get("checkpoint_path")
    return folder / "meta.json" if written_by and written_by == str(checkpoint) else None


RUNNERS: dict[str, Callable[[Job, JobContext], Path]] = {
    "video": run_video,
    "render": run_render,
    "train": run_train,
}


@dataclass(frozen=True)
class Outcome:
    """How a run ended: done (with its result file), failed, cancelled, or back to the queue."""

    state: str  # done | failed | cancelled | queued
    result: Path | None = None
    error: str | None = None


def execute(job: Job, ctx: JobContext) -> Outcome:
    """Run one claimed job through the library; the backend records the outcome."""
    started = time.monotonic()
    try:
        result = RUNNERS[job.kind](job, ctx)
    except Cancelled:
        # a cancel the user asked for ends the job; a stopping server puts it back in the queue
        return Outcome("cancelled" if ctx.sink.cancel_requested() else "queued")
    except StyleFusionError as exc:
        log.info("job %s failed: %s", job.id, exc)
        return Outcome("failed", error=str(exc))
    except Exception as exc:
        log.exception("job %s crashed", job.id)
        return Outcome("failed", error=f"internal error: {type(exc).__name__}: {exc}")
    log.info("%s job %s done in %.1f s", job.kind, job.id, time.monotonic() - started)
    return Outcome("done", result=result)


def record(store: JobStore, job_id: str, outcome: Outcome) -> None:
    """Write an outcome into the store."""
    if outcome.state == "queued":
        store.requeue(job_id)  # the server is stopping: continue at next start
    else:
        result = str(outcome.result) if outcome.result is not None else None
        store.finish(job_id, outcome.state, result=result, error=outcome.error)


def run_job(store: JobStore, job: Job, settings: WorkerSettings, stop: CancelFlag) -> None:
    """Run one claimed job to its end state (or back to the queue if the server stops)."""
    sink = StoreSink(store, job.id)
    record(store, job.id, execute(job, JobContext(sink, job, settings, stop, sink.folder)))


def _die_with_parent() -> None:
    """Ask Linux to kill this process if the server dies (kill -9 included)."""
    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        log.debug("prctl unavailable; relying on the parent check")


def lower_priority(settings: WorkerSettings) -> None:
    """Lowest CPU priority and few torch threads: live viewers on this box come first."""
    os.nice(settings.nice)
    if settings.threads is not None:
        import torch

        torch.set_num_threads(settings.threads)


def main(settings: WorkerSettings, stop: CancelFlag, parent_pid: int) -> None:
    """Worker process entry: claim and run jobs until `stop` is set or the server is gone."""
    _die_with_parent()
    logging.basicConfig(level=logging.INFO, format=LOG_FORMAT)
    lower_priority(settings)
    store = JobStore(settings.data_dir)
    while not stop.is_set() and os.getppid() == parent_pid:
        job = store.claim(os.getpid())
        if job is None:
            time.sleep(settings.poll_s)
            continue
        log.info("worker %d runs %s job %s", os.getpid(), job.kind, job.id)
        run_job(store, job, settings, stop)
