"""The quality yardstick: content + 5 x style loss of a style on held-out photos."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from .images import center_square, read_rgb, to_tensor
from .losses import content_loss, gram_matrix, style_loss
from .stylizer import Stylizer
from .vgg import VGG19

# Fixed by the yardstick's definition, not by how a style was trained.
CONTENT_LAYER = "relu2_2"
STYLE_LAYERS = ("relu1_2", "relu2_2", "relu3_3", "relu4_3")
STYLE_WEIGHT = 5.0
PHOTO_SIZE = 384  # photos: short side scaled to this, then centre-cropped square
STYLE_SIZE = 512  # style image: short side scaled to this
# The photos the yardstick scores on (in ../shared/data/content); no training set may hold them.
HELD_OUT_PHOTOS = (
    "COCO_train2014_000000000009",
    "COCO_train2014_000000000321",
    "city",
    "opencv-baboon",
)


@dataclass(frozen=True)
class Score:
    """Mean yardstick terms over the photos; lower is better."""

    content: float
    style: float

    @property
    def total(self) -> float:
        """content + 5 x style."""
        return self.content + STYLE_WEIGHT * self.style


def square_photo(path: Path, size: int = PHOTO_SIZE) -> np.ndarray:
    """Load a photo as (size, size, 3) uint8: its centred square scaled to `size`."""
    return np.array(center_square(read_rgb(path), size))


def style_grams(vgg: VGG19, style_image: Path, size: int = STYLE_SIZE) -> dict[str, torch.Tensor]:
    """Target Gram matrices of the style image at `size` (STYLE_SIZE) on its short side."""
    image = read_rgb(style_image, size, upscale=True)
    with torch.no_grad():
        features = vgg(to_tensor(image).to(vgg.mean.device), STYLE_LAYERS)
    return {name: gram_matrix(f) for name, f in features.items()}


@torch.no_grad()
def score(
    stylizer: Stylizer,
    photos: Sequence[Path],
    style_image: Path,
    vgg: VGG19 | None = None,
    sizes: tuple[int, int] = (PHOTO_SIZE, STYLE_SIZE),
) -> Score:
    """Yardstick of one stylizer: mean over photos of content and style loss terms.

    The loss network runs wherever `vgg` is (a CPU VGG19 by default), in fp32. `sizes`
    (photo, style image) are the yardstick's own unless a quick check asks for less."""
    vgg = vgg or VGG19()
    device = vgg.mean.device
    grams = style_grams(vgg, style_image, sizes[1])
    contents, styles = [], []
    for path in photos:
        photo = square_photo(path, sizes[0])
        out = to_tensor(stylizer(photo)[0]).to(device)
        layers = (*STYLE_LAYERS, CONTENT_LAYER)
        features = vgg(out, layers)
        target = vgg(to_tensor(photo).to(device), [CONTENT_LAYER])[CONTENT_LAYER]
        contents.append(content_loss(features[CONTENT_LAYER], target).item())
        styles.append(style_loss({k: features[k] for k in STYLE_LAYERS}, grams).item())
    return Score(content=float(np.mean(contents)), style=float(np.mean(styles)))
