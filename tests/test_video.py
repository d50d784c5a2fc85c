"""Clip stylization: frames, timing and sound survive; bad files fail clearly."""

from __future__ import annotations

import logging
import threading
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from media_helpers import (
    HEIGHT,
    WIDTH,
    make_clip,
    make_growing_h264,
    make_h264,
    make_song,
    moving_frame,
    read_clip,
)

from stylefusion.errors import Cancelled, InvalidInput, MediaError
from stylefusion.progress import Progress
from stylefusion.video import (
    MediaTooLarge,
    VideoConfig,
    even_size,
    probe_video,
    stylize_video,
)


@pytest.fixture
def config(models_dir: Path) -> VideoConfig:
    return VideoConfig(style=models_dir / "alpha", device="cpu", batch_size=4)


def _frame_diff(a: list[np.ndarray], b: list[np.ndarray]) -> float:
    """Mean absolute pixel difference between two equally long frame lists."""
    pairs = zip(a, b, strict=True)
    return float(np.mean([np.abs(x.astype(int) - y.astype(int)).mean() for x, y in pairs]))


def test_clip_keeps_frames_duration_and_sound(tmp_path: Path, config: VideoConfig) -> None:
    source = make_clip(tmp_path / "in.mp4", frames=15, fps=10, audio="aac")
    reports: list[Progress] = []
    result = stylize_video(source, tmp_path / "out.mp4", config, progress=reports.append)
    before, after = read_clip(source), read_clip(result.output)
    assert (result.frames, len(after.frames)) == (15, 15)
    assert after.video_codec == "h264" and after.pix_fmt == "yuv420p"
    assert after.frames[0].shape == (HEIGHT, WIDTH, 3)
    assert after.times[-1] == pytest.approx(before.times[-1], abs=0.1)  # within a frame
    assert result.has_audio and after.audio_seconds is not None
    assert after.audio_seconds == pytest.approx(before.audio_seconds, abs=0.05)
    assert after.audio_rms > 0.15  # the tone itself, not silence
    assert _frame_diff(before.frames, after.frames) > 5  # stylized, not copied
    assert reports[-1].done == reports[-1].total == 15
    assert [r.done for r in reports] == sorted(r.done for r in reports)


def test_uncopyable_sound_is_reencoded_to_aac(tmp_path: Path, config: VideoConfig) -> None:
    source = make_clip(tmp_path / "in.mkv", frames=12, audio="pcm_s16le")
    result = stylize_video(source, tmp_path / "out.mp4", config)
    before, after = read_clip(source), read_clip(result.output)
    assert after.audio_codec == "aac"
    assert after.audio_seconds == pytest.approx(before.audio_seconds, abs=0.05)
    assert after.audio_rms > 0.15
    assert len(after.frames) == 12


@pytest.mark.parametrize("codec", ["aac", "mp3", "libopus", "flac"])
def test_sound_browsers_play_is_copied(tmp_path: Path, config: VideoConfig, codec: str) -> None:
    source = make_clip(tmp_path / "in.mkv", frames=6, audio=codec)
    result = stylize_video(source, tmp_path / "out.mp4", config)
    before, after = read_clip(source), read_clip(result.output)
    assert after.audio_codec == before.audio_codec  # packets copied, not re-encoded
    assert after.audio_rms > 0.15


@pytest.mark.parametrize(
    ("codec", "layout"), [("ac3", "5.1"), ("eac3", "stereo"), ("alac", "mono")]
)
def test_sound_browsers_cannot_play_becomes_aac(
    tmp_path: Path, config: VideoConfig, codec: str, layout: str
) -> None:
    """MP4 can hold AC-3, E-AC-3 and ALAC, but Chromium and Firefox play such clips silent."""
    source = make_clip(tmp_path / "in.mp4", frames=12, audio=codec, audio_layout=layout)
    assert read_clip(source).audio_codec == codec
    result = stylize_video(source, tmp_path / "out.mp4", config)
    before, after = read_clip(source), read_clip(result.output)
    assert after.audio_codec == "aac"
    assert after.audio_seconds == pytest.approx(before.audio_seconds, abs=0.05)
    assert after.audio_rms > 0.15  # the tone, decoded from the AAC track


def test_clip_without_sound(tmp_path: Path, config: VideoConfig) -> None:
    source = make_clip(tmp_path / "in.mkv", frames=5, audio=None)
    result = stylize_video(source, tmp_path / "out.mp4", config)
    assert not result.has_audio
    assert read_clip(result.output).audio_seconds is None


def test_variable_frame_rate_times_are_kept(tmp_path: Path, config: VideoConfig) -> None:
    times_ms = [0, 100, 130, 400, 450, 800, 820, 1000, 1500]
    source = make_clip(tmp_path / "vfr.mkv", pts_ms=times_ms, audio=None)
    result = stylize_video(source, tmp_path / "out.mp4", config)
    assert read_clip(result.output).times == pytest.approx([t / 1000 for t in times_ms], abs=2e-3)


