"""Where a running job's reports go: the SQLite store (local worker) or a buffer (Ray actor)."""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

from stylefusion.fsutil import atomic_write_bytes

from .store import JobStore

PREVIEW_FILE = "preview.jpg"
PEERS_SETTING = "live_peers"


class JobSink(Protocol):
    """What the shared job code needs from its backend: report, preview, cancel, live peers."""

    def report(self, progress: float, eta_s: float | None, metrics: dict, step: int) -> None:
        """Record progress, ETA and the latest metrics."""

    def preview(self, jpeg: bytes) -> None:
        """Publish a new preview image (JPEG bytes)."""

    def cancel_requested(self) -> bool:
        """Whether someone asked this job to stop."""

    def live_peers(self) -> int:
        """How many live viewers the server has (the job yields to them)."""


class StoreSink:
    """The local worker's sink: rows in the job store, the preview in the job folder."""

    def __init__(self, store: JobStore, job_id: str) -> None:
        self.store, self.job_id = store, job_id

    @property
    def folder(self) -> Path:
        """The job's folder in the data dir."""
        return self.store.job_dir(self.job_id)

    def report(self, progress: float, eta_s: float | None, metrics: dict, step: int) -> None:
        """Write the progress row (and a loss-history point)."""
        self.store.report(self.job_id, progress, eta_s, metrics, step)

    def preview(self, jpeg: bytes) -> None:
        """Write preview.jpg atomically and bump its version."""
        atomic_write_bytes(self.folder / PREVIEW_FILE, jpeg)
        self.store.bump_preview(self.job_id)

    def cancel_requested(self) -> bool:
        """Read the job's cancel flag."""
        return self.store.cancel_requested(self.job_id)

    def live_peers(self) -> int:
        """The live-peer count the server publishes in the settings table."""
        return int(self.store.setting(PEERS_SETTING, "0") or 0)
