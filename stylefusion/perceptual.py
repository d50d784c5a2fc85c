"""The perceptual loss of fast style training: a frozen VGG19's content and style terms."""

from __future__ import annotations

import contextlib
from typing import Any

import torch

from .devices import cpu_has_bf16
from .losses import content_loss, style_loss, total_variation, weighted_terms
from .vgg import VGG19

CONTENT_LAYER = "relu2_2"
STYLE_LAYERS = ("relu1_2", "relu2_2", "relu3_3", "relu4_3")


class PerceptualLoss:
    """Content (relu2_2) + style (Grams at relu1_2..relu4_3) + total variation, weighted."""

    def __init__(
        self,
        vgg: VGG19,
        style_grams: dict[str, torch.Tensor],
        weights: tuple[float, float, float],
        channels_last: bool = False,
    ) -> None:
        self.vgg = vgg
        self.style_grams = style_grams  # name -> (N, C, C): one Gram per style
        self.weights = weights  # (content, style, tv)
        self.channels_last = channels_last
        self.autocast: contextlib.AbstractContextManager[Any] = contextlib.nullcontext()

    def __call__(
        self,
        output: torch.Tensor,
        content: torch.Tensor,
        style_index: torch.Tensor | None = None,
    ) -> dict[str, torch.Tensor]:
        """Loss terms for a stylized batch and its content batch, both (B, 3, H, W) in [0, 1];
        style_index (B,) picks each sample's style (default: the one style)."""
        c, s = self.per_sample(output, content, style_index)
        return weighted_terms(c.mean(), s.mean(), total_variation(output), self.weights)

    def per_sample(
        self, output: torch.Tensor, content: torch.Tensor, style_index: torch.Tensor | None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """(B,) content and (B,) style terms, each sample against its own style's Grams."""
        if self.channels_last:
            output = output.contiguous(memory_format=torch.channels_last)
            content = content.contiguous(memory_format=torch.channels_last)
        with self.autocast:
            with torch.no_grad():
                target = self.vgg(content, [CONTENT_LAYER])[CONTENT_LAYER]
            features = self.vgg(output, STYLE_LAYERS)
        features = {k: v.float() for k, v in features.items()}  # losses in fp32
        grams = self.style_grams
        if style_index is not None:
            grams = {k: g[style_index] for k, g in grams.items()}  # (B, C, C)
        c = content_loss(features[CONTENT_LAYER], target.float(), per_sample=True)
        return c, style_loss(features, grams, per_sample=True)


def use_bf16_loss(config_value: bool | None, device: torch.device) -> bool:
    """Whether the VGG loss network runs under bf16 autocast: as asked, else where the device
    computes bf16 natively (CUDA, or a CPU with AVX-512 BF16 / AMX)."""
    if config_value is not None:
        return config_value
    return device.type == "cuda" or cpu_has_bf16()
