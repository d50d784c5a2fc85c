"""How full the job queue may get, and where a page of the job list starts (SQL on a store
connection): the store runs these inside its own transactions."""

from __future__ import annotations

import math
import sqlite3
from dataclasses import dataclass

from ..errors import TooManyRequests

QUEUE_RETRY_S = 30.0  # what a refused submitter is told to wait (jobs take minutes)


@dataclass(frozen=True)
class QueueLimits:
    """How many jobs may wait in the queue, in all and per client address."""

    total: int
    per_client: int


def refuse_if_full(db: sqlite3.Connection, client: str | None, limits: QueueLimits) -> None:
    """TooManyRequests when the queue, or this client's part of it, is full."""
    queued = db.execute("SELECT COUNT(*) FROM jobs WHERE state = 'queued'").fetchone()[0]
    if queued >= limits.total:
        raise TooManyRequests(f"the job queue is full ({queued} jobs waiting)", QUEUE_RETRY_S)
    mine = db.execute(
        "SELECT COUNT(*) FROM jobs WHERE state = 'queued' AND client IS ?", (client,)
    ).fetchone()[0]
    if mine >= limits.per_client:
        message = f"{mine} of your jobs are waiting already (at most {limits.per_client})"
        raise TooManyRequests(message, QUEUE_RETRY_S)


def page_start(db: sqlite3.Connection, before: str | None) -> tuple[float, str]:
    """(created, id) that a page's jobs are older than: a job's own, or (a time, '')."""
    if before is None:
        return math.inf, ""
    row = db.execute("SELECT created, id FROM jobs WHERE id = ?", (before,)).fetchone()
    if row is not None:
        return row["created"], row["id"]
    when = float(before)  # ValueError for anything else
    if not math.isfinite(when):
        raise ValueError(before)
    return when, ""
