"""The temporal term: known small motions, valid-pixel masks, and what the loss rewards."""

from __future__ import annotations

import torch

from stylefusion.temporal import random_affine, temporal_loss, valid_mask, warp
from stylefusion.train_config import MotionConfig


def test_motions_stay_within_the_configured_amounts() -> None:
    motion = MotionConfig(max_shift=4.0, max_degrees=2.0, max_zoom=0.03)
    theta = random_affine(64, 128, motion, torch.Generator().manual_seed(0))
    assert theta.shape == (64, 2, 3)
    assert theta[:, :, 2].abs().max() <= 2 * 4.0 / 128 + 1e-6  # shift, in grid units
    scale = theta[:, :, :2].det().abs().sqrt()  # 1 / zoom
    assert ((1 / scale - 1).abs() <= 0.03 + 1e-5).all()


def test_a_whole_pixel_shift_moves_the_image_and_masks_the_border() -> None:
    image = torch.rand(1, 3, 16, 16)
    theta = torch.tensor([[[1.0, 0.0, 2 * 2 / 16], [0.0, 1.0, 0.0]]])  # 2 px
    moved = warp(image, theta)
    torch.testing.assert_close(moved[..., :, :14], image[..., :, 2:])
    mask = valid_mask(theta, 16, 16)
    assert mask[..., :14].eq(1).all() and mask[..., 14:].eq(0).all()


def test_an_equivariant_transform_has_no_temporal_loss_and_a_flickering_one_has() -> None:
    generator = torch.Generator().manual_seed(1)
    x = torch.rand(2, 3, 32, 32)
    motion = MotionConfig(weight=1.0, noise_std=0.0)

    def steady(images: torch.Tensor) -> torch.Tensor:  # per-pixel: moves with its input
        return 0.5 * images + 0.25

    def flicker(images: torch.Tensor) -> torch.Tensor:  # a fixed pattern that does not move
        return 0.5 * images + torch.linspace(0, 1, 32)

    steady_loss = temporal_loss(steady, x, steady(x), motion, generator)
    flicker_loss = temporal_loss(flicker, x, flicker(x), motion, generator)
    assert steady_loss < 1e-6 and flicker_loss > 1e-4
