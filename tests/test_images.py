"""The image module: orientation, transparency, sizes, crops, one suffix list for all readers."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from media_helpers import make_photo
from PIL import Image

from server.config import ServerConfig
from server.errors import UnsupportedMedia
from server.jobs.uploads import UploadLimits, probe_image
from stylefusion.content import ContentImages
from stylefusion.errors import MediaError
from stylefusion.images import (
    IMAGE_SUFFIXES,
    center_square,
    find_images,
    load_image,
    resize_longest,
    resize_shortest,
    save_image,
)
from stylefusion.yardstick import square_photo


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


def test_training_reads_transparency_like_the_yardstick(tmp_path: Path) -> None:
    rgba = np.zeros((40, 40, 4), np.uint8)
    rgba[:, :20] = (0, 0, 255, 255)  # opaque blue left, fully transparent (black) right
    Image.fromarray(rgba, "RGBA").save(tmp_path / "painting.png")
    images = ContentImages(tmp_path, size=16)
    right = images.images[0][:, :, 30]  # (3, H) uint8 column in the transparent half
    assert right.min().item() == 255  # white, as load_image gives, not the hidden black
    np.testing.assert_array_equal(square_photo(tmp_path / "painting.png", 40)[:, 30], 255)


def test_uploads_and_training_accept_the_same_formats(tmp_path: Path) -> None:
    formats = {"PNG": "a.png", "JPEG": "b.jpg", "WEBP": "c.webp", "BMP": "d.bmp", "GIF": "e.gif"}
    for fmt, name in formats.items():
        Image.new("RGB", (24, 24), "red").save(tmp_path / name, format=fmt)
        accepted = probe_image(tmp_path / name, UploadLimits.from_config(ServerConfig()))
        assert accepted.suffix in IMAGE_SUFFIXES
    Image.new("RGB", (24, 24), "red").save(tmp_path / "f.tif", format="TIFF")
    with pytest.raises(UnsupportedMedia) as refused:
        probe_image(tmp_path / "f.tif", UploadLimits.from_config(ServerConfig()))
    assert refused.value.status == 415
    assert [p.suffix for p in find_images(tmp_path)] == [".png", ".jpg", ".webp", ".bmp", ".gif"]
    assert len(ContentImages(tmp_path, size=16)) == 5  # every accepted upload trains


def test_center_square_and_resizes() -> None:
    wide = Image.new("RGB", (60, 20), "red")
    wide.paste((0, 0, 255), (20, 0, 40, 20))  # blue centre third
    square = center_square(wide, 10)
    assert square.size == (10, 10) and square.getpixel((5, 5)) == (0, 0, 255)
    assert resize_shortest(wide, 40).size == (120, 40)
    assert resize_longest(wide, 30).size == (30, 10)
