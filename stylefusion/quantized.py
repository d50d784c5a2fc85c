"""int8 inference on x86 CPUs: the transformer quantized statically, one graph per input shape.

PT2E quantization (torchao's X86InductorQuantizer): int8 weights per channel, uint8 activations
per tensor, calibrated on the training photos that ship with the package, then compiled with
inductor's freezing so convolutions run as oneDNN int8 kernels (VNNI). On a 2-core AVX-512 box
the lite network ran 1.5x faster than in bf16, and the yardstick moved by under 0.5%
(bench/cpu_model.py measures both on the machine at hand).
"""

from __future__ import annotations

import functools
import logging
import threading
from collections.abc import Callable

import numpy as np
import torch
from torch import nn

from .content import default_photos_dir
from .devices import cpu_flags
from .images import find_images, read_rgb

log = logging.getLogger(__name__)

CALIBRATION_PHOTOS = 8  # photos per calibration; more moved the yardstick by < 0.1%
VNNI_FLAGS = frozenset({"avx512_vnni", "avx_vnni", "amx_int8"})

Shape = tuple[int, ...]


def int8_supported() -> bool:
    """Whether int8 pays here: a CPU with int8 dot products (VNNI/AMX) and torchao installed."""
    return bool(cpu_flags() & VNNI_FLAGS) and _torchao_installed()


@functools.cache
def _torchao_installed() -> bool:
    pytree_log = logging.getLogger("torch.utils._pytree")  # torchao's import warns there
    level = pytree_log.level
    pytree_log.setLevel(logging.ERROR)
    try:
        import torchao.quantization.pt2e.quantize_pt2e  # noqa: F401
    except ImportError:
        return False
    finally:
        pytree_log.setLevel(level)
    return True


def calibration_frames(shape: Shape, count: int = CALIBRATION_PHOTOS) -> list[torch.Tensor]:
    """`count` batches of `shape` (B, 3, H, W), float32 in [0, 1], cut from the shipped photos."""
    batch, _, height, width = shape
    photos = find_images(default_photos_dir())[: max(count, batch)]
    side = max(height, width)  # short side: the crop fits either way
    crops = [_center_crop(np.asarray(read_rgb(p, side, upscale=True)), shape) for p in photos]
    frames = torch.from_numpy(np.stack(crops)).permute(0, 3, 1, 2).float().div_(255.0)
    return [frames[[(i + j) % len(crops) for j in range(batch)]].contiguous() for i in range(count)]


def _center_crop(image: np.ndarray, shape: Shape) -> np.ndarray:
    height, width = shape[2], shape[3]
    top, left = (image.shape[0] - height) // 2, (image.shape[1] - width) // 2
    return image[top : top + height, left : left + width]


def quantize(model: nn.Module, frames: list[torch.Tensor]) -> nn.Module:
    """An int8 copy of `model` for inputs shaped like `frames`, calibrated on them.

    The copy runs slowly in eager mode (it simulates int8); Int8Compiled compiles it."""
    from torchao.quantization.pt2e.quantize_pt2e import convert_pt2e, prepare_pt2e
    from torchao.quantization.pt2e.quantizer import x86_inductor_quantizer as x86

    quantizer = x86.X86InductorQuantizer()
    quantizer.set_global(x86.get_default_x86_inductor_quantization_config())
    with torch.inference_mode(False), torch.no_grad():
        # strict (dynamo) export: the default non-strict one patches torch globally while it
        # traces, which breaks the eager model serving frames in another thread meanwhile
        graph = torch.export.export(model, (frames[0],), strict=True).module()
        prepared = prepare_pt2e(graph, quantizer)  # type: ignore[arg-type]
        for batch in frames:
            prepared(batch)
        return convert_pt2e(prepared)


class Int8Compiled:
    """Callable like a compiled model: each new input shape is quantized and compiled once.

    The first call of a shape takes seconds (calibration, export, inductor); run it where
    compiling belongs (compiled.BackgroundCompiled's worker thread or a warm-up)."""

    def __init__(self, model: nn.Module) -> None:
        self.model = model
        self._graphs: dict[Shape, Callable[[torch.Tensor], torch.Tensor]] = {}
        self._lock = threading.Lock()

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        shape = tuple(x.shape)
        graph = self._graphs.get(shape)
        if graph is None:
            graph = self._build(shape)
        return graph(x.float())

    def _build(self, shape: Shape) -> Callable[[torch.Tensor], torch.Tensor]:
        with self._lock:
            if shape not in self._graphs:
                frames = calibration_frames(shape)
                quantized = quantize(self.model, frames)
                # Inductor's freezing, for the whole process: its int8 convolution passes read
                # the global config (as a compile option, qconv_prepack fails to trace), and a
                # graph called without it compiles again, unfrozen and 3x slower. Scoped
                # patches would race with compiles in other threads.
                torch._inductor.config.freezing = True
                compiled = torch.compile(quantized, dynamic=False)
                with torch.inference_mode():
                    compiled(frames[0])  # compile now, not on first use
                self._graphs[shape] = compiled  # type: ignore[assignment]
            return self._graphs[shape]
