"""The flicker metric: stylized change where the source is static, still camera or known pan."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from stylefusion.errors import InvalidInput
from stylefusion.flicker import (
    FlickerConfig,
    flicker,
    shift,
    static_fractions,
    stillest_window,
    synthetic_pan,
)

H, W = 24, 32


def textured(seed: int, height: int = H, width: int = W) -> np.ndarray:
    """A smooth seeded (H, W, 3) uint8 picture (blurred noise: like a photo, not like grain)."""
    rng = np.random.default_rng(seed)
    coarse = rng.integers(0, 256, (height // 4, width // 4, 3)).astype(np.uint8)
    return cv2.resize(coarse, (width, height), interpolation=cv2.INTER_LINEAR)


def noisy(frame: np.ndarray, std: float, seed: int) -> np.ndarray:
    noise = np.random.default_rng(seed).normal(0, std, frame.shape)
    return np.clip(np.rint(frame + noise), 0, 255).astype(np.uint8)


def still_clip(frames: int = 6, std: float = 2.0) -> list[np.ndarray]:
    """A still camera: one picture with mild sensor noise in each frame."""
    base = textured(0)
    return [noisy(base, std, seed=i) for i in range(frames)]


def test_a_still_scene_stylized_identically_has_no_flicker() -> None:
    sources = still_clip()
    painted = [textured(7)] * len(sources)
    score = flicker(sources, painted)
    assert score.change == 0.0
    assert score.static_fraction == 1.0 and score.pairs == len(sources) - 1


def test_stylization_that_shimmers_with_the_noise_scores_its_change() -> None:
    sources = still_clip()
    painted = [noisy(textured(7), 10.0, seed=100 + i) for i in range(len(sources))]
    score = flicker(sources, painted)
    # two independent N(0, 10) draws differ by 2 * 10 / sqrt(pi) = 11.3 levels on average
    assert 9.0 < score.change < 13.0
    assert flicker(sources, [noisy(textured(7), 3.0, seed=i) for i in range(6)]).change < 5.0


def test_pixels_where_the_source_moves_do_not_count() -> None:
    sources = still_clip()
    painted = [textured(7).copy() for _ in sources]
    for i, (source, paint) in enumerate(zip(sources, painted, strict=True)):
        source[4:10, 2 * i : 2 * i + 6] = 255  # a white square moving right
        paint[4:10, 2 * i : 2 * i + 6] = (0, 0, 255)  # painted where it is, nowhere else
    score = flicker(sources, painted)
    assert score.change == 0.0
    assert 0.5 < score.static_fraction < 1.0
    painted[3][20:, 20:] = 0  # a change where nothing moved: flicker
    assert flicker(sources, painted).change > 0.0


def test_a_pan_warped_exactly_scores_zero() -> None:
    photo = textured(3, 48, 64)
    sources, motions = synthetic_pan(photo, (W, H), frames=5, step=(2.0, 1.0), noise_std=1.0)
    assert motions == [(-2.0, -1.0)] * 4
    painted = [np.array(shift(textured(9, 48, 64), (-2.0 * t, -1.0 * t))[0][:H, :W], np.uint8)
               for t in range(5)]  # fmt: skip
    assert flicker(sources, painted, motions).change == 0.0
    fixed = flicker(sources, [painted[0]] * 5, motions)  # strokes that stay put on a moving scene
    assert fixed.change > 10.0 and fixed.static_fraction > 0.5


def test_a_sub_pixel_pan_that_the_stylization_follows_scores_near_zero() -> None:
    photo, paint = textured(3, 48, 64), textured(9, 48, 64)
    step = (0.37, 0.13)
    sources, motions = synthetic_pan(photo, (W, H), frames=6, step=step, noise_std=1.0)
    following, _ = synthetic_pan(paint, (W, H), frames=6, step=step)
    still = flicker(sources, following, motions)
    assert still.change < 1.5 and still.static_fraction > 0.5
    assert flicker(sources, [following[0]] * 6, motions).change > 2 * still.change


def test_the_pan_moves_by_its_step_and_adds_the_noise_asked_for() -> None:
    photo = textured(3, 48, 64)
    clean, motions = synthetic_pan(photo, (W, H), frames=3, step=(1.0, 0.0))
    np.testing.assert_array_equal(clean[1][:, :-1], clean[0][:, 1:])  # content moved 1 px left
    grainy, _ = synthetic_pan(photo, (W, H), frames=3, step=(1.0, 0.0), noise_std=4.0)
    assert np.std(grainy[0].astype(float) - clean[0]) == pytest.approx(4.0, rel=0.2)
    with pytest.raises(InvalidInput, match="cannot hold"):
        synthetic_pan(photo, (W, H), frames=40, step=(1.0, 0.0))


def test_the_stillest_window_skips_cuts_and_motion() -> None:
    base, other = textured(0), textured(1)
    clip = [noisy(base, 2.0, i) for i in range(4)] + [noisy(other, 2.0, i) for i in range(10)]
    for i in range(4, 8):  # motion in the first frames after the cut
        clip[i][:, : 4 * (i - 3)] = 255 - clip[i][:, : 4 * (i - 3)]
    fractions = static_fractions(clip)
    assert fractions.shape == (13,) and fractions[3] < 0.5  # the cut
    assert stillest_window(fractions, 5) >= 8
    with pytest.raises(InvalidInput):
        stillest_window(fractions, 20)


def test_a_higher_threshold_counts_more_pixels_as_static() -> None:
    sources = still_clip(std=6.0)
    painted = [textured(7)] * len(sources)
    strict = flicker(sources, painted, config=FlickerConfig(threshold=6.0))
    loose = flicker(sources, painted, config=FlickerConfig(threshold=40.0))
    assert strict.static_fraction < loose.static_fraction == 1.0


@pytest.mark.parametrize(
    ("sources", "stylized", "motions"),
    [
        ([textured(0)], [textured(0)], None),  # one frame: no pair
        ([textured(0)] * 3, [textured(0)] * 2, None),
        ([textured(0)] * 2, [textured(0, 12, 16)] * 2, None),
        ([textured(0)] * 3, [textured(0)] * 3, [(1.0, 0.0)]),
    ],
)
def test_frames_that_do_not_pair_up_are_refused(sources, stylized, motions) -> None:
    with pytest.raises(InvalidInput):
        flicker(sources, stylized, motions)
