"""Inference: batches of uint8 frames through one style transformer, on CPU or CUDA."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Literal

import numpy as np
import torch

from .compiled import BackgroundCompiled, CompileWorker, compile_model
from .devices import default_variant, resolve_device
from .errors import InvalidInput
from .quantized import bfloat16_stand_in
from .style_folder import load_transformer, pick_variant, read_style
from .transformer_net import TransformerNet
from .tuning import Tuning, device_tuning

log = logging.getLogger(__name__)

Frames = np.ndarray | torch.Tensor | Sequence[np.ndarray]
CompileMode = Literal["off", "inline", "background"]
COMPILE_MODES: tuple[CompileMode, ...] = ("off", "inline", "background")


class Stylizer:
    """Runs one transformer on (B, H, W, 3) uint8 RGB frames; meant for one inference thread."""

    def __init__(
        self,
        model: TransformerNet,
        device: torch.device | str = "auto",
        *,
        half: bool | None = None,
        compile: CompileMode | None = None,
        compiler: CompileWorker | None = None,
        name: str = "",
        variant: str = "",
        tuning: Tuning | None = None,
    ) -> None:
        """compile: "off" (eager), "inline" (the first call of a shape compiles it), or
        "background" (eager serves a shape while `compiler`, or a thread of its own, compiles
        it); default "inline" on CUDA, "off" on CPU. Thread counts are the program's to set.
        tuning: half dtype and torch.compile mode; default: what bench/gpu.sh measured as
        fastest on this GPU model (stylefusion/data/cuda_tuning.json)."""
        self.device = resolve_device(device) if isinstance(device, str) else device
        self.name = name
        self.variant = variant
        cuda = self.device.type == "cuda"
        self.tuning = tuning or device_tuning(self.device)
        self.compile_mode: CompileMode = compile or ("inline" if cuda else "off")
        if not self.tuning.compiled:
            self.compile_mode = "off"
        if self.compile_mode not in COMPILE_MODES:
            raise InvalidInput(f"compile mode must be one of {COMPILE_MODES}, got {compile!r}")
        self.half = cuda if half is None else half
        self.dtype = self.tuning.torch_dtype if self.half else torch.float32
        model = model.eval().requires_grad_(False).to(self.device, self.dtype)
        if cuda:
            model = model.to(memory_format=torch.channels_last)
        self.norm_size = int(getattr(model, "norm_size", 0))  # P: a multi-style net's norms
        # (S, P) norms of the styles it serves: examples for builds, int8's calibration
        self.reference_norms = model.style_norms(0).float() if self.norm_size else None
        self.eager: torch.nn.Module = model
        self.model: Callable[..., torch.Tensor] = model
        if self.compile_mode == "background":
            if self.tuning.mode == "int8":  # bf16 serves a size while its int8 package builds
                self.eager = bfloat16_stand_in(model)
            self.model = BackgroundCompiled(
                model, name or "model", compiler, self.tuning.mode, eager=self.eager
            )
        elif self.compile_mode == "inline":
            self.model = compile_model(model, self.tuning.mode)

    def close(self) -> None:
        """Stop this stylizer's own compile thread, if it has one (a shared one stays)."""
        if isinstance(self.model, BackgroundCompiled):
            self.model.close()

    @classmethod
    def from_style(
        cls,
        folder: str | Path,
        variant: str | None = None,
        device: torch.device | str = "auto",
        **kwargs: object,
    ) -> Stylizer:
        """Load a style folder's variant (default: full on CUDA, lite on CPU) onto a device."""
        dev = resolve_device(device) if isinstance(device, str) else device
        info = read_style(Path(folder))
        chosen = pick_variant(info, variant, default_variant(dev))
        model = load_transformer(info.path, chosen)
        return cls(model, dev, name=info.name, variant=chosen, **kwargs)  # type: ignore[arg-type]

    def warm_up(
        self, height: int = 240, width: int = 320, batch: int = 1, compiled: bool = True
    ) -> float:
        """Run one dummy batch (and wait for its compiled version if asked); returns seconds."""
        start = time.perf_counter()
        frames = np.zeros((batch, height, width, 3), np.uint8)
        self(frames)
        if compiled and isinstance(self.model, BackgroundCompiled):
            with torch.inference_mode():
                x = self._prepare(torch.from_numpy(frames))
                self.model.wait(x, self._norms(None, batch))
        return time.perf_counter() - start

    def compile_ahead(self, height: int, width: int, batch: int = 1) -> None:
        """Queue a shape's compiled version before frames need it (no model call, no wait)."""
        if isinstance(self.model, BackgroundCompiled):
            frames = torch.zeros((batch, height, width, 3), dtype=torch.uint8)
            self.model.request(self._prepare(frames), self._norms(None, batch))

    def set_reference_norms(self, table: torch.Tensor) -> None:
        """The (S, P) norms of the styles this multi-style network serves (new styles come)."""
        self.reference_norms = table.detach().float()
        compiled = getattr(self.model, "compiled", None)
        if hasattr(compiled, "calibration_norms"):  # an int8 package calibrates on them
            compiled.calibration_norms = self.reference_norms  # type: ignore[union-attr]

    def serving(self) -> dict[str, str]:
        """Each frame size asked for ("WxH", "WxH*B" for batches) -> "eager" while its compiled
        version builds, else what serves it ("int8" or "package": AOTInductor; "compiled")."""
        if not isinstance(self.model, BackgroundCompiled):
            return {}
        fast = self.tuning.mode if self.tuning.mode in ("int8", "package") else "compiled"
        sizes = {}
        for (batch, _, height, width), ready in sorted(self.model.shapes().items()):
            label = f"{width}x{height}" + (f"*{batch}" if batch > 1 else "")
            sizes[label] = fast if ready and not self.model.failed else "eager"
        return sizes

    def settled(self, height: int, width: int) -> bool:
        """Whether single frames of this size run as they will for good: compiled, or eager
        with no compiled version coming (compiling off or failed)."""
        if not isinstance(self.model, BackgroundCompiled) or self.model.failed:
            return True
        return self.model.shapes().get((1, 3, height, width), False)

    def builds_pending(self) -> int:
        """Frame shapes whose compiled version is queued or building."""
        return self.model.pending() if isinstance(self.model, BackgroundCompiled) else 0

    @torch.inference_mode()
    def __call__(
        self,
        frames: Frames,
        strength: float | Sequence[float] = 1.0,
        *,
        norms: torch.Tensor | None = None,
        eager: bool = False,
    ) -> np.ndarray:
        """Stylize frames. `strength` in 0..1 (one, or one per frame) blends each result with
        its input; `norms` (B, P): each frame's (gamma, beta) for a multi-style network
        (default: its first reference style); `eager` runs the eager model even where a
        compiled one is ready or due (start-up times it)."""
        x = self._prepare(_as_tensor(frames))  # (B, 3, H, W) in [0, 1]
        weights = _strengths(strength, x.shape[0])
        packed = self._norms(norms, x.shape[0])  # (B, P) float32, or None
        forward = self._eager if eager else self._forward
        y = forward(x, packed).clamp_(0.0, 1.0) if max(weights) > 0 else x
        if min(weights) < 1.0:
            w = torch.tensor(weights, device=x.device, dtype=x.dtype).view(-1, 1, 1, 1)
            y = torch.lerp(x, y, w)
        out = y.mul_(255.0).round_().to(torch.uint8)
        return out.permute(0, 2, 3, 1).contiguous().cpu().numpy()  # (B, H, W, 3) uint8

    def _norms(self, norms: torch.Tensor | None, batch: int) -> torch.Tensor | None:
        """Per-frame norms on the device (a single-style network takes none)."""
        if not self.norm_size:
            if norms is not None:
                raise InvalidInput("a single-style network takes no norms")
            return None
        if norms is None:
            assert self.reference_norms is not None
            norms = self.reference_norms[:1].expand(batch, -1)
        if tuple(norms.shape) != (batch, self.norm_size):
            raise InvalidInput(
                f"norms must be ({batch}, {self.norm_size}), not {tuple(norms.shape)}"
            )
        return norms.to(self.device, torch.float32).contiguous()

    def _prepare(self, frames: torch.Tensor) -> torch.Tensor:
        """(B, H, W, 3) uint8 -> (B, 3, H, W) model dtype in [0, 1] on the device."""
        batch = frames.to(self.device, non_blocking=True)
        x = batch.permute(0, 3, 1, 2).to(self.dtype).div_(255.0)
        if self.device.type == "cuda":
            x = x.contiguous(memory_format=torch.channels_last)
        return x

    def batch_shapes(self, max_batch: int) -> list[int]:
        """The batch sizes the compiled model runs for batches of up to max_batch frames."""
        if self.device.type == "cpu":
            return [1]
        return [1 << i for i in range(max(1, max_batch - 1).bit_length() + 1)]

    def _eager(self, x: torch.Tensor, norms: torch.Tensor | None) -> torch.Tensor:
        return self.eager(x) if norms is None else self.eager(x, norms)

    def _forward(self, x: torch.Tensor, norms: torch.Tensor | None) -> torch.Tensor:
        """The (compiled) model; falls back to eager for good if compilation fails here."""
        if self.model is self.eager:
            return self._eager(x, norms)
        try:
            return self._compiled(x, norms)
        except Exception as exc:  # compiler toolchains vary; eager always works
            log.warning("compiled model failed (%s); %s runs eager", exc, self.name or "model")
            self.model = self.eager
            return self._eager(x, norms)

    def _compiled(self, x: torch.Tensor, norms: torch.Tensor | None) -> torch.Tensor:
        """One compiled graph per batch size: so few sizes are used, a CPU runs a batch frame
        by frame (it costs the same there) and a GPU pads it to a power of two."""
        batch = x.shape[0]
        rows = [None] * batch if norms is None else list(norms.split(1))
        if self.device.type == "cpu":
            if batch == 1:
                return self.model(*_inputs(x, norms))
            frames = zip(x.split(1), rows, strict=True)
            return torch.cat([self.model(*_inputs(f, n)) for f, n in frames])
        size = 1 << (batch - 1).bit_length()
        if size == batch:
            return self.model(*_inputs(x, norms))
        padded = torch.cat([x, x.new_zeros((size - batch, *x.shape[1:]))])
        padded = padded.contiguous(memory_format=torch.channels_last)
        if norms is not None:  # the padding frames take the first frame's norms
            norms = torch.cat([norms, norms[:1].expand(size - batch, -1)])
        return self.model(*_inputs(padded, norms))[:batch]


