"""int8 inference on x86 CPUs: the transformer quantized statically, then packaged per shape.

PT2E quantization (torchao's X86InductorQuantizer): int8 weights per channel, uint8 activations
per tensor, calibrated on the training photos that ship with the package, then compiled ahead of
time by AOTInductor with freezing (stylefusion.packages), so convolutions run as oneDNN int8
kernels (VNNI). On our 2-core AVX-512 box the lite network ran 1.5x the fps of bf16 (1.9x
multistyle26.onnx) and the yardstick moved by 0.04% (bench/cpu_model.py measures both on the
machine at hand).
"""

from __future__ import annotations

import copy
import logging
from pathlib import Path

import numpy as np
import torch
from torch import nn

from .content import default_photos_dir
from .devices import cpu_has_bf16
from .images import find_images, read_rgb

log = logging.getLogger(__name__)

CALIBRATION_PHOTOS = 8  # photos per calibration; more moved the yardstick by < 0.1%

Shape = tuple[int, ...]


def calibration_photos(count: int) -> list[Path]:
    """The first `count` shipped training photos: what int8 is calibrated on."""
    return find_images(default_photos_dir())[:count]


def calibration_frames(shape: Shape, count: int = CALIBRATION_PHOTOS) -> list[torch.Tensor]:
    """`count` batches of `shape` (B, 3, H, W), float32 in [0, 1], cut from the shipped photos."""
    batch, _, height, width = shape
    photos = calibration_photos(max(count, batch))
    side = max(height, width)  # short side: the crop fits either way
    crops = [_center_crop(np.asarray(read_rgb(p, side, upscale=True)), shape) for p in photos]
    frames = torch.from_numpy(np.stack(crops)).permute(0, 3, 1, 2).float().div_(255.0)
    return [frames[[(i + j) % len(crops) for j in range(batch)]].contiguous() for i in range(count)]


def _center_crop(image: np.ndarray, shape: Shape) -> np.ndarray:
    height, width = shape[2], shape[3]
    top, left = (image.shape[0] - height) // 2, (image.shape[1] - width) // 2
    return image[top : top + height, left : left + width]


def quantize(model: nn.Module, examples: list[tuple[torch.Tensor, ...]]) -> nn.Module:
    """An int8 copy of `model` for calls shaped like `examples`, calibrated on them (each a
    call's inputs: frames, and a multi-style network's norms).

    The copy runs slowly in eager mode (it simulates int8); build_package compiles it."""
    from torchao.quantization.pt2e.quantize_pt2e import convert_pt2e, prepare_pt2e
    from torchao.quantization.pt2e.quantizer import x86_inductor_quantizer as x86

    quantizer = x86.X86InductorQuantizer()
    quantizer.set_global(x86.get_default_x86_inductor_quantization_config())
    with torch.inference_mode(False), torch.no_grad():
        # strict (dynamo) export: the default non-strict one patches torch globally while it
        # traces, which breaks an eager model serving frames in another thread meanwhile
        graph = torch.export.export(model, examples[0], strict=True).module()
        prepared = prepare_pt2e(graph, quantizer)  # type: ignore[arg-type]
        for inputs in examples:
            prepared(*inputs)
        return convert_pt2e(prepared)


class Bfloat16StandIn(nn.Module):
    """fp32 frames in and out, a bf16 copy of the model inside (norms pass through)."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = copy.deepcopy(model).to(torch.bfloat16)

    def forward(self, x: torch.Tensor, *norms: torch.Tensor) -> torch.Tensor:
        return self.model(x.to(torch.bfloat16), *norms).float()


def bfloat16_stand_in(model: nn.Module) -> nn.Module:
    """What serves a frame size until its int8 package is built: eager bf16 where the CPU
    computes it natively (2x eager fp32 on our box), else the fp32 model itself."""
    return Bfloat16StandIn(model) if cpu_has_bf16() else model
