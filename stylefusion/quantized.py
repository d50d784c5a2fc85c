"""int8 inference on x86 CPUs: the transformer quantized statically, one package per input shape.

PT2E quantization (torchao's X86InductorQuantizer): int8 weights per channel, uint8 activations
per tensor, calibrated on the training photos that ship with the package, then compiled ahead of
time by AOTInductor with freezing, so convolutions run as oneDNN int8 kernels (VNNI). On our
2-core AVX-512 box the lite network ran 1.5x the fps of bf16 (1.9x multistyle26.onnx) and the
yardstick moved by 0.04% (bench/cpu_model.py measures both on the machine at hand).
"""

from __future__ import annotations

import atexit
import copy
import hashlib
import logging
import os
import subprocess
import sys
import tempfile
import threading
import time
import warnings
import weakref
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from torch import nn

from .content import default_photos_dir
from .devices import cpu_flags, cpu_has_bf16
from .errors import CompileStopped
from .images import find_images, read_rgb
from .style_folder import load_transformer, save_transformer

log = logging.getLogger(__name__)

PACKAGE_VERSION = 1  # bump when quantize() or build_package() change what they make
CALIBRATION_PHOTOS = 8  # photos per calibration; more moved the yardstick by < 0.1%
CHILD_SLOT = "lite"  # the variant slot the weights travel in to a build child

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


def quantize(model: nn.Module, frames: list[torch.Tensor]) -> nn.Module:
    """An int8 copy of `model` for inputs shaped like `frames`, calibrated on them.

    The copy runs slowly in eager mode (it simulates int8); build_package compiles it."""
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


