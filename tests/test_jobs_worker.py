"""The worker's job context: progress into the store, previews on disk, cancel, yielding."""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from server.jobs import worker
from server.jobs.params import TrainParams
from server.jobs.sink import PEERS_SETTING, StoreSink
from server.jobs.store import JobStore
from server.jobs.worker import JobContext, WorkerSettings
from stylefusion.progress import Progress


@pytest.fixture
def store(tmp_path: Path) -> JobStore:
    return JobStore(tmp_path / "var")


def _context(store: JobStore, tmp_path: Path) -> tuple[JobContext, threading.Event]:
    job = store.create(TrainParams(name="x", variant="lite"))
    claimed = store.claim(1)
    assert claimed is not None and claimed.id == job.id
    stop = threading.Event()
    settings = WorkerSettings(data_dir=tmp_path / "var", models_dir=tmp_path / "models")
    sink = StoreSink(store, claimed.id)
    return JobContext(sink, claimed, settings, stop, sink.folder), stop


def test_progress_and_previews_reach_the_store(store: JobStore, tmp_path: Path) -> None:
    ctx, _ = _context(store, tmp_path)
    preview = np.full((8, 12, 3), 200, np.uint8)
    ctx.progress(Progress(done=5, total=10, eta_s=4.0, metrics={"loss": 3.5}, preview=preview))
    job = store.get(ctx.job.id)
    assert job is not None and job.progress == 0.5 and job.eta_s == 4.0 and job.preview == 1
    assert job.metrics == {"loss": 3.5}
    assert store.history(ctx.job.id) == [{"step": 5, "loss": 3.5}]
    assert Image.open(ctx.folder / "preview.jpg").size == (12, 8)


def test_cancel_flag_follows_the_store_and_server_stop(store: JobStore, tmp_path: Path) -> None:
    ctx, stop = _context(store, tmp_path)
    assert not ctx.is_set()
    store.request_cancel(ctx.job.id)
    ctx._last_check = 0.0  # skip the read throttle
    assert ctx.is_set()
    other, stop = _context(store, tmp_path)
    stop.set()
    assert other.is_set()


def test_jobs_pause_between_steps_only_while_live_peers_watch(
    store: JobStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    sleeps: list[float] = []
    monkeypatch.setattr(worker.time, "sleep", sleeps.append)
    ctx, _ = _context(store, tmp_path)
    ctx.progress(Progress(done=1, total=10))
    assert sleeps == []
    store.set_setting(PEERS_SETTING, "2")
    ctx._last_check = 0.0
    ctx.progress(Progress(done=2, total=10))
    assert len(sleeps) == 1 and 0 < sleeps[0] <= 0.5


def test_a_style_this_job_already_wrote_counts_as_its_result(tmp_path: Path) -> None:
    """A server killed between saving the style and marking the job done loses nothing."""
    from conftest import TINY

    from stylefusion.style_folder import save_transformer
    from stylefusion.transformer_net import TransformerNet

    folder, command = tmp_path / "models" / "mine", "stylefusion-server job j1"
    training = {"config": {}, "command": command}
    save_transformer(folder, "lite", TransformerNet(TINY), name="mine", training=training)
    assert worker.finished_earlier(folder, "lite", command)
    assert not worker.finished_earlier(folder, "lite", "stylefusion-server job j2")
    assert not worker.finished_earlier(folder, "full", command)
    assert not worker.finished_earlier(tmp_path / "models" / "none", "lite", command)


def test_failure_messages_name_folders_instead_of_this_machines_paths(
    store: JobStore, tmp_path: Path
) -> None:
    ctx, _ = _context(store, tmp_path)
    text = f"content image {ctx.folder}/content-0.png does not exist in {ctx.folder}"
    text += f"; no style in {ctx.settings.models_dir}"
    assert worker.portable_message(text, ctx) == (
        "content image content-0.png does not exist in the job folder; no style in the models dir"
    )
