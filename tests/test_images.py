"""Still images: orientation, transparency, sizes and file naming of stylized outputs."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest
from media_helpers import make_photo
from PIL import Image

from stylefusion.errors import InvalidInput, MediaError
from stylefusion.images import load_image, save_image, stylize_images
from stylefusion.progress import Progress
from stylefusion.stylizer import Stylizer


@pytest.fixture
def stylizer(models_dir: Path) -> Stylizer:
    return Stylizer.from_style(models_dir / "alpha", "lite", "cpu")


def _is_red(pixel: np.ndarray) -> bool:
    return bool(pixel[0] > 150 and pixel[2] < 100)


def test_exif_orientation_is_applied(tmp_path: Path) -> None:
    plain = make_photo(tmp_path / "plain.png", width=40, height=24)  # red left, blue right
    rotated = tmp_path / "phone.jpg"
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 degrees clockwise to display"
    Image.open(plain).save(rotated, exif=exif.tobytes(), quality=95)
    rgb = load_image(rotated)
    assert rgb.shape == (40, 24, 3) and rgb.dtype == np.uint8
    assert _is_red(rgb[5, 12]) and not _is_red(rgb[35, 12])  # the left half is now on top


def test_transparency_is_flattened_on_white(tmp_path: Path) -> None:
    rgba = np.zeros((10, 12, 4), np.uint8)
    rgba[:, :6] = (0, 0, 255, 255)  # opaque blue left, fully transparent right
    Image.fromarray(rgba, "RGBA").save(tmp_path / "logo.png")
    rgb = load_image(tmp_path / "logo.png")
    assert rgb.shape == (10, 12, 3)
    assert rgb[5, 2].tolist() == [0, 0, 255] and rgb[5, 9].tolist() == [255, 255, 255]


def test_grey_and_palette_images_become_rgb(tmp_path: Path) -> None:
    Image.new("L", (9, 7), 100).save(tmp_path / "grey.png")
    Image.new("P", (9, 7), 3).save(tmp_path / "palette.gif")
    assert load_image(tmp_path / "grey.png").shape == (7, 9, 3)
    assert load_image(tmp_path / "palette.gif").shape == (7, 9, 3)


def test_max_side_scales_down_only(tmp_path: Path) -> None:
    photo = make_photo(tmp_path / "p.png", width=40, height=24)
    assert load_image(photo, max_side=20).shape == (12, 20, 3)
    assert load_image(photo, max_side=400).shape == (24, 40, 3)


def test_unreadable_image_is_a_media_error(tmp_path: Path) -> None:
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"not a jpeg")
    with pytest.raises(MediaError, match="bad.jpg"):
        load_image(bad)


def test_save_image_round_trip(tmp_path: Path) -> None:
    rgb = np.random.default_rng(0).integers(0, 256, (5, 7, 3), dtype=np.uint8)
    np.testing.assert_array_equal(load_image(save_image(tmp_path / "x.png", rgb)), rgb)


def test_stylize_files_and_folders(tmp_path: Path, content_dir: Path, stylizer: Stylizer) -> None:
    single = make_photo(tmp_path / "single.png", width=30, height=20)
    reports: list[Progress] = []
    out = tmp_path / "out"
    written = stylize_images([single, content_dir], out, stylizer, progress=reports.append)
    names = sorted(str(p.relative_to(out)) for p in written)
    expected = [f"photo{i}-alpha.png" for i in range(5)]
    expected += ["single-alpha.png", "sub/photo5-alpha.png"]
    assert names == sorted(expected)
    assert load_image(out / "single-alpha.png").shape == (20, 30, 3)  # same size as the input
    source = load_image(content_dir / "photo0.jpg")
    styled = load_image(out / "photo0-alpha.png")
    assert styled.shape == source.shape
    assert np.abs(styled.astype(int) - source.astype(int)).mean() > 5
    assert reports[-1].done == reports[-1].total == 7


def test_strength_zero_returns_the_input(tmp_path: Path, stylizer: Stylizer) -> None:
    photo = make_photo(tmp_path / "p.png")
    [written] = stylize_images([photo], tmp_path / "out", stylizer, strength=0.0)
    np.testing.assert_array_equal(load_image(written), load_image(photo))


def test_size_sets_the_longest_side(tmp_path: Path, stylizer: Stylizer) -> None:
    photo = make_photo(tmp_path / "p.png", width=40, height=24)
    [written] = stylize_images([photo], tmp_path / "out", stylizer, size=20)
    assert load_image(written).shape == (12, 20, 3)


def test_unreadable_file_in_a_folder_is_skipped(
    tmp_path: Path, stylizer: Stylizer, caplog: pytest.LogCaptureFixture
) -> None:
    folder = tmp_path / "in"
    folder.mkdir()
    make_photo(folder / "good.png")
    (folder / "broken.jpg").write_bytes(b"\x00" * 10)
    with caplog.at_level(logging.WARNING, logger="stylefusion"):
        written = stylize_images([folder], tmp_path / "out", stylizer)
    assert [p.name for p in written] == ["good-alpha.png"]
    assert "broken.jpg" in caplog.text
    with pytest.raises(MediaError, match="broken.jpg"):
        stylize_images([folder / "broken.jpg"], tmp_path / "out", stylizer)


def test_missing_input_and_bad_strength(tmp_path: Path, stylizer: Stylizer) -> None:
    with pytest.raises(InvalidInput, match="no such file"):
        stylize_images([tmp_path / "nope.jpg"], tmp_path / "out", stylizer)
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(InvalidInput, match="no images"):
        stylize_images([empty], tmp_path / "out", stylizer)
    with pytest.raises(InvalidInput, match="strength"):
        stylize_images([empty], tmp_path / "out", stylizer, strength=1.5)
