"""Johnson et al. (2016) feed-forward style transformer, in a full and a lite variant."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .architecture import VARIANTS, TransformerConfig
from .errors import StyleFormatError

MIN_SIDE = 16  # smaller inputs are padded up to this, then cropped back


class ConvLayer(nn.Module):
    """Reflection padding then a convolution, so borders carry no zero-padding artefacts."""

    def __init__(self, in_ch: int, out_ch: int, kernel: int, stride: int = 1) -> None:
        super().__init__()
        self.pad = nn.ReflectionPad2d(kernel // 2)
        self.conv = nn.Conv2d(in_ch, out_ch, kernel, stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(self.pad(x))


class ConvNormReLU(nn.Module):
    """ConvLayer, affine InstanceNorm, ReLU."""

    def __init__(self, in_ch: int, out_ch: int, kernel: int, stride: int = 1) -> None:
        super().__init__()
        self.conv = ConvLayer(in_ch, out_ch, kernel, stride)
        self.norm = nn.InstanceNorm2d(out_ch, affine=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.norm(self.conv(x)))


class ResidualBlock(nn.Module):
    """Two 3x3 conv + InstanceNorm layers with an identity shortcut."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv1 = ConvLayer(channels, channels, 3)
        self.norm1 = nn.InstanceNorm2d(channels, affine=True)
        self.conv2 = ConvLayer(channels, channels, 3)
        self.norm2 = nn.InstanceNorm2d(channels, affine=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.relu(self.norm1(self.conv1(x)))
        return x + self.norm2(self.conv2(y))


class UpsampleConv(nn.Module):
    """Nearest-neighbour x2 upsample then a conv: no transposed conv, so no checkerboard."""

    def __init__(self, in_ch: int, out_ch: int, kernel: int) -> None:
        super().__init__()
        self.conv = ConvNormReLU(in_ch, out_ch, kernel)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(F.interpolate(x, scale_factor=2, mode="nearest"))


class TransformerNet(nn.Module):
    """Image-to-image style transformer; any input size (padded to a multiple of 4, cropped)."""

    def __init__(self, config: TransformerConfig = VARIANTS["full"]) -> None:
        super().__init__()
        self.config = config
        c1, c2, c3 = config.channels
        k = config.edge_kernel
        self.down1 = ConvNormReLU(3, c1, k)
        self.down2 = ConvNormReLU(c1, c2, 3, stride=2)
        self.down3 = ConvNormReLU(c2, c3, 3, stride=2)
        self.residuals = nn.Sequential(*[ResidualBlock(c3) for _ in range(config.residual_blocks)])
        self.up1 = UpsampleConv(c3, c2, 3)
        self.up2 = UpsampleConv(c2, c1, 3)
        self.out = ConvLayer(c1, 3, k)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # x: (B, 3, H, W) float RGB in [0, 1] -> (B, 3, H, W) float RGB, roughly [0, 1]
        h, w = x.shape[-2:]
        # multiples of 4 survive the two stride-2 convs; MIN_SIDE keeps every reflection pad legal
        pad_h = max(MIN_SIDE, h + (-h) % 4) - h
        pad_w = max(MIN_SIDE, w + (-w) % 4) - w
        if pad_h or pad_w:
            mode = "reflect" if pad_h < h and pad_w < w else "replicate"
            x = F.pad(x, (0, pad_w, 0, pad_h), mode=mode)
        y = self.down3(self.down2(self.down1(x)))  # (B, c3, H/4, W/4)
        y = self.residuals(y)
        y = self.up2(self.up1(y))  # (B, c1, H, W)
        y = self.out(y)
        return y[..., :h, :w]


def build_transformer(variant_or_config: str | TransformerConfig) -> TransformerNet:
    """A fresh transformer of a named variant ('full', 'lite') or an explicit config."""
    if isinstance(variant_or_config, TransformerConfig):
        return TransformerNet(variant_or_config)
    try:
        return TransformerNet(VARIANTS[variant_or_config])
    except KeyError:
        raise StyleFormatError(
            f"unknown variant {variant_or_config!r}; choose one of {', '.join(VARIANTS)}"
        ) from None
