"""What a clip may be (pixels per frame, length) and how far its stylization has come."""

from __future__ import annotations

import time
from pathlib import Path

import av
import numpy as np
from av.container import InputContainer

from ..media_probe import MediaTooLarge
from ..progress import Progress, ProgressCallback, RateMeter

PREVIEW_EVERY_S = 5.0  # a clip job shows a stylized frame this often (the first at once)


class ClipLimits:
    """MediaTooLarge as soon as a clip breaks its pixel or length limit (None: no limit)."""

    def __init__(self, max_pixels: int | None, max_duration_s: float | None) -> None:
        self.max_pixels = max_pixels
        self.max_duration_s = max_duration_s

    def check_frame(self, frame: av.VideoFrame, index: int) -> None:
        """A decoded frame over the pixel limit (sizes may change mid-clip); index counts from 1."""
        limit = self.max_pixels
        if limit is not None and frame.width * frame.height > limit:
            raise MediaTooLarge(
                f"frame {index} is {frame.width}x{frame.height}; "
                f"the limit is {limit} pixels per frame"
            )

    def check_declared(self, width: int | None, height: int | None, frames: int) -> None:
        """The decoder's current headers declare frames over the limit, after `frames` frames."""
        limit = self.max_pixels
        if limit is not None and (width or 0) * (height or 0) > limit:
            raise MediaTooLarge(
                f"the clip switches to {width}x{height} frames after "
                f"{frames} frames; the limit is {limit} pixels per frame"
            )

    def check_duration(self, seconds: float, frames: int) -> None:
        """The clip runs past max_duration_s (its length may be unknown up front)."""
        limit = self.max_duration_s
        if limit is not None and seconds > limit:
            raise MediaTooLarge(
                f"the clip runs longer than the limit of {limit:g} s; stopped after {frames} frames"
            )


class ClipProgress:
    """Frames done of the known total (of an unknown one, bytes read of the file's size), an
    ETA, and now and then a stylized frame to show."""

    def __init__(
        self,
        total_frames: int | None,
        source: InputContainer,
        preview_every_s: float = PREVIEW_EVERY_S,
    ) -> None:
        self.total = total_frames
        self.bytes = file_size(source)  # progress by bytes read when the frame count is unknown
        self.pos = 0  # furthest byte position read so far
        # the clip's pace is timed from the end of the first batch: the model's first call
        # (weights laid out, kernels picked) and the codecs' start are slower than the rest
        self.meter: RateMeter | None = None
        self.preview_every_s = preview_every_s
        self._last_preview: float | None = None

    def report(
        self,
        progress: ProgressCallback | None,
        frames: int,
        pos: int | None,
        latest: np.ndarray | None = None,
    ) -> None:
        """Tell `progress` how far `frames` done and byte position `pos` have come.

        `latest` (the newest stylized frame) goes along as the preview at most every
        preview_every_s seconds, the first time at once.
        """
        if pos is not None and pos >= 0:  # the packets that flush the decoders have no position
            self.pos = max(self.pos, pos)
        if progress is None:
            return
        if self.total:
            done, total = frames, max(self.total, frames + 1)  # done only at the end
        elif self.bytes:
            done, total = min(self.pos, self.bytes - 1), self.bytes
        else:
            done, total = 0, 0  # nothing honest to say: fraction 0, no ETA
        rate, eta = self._pace(done, total)
        fps = rate if self.total else None  # a rate of bytes is no frame rate
        progress(Progress(done=done, total=total, eta_s=eta, rate=fps, preview=self._due(latest)))

    def _pace(self, done: int, total: int) -> tuple[float | None, float | None]:
        """(units per second, ETA) over the run since the first report; None at first."""
        if not total:
            return None, None
        if self.meter is None:
            self.meter = RateMeter(total, start_done=done)
            return None, None
        self.meter.total = total
        return self.meter.report(done)

    def _due(self, latest: np.ndarray | None) -> np.ndarray | None:
        """`latest` if a preview is due, else None."""
        now = time.monotonic()
        if latest is None or (
            self._last_preview is not None and now - self._last_preview < self.preview_every_s
        ):
            return None
        self._last_preview = now
        return latest


def file_size(container: InputContainer) -> int:
    """The input file's size in bytes (0 if unknown)."""
    try:
        return Path(container.name).stat().st_size
    except (OSError, TypeError):
        return 0
