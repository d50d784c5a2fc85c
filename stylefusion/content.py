"""Content images for fast-style training: a folder decoded once, sampled as seeded random crops."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, ImageOps, UnidentifiedImageError

from .errors import InvalidInput, MediaError

log = logging.getLogger(__name__)

IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".webp", ".bmp"})


def find_images(root: Path) -> list[Path]:
    """Every image file under root (recursive, any suffix case), sorted for reproducibility."""
    root = Path(root)
    if not root.is_dir():
        raise InvalidInput(f"content folder {root} does not exist or is not a folder")
    return sorted(p for p in root.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())


def read_rgb(path: Path, short_side: int | None = None, upscale: bool = False) -> Image.Image:
    """Decode an image as RGB (EXIF orientation applied), optionally resized to a short side.

    Without `upscale`, images already smaller than `short_side` are left as they are.
    """
    try:
        with Image.open(path) as img:
            if short_side is not None and not upscale:
                img.draft("RGB", (short_side, short_side))  # JPEG: decode at a reduced scale
            img = ImageOps.exif_transpose(img)
            img = img.convert("RGB")
    except (OSError, UnidentifiedImageError, ValueError, Image.DecompressionBombError) as exc:
        raise MediaError(f"cannot read image {path}: {exc}") from exc
    if short_side is not None and (upscale or min(img.size) > short_side):
        scale = short_side / min(img.size)
        new_size = (max(1, round(img.width * scale)), max(1, round(img.height * scale)))
        img = img.resize(new_size, Image.Resampling.LANCZOS)
    return img


def to_tensor(img: Image.Image) -> torch.Tensor:
    """PIL RGB image -> (1, 3, H, W) float in [0, 1]."""
    pixels = torch.from_numpy(np.array(img, dtype=np.uint8))  # (H, W, 3) uint8
    return pixels.permute(2, 0, 1).unsqueeze(0).float().contiguous() / 255.0


def to_uint8(image: torch.Tensor) -> np.ndarray:
    """(1, 3, H, W) or (3, H, W) float in [0, 1] -> (H, W, 3) uint8 RGB."""
    image = image.detach().float().reshape(-1, *image.shape[-3:])[0]
    return (image.clamp(0, 1) * 255).round().byte().permute(1, 2, 0).cpu().numpy()


class ContentImages:
    """A folder of content images held in memory (short side <= 2*size), sampled by seeded crops."""

    def __init__(self, root: Path, size: int, max_images: int = 5000, seed: int = 0) -> None:
        self.size = size
        paths = find_images(root)
        if len(paths) > max_images:
            log.info("using %d of %d content images (seeded subset)", max_images, len(paths))
            keep = np.random.default_rng(seed).choice(len(paths), max_images, replace=False)
            paths = [paths[i] for i in sorted(keep)]
        self.images: list[torch.Tensor] = []  # each (3, H, W) uint8
        for path in paths:
            try:
                img = read_rgb(path, short_side=2 * size)
            except MediaError as exc:
                log.warning("skipping unreadable content image: %s", exc)
                continue
            self.images.append(torch.from_numpy(np.array(img, dtype=np.uint8)).permute(2, 0, 1))
        if not self.images:
            raise InvalidInput(f"no readable images (jpg, jpeg, png, webp, bmp) under {root}")
        log.info("loaded %d content images from %s", len(self.images), root)

    def __len__(self) -> int:
        return len(self.images)

    def sample(self, batch_size: int, generator: torch.Generator) -> torch.Tensor:
        """(B, 3, size, size) float in [0, 1]: random image, scale, crop and flip per sample."""
        picks = torch.randint(len(self.images), (batch_size,), generator=generator).tolist()
        return torch.cat([self._crop(self.images[i], generator) for i in picks])

    def _crop(self, image: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """A random square crop (side ~0.8*size up to the short side), resized, maybe flipped."""
        _, h, w = image.shape
        short = min(h, w)
        low = min(short, max(8, int(self.size * 0.8)))
        side = low + int(torch.randint(short - low + 1, (1,), generator=generator))
        top = int(torch.randint(h - side + 1, (1,), generator=generator))
        left = int(torch.randint(w - side + 1, (1,), generator=generator))
        crop = image[None, :, top : top + side, left : left + side].float() / 255.0
        if side != self.size:
            crop = F.interpolate(
                crop, size=(self.size, self.size), mode="bilinear", antialias=side > self.size
            ).clamp(0, 1)
        if bool(torch.rand((), generator=generator) < 0.5):
            crop = crop.flip(-1)
        return crop  # (1, 3, size, size)

    def preview_image(self) -> torch.Tensor:
        """A fixed sample for previews: the centre square of the first image, (1, 3, size, size)."""
        image = self.images[0]
        _, h, w = image.shape
        side = min(h, w)
        top, left = (h - side) // 2, (w - side) // 2
        crop = image[None, :, top : top + side, left : left + side].float() / 255.0
        return F.interpolate(crop, size=(self.size, self.size), mode="bilinear", antialias=True)
