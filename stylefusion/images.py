"""Still image files, the one place they are read and written: formats, EXIF, alpha, sizes, crops.

Every image the project reads (content photos, paintings, held-out photos, uploads, thumbnails)
goes through `read_rgb`, so a transparent painting is trained, scored and shown the same way.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageOps, UnidentifiedImageError

from .errors import InvalidInput, MediaError
from .fsutil import atomic_write

# Pillow format -> the suffix a file of that format gets. TIFF is left out on purpose: browsers
# cannot show it on the pages, and its 16-bit / float / CMYK variants do not decode faithfully.
# GIF is read as its first frame. MPO is what Pillow calls many phone cameras' JPEGs.
IMAGE_FORMATS: dict[str, str] = {
    "JPEG": ".jpg",
    "MPO": ".jpg",
    "PNG": ".png",
    "WEBP": ".webp",
    "BMP": ".bmp",
    "GIF": ".gif",
}
# The suffixes of image files the project reads: uploads, training photos, folders to stylize.
IMAGE_SUFFIXES = frozenset({*IMAGE_FORMATS.values(), ".jpeg"})
READ_ERRORS = (OSError, UnidentifiedImageError, Image.DecompressionBombError, ValueError)


def is_image_file(path: Path) -> bool:
    """Whether a path is a file with one of IMAGE_SUFFIXES (any case)."""
    path = Path(path)
    return path.suffix.lower() in IMAGE_SUFFIXES and path.is_file()


def find_images(root: Path) -> list[Path]:
    """Every image file under root (recursive, any suffix case), sorted for reproducibility."""
    root = Path(root)
    if not root.is_dir():
        raise InvalidInput(f"folder {root} does not exist or is not a folder")
    return sorted(p for p in root.rglob("*") if is_image_file(p))


def read_rgb(path: Path, short_side: int | None = None, upscale: bool = False) -> Image.Image:
    """Decode an image as RGB: EXIF orientation applied, transparency composited on white.

    With `short_side`, the image is scaled so its short side is that many pixels; without
    `upscale`, images already smaller are left as they are.
    """
    try:
        with Image.open(path) as img:
            if short_side is not None and not upscale:
                img.draft("RGB", (short_side, short_side))  # JPEG: decode at a reduced scale
            img.load()
            rgb = _flatten(ImageOps.exif_transpose(img))
    except READ_ERRORS as exc:
        raise MediaError(f"{Path(path).name} is not a readable image: {exc}") from exc
    if short_side is not None and (upscale or min(rgb.size) > short_side):
        rgb = resize_shortest(rgb, short_side)
    return rgb


def load_image(path: Path, max_side: int | None = None) -> np.ndarray:
    """Read an image as (H, W, 3) uint8 RGB; with `max_side`, larger images are scaled down."""
    rgb = read_rgb(path)
    if max_side is not None and max(rgb.size) > max_side:
        rgb = resize_longest(rgb, max_side)
    return np.array(rgb, dtype=np.uint8)  # a writable copy


def _flatten(img: Image.Image) -> Image.Image:
    """RGB version of any PIL image, with transparent parts composited onto white."""
    has_alpha = img.mode in ("RGBA", "LA", "PA") or "transparency" in img.info
    if not has_alpha:
        return img.convert("RGB")
    rgba = img.convert("RGBA")
    white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
    return Image.alpha_composite(white, rgba).convert("RGB")


def _scaled(img: Image.Image, scale: float) -> Image.Image:
    """The image resized by `scale` (LANCZOS), each side at least one pixel."""
    size = (max(1, round(img.width * scale)), max(1, round(img.height * scale)))
    return img if size == img.size else img.resize(size, Image.Resampling.LANCZOS)


def resize_longest(img: Image.Image, side: int) -> Image.Image:
    """Scale an image so its longest side is `side` pixels, keeping the aspect ratio."""
    if side < 1:
        raise InvalidInput(f"size must be a positive number of pixels, got {side}")
    return _scaled(img, side / max(img.size))


def resize_shortest(img: Image.Image, side: int) -> Image.Image:
    """Scale an image so its short side is `side` pixels, keeping the aspect ratio."""
    if side < 1:
        raise InvalidInput(f"size must be a positive number of pixels, got {side}")
    return _scaled(img, side / min(img.size))


def center_square(img: Image.Image, size: int | None = None) -> Image.Image:
    """The centred square of the image's short side, scaled to `size` pixels if given."""
    side = min(img.size)
    left, top = (img.width - side) // 2, (img.height - side) // 2
    square = img.crop((left, top, left + side, top + side))
    return square if size is None else _scaled(square, size / side)


def save_image(path: Path, image: np.ndarray | Image.Image, quality: int = 95) -> Path:
    """Write an RGB image atomically; the format follows the suffix (PNG if unknown)."""
    path = Path(path)
    fmt = Image.registered_extensions().get(path.suffix.lower(), "PNG")
    pil = _as_pil(image)
    atomic_write(path, lambda tmp: pil.save(tmp, format=fmt, **_options(fmt, quality)))
    return path


def encode_jpeg(image: np.ndarray | Image.Image, quality: int = 85) -> bytes:
    """The image as JPEG bytes (thumbnails, previews)."""
    buffer = io.BytesIO()
    _as_pil(image).save(buffer, format="JPEG", quality=quality)
    return buffer.getvalue()


def _as_pil(image: np.ndarray | Image.Image) -> Image.Image:
    """A PIL RGB image from (H, W, 3) uint8 or a PIL image."""
    if isinstance(image, Image.Image):
        return image.convert("RGB")
    return Image.fromarray(np.ascontiguousarray(image, dtype=np.uint8), "RGB")


def _options(fmt: str, quality: int) -> dict[str, int]:
    """Encoder options: quality for the lossy formats."""
    return {"quality": quality} if fmt in ("JPEG", "WEBP") else {}


def to_tensor(image: np.ndarray | Image.Image) -> torch.Tensor:
    """(H, W, 3) uint8 RGB or a PIL image -> (1, 3, H, W) float in [0, 1]."""
    pixels = torch.from_numpy(np.array(image, dtype=np.uint8))  # (H, W, 3) uint8, a copy
    return pixels.permute(2, 0, 1).unsqueeze(0).float().contiguous() / 255.0


def to_uint8(image: torch.Tensor) -> np.ndarray:
    """(1, 3, H, W) or (3, H, W) float in [0, 1] -> (H, W, 3) uint8 RGB."""
    image = image.detach().float().reshape(-1, *image.shape[-3:])[0]
    return (image.clamp(0, 1) * 255).round().byte().permute(1, 2, 0).cpu().numpy()
