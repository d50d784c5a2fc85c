"""Content images for training: recursive discovery, skipping broken files, seeded crops."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from stylefusion.content import ContentImages, default_photos_dir, find_images
from stylefusion.errors import InvalidInput
from stylefusion.yardstick import HELD_OUT_PHOTOS


def test_finds_images_recursively_any_suffix_case(content_dir: Path) -> None:
    Image.new("RGB", (40, 40), "red").save(content_dir / "sub" / "UPPER.PNG")
    (content_dir / "readme.txt").write_text("not an image")
    found = find_images(content_dir)
    assert len(found) == 7
    assert content_dir / "sub" / "UPPER.PNG" in found


def test_samples_are_seeded_square_crops(content_dir: Path) -> None:
    images = ContentImages(content_dir, size=40)
    a = images.sample(3, torch.Generator().manual_seed(7))
    b = images.sample(3, torch.Generator().manual_seed(7))
    c = images.sample(3, torch.Generator().manual_seed(8))
    assert a.shape == (3, 3, 40, 40) and a.dtype == torch.float32
    assert float(a.min()) >= 0 and float(a.max()) <= 1
    assert torch.equal(a, b) and not torch.equal(a, c)


def test_large_images_are_kept_downscaled(tmp_path: Path) -> None:
    pixels = np.random.default_rng(0).integers(0, 256, (300, 500, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(tmp_path / "big.png")
    images = ContentImages(tmp_path, size=32)
    assert min(images.images[0].shape[1:]) == 64  # short side <= 2 * size


def test_broken_files_are_skipped_with_a_warning(
    content_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    (content_dir / "broken.webp").write_bytes(b"\x00garbage")
    assert len(ContentImages(content_dir, size=32)) == 6
    assert any("broken.webp" in r.getMessage() for r in caplog.records)


def test_folder_without_images_is_refused(tmp_path: Path) -> None:
    (tmp_path / "bad.jpg").write_bytes(b"not a jpeg")
    with pytest.raises(InvalidInput, match="no readable images"):
        ContentImages(tmp_path, size=32)
    with pytest.raises(InvalidInput, match="does not exist"):
        ContentImages(tmp_path / "missing", size=32)


def test_shipped_photos_have_a_source_and_licence_each() -> None:
    folder = default_photos_dir()
    photos = find_images(folder)
    assert len(photos) >= 24
    sources = (folder / "SOURCES.md").read_text()
    rows = {line.split("|")[1].strip(): line for line in sources.splitlines() if ".jpg |" in line}
    assert sorted(rows) == sorted(p.name for p in photos)
    assert all(len([c for c in row.split("|") if c.strip()]) == 3 for row in rows.values())
    assert not {p.stem for p in photos} & set(HELD_OUT_PHOTOS)  # the yardstick's photos stay unseen
    assert sum(p.stat().st_size for p in photos) < 5 * 2**20
    assert max(max(Image.open(p).size) for p in photos) <= 384