def _inputs(x: torch.Tensor, norms: torch.Tensor | None) -> tuple[torch.Tensor, ...]:
    """A model call's inputs: a single-style network takes the frames only."""
    return (x,) if norms is None else (x, norms)


def _strengths(strength: float | Sequence[float], batch: int) -> list[float]:
    """One strength per frame, each checked to lie within 0..1."""
    values = (
        [float(v) for v in strength]
        if isinstance(strength, Sequence)
        else [float(strength)] * batch
    )
    if len(values) != batch:
        raise InvalidInput(f"expected {batch} strengths, got {len(values)}")
    for value in values:
        if not 0.0 <= value <= 1.0:
            raise InvalidInput(f"strength must be within 0..1, got {value}")
    return values


def _as_tensor(frames: Frames) -> torch.Tensor:
    """Accept a uint8 (B, H, W, 3) array/tensor, a single (H, W, 3) frame, or a list of frames."""
    if isinstance(frames, torch.Tensor):
        t = frames
    elif isinstance(frames, np.ndarray):
        writable = frames.flags.writeable and frames.flags.c_contiguous
        t = torch.from_numpy(frames if writable else np.array(frames, order="C"))
    else:
        if not frames:
            raise InvalidInput("no frames to stylize")
        shapes = {f.shape for f in frames}
        if len(shapes) != 1:
            raise InvalidInput(f"frames in one batch must share a size, got {sorted(shapes)}")
        t = torch.from_numpy(np.stack(frames))
    if t.ndim == 3:
        t = t.unsqueeze(0)
    if t.ndim != 4 or t.shape[-1] != 3 or t.dtype != torch.uint8:
        raise InvalidInput(f"expected uint8 frames of shape (B, H, W, 3), got {tuple(t.shape)}")
    return t