class Bfloat16StandIn(nn.Module):
    """fp32 frames in and out, a bf16 copy of the model inside."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = copy.deepcopy(model).to(torch.bfloat16)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x.to(torch.bfloat16)).float()


def bfloat16_stand_in(model: nn.Module) -> nn.Module:
    """What serves a frame size until its int8 package is built: eager bf16 where the CPU
    computes it natively (2x eager fp32 on our box), else the fp32 model itself."""
    return Bfloat16StandIn(model) if cpu_has_bf16() else model


class Int8Compiled:
    """Callable like a compiled model: each new input shape is quantized and compiled once.

    Each shape becomes an AOTInductor package (calibrate, export, compile with freezing), kept
    in inductor's cache dir (the server's --data-dir) under a key of the weights and shape, so
    a restart loads it in milliseconds. A build takes tens of seconds and runs in a child
    process (unless `isolated` is False): the caller's thread only waits, so call it where
    compiling belongs (compiled.BackgroundCompiled's worker thread or a warm-up).

    Why a child process and not torch.compile here: strict export resets dynamo
    (torch._dynamo.reset()), which dropped every torch.compile'd graph of the server, and the
    serving thread then compiled them again beside the export (which failed on the global
    lazy graph-module flag); tracing also holds the GIL for seconds. A loaded package runs
    without dynamo, and the child keeps export's global state out of the serving process.
    """

    def __init__(self, model: nn.Module, isolated: bool = True) -> None:
        self.model = model
        self.isolated = isolated
        self._graphs: dict[Shape, Callable[[torch.Tensor], torch.Tensor]] = {}
        self._lock = threading.Lock()
        self._builders: set[subprocess.Popen[str]] = set()
        self._closed = False
        _LIVE.add(self)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        shape = tuple(x.shape)
        graph = self._graphs.get(shape)
        if graph is None:
            graph = self._build(shape)
        # the package was compiled for channels-last fp32 frames (what Stylizer feeds it);
        # it assumes its inputs' strides, so anything else is converted (a no-op otherwise)
        return graph(x.float().contiguous(memory_format=torch.channels_last))

    def close(self) -> None:
        """Stop a build under way (its child is killed) and refuse new ones."""
        self._closed = True
        for child in list(self._builders):
            child.kill()

    def _build(self, shape: Shape) -> Callable[[torch.Tensor], torch.Tensor]:
        with self._lock:
            if shape not in self._graphs:
                path = package_path(self.model, shape)
                runner = _load(path)
                if runner is None:
                    start = time.perf_counter()
                    if self.isolated:
                        self._build_in_child(shape, path)
                    else:
                        build_package(self.model, calibration_frames(shape), path)
                    log.info(
                        "int8 package for %s built in %.1f s (%d threads)",
                        shape,
                        time.perf_counter() - start,
                        torch.get_num_threads(),
                    )
                    runner = torch._inductor.aoti_load_package(str(path))
                self._graphs[shape] = runner
            return self._graphs[shape]

    def _build_in_child(self, shape: Shape, path: Path) -> None:
        if self._closed:
            raise CompileStopped("closed: no more int8 builds")
        with tempfile.TemporaryDirectory(prefix="stylefusion-int8-") as tmp:
            # the weights go over as a style folder (safetensors, fp32: the exact weights the
            # package is named by); "lite" only names the slot, meta.json records the network
            folder = Path(tmp) / "model"
            save_transformer(folder, CHILD_SLOT, self.model, name="int8", dtype=torch.float32)
            size = "x".join(map(str, shape))
            threads = str(torch.get_num_threads())  # the caller's: it is written into kernels
            command = [sys.executable, "-m", __name__, str(folder), size, str(path), threads]
            # a plain interpreter (not multiprocessing's spawn, which imports the server's
            # __main__ again); started from this thread, it inherits its background niceness
            child = subprocess.Popen(
                command,
                env=os.environ | {"PYTHONPATH": _import_path()},
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
                text=True,
            )
            self._builders.add(child)
            try:
                _, errors = child.communicate()
            finally:
                self._builders.discard(child)
        if self._closed:
            raise CompileStopped(f"int8 build for {shape} stopped")
        if child.returncode != 0:
            last = errors.strip().splitlines()[-1:] or [f"exit code {child.returncode}"]
            raise RuntimeError(f"int8 build for {shape} failed: {last[0]}")


_LIVE: weakref.WeakSet[Int8Compiled] = weakref.WeakSet()


@atexit.register
def _stop_builds() -> None:
    """At exit, kill the builds under way (a child would otherwise outlive the server)."""
    for runner in list(_LIVE):
        runner.close()


def _import_path() -> str:
    """PYTHONPATH for a child that must import this package, wherever it was imported from."""
    here = str(Path(__file__).resolve().parents[1])
    return os.pathsep.join([here, *filter(None, [os.environ.get("PYTHONPATH")])])


def _build_main(argv: list[str]) -> int:
    """A build child's whole life: STYLE_FOLDER HxW-SHAPE PACKAGE THREADS; errors on stderr."""
    folder, size, package, threads = argv
    logging.getLogger("torch").setLevel(logging.ERROR)  # export's chatter is not ours
    warnings.filterwarnings("ignore")
    torch.set_num_threads(int(threads))
    model = load_transformer(Path(folder), CHILD_SLOT)
    shape = tuple(int(v) for v in size.split("x"))
    build_package(model, calibration_frames(shape), Path(package))
    return 0


def build_package(model: nn.Module, frames: list[torch.Tensor], path: Path) -> None:
    """Quantize `model` for inputs shaped like `frames` and compile it into an AOTInductor
    package at `path` (written under a temporary name, then renamed into place)."""
    quantized = quantize(model, frames)
    example = frames[0].contiguous(memory_format=torch.channels_last)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f"{path.stem}.{os.getpid()}.{threading.get_ident()}.partial.pt2")
    try:
        with torch.inference_mode(False), torch.no_grad():
            program = torch.export.export(quantized, (example,), strict=True)
            # freezing: weights become constants, so int8 convolutions run as prepacked
            # oneDNN kernels (VNNI); unfrozen, the same graph ran 3x slower
            torch._inductor.aoti_compile_and_package(
                program, package_path=str(partial), inductor_configs={"freezing": True}
            )
        os.replace(partial, path)
    finally:
        partial.unlink(missing_ok=True)


def package_path(model: nn.Module, shape: Shape) -> Path:
    """Where the int8 package of `model` for `shape` is kept: inductor's cache dir, named by
    the weights, the shape, the calibration photos, torch and this CPU."""
    digest = hashlib.sha256()
    for name, tensor in model.state_dict().items():
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    photos = [p.name for p in calibration_photos(max(CALIBRATION_PHOTOS, shape[0]))]
    # the thread count: inductor writes it into the package's elementwise kernels
    key = (PACKAGE_VERSION, shape, photos, torch.__version__, torch.get_num_threads())
    digest.update(repr(key).encode())
    digest.update(repr(sorted(cpu_flags())).encode())
    from torch._inductor.runtime.cache_dir_utils import cache_dir  # 1 s to import: only here

    folder = Path(cache_dir()) / "stylefusion-int8"
    return folder / f"{'x'.join(map(str, shape))}-{digest.hexdigest()[:20]}.pt2"


def _load(path: Path) -> Callable[[torch.Tensor], torch.Tensor] | None:
    """The package at path, or None if there is none (or it cannot be loaded: rebuilt)."""
    if not path.exists():
        return None
    try:
        return torch._inductor.aoti_load_package(str(path))  # type: ignore[no-any-return]
    except Exception:  # noqa: BLE001 - a truncated or stale package is rebuilt
        log.warning("int8 package %s did not load; building it again", path.name, exc_info=True)
        path.unlink(missing_ok=True)
        return None


if __name__ == "__main__":
    sys.exit(_build_main(sys.argv[1:]))
