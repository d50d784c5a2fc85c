"""Johnson et al. (2016) feed-forward style transformer, in a full and a lite variant.

A config with `styles > 0` builds a multi-style network (Dumoulin et al. 2017, conditional
instance normalisation): the convolutions are shared, and every instance norm is a plain
(non-affine) one followed by a per-sample (gamma, beta). The forward API:

    y = model(x, norms)            # x: (B, 3, H, W) in [0, 1]; norms: (B, P) float
    model.norm_size                # P
    model.style_norms(i)           # (1, P) row i of the model's own table (styles, P)
    model.style_norms([0, 3, 3])   # (3, P): one row per sample, so one call mixes styles
    torch.lerp(a, b, t)            # a blend of two styles is a blend of their P-vectors

`norms` packs, for each conditional norm layer in `norm_layer_names()` order (down1, down2,
down3, residuals.0.norm1, residuals.0.norm2, ..., up1, up2), that layer's C gammas then its C
betas; P = 2 * sum(C). A single-style network (styles = 0) has affine instance norms, takes
`norms=None` and computes exactly what it always has. The forward has no Python branch on the
values of `norms`, so torch.export / AOTInductor trace it with norms as a plain input.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

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


class ConditionalInstanceNorm(nn.Module):
    """Non-affine InstanceNorm, then a per-sample scale and shift taken from the packed norms."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.channels = channels
        self.norm = nn.InstanceNorm2d(channels, affine=False)

    def forward(self, x: torch.Tensor, params: torch.Tensor) -> torch.Tensor:
        # x: (B, C, H, W); params: (B, 2C), the C gammas then the C betas of each sample
        gamma, beta = params.to(x.dtype).unsqueeze(-1).unsqueeze(-1).split(self.channels, dim=1)
        return torch.addcmul(beta, self.norm(x), gamma)


def _norm(channels: int, conditional: bool) -> nn.Module:
    """The instance norm of one layer: conditional, or affine with weights of its own."""
    if conditional:
        return ConditionalInstanceNorm(channels)
    return nn.InstanceNorm2d(channels, affine=True)


def _apply_norm(norm: nn.Module, x: torch.Tensor, params: torch.Tensor | None) -> torch.Tensor:
    """Run an affine norm alone, or a conditional one on its slice of the packed norms."""
    return norm(x) if params is None else norm(x, params)


class ConvNormReLU(nn.Module):
    """ConvLayer, InstanceNorm (affine or conditional), ReLU."""

    def __init__(
        self, in_ch: int, out_ch: int, kernel: int, stride: int = 1, conditional: bool = False
    ) -> None:
        super().__init__()
        self.conv = ConvLayer(in_ch, out_ch, kernel, stride)
        self.norm = _norm(out_ch, conditional)

    def forward(self, x: torch.Tensor, params: torch.Tensor | None = None) -> torch.Tensor:
        return F.relu(_apply_norm(self.norm, self.conv(x), params))


class ResidualBlock(nn.Module):
    """Two 3x3 conv + InstanceNorm layers with an identity shortcut."""

    def __init__(self, channels: int, conditional: bool = False) -> None:
        super().__init__()
        self.channels = channels
        self.conv1 = ConvLayer(channels, channels, 3)
        self.norm1 = _norm(channels, conditional)
        self.conv2 = ConvLayer(channels, channels, 3)
        self.norm2 = _norm(channels, conditional)

    def forward(self, x: torch.Tensor, params: torch.Tensor | None = None) -> torch.Tensor:
        # params: (B, 4C) = norm1's (gamma, beta) then norm2's, or None (affine norms)
        p1, p2 = (None, None) if params is None else params.split(2 * self.channels, dim=1)
        y = F.relu(_apply_norm(self.norm1, self.conv1(x), p1))
        return x + _apply_norm(self.norm2, self.conv2(y), p2)


class UpsampleConv(nn.Module):
    """Nearest-neighbour x2 upsample then a conv: no transposed conv, so no checkerboard."""

    def __init__(self, in_ch: int, out_ch: int, kernel: int, conditional: bool = False) -> None:
        super().__init__()
        self.conv = ConvNormReLU(in_ch, out_ch, kernel, conditional=conditional)

    def forward(self, x: torch.Tensor, params: torch.Tensor | None = None) -> torch.Tensor:
        return self.conv(F.interpolate(x, scale_factor=2, mode="nearest"), params)


