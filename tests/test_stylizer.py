"""The Stylizer: uint8 frames in, uint8 frames of the same size out, strength blending."""

from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import tiny_multistyle

from stylefusion.errors import InvalidInput
from stylefusion.stylizer import Stylizer


@pytest.fixture
def frames() -> np.ndarray:
    rng = np.random.default_rng(0)
    return rng.integers(0, 256, (3, 30, 41, 3), dtype=np.uint8)


def test_cpu_picks_lite_and_keeps_size(models_dir: Path, frames: np.ndarray) -> None:
    stylizer = Stylizer.from_style(models_dir / "alpha", device="cpu")
    assert stylizer.variant == "lite"
    assert stylizer.name == "alpha"
    out = stylizer(frames)
    assert out.shape == frames.shape and out.dtype == np.uint8
    assert np.abs(out.astype(int) - frames).mean() > 5  # a non-identity style changes the picture


def test_variant_can_be_forced(models_dir: Path, frames: np.ndarray) -> None:
    assert Stylizer.from_style(models_dir / "alpha", "full", device="cpu").variant == "full"


def test_accepts_lists_single_frames_and_tensors(models_dir: Path, frames: np.ndarray) -> None:
    stylizer = Stylizer.from_style(models_dir / "alpha", device="cpu")
    batch = stylizer(frames)
    assert np.array_equal(stylizer(list(frames)), batch)
    assert np.array_equal(stylizer(frames[0]), batch[:1])
    assert np.array_equal(stylizer(torch.from_numpy(frames)), batch)


def test_strength_blends_with_the_input(models_dir: Path, frames: np.ndarray) -> None:
    stylizer = Stylizer.from_style(models_dir / "alpha", device="cpu")
    assert np.array_equal(stylizer(frames, strength=0.0), frames)
    full = stylizer(frames).astype(float)
    half = stylizer(frames, strength=0.5).astype(float)
    np.testing.assert_allclose(half, (full + frames) / 2, atol=1.01)


def test_different_styles_give_different_pictures(models_dir: Path, frames: np.ndarray) -> None:
    a = Stylizer.from_style(models_dir / "alpha", device="cpu")(frames)
    b = Stylizer.from_style(models_dir / "beta", device="cpu")(frames)
    assert np.abs(a.astype(int) - b).mean() > 5


@pytest.mark.parametrize(
    "bad",
    [np.zeros((2, 8, 8), np.uint8), np.zeros((1, 8, 8, 3), np.float32), []],
)
def test_bad_frames_are_refused(models_dir: Path, bad) -> None:
    stylizer = Stylizer.from_style(models_dir / "alpha", device="cpu")
    with pytest.raises(InvalidInput):
        stylizer(bad)


def test_mixed_sizes_and_bad_strength_are_refused(models_dir: Path, frames: np.ndarray) -> None:
    stylizer = Stylizer.from_style(models_dir / "alpha", device="cpu")
    with pytest.raises(InvalidInput, match="share a size"):
        stylizer([frames[0], frames[0, :10]])
    with pytest.raises(InvalidInput, match="strength"):
        stylizer(frames, strength=1.5)


def test_compiled_model_that_fails_falls_back_to_eager(models_dir: Path, frames) -> None:
    eager = Stylizer.from_style(models_dir / "alpha", device="cpu")
    stylizer = Stylizer.from_style(models_dir / "alpha", device="cpu")

    def broken(x):
        raise RuntimeError("no compiler here")

    stylizer.model = broken  # what a failing torch.compile backend looks like
    assert np.array_equal(stylizer(frames), eager(frames))
    assert stylizer.model is stylizer.eager


def test_compile_mode_is_one_of_three(models_dir: Path) -> None:
    with pytest.raises(InvalidInput, match="compile mode"):
        Stylizer.from_style(models_dir / "alpha", device="cpu", compile="fast")
    stylizer = Stylizer.from_style(models_dir / "alpha", device="cpu")
    assert stylizer.compile_mode == "off" and stylizer.model is stylizer.eager
    stylizer.close()


def test_making_a_stylizer_leaves_the_thread_count_alone(models_dir: Path) -> None:
    torch.set_num_threads(1)
    Stylizer.from_style(models_dir / "alpha", device="cpu", compile="background").close()
    assert torch.get_num_threads() == 1  # process-wide settings belong to the program


def test_one_call_paints_each_frame_in_its_own_style(frames: np.ndarray) -> None:
    net = tiny_multistyle(styles=2, seed=5)
    stylizer = Stylizer(net, "cpu")
    batch = np.stack([frames[0], frames[0]])  # the same picture twice
    norms = net.style_norms([0, 1])  # (2, P): style 0, then style 1
    both = stylizer(batch, norms=norms)
    assert np.array_equal(both[0], stylizer(batch[:1], norms=norms[:1])[0])
    assert np.array_equal(both[1], stylizer(batch[:1], norms=norms[1:])[0])
    assert np.abs(both[0].astype(int) - both[1]).mean() > 5  # two styles, one call
    with pytest.raises(InvalidInput, match="norms must be"):
        stylizer(batch, norms=norms[:1])


def test_strength_can_differ_per_frame(models_dir: Path, frames: np.ndarray) -> None:
    stylizer = Stylizer.from_style(models_dir / "alpha", device="cpu")
    batch = np.stack([frames[0], frames[0]])
    mixed = stylizer(batch, strength=[0.0, 1.0])
    assert np.array_equal(mixed[0], batch[0])
    assert np.array_equal(mixed[1], stylizer(batch[:1])[0])
    with pytest.raises(InvalidInput, match="norms"):
        stylizer(batch, norms=torch.zeros(2, 4))  # a single-style network takes none
