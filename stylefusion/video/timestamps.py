"""Frame and packet times of a clip: best-effort timestamps, tick conversions, log labels."""

from __future__ import annotations

from fractions import Fraction

import av


class Timestamps:
    """Per-frame timestamps like FFmpeg's best_effort_timestamp, forced strictly increasing."""

    def __init__(
        self, offset: int, source_tb: Fraction | None, output_tb: Fraction, rate: Fraction
    ) -> None:
        self.offset = offset  # the container's start time, in source ticks
        self.scale = Fraction(source_tb or output_tb) / output_tb  # source ticks -> output ticks
        self.step = max(1, round(1 / (rate * output_tb)))  # one frame, for frames without times
        self.faulty_pts = self.faulty_dts = 0
        self.last_pts: int | None = None
        self.last_dts: int | None = None
        self.last_out: int | None = None

    def __call__(self, pts: int | None, dts: int | None) -> int:
        """Output ticks for a decoded frame with these pts/dts (source ticks)."""
        if dts is not None:
            self.faulty_dts += self.last_dts is not None and dts <= self.last_dts
            self.last_dts = dts
        if pts is not None:
            self.faulty_pts += self.last_pts is not None and pts <= self.last_pts
            self.last_pts = pts
        use_pts = pts is not None and (dts is None or self.faulty_pts <= self.faulty_dts)
        chosen = pts if use_pts else dts
        if chosen is None:  # raw streams (.h264) carry no times: one frame after the last
            ts = 0 if self.last_out is None else self.last_out + self.step
        else:
            ts = round((chosen - self.offset) * self.scale)
        if self.last_out is not None and ts <= self.last_out:
            ts = self.last_out + 1  # the muxer needs strictly increasing times
        self.last_out = ts
        return ts


def ticks(microseconds: int, time_base: Fraction | None) -> int:
    """A time in FFmpeg's microsecond base as ticks of `time_base`."""
    if not microseconds or not time_base:
        return 0
    return round(Fraction(microseconds, av.time_base) / time_base)


def when(packet: av.Packet) -> str:
    """A packet's time for log lines, e.g. '1.23 s'."""
    if packet.pts is None or packet.time_base is None:
        return "an unknown time"
    return f"{float(packet.pts * packet.time_base):.2f} s"