def test_damaged_audio_packets_are_skipped_with_a_warning(
    tmp_path: Path, config: VideoConfig, caplog: pytest.LogCaptureFixture
) -> None:
    source = make_clip(tmp_path / "in.mp4", frames=15, audio="aac", damaged_audio=[3, 7])
    with caplog.at_level(logging.WARNING, logger="stylefusion"):
        result = stylize_video(source, tmp_path / "out.mp4", config)
    after = read_clip(result.output)
    assert result.skipped_packets == 2
    assert "damaged audio packet" in caplog.text
    assert len(after.frames) == 15 and after.audio_rms > 0.15


def test_max_side_scales_down_to_even_size(tmp_path: Path, models_dir: Path) -> None:
    source = make_clip(tmp_path / "in.mp4", frames=4, audio=None)
    cfg = VideoConfig(style=models_dir / "beta", device="cpu", max_side=30)
    result = stylize_video(source, tmp_path / "out.mp4", cfg)
    assert read_clip(result.output).frames[0].shape == (22, 30, 3)  # 48*30/64 = 22.5 -> 22


def test_phone_rotation_is_applied(tmp_path: Path, models_dir: Path) -> None:
    source = make_clip(tmp_path / "phone.mp4", frames=3, audio=None, rotation=-90)
    info = probe_video(source)
    assert (info.width, info.height) == (HEIGHT, WIDTH)  # shown as portrait
    cfg = VideoConfig(style=models_dir / "alpha", device="cpu", strength=0.0)
    first = read_clip(stylize_video(source, tmp_path / "out.mp4", cfg).output).frames[0]
    upright = np.rot90(moving_frame(0), -1)  # -90 degrees counter-clockwise = a clockwise turn
    assert first.shape == upright.shape == (WIDTH, HEIGHT, 3)
    assert _frame_diff([first], [upright]) < 8
    assert _frame_diff([first], [np.rot90(moving_frame(0), 1)]) > 20


@pytest.mark.parametrize(
    ("size", "max_side", "expected"),
    [((64, 48), None, (64, 48)), ((63, 47), None, (64, 48)), ((720, 528), 160, (160, 118))],
)
def test_even_size(size: tuple[int, int], max_side: int | None, expected: tuple[int, int]) -> None:
    assert even_size(*size, max_side) == expected


def test_text_file_is_not_a_video(tmp_path: Path, config: VideoConfig) -> None:
    fake = tmp_path / "notes.mp4"
    fake.write_text("this is a shopping list, not a clip\n" * 20)
    with pytest.raises(MediaError, match="notes.mp4") as info:
        stylize_video(fake, tmp_path / "out.mp4", config)
    assert "\n" not in str(info.value)
    assert not list(tmp_path.glob("out*")) and not list(tmp_path.glob(".out*"))


def test_sound_only_file_is_not_a_video(tmp_path: Path) -> None:
    with pytest.raises(MediaError, match="song.m4a has no video stream"):
        probe_video(make_song(tmp_path / "song.m4a"))


