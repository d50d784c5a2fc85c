"""Stylizing files and folders: output naming, sizes, strength, skipping unreadable files."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest
from media_helpers import make_photo

from stylefusion.errors import InvalidInput, MediaError
from stylefusion.images import load_image
from stylefusion.progress import Progress
from stylefusion.stylize_files import stylize_images
from stylefusion.stylizer import Stylizer


@pytest.fixture
def stylizer(models_dir: Path) -> Stylizer:
    return Stylizer.from_style(models_dir / "alpha", "lite", "cpu")


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
