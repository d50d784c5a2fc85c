"""What a clip may be (pixels per frame, length) and how far its stylization has come."""

from __future__ import annotations

from pathlib import Path

import av
from av.container import InputContainer

from ..media_probe import MediaTooLarge
from ..progress import Progress, ProgressCallback, RateMeter


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
    """Frames done of the known total; of an unknown one, bytes read of the file's size."""

    def __init__(self, total_frames: int | None, source: InputContainer) -> None:
        self.total = total_frames
        self.bytes = file_size(source)  # progress by bytes read when the frame count is unknown
        self.pos = 0  # furthest byte position read so far
        self.meter = RateMeter(self.total or self.bytes)

    def report(self, progress: ProgressCallback | None, frames: int, pos: int | None) -> None:
        """Tell `progress` how far `frames` done and byte position `pos` have come."""
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
        self.meter.total = total
        rate, eta = self.meter.report(done) if total else (None, None)
        fps = rate if self.total else None  # a rate of bytes is no frame rate
        progress(Progress(done=done, total=total, eta_s=eta, rate=fps))


def file_size(container: InputContainer) -> int:
    """The input file's size in bytes (0 if unknown)."""
    try:
        return Path(container.name).stat().st_size
    except (OSError, TypeError):
        return 0
