"""The flow-guided blend: steadier still regions, no trail behind what moves, none across cuts."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from media_helpers import read_clip, write_frames
from test_flicker import noisy, textured

from stylefusion.errors import InvalidInput
from stylefusion.flicker import FlickerConfig, flicker
from stylefusion.video import VideoConfig, stylize_video
from stylefusion.video.flow_blend import FlowBlender

H, W = 48, 64


def blended(amount: float, sources: list[np.ndarray], painted: list[np.ndarray]) -> list:
    blender = FlowBlender(amount)
    return [blender(s, p) for s, p in zip(sources, painted, strict=True)]


def gap(a: list[np.ndarray], b: list[np.ndarray]) -> float:
    """Mean absolute difference of two frame lists, in levels."""
    return float(np.mean([np.abs(x.astype(float) - y).mean() for x, y in zip(a, b, strict=True)]))


def test_a_shimmering_still_scene_steadies_and_amount_zero_changes_nothing() -> None:
    scene = textured(0, H, W)
    sources = [noisy(scene, 2.0, seed=i) for i in range(8)]
    painted = [noisy(textured(5, H, W), 8.0, seed=50 + i) for i in range(8)]
    before = flicker(sources, painted).change
    assert flicker(sources, blended(0.7, sources, painted)).change < 0.6 * before
    assert all(
        np.array_equal(a, b) for a, b in zip(blended(0.0, sources, painted), painted, strict=True)
    )


def test_what_moves_is_followed_instead_of_leaving_a_trail() -> None:
    photo = textured(1, H, W + 40)
    sources = [np.ascontiguousarray(photo[:, 3 * t : 3 * t + W]) for t in range(8)]  # a pan
    painted = [255 - s for s in sources]  # a stylization that moves with its input
    with_flow = gap(blended(0.7, sources, painted), painted)
    no_flow = gap(_plain_average(0.7, painted), painted)  # what a blend without flow does
    assert with_flow < 2.0 < no_flow


def _plain_average(amount: float, frames: list[np.ndarray]) -> list[np.ndarray]:
    out, last = [], frames[0].astype(float)
    for frame in frames:
        last = amount * last + (1 - amount) * frame
        out.append(np.rint(last).astype(np.uint8))
    return out


def test_a_cut_starts_afresh() -> None:
    first, second = textured(2, H, W) // 4, 128 + textured(3, H, W) // 2  # dark, then bright
    painted = [textured(8, H, W), textured(9, H, W)]
    out = blended(0.7, [first, second], painted)
    np.testing.assert_array_equal(out[1], painted[1])


@pytest.mark.parametrize("amount", [-0.1, 1.0, 1.5])
def test_an_amount_outside_0_to_1_is_refused(amount: float, models_dir: Path) -> None:
    with pytest.raises(InvalidInput, match="flow blend"):
        FlowBlender(amount)
    with pytest.raises(InvalidInput, match="flow blend"):
        VideoConfig(style=models_dir / "alpha", flow_blend=amount)


def _still_clip(path: Path, frames: int = 12) -> Path:
    """An MP4 of a still, noisy scene (a still camera's sensor noise)."""
    scene = textured(4, H, W)
    return write_frames(path, [noisy(scene, 6.0, seed=i) for i in range(frames)])


def test_a_clip_stylized_with_the_blend_keeps_its_frames_and_flickers_less(
    tmp_path: Path, models_dir: Path
) -> None:
    clip = read_clip(_still_clip(tmp_path / "still.mp4")).frames
    scores = {}
    for amount in (0.0, 0.7):
        config = VideoConfig(style=models_dir / "alpha", device="cpu", flow_blend=amount, crf=4)
        stylize_video(tmp_path / "still.mp4", tmp_path / f"out-{amount}.mp4", config)
        frames = read_clip(tmp_path / f"out-{amount}.mp4").frames
        assert len(frames) == len(clip) and frames[0].shape == clip[0].shape
        # the scene is still: its noise (6 levels, std) must not count as motion
        scores[amount] = flicker(clip, frames, config=FlickerConfig(threshold=40)).change
    assert scores[0.7] < 0.8 * scores[0.0]