class TransformerNet(nn.Module):
    """Image-to-image style transformer; any input size (padded to a multiple of 4, cropped)."""

    def __init__(self, config: TransformerConfig = VARIANTS["full"]) -> None:
        super().__init__()
        self.config = config
        c1, c2, c3 = config.channels
        k = config.edge_kernel
        cond = config.conditional
        self.down1 = ConvNormReLU(3, c1, k, conditional=cond)
        self.down2 = ConvNormReLU(c1, c2, 3, stride=2, conditional=cond)
        self.down3 = ConvNormReLU(c2, c3, 3, stride=2, conditional=cond)
        self.residuals = nn.Sequential(
            *[ResidualBlock(c3, conditional=cond) for _ in range(config.residual_blocks)]
        )
        self.up1 = UpsampleConv(c3, c2, 3, conditional=cond)
        self.up2 = UpsampleConv(c2, c1, 3, conditional=cond)
        self.out = ConvLayer(c1, 3, k)
        # (gamma, beta) widths of each stage, in the packed order: down1..3, residuals, up1, up2
        self._splits = [2 * c1, 2 * c2, 2 * c3, *[4 * c3] * config.residual_blocks, 2 * c2, 2 * c1]
        if cond:
            table = identity_norms(config).repeat(config.styles, 1)  # (styles, P)
            self.style_table = nn.Parameter(table)

    @property
    def norm_size(self) -> int:
        """P: the length of one sample's packed norms (0 for a single-style network)."""
        return sum(self._splits) if self.config.conditional else 0

    def style_norms(self, index: int | Sequence[int] | torch.Tensor) -> torch.Tensor:
        """(B, P) rows of the style table: one per index (an int gives one row)."""
        if not self.config.conditional:
            raise ValueError("a single-style network has no style table")
        indices = torch.as_tensor(index, dtype=torch.long, device=self.style_table.device)
        return self.style_table[indices.reshape(-1)]

    def forward(self, x: torch.Tensor, norms: torch.Tensor | None = None) -> torch.Tensor:
        # x: (B, 3, H, W) float RGB in [0, 1] -> (B, 3, H, W) float RGB, roughly [0, 1]
        # norms: (B, P) packed (gamma, beta) of a multi-style network; None for a single style
        if self.config.conditional != (norms is not None):
            raise ValueError(
                "a multi-style network needs norms (model.style_norms(i)); a single-style one none"
            )
        h, w = x.shape[-2:]
        # multiples of 4 survive the two stride-2 convs; MIN_SIDE keeps every reflection pad legal
        pad_h = max(MIN_SIDE, h + (-h) % 4) - h
        pad_w = max(MIN_SIDE, w + (-w) % 4) - w
        if pad_h or pad_w:
            mode = "reflect" if pad_h < h and pad_w < w else "replicate"
            x = F.pad(x, (0, pad_w, 0, pad_h), mode=mode)
        stages = [self.down1, self.down2, self.down3, *self.residuals, self.up1, self.up2]
        params: list[torch.Tensor | None] = [None] * len(stages)
        if norms is not None:
            params = list(norms.split(self._splits, dim=1))
        y = x
        for stage, p in zip(stages, params, strict=True):
            y = stage(y, p)  # down3 -> (B, c3, H/4, W/4); up2 -> (B, c1, H, W)
        y = self.out(y)
        return y[..., :h, :w]


def norm_layer_names(config: TransformerConfig) -> list[str]:
    """The norm layers in packed order, by their state_dict prefix."""
    residual = [f"residuals.{i}.norm{j}" for i in range(config.residual_blocks) for j in (1, 2)]
    return ["down1.norm", "down2.norm", "down3.norm", *residual, "up1.conv.norm", "up2.conv.norm"]


def identity_norms(config: TransformerConfig) -> torch.Tensor:
    """(P,) norms that leave every normalised map as it is: gammas 1, betas 0."""
    parts = []
    for width in _norm_widths(config):
        parts += [torch.ones(width), torch.zeros(width)]
    return torch.cat(parts)


def _norm_widths(config: TransformerConfig) -> list[int]:
    c1, c2, c3 = config.channels
    return [c1, c2, c3, *[c3] * (2 * config.residual_blocks), c2, c1]


def affine_norms(model: TransformerNet) -> torch.Tensor:
    """(P,) packed (gamma, beta) of a single-style network's affine norms, in packed order."""
    state = model.state_dict()
    parts = []
    for name in norm_layer_names(model.config):
        parts += [state[f"{name}.weight"].float(), state[f"{name}.bias"].float()]
    return torch.cat(parts)


def backbone_state(model: TransformerNet) -> dict[str, torch.Tensor]:
    """The shared weights of a network: everything but its norm parameters."""
    norm_keys = {f"{n}.{p}" for n in norm_layer_names(model.config) for p in ("weight", "bias")}
    return {
        k: v for k, v in model.state_dict().items() if k not in norm_keys and k != "style_table"
    }


def fold_norms(model: TransformerNet, norms: torch.Tensor) -> TransformerNet:
    """A single-style network computing what `model` computes with these (P,) norms."""
    config = dataclasses.replace(model.config, styles=0)
    single = TransformerNet(config)
    state = backbone_state(model)
    offset = 0
    for name, width in zip(norm_layer_names(config), _norm_widths(config), strict=True):
        state[f"{name}.weight"] = norms[offset : offset + width]
        state[f"{name}.bias"] = norms[offset + width : offset + 2 * width]
        offset += 2 * width
    single.load_state_dict({k: v.detach().float() for k, v in state.items()}, strict=True)
    return single


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
