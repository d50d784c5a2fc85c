"""The temporal term: outputs must follow a known small motion of their input (no flicker).

No video is needed: a training crop x is moved by a random small affine warp W (so the flow is
known exactly) and the transformer T is asked for T(W(x) + noise) == W(T(x)) on the pixels the
warp keeps inside the frame; the noise term is Gupta et al. (2017)'s input-noise robustness.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
import torch.nn.functional as F

from .train_config import MotionConfig


def random_affine(
    batch: int, size: int, motion: MotionConfig, generator: torch.Generator
) -> torch.Tensor:
    """(B, 2, 3) affine_grid matrices: a rotation, zoom and shift of at most the configured
    amounts (shift in pixels of a `size`-pixel square), drawn from the generator."""
    u = torch.rand(batch, 4, generator=generator) * 2 - 1  # (B, 4) in [-1, 1)
    angle = u[:, 0] * math.radians(motion.max_degrees)
    scale = 1 + u[:, 1] * motion.max_zoom
    shift = u[:, 2:] * (2 * motion.max_shift / size)  # grid units: the frame spans [-1, 1]
    cos, sin = torch.cos(angle) / scale, torch.sin(angle) / scale
    return torch.stack(
        [torch.stack([cos, -sin, shift[:, 0]], 1), torch.stack([sin, cos, shift[:, 1]], 1)], 1
    )


def warp(images: torch.Tensor, theta: torch.Tensor) -> torch.Tensor:
    """(B, C, H, W) images moved by (B, 2, 3) affine matrices; outside pixels become 0."""
    grid = F.affine_grid(theta.to(images), list(images.shape), align_corners=False)
    return F.grid_sample(images, grid, mode="bilinear", padding_mode="zeros", align_corners=False)


def valid_mask(theta: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """(B, 1, H, W) 1 where the warp samples wholly inside the source frame, else 0."""
    ones = torch.ones(theta.shape[0], 1, height, width)
    return (warp(ones, theta) > 0.999).float()


def temporal_loss(
    transform: Callable[[torch.Tensor], torch.Tensor],
    content: torch.Tensor,
    output: torch.Tensor,
    motion: MotionConfig,
    generator: torch.Generator,
) -> torch.Tensor:
    """Mean over valid pixels of (T(W(x) + noise) - W(T(x)))^2 for content x, output T(x)."""
    b, _, h, w = content.shape
    theta = random_affine(b, h, motion, generator).to(content.device)
    noise = torch.randn(content.shape, generator=generator).to(content) * motion.noise_std
    moved = transform((warp(content, theta) + noise).clamp(0, 1))  # (B, 3, H, W)
    mask = valid_mask(theta.cpu(), h, w).to(content)  # (B, 1, H, W)
    diff = (moved - warp(output, theta)).square() * mask
    return diff.sum() / (mask.sum() * output.shape[1]).clamp_min(1.0)
