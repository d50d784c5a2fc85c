"""The quality yardstick used to accept shipped styles."""

from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import make_style_image
from PIL import Image

from stylefusion.stylizer import Stylizer
from stylefusion.transformer_net import TransformerNet
from stylefusion.vgg import VGG19
from stylefusion.yardstick import PHOTO_SIZE, score, square_photo


class Identity(torch.nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x


@pytest.fixture(scope="module")
def vgg() -> VGG19:
    return VGG19()


def test_photos_become_centred_squares(tmp_path: Path) -> None:
    path = tmp_path / "wide.png"
    Image.fromarray(np.zeros((100, 300, 3), np.uint8)).save(path)
    assert square_photo(path).shape == (PHOTO_SIZE, PHOTO_SIZE, 3)


def test_identity_has_no_content_loss_and_a_real_net_has_some(tmp_path, content_dir, vgg) -> None:
    photos = sorted(content_dir.glob("*.jpg"))[:1]
    style = make_style_image(tmp_path / "style.png", seed=5)
    identity = score(Stylizer(Identity(), "cpu"), photos, style, vgg)
    assert identity.content == 0.0 and identity.style > 0
    torch.manual_seed(0)
    random_net = score(Stylizer(TransformerNet(), "cpu"), photos, style, vgg)
    assert random_net.content > 0
    assert random_net.total == pytest.approx(random_net.content + 5 * random_net.style)
