"""SQLite job store in the data dir, shared by the server and the worker process."""

from __future__ import annotations

import json
import secrets
import shutil
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from .params import JobParams, from_json, to_json
from .queue import QueueLimits, page_start, refuse_if_full

DB_FILE = "jobs.sqlite3"
FINAL_STATES = ("done", "failed", "cancelled")
ORPHAN_GRACE_S = 3600.0  # a job folder without a row is left alone at least this long
MAX_HISTORY = 400  # loss points returned for the chart (older ones thinned out)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    id TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    state TEXT NOT NULL DEFAULT 'queued',
    params TEXT NOT NULL DEFAULT '{}',
    progress REAL NOT NULL DEFAULT 0,
    eta_s REAL,
    metrics TEXT,
    error TEXT,
    result TEXT,
    preview INTEGER NOT NULL DEFAULT 0,
    cancel INTEGER NOT NULL DEFAULT 0,
    attempts INTEGER NOT NULL DEFAULT 0,
    worker_pid INTEGER,
    created REAL NOT NULL,
    started REAL,
    finished REAL
);
CREATE INDEX IF NOT EXISTS jobs_state ON jobs (state, created);
CREATE TABLE IF NOT EXISTS history (
    job_id TEXT NOT NULL,
    step INTEGER NOT NULL,
    metrics TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS history_job ON history (job_id, step);
CREATE TABLE IF NOT EXISTS settings (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""
# columns added after the first release: (name, declaration), added to older databases
_ADDED_COLUMNS = (("client", "TEXT"),)  # who queued the job (per-client queue limit)


@dataclass(frozen=True)
class Job:
    """One job as stored: what to do, where it stands, what came out."""

    id: str
    kind: str
    state: str
    params: JobParams
    progress: float = 0.0
    eta_s: float | None = None
    metrics: dict[str, float] = field(default_factory=dict)
    error: str | None = None
    result: str | None = None  # output file, relative to the job folder (train: the models dir)
    preview: int = 0  # preview version; 0 means no preview yet
    cancel: bool = False
    attempts: int = 0
    worker_pid: int | None = None
    created: float = 0.0
    started: float | None = None
    finished: float | None = None

    @classmethod
    def from_row(cls, row: sqlite3.Row) -> Job:
        """Build a Job from a `jobs` row."""
        return cls(
            id=row["id"],
            kind=row["kind"],
            state=row["state"],
            params=from_json(row["kind"], json.loads(row["params"])),
            progress=row["progress"],
            eta_s=row["eta_s"],
            metrics=json.loads(row["metrics"]) if row["metrics"] else {},
            error=row["error"],
            result=row["result"],
            preview=row["preview"],
            cancel=bool(row["cancel"]),
            attempts=row["attempts"],
            worker_pid=row["worker_pid"],
            created=row["created"],
            started=row["started"],
            finished=row["finished"],
        )


class JobStore:
    """Jobs in `<data_dir>/jobs.sqlite3` (WAL) and their files in `<data_dir>/jobs/<id>/`.

    Every call opens its own short connection, so one store can be used from any thread
    and the server and worker processes can share the database safely.
    """

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = Path(data_dir)
        self.jobs_dir = self.data_dir / "jobs"
        self.jobs_dir.mkdir(parents=True, exist_ok=True)
        self.path = self.data_dir / DB_FILE
        with self._connect() as db:
            db.execute("PRAGMA journal_mode=WAL")
            db.executescript(_SCHEMA)
            have = {r["name"] for r in db.execute("PRAGMA table_info(jobs)").fetchall()}
            for name, declaration in _ADDED_COLUMNS:
                if name not in have:
                    db.execute(f"ALTER TABLE jobs ADD COLUMN {name} {declaration}")

    @contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        db = sqlite3.connect(self.path, timeout=30, isolation_level=None)
        db.row_factory = sqlite3.Row
        db.execute("PRAGMA synchronous=NORMAL")
        try:
            yield db
        finally:
            db.close()

    def job_dir(self, job_id: str) -> Path:
        """The folder holding one job's uploads, preview, checkpoint and result."""
        return self.jobs_dir / job_id

    @staticmethod
    def new_id() -> str:
        """A fresh, unguessable job id (also the job folder's name)."""
        return secrets.token_hex(8)

    def create(
        self,
        params: JobParams,
        job_id: str | None = None,
        client: str | None = None,
        limits: QueueLimits | None = None,
    ) -> Job:
        """Queue a job; its kind is the kind of its params. Over `limits`: TooManyRequests."""
        job_id = job_id or self.new_id()
        with self._connect() as db:
            db.execute("BEGIN IMMEDIATE")  # the count and the insert as one step
            try:
                if limits is not None:
                    refuse_if_full(db, client, limits)
                db.execute(
                    "INSERT INTO jobs (id, kind, params, created, client) VALUES (?, ?, ?, ?, ?)",
                    (job_id, params.kind, json.dumps(to_json(params)), time.time(), client),
                )
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                raise
        return self.get(job_id)

    def check_queue(self, client: str | None, limits: QueueLimits) -> None:
        """TooManyRequests if a job of `client` would not fit in the queue now."""
        with self._connect() as db:
            refuse_if_full(db, client, limits)

    def get(self, job_id: str) -> Job | None:
        """The job with this id, or None."""
        with self._connect() as db:
            row = db.execute("SELECT * FROM jobs WHERE id = ?", (job_id,)).fetchone()
        return Job.from_row(row) if row else None

    def list(self, limit: int = 200, before: str | None = None) -> list[Job]:
        """The newest jobs first; with `before` (a job id, or a time), those older than it.

        Raises ValueError for a `before` that is neither a job id here nor a number.
        """
        with self._connect() as db:
            created, job_id = page_start(db, before)
            rows = db.execute(
                "SELECT * FROM jobs WHERE created < ? OR (created = ? AND id < ?)"
                " ORDER BY created DESC, id DESC LIMIT ?",
                (created, created, job_id, limit),
            ).fetchall()
        return [Job.from_row(r) for r in rows]

    def count(self, state: str) -> int:
        """How many jobs are in `state`."""
        with self._connect() as db:
            return db.execute("SELECT COUNT(*) FROM jobs WHERE state = ?", (state,)).fetchone()[0]

    def active_with(self, kind: str, key: str, value: str) -> list[Job]:
        """Queued or running jobs of `kind` whose params[key] == value."""
        with self._connect() as db:
            rows = db.execute(
                "SELECT * FROM jobs WHERE kind = ? AND state IN ('queued', 'running')"
                " AND json_extract(params, '$.' || ?) = ?",
                (kind, key, value),
            ).fetchall()
        return [Job.from_row(r) for r in rows]

    def claim(self, worker_pid: int) -> Job | None:
        """Atomically move the oldest queued job to running for this worker."""
        with self._connect() as db:
            db.execute("BEGIN IMMEDIATE")
            try:
                row = db.execute(
                    "SELECT id FROM jobs WHERE state = 'queued' ORDER BY created LIMIT 1"
                ).fetchone()
                if row is not None:
                    db.execute(
                        "UPDATE jobs SET state = 'running', worker_pid = ?, started = ?,"
                        " attempts = attempts + 1, error = NULL WHERE id = ?",
                        (worker_pid, time.time(), row["id"]),
                    )
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                raise
        return self.get(row["id"]) if row else None

    def report(
        self,
        job_id: str,
        progress: float,
        eta_s: float | None,
        metrics: dict[str, float],
        step: int,
    ) -> None:
        """Record progress, ETA and the latest metrics (also appended to the loss history)."""
        with self._connect() as db:
            db.execute(
                "UPDATE jobs SET progress = ?, eta_s = ?, metrics = ? WHERE id = ?",
                (progress, eta_s, json.dumps(metrics), job_id),
            )
            if metrics:
                db.execute(
                    "INSERT INTO history (job_id, step, metrics) VALUES (?, ?, ?)",
                    (job_id, step, json.dumps(metrics)),
                )

    def bump_preview(self, job_id: str) -> None:
        """Note that a new preview image was written (bumps its version for cache busting)."""
        with self._connect() as db:
            db.execute("UPDATE jobs SET preview = preview + 1 WHERE id = ?", (job_id,))

    def history(self, job_id: str) -> list[dict[str, float]]:
        """The metrics recorded so far, each with its step, thinned to at most MAX_HISTORY."""
        with self._connect() as db:
            rows = db.execute(
                "SELECT step, metrics FROM history WHERE job_id = ? ORDER BY rowid", (job_id,)
            ).fetchall()
        stride = max(1, -(-len(rows) // MAX_HISTORY))  # ceil: at most MAX_HISTORY (+ the last)
        picked = rows[::stride]
        if rows and (len(rows) - 1) % stride:
            picked.append(rows[-1])  # always show the latest point
        return [{"step": r["step"], **json.loads(r["metrics"])} for r in picked]

    def finish(
        self, job_id: str, state: str, result: str | None = None, error: str | None = None
    ) -> None:
        """End a job as done, failed or cancelled."""
        if state not in FINAL_STATES:
            raise ValueError(f"{state!r} is not a final state")
        progress_sql = ", progress = 1" if state == "done" else ""
        with self._connect() as db:
            db.execute(
                f"UPDATE jobs SET state = ?, result = ?, error = ?, finished = ?, eta_s = NULL"
                f"{progress_sql} WHERE id = ?",
                (state, result, error, time.time(), job_id),
            )

    def requeue(self, job_id: str, error: str | None = None) -> None:
        """Put a running job back in the queue (worker died or server stopped)."""
        with self._connect() as db:
            db.execute(
                "UPDATE jobs SET state = 'queued', worker_pid = NULL, error = ?"
                " WHERE id = ? AND state = 'running'",
                (error, job_id),
            )

    def running(self, worker_pid: int | None = None) -> list[Job]:
        """Jobs in the running state (of one worker, if given)."""
        sql, args = "SELECT * FROM jobs WHERE state = 'running'", ()
        if worker_pid is not None:
            sql, args = sql + " AND worker_pid = ?", (worker_pid,)
        with self._connect() as db:
            return [Job.from_row(r) for r in db.execute(sql, args).fetchall()]

    def request_cancel(self, job_id: str) -> Job | None:
        """Cancel a queued job now; ask a running one to stop at its next check."""
        with self._connect() as db:
            db.execute(
                "UPDATE jobs SET state = 'cancelled', finished = ?"
                " WHERE id = ? AND state = 'queued'",
                (time.time(), job_id),
            )
            db.execute("UPDATE jobs SET cancel = 1 WHERE id = ? AND state = 'running'", (job_id,))
        return self.get(job_id)

    def cancel_requested(self, job_id: str) -> bool:
        """Whether someone asked this job to stop."""
        with self._connect() as db:
            row = db.execute("SELECT cancel FROM jobs WHERE id = ?", (job_id,)).fetchone()
        return bool(row and row["cancel"])

    def delete(self, job_id: str) -> bool:
        """Remove a job's row and loss history unless it is running; False if it runs."""
        with self._connect() as db:
            db.execute("BEGIN IMMEDIATE")
            gone = db.execute(
                "DELETE FROM jobs WHERE id = ? AND state != 'running'", (job_id,)
            ).rowcount
            if gone:
                db.execute("DELETE FROM history WHERE job_id = ?", (job_id,))
            db.execute("COMMIT")
        return bool(gone)

    def remove(self, job_id: str) -> bool:
        """Delete a job (unless it runs) and then its folder; False if it is running."""
        if not self.delete(job_id):
            return False
        shutil.rmtree(self.job_dir(job_id), ignore_errors=True)
        return True

    def sweep(self, max_age_s: float) -> int:
        """Remove ended jobs (and their files) that finished more than `max_age_s` ago.

        Also folders no job row owns (an upload cut off by a killed server), once they are as
        old, and at least ORPHAN_GRACE_S, so an upload still arriving is never touched.
        """
        cutoff = time.time() - max_age_s
        removed = sum(self.remove(job_id) for job_id in self.ended_before(cutoff))
        with self._connect() as db:
            owned = {r["id"] for r in db.execute("SELECT id FROM jobs").fetchall()}
        orphan_cutoff = min(cutoff, time.time() - ORPHAN_GRACE_S)
        for folder in self.jobs_dir.iterdir():
            if folder.name not in owned and folder.stat().st_mtime < orphan_cutoff:
                shutil.rmtree(folder, ignore_errors=True)
                removed += 1
        return removed

    def ended_before(self, cutoff: float) -> list[str]:
        """Ids of done, failed or cancelled jobs that ended before `cutoff` (epoch seconds)."""
        with self._connect() as db:
            rows = db.execute(
                "SELECT id FROM jobs WHERE state IN ('done', 'failed', 'cancelled')"
                " AND COALESCE(finished, created) < ?",
                (cutoff,),
            ).fetchall()
        return [r["id"] for r in rows]

    def set_setting(self, key: str, value: str) -> None:
        """Store a small shared value (e.g. the number of live peers for the worker)."""
        with self._connect() as db:
            db.execute(
                "INSERT INTO settings (key, value) VALUES (?, ?)"
                " ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                (key, value),
            )

    def setting(self, key: str, default: str | None = None) -> str | None:
        """Read a value written by set_setting."""
        with self._connect() as db:
            row = db.execute("SELECT value FROM settings WHERE key = ?", (key,)).fetchone()
        return row["value"] if row else default
