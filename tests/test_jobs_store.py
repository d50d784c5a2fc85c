"""The SQLite job store: life cycle of a job, claiming, cancel, requeue, history."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest

from server.jobs import store as store_module
from server.jobs.params import RenderParams, TrainParams, VideoParams
from server.jobs.store import JobStore


def _train(name: str = "x") -> TrainParams:
    return TrainParams(name=name, variant="lite", style_image="style_image-0.png")


@pytest.fixture
def store(tmp_path: Path) -> JobStore:
    return JobStore(tmp_path / "var")


def test_a_job_goes_from_queued_to_done(store: JobStore) -> None:
    created = store.create(RenderParams(size=48))
    assert created.state == "queued" and created.progress == 0
    assert created.kind == "render" and created.params == RenderParams(size=48)
    claimed = store.claim(worker_pid=123)
    assert claimed is not None and claimed.id == created.id
    assert claimed.state == "running" and claimed.attempts == 1 and claimed.worker_pid == 123
    store.report(created.id, 0.5, 3.0, {"loss": 2.0}, step=5)
    mid = store.get(created.id)
    assert mid is not None and mid.progress == 0.5 and mid.eta_s == 3.0
    assert mid.metrics == {"loss": 2.0}
    store.finish(created.id, "done", result="result.png")
    done = store.get(created.id)
    assert done is not None and done.state == "done" and done.progress == 1
    assert done.result == "result.png" and done.finished is not None


def test_jobs_are_claimed_oldest_first_and_only_once(tmp_path: Path) -> None:
    first = JobStore(tmp_path / "var")
    second = JobStore(tmp_path / "var")  # another process opening the same database
    a = first.create(VideoParams(style="alpha"))
    b = first.create(_train())
    assert [j.id for j in first.list()] == [b.id, a.id]
    got = [first.claim(1), second.claim(2), second.claim(2)]
    assert [j.id if j else None for j in got] == [a.id, b.id, None]


def test_cancel_stops_queued_jobs_at_once_and_flags_running_ones(store: JobStore) -> None:
    running = store.create(_train())
    queued = store.create(RenderParams())
    store.claim(1)
    store.request_cancel(queued.id)
    store.request_cancel(running.id)
    assert store.get(queued.id).state == "cancelled"  # type: ignore[union-attr]
    assert store.get(running.id).state == "running"  # type: ignore[union-attr]
    assert store.cancel_requested(running.id)


def test_requeue_puts_a_running_job_back(store: JobStore) -> None:
    job = store.create(_train())
    store.claim(7)
    assert [j.id for j in store.running(worker_pid=7)] == [job.id]
    store.requeue(job.id)
    back = store.get(job.id)
    assert back is not None and back.state == "queued" and back.worker_pid is None
    again = store.claim(8)
    assert again is not None and again.id == job.id and again.attempts == 2


def test_loss_history_is_kept_and_thinned(store: JobStore, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(store_module, "MAX_HISTORY", 10)
    job = store.create(_train())
    for step in range(1, 46):
        store.report(job.id, step / 45, None, {"loss": 1000.0 / step}, step)
    history = store.history(job.id)
    assert 10 <= len(history) <= 11
    assert history[0] == {"step": 1, "loss": 1000.0}
    assert history[-1]["step"] == 45


def test_active_jobs_can_be_found_by_style_name(store: JobStore) -> None:
    job = store.create(_train("monet"))
    store.create(_train("other"))
    assert [j.id for j in store.active_with("train", "name", "monet")] == [job.id]
    store.claim(1)
    store.finish(job.id, "failed", error="boom")
    assert store.active_with("train", "name", "monet") == []


def test_settings_are_shared_between_store_handles(tmp_path: Path) -> None:
    JobStore(tmp_path / "var").set_setting("live_peers", "2")
    assert JobStore(tmp_path / "var").setting("live_peers") == "2"
    assert JobStore(tmp_path / "var").setting("missing", "0") == "0"


def test_ended_jobs_can_be_removed_with_their_files_but_not_running_ones(store: JobStore) -> None:
    running, ended = store.create(_train("a")), store.create(_train("b"))
    store.claim(1)
    store.claim(1)
    store.finish(ended.id, "failed", error="boom")
    for job in (running, ended):
        store.job_dir(job.id).mkdir()
        (store.job_dir(job.id) / "upload").write_bytes(b"x")
    assert not store.remove(running.id) and store.job_dir(running.id).is_dir()
    assert store.remove(ended.id)
    assert store.get(ended.id) is None and not store.job_dir(ended.id).exists()
    assert store.get(running.id) is not None


def test_the_sweep_removes_only_jobs_that_ended_long_enough_ago(store: JobStore) -> None:
    old, fresh = store.create(_train("a")), store.create(_train("b"))
    queued = store.create(_train())
    for job in (old, fresh):
        store.claim(1)
        store.finish(job.id, "done", result="x/meta.json")
    with store._connect() as db:
        db.execute("UPDATE jobs SET finished = finished - 8 * 86400 WHERE id = ?", (old.id,))
    orphan, arriving = store.job_dir("cutoff-upload"), store.job_dir("arriving-upload")
    for folder in (orphan, arriving):
        folder.mkdir()
        (folder / "upload-file-0").write_bytes(b"x")
    week_ago = time.time() - 8 * 86400
    os.utime(orphan, (week_ago, week_ago))
    assert store.sweep(7 * 86400) == 2
    assert not orphan.exists() and arriving.is_dir()  # an upload still arriving is kept
    assert store.get(old.id) is None
    assert store.get(fresh.id) is not None and store.get(queued.id) is not None


def test_rows_written_before_typed_params_still_load(store: JobStore) -> None:
    """A server upgraded with jobs still queued runs them with the library's defaults."""
    old = {
        "render": {"size": 48, "iterations": 6, "style_weight": None, "content": "c.png"},
        "train": {"name": "old", "variant": "lite", "steps": 10, "content_files": 3},
    }
    with store._connect() as db:
        for i, (kind, params) in enumerate(old.items()):
            db.execute(
                "INSERT INTO jobs (id, kind, params, created) VALUES (?, ?, ?, ?)",
                (f"old{i}", kind, json.dumps(params), float(i)),
            )
    render, train = store.get("old0"), store.get("old1")
    assert render is not None and render.params == RenderParams(
        size=48, iterations=6, content="c.png"
    )
    assert train is not None and isinstance(train.params, TrainParams)
    assert train.params.content == "content" and train.params.steps == 10
