"""The quality yardstick: content + 5 x style loss of a style on held-out photos."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from .images import load_image
from .losses import content_loss, gram_matrix, style_loss
from .stylizer import Stylizer
from .vgg import VGG19

# Fixed by the yardstick's definition, not by how a style was trained.
CONTENT_LAYER = "relu2_2"
STYLE_LAYERS = ("relu1_2", "relu2_2", "relu3_3", "relu4_3")
STYLE_WEIGHT = 5.0
PHOTO_SIZE = 384  # photos: short side scaled to this, then centre-cropped square
STYLE_SIZE = 512  # style image: short side scaled to this


@dataclass(frozen=True)
class Score:
    """Mean yardstick terms over the photos; lower is better."""

    content: float
    style: float

    @property
    def total(self) -> float:
        """content + 5 x style."""
        return self.content + STYLE_WEIGHT * self.style


def to_tensor(rgb: np.ndarray) -> torch.Tensor:
    """(H, W, 3) uint8 -> (1, 3, H, W) float in [0, 1]."""
    return torch.from_numpy(np.array(rgb)).permute(2, 0, 1).unsqueeze(0).float().div(255.0)


def square_photo(path: Path, size: int = PHOTO_SIZE) -> np.ndarray:
    """Load a photo, scale its short side to `size` and centre-crop a square."""
    img = Image.fromarray(load_image(path))
    scale = size / min(img.size)
    img = img.resize((max(size, round(img.width * scale)), max(size, round(img.height * scale))))
    left, top = (img.width - size) // 2, (img.height - size) // 2
    return np.asarray(img.crop((left, top, left + size, top + size)))


def style_grams(vgg: VGG19, style_image: Path) -> dict[str, torch.Tensor]:
    """Target Gram matrices of the style image at STYLE_SIZE on its short side."""
    img = Image.fromarray(load_image(style_image))
    scale = STYLE_SIZE / min(img.size)
    img = img.resize(
        (round(img.width * scale), round(img.height * scale)), Image.Resampling.LANCZOS
    )
    with torch.no_grad():
        features = vgg(to_tensor(np.asarray(img)), STYLE_LAYERS)
    return {name: gram_matrix(f) for name, f in features.items()}


@torch.no_grad()
def score(
    stylizer: Stylizer, photos: Sequence[Path], style_image: Path, vgg: VGG19 | None = None
) -> Score:
    """Yardstick of one stylizer: mean over photos of content and style loss terms."""
    vgg = vgg or VGG19()
    grams = style_grams(vgg, style_image)
    contents, styles = [], []
    for path in photos:
        photo = square_photo(path)
        out = to_tensor(stylizer(photo)[0])
        layers = (*STYLE_LAYERS, CONTENT_LAYER)
        features = vgg(out, layers)
        target = vgg(to_tensor(photo), [CONTENT_LAYER])[CONTENT_LAYER]
        contents.append(content_loss(features[CONTENT_LAYER], target).item())
        styles.append(style_loss({k: features[k] for k in STYLE_LAYERS}, grams).item())
    return Score(content=float(np.mean(contents)), style=float(np.mean(styles)))
