"""The job worker process: claims queued jobs and runs them through the stylefusion library."""

from __future__ import annotations

import ctypes
import logging
import os
import signal
import time
from dataclasses import dataclass
from pathlib import Path

from stylefusion.errors import Cancelled, NotConverged, StyleFusionError
from stylefusion.images import encode_jpeg
from stylefusion.progress import CancelFlag, Progress

from .params import (
    RENDER_RESULT,
    VIDEO_RESULT,
    JobParams,
    RenderParams,
    TrainParams,
    VideoParams,
    WorkerSettings,
)
from .sink import JobSink, StoreSink
from .store import Job, JobStore

__all__ = ["JobContext", "Outcome", "WorkerSettings", "execute", "main", "record", "run_job"]

log = logging.getLogger(__name__)

LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s[worker]: %(message)s"
REPORT_EVERY_S = 0.25  # progress rows written at most this often (previews always)
CHECK_EVERY_S = 0.25  # cancel flag and live-peer count read at most this often


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


def run_video(params: VideoParams, ctx: JobContext) -> str:
    """Stylize the uploaded clip into result.mp4 (sound kept)."""
    from stylefusion.video import stylize_video

    config = params.config(ctx.settings)
    stylize_video(ctx.folder / params.input, ctx.folder / VIDEO_RESULT, config, ctx.progress, ctx)
    return VIDEO_RESULT


def run_render(params: RenderParams, ctx: JobContext) -> str:
    """Iterative (Gatys) render of content in the style image into result.png."""
    from stylefusion.renderer import render

    render(params.config(ctx.folder, ctx.settings), ctx.progress, ctx)
    return RENDER_RESULT


def run_train(params: TrainParams, ctx: JobContext) -> str:
    """Train a new style into the models dir, resuming from the job's checkpoint if any."""
    from stylefusion.trainer import train

    config = params.config(ctx.folder, ctx.settings, ctx.job.id, ctx.checkpoint)
    if not Path(config.content_dir).is_dir():
        raise StyleFusionError("no content photos: upload some or start the server with content")
    result = f"{config.name}/meta.json"  # relative to the models dir
    if finished_earlier(config.output_dir / config.name, config.variant, config.command):
        return result  # the server died between writing the style and marking the job
    try:
        train(config, ctx.progress, ctx)
    except NotConverged as exc:  # nothing was written: the job fails, the style list is as it was
        raise NotConverged(f"{exc} (the style was not published)") from None
    return result


def finished_earlier(folder: Path, variant: str, command: str | None) -> bool:
    """Whether this very job (same recorded command) already wrote the style's variant."""
    from stylefusion.errors import StyleFormatError
    from stylefusion.style_folder import read_meta

    try:
        meta = read_meta(folder)
    except StyleFormatError:
        return False
    training = meta["variants"].get(variant, {}).get("training", {})
    return command is not None and training.get("command") == command


def run_params(params: JobParams, ctx: JobContext) -> str:
    """Run one job's work by its params' kind; its result file, relative (see Outcome)."""
    if isinstance(params, VideoParams):
        return run_video(params, ctx)
    if isinstance(params, RenderParams):
        return run_render(params, ctx)
    return run_train(params, ctx)


@dataclass(frozen=True)
class Outcome:
    """How a run ended: done (with its result file), failed, cancelled, or back to the queue."""

    state: str  # done | failed | cancelled | queued
    result: str | None = None  # relative to the job folder (a trained style: the models dir)
    error: str | None = None


def execute(job: Job, ctx: JobContext) -> Outcome:
    """Run one claimed job through the library; the backend records the outcome."""
    started = time.monotonic()
    try:
        result = run_params(job.params, ctx)
    except Cancelled:
        # a cancel the user asked for ends the job; a stopping server puts it back in the queue
        return Outcome("cancelled" if ctx.sink.cancel_requested() else "queued")
    except StyleFusionError as exc:
        log.info("job %s failed: %s", job.id, exc)
        return Outcome("failed", error=portable_message(str(exc), ctx))
    except Exception as exc:
        log.exception("job %s crashed", job.id)
        text = f"internal error: {type(exc).__name__}: {exc}"
        return Outcome("failed", error=portable_message(text, ctx))
    log.info("%s job %s done in %.1f s", job.kind, job.id, time.monotonic() - started)
    return Outcome("done", result=result)


def portable_message(text: str, ctx: JobContext) -> str:
    """An error text for the job row, with this machine's folders named instead of spelled out."""
    folders = {
        ctx.folder: "the job folder",
        ctx.settings.models_dir: "the models dir",
        ctx.settings.content_dir: "the training photos",
    }
    for folder, name in folders.items():
        if folder is not None:
            text = text.replace(f"{folder}/", "").replace(str(folder), name)
    return text


def record(store: JobStore, job_id: str, outcome: Outcome) -> None:
    """Write an outcome into the store."""
    if outcome.state == "queued":
        store.requeue(job_id)  # the server is stopping: continue at next start
    else:
        store.finish(job_id, outcome.state, result=outcome.result, error=outcome.error)


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
