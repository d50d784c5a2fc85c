"""Content images for fast-style training: a folder decoded once, sampled as seeded random crops."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from .errors import InvalidInput, MediaError
from .images import IMAGE_SUFFIXES, find_images, read_rgb

log = logging.getLogger(__name__)

_SUFFIX_LIST = ", ".join(sorted(s.lstrip(".") for s in IMAGE_SUFFIXES))


def default_photos_dir() -> Path:
    """The training photos shipped with the library (the default content of a training run)."""
    return Path(__file__).resolve().parent / "data" / "content"


class ContentImages:
    """A folder of content images held in memory (short side <= 2*size), sampled by seeded crops."""

    def __init__(self, root: Path, size: int, max_images: int = 5000, seed: int = 0) -> None:
        self.size = size
        if not Path(root).is_dir():
            raise InvalidInput(f"content folder {root} does not exist or is not a folder")
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
            raise InvalidInput(f"no readable images ({_SUFFIX_LIST}) under {root}")
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
