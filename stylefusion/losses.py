"""Perceptual losses as pure functions of feature maps."""

from __future__ import annotations

from collections.abc import Mapping

import torch
import torch.nn.functional as F


def content_loss(
    features: torch.Tensor, target: torch.Tensor, per_sample: bool = False
) -> torch.Tensor:
    """Mean squared error between two feature maps; per_sample: one value per batch item."""
    if per_sample:
        return (features - target).square().flatten(1).mean(1)  # (B,)
    return F.mse_loss(features, target)


def gram_matrix(features: torch.Tensor) -> torch.Tensor:
    """(B, C, H, W) -> (B, C, C) Gram matrices normalised by C*H*W."""
    b, c, h, w = features.shape
    flat = features.reshape(b, c, h * w)
    return flat @ flat.transpose(1, 2) / (c * h * w)


def style_loss(
    features: Mapping[str, torch.Tensor],
    target_grams: Mapping[str, torch.Tensor],
    layer_weights: Mapping[str, float] | None = None,
    per_sample: bool = False,
) -> torch.Tensor:
    """Sum over layers of the MSE between Gram matrices; targets (1 or B, C, C) broadcast over
    the batch; per_sample: one value per batch item."""
    total = torch.zeros((), device=next(iter(features.values())).device)
    for name, target in target_grams.items():
        gram = gram_matrix(features[name])
        weight = 1.0 if layer_weights is None else layer_weights[name]
        if per_sample:
            term = (gram - target.expand_as(gram)).square().flatten(1).mean(1)  # (B,)
        else:
            term = F.mse_loss(gram, target.expand_as(gram))
        total = total + weight * term
    return total


def total_variation(images: torch.Tensor) -> torch.Tensor:
    """Mean absolute difference between neighbouring pixels of (B, C, H, W) images."""
    dx = (images[..., :, 1:] - images[..., :, :-1]).abs().mean()
    dy = (images[..., 1:, :] - images[..., :-1, :]).abs().mean()
    return dx + dy


def weighted_terms(
    content: torch.Tensor,
    style: torch.Tensor,
    tv: torch.Tensor,
    weights: tuple[float, float, float],
) -> dict[str, torch.Tensor]:
    """The loss terms plus their (content, style, tv)-weighted sum under "loss"."""
    wc, ws, wt = weights
    return {
        "loss": wc * content + ws * style + wt * tv,
        "content": content,
        "style": style,
        "tv": tv,
    }