def test_truncated_clip_gives_a_clear_error(tmp_path: Path, config: VideoConfig) -> None:
    whole = make_clip(tmp_path / "whole.mp4", frames=15).read_bytes()
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(whole[: len(whole) // 2])  # the MP4 index sits at the end: gone
    with pytest.raises(MediaError, match="cut.mp4"):
        probe_video(cut)


def test_garbage_after_a_valid_header_gives_a_clear_error(tmp_path: Path) -> None:
    whole = make_clip(tmp_path / "whole.mkv", frames=15).read_bytes()
    rng = np.random.default_rng(3)
    broken = tmp_path / "broken.mkv"
    broken.write_bytes(whole[:64] + rng.integers(0, 256, 4000, dtype=np.uint8).tobytes())
    with pytest.raises(MediaError, match="broken.mkv"):
        probe_video(broken)


def test_probe_describes_a_clip(tmp_path: Path) -> None:
    info = probe_video(make_clip(tmp_path / "in.mp4", frames=15, fps=10))
    assert (info.width, info.height, info.frames, info.has_audio) == (WIDTH, HEIGHT, 15, True)
    assert info.duration_s == pytest.approx(1.5, abs=0.1)
    assert info.fps == pytest.approx(10)


def test_probe_limits(tmp_path: Path) -> None:
    source = make_clip(tmp_path / "in.mp4", frames=15, fps=10)
    with pytest.raises(MediaTooLarge, match="limit is 1 s"):
        probe_video(source, max_duration_s=1)
    with pytest.raises(MediaTooLarge, match="pixels"):
        probe_video(source, max_pixels=32 * 32)
    assert issubclass(MediaTooLarge, InvalidInput)


@pytest.mark.parametrize("url", ["http://example.com/a.mp4", "concat:a.mp4|b.mp4", "pipe:0"])
def test_urls_are_refused(url: str) -> None:
    with pytest.raises(InvalidInput, match="not a local file"):
        probe_video(url)


def test_cancel_removes_the_partial_output(tmp_path: Path, config: VideoConfig) -> None:
    source = make_clip(tmp_path / "in.mp4", frames=15, audio="aac")
    flag = threading.Event()
    flag.set()
    out = tmp_path / "out" / "clip.mp4"
    with pytest.raises(Cancelled):
        stylize_video(source, out, config, cancel=flag)
    assert not out.exists() and not list(out.parent.iterdir())


def test_output_must_not_be_the_input(tmp_path: Path, config: VideoConfig) -> None:
    source = make_clip(tmp_path / "in.mp4", frames=3, audio=None)
    with pytest.raises(InvalidInput, match="must not be the input"):
        stylize_video(source, source, config)


def test_a_frame_size_over_the_limit_mid_clip_fails_the_clip(
    tmp_path: Path, config: VideoConfig
) -> None:
    """First frames 64x64, then headers declaring 16000x16000: refused, nothing written."""
    source = make_growing_h264(tmp_path / "grows.h264", small=64, declared=16000)
    assert probe_video(source, max_pixels=3840 * 2160).width == 64  # the start looks harmless
    limited = replace(config, max_pixels=3840 * 2160)
    with pytest.raises(MediaTooLarge, match="16000x16000"):
        stylize_video(source, tmp_path / "out.mp4", limited)
    assert not (tmp_path / "out.mp4").exists()


def test_a_clip_of_unknown_length_stops_at_the_duration_limit(
    tmp_path: Path, config: VideoConfig
) -> None:
    source = make_h264(tmp_path / "long.h264", frames=30, fps=10)  # 3 s, but no duration stored
    info = probe_video(source, max_duration_s=1.0)
    assert info.duration_s is None and info.frames is None
    reports: list[Progress] = []
    limited = replace(config, max_duration_s=1.0)
    with pytest.raises(MediaTooLarge, match="longer than the limit of 1 s"):
        stylize_video(source, tmp_path / "out.mp4", limited, progress=reports.append)
    assert reports and all(r.fraction < 1.0 for r in reports)
    assert not (tmp_path / "out.mp4").exists()


def test_a_clip_of_unknown_length_reports_honest_progress_and_keeps_its_timing(
    tmp_path: Path, config: VideoConfig
) -> None:
    source = make_h264(tmp_path / "short.h264", frames=12, fps=10)
    reports: list[Progress] = []
    result = stylize_video(source, tmp_path / "out.mp4", config, progress=reports.append)
    running, last = reports[:-1], reports[-1]
    assert running and all(r.fraction < 1.0 for r in running)
    assert [r.fraction for r in running] == sorted(r.fraction for r in running)
    assert last.fraction == 1.0 and result.frames == 12
    times = read_clip(result.output).times
    assert times[-1] == pytest.approx(1.1, abs=0.02)  # 10 fps kept, not one tick apart


def test_a_clip_shows_a_stylized_preview_from_its_first_batch(
    tmp_path: Path, config: VideoConfig
) -> None:
    source = make_clip(tmp_path / "in.mp4", frames=15, audio=None)
    reports: list[Progress] = []
    result = stylize_video(source, tmp_path / "out.mp4", config, progress=reports.append)
    first = reports[0]
    assert first.done == config.batch_size and first.preview is not None
    assert first.preview.shape == (HEIGHT, WIDTH, 3) and first.preview.dtype == np.uint8
    painted = read_clip(result.output).frames[config.batch_size - 1]  # H.264: near, not equal
    to_painted = np.abs(first.preview.astype(int) - painted.astype(int)).mean()
    to_source = np.abs(first.preview.astype(int) - moving_frame(3).astype(int)).mean()
    assert to_painted < to_source / 2, (to_painted, to_source)  # the stylized frame 4
    # a preview at most every few seconds: a tiny clip's later batches carry none
    assert all(r.preview is None for r in reports[1:])


class FakeClock:
    """time.monotonic for the clip's pace: the test moves it."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_the_eta_leaves_out_the_first_slow_batch(monkeypatch: pytest.MonkeyPatch) -> None:
    """40 frames: the first batch of 4 takes 10 s (the model's first call), then 1 s a batch."""
    import stylefusion.progress
    from stylefusion.video.limits import ClipProgress

    clock = FakeClock()
    monkeypatch.setattr(stylefusion.progress.time, "monotonic", clock)

    class Source:
        name = None  # no file: progress by frames

    pace = ClipProgress(40, Source())  # type: ignore[arg-type]
    reports: list[Progress] = []
    for seconds, done in [(10, 4), (1, 8), (1, 12), (1, 16)]:
        clock.now += seconds
        pace.report(reports.append, done, None)
    assert reports[0].eta_s is None  # one batch tells nothing about the pace yet
    # 4 frames a second from then on: the ETA is the frames left at that pace, falling
    assert [r.eta_s for r in reports[1:]] == pytest.approx([8.0, 7.0, 6.0])
    assert [r.rate for r in reports[1:]] == pytest.approx([4.0, 4.0, 4.0])
