"""AOTInductor packages: the transformer compiled ahead of time per input shape, in a child.

A package is the network exported and compiled by AOTInductor with freezing (weights become
constants, convolutions prepacked oneDNN kernels), in fp32, bf16, or int8 (quantized first:
stylefusion.quantized). It is built in a child process at the caller's priority and kept in
inductor's cache dir (the server's --data-dir) under a key of the weights, shape, precision,
torch and CPU, so a restart loads it in milliseconds.

Why a child process and not torch.compile in a thread: tracing (torch.compile's and export's)
patches torch.nn.Module.__call__ for the whole process while it runs, so an eager model serving
frames in another thread meanwhile failed ("module is not installed as a submodule"); strict
export also resets dynamo (torch._dynamo.reset()), dropping every compiled graph of the
server; and tracing holds the GIL for seconds. A loaded package runs without dynamo.
"""

from __future__ import annotations

import atexit
import dataclasses
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

import torch
from torch import nn

from .devices import cpu_flags
from .errors import CompileStopped
from .quantized import CALIBRATION_PHOTOS, calibration_frames, calibration_photos, quantize
from .style_folder import load_transformer, save_transformer
from .transformer_net import TransformerNet

log = logging.getLogger(__name__)

PACKAGE_VERSION = 2  # bump when build_package() or the child change what they make
CHILD_SLOT = "lite"  # the variant slot the weights travel in to a build child

Shape = tuple[int, ...]
Runner = Callable[..., torch.Tensor]
Inputs = tuple[torch.Tensor, ...]  # frames, and a multi-style network's (B, P) norms


class PackageCompiled:
    """Callable like a compiled model: each new input shape becomes a package, built once.

    The package runs in the model's dtype (fp32 or bf16); `int8` quantizes an fp32 model
    first, calibrated on the shipped photos. A build takes tens of seconds and runs in a child
    process (unless `isolated` is False): the caller's thread only waits, so call it where
    compiling belongs (compiled.BackgroundCompiled's worker thread or a warm-up).

    A multi-style network's package takes the per-frame norms as a second input, so one
    package per shape serves every style of its backbone; it is named by the backbone alone
    (not the style table). int8 calibrates it on `calibration_norms` (S, P), the styles it
    will serve, else on the norms of the call that builds it.
    """

    def __init__(self, model: nn.Module, int8: bool = False, isolated: bool = True) -> None:
        self.model = model
        self.calibration_norms: torch.Tensor | None = None
        self.dtype = next(model.parameters()).dtype
        self.precision = "int8" if int8 else {torch.bfloat16: "bf16"}.get(self.dtype, "fp32")
        self.isolated = isolated
        self._graphs: dict[Shape, Runner] = {}
        self._lock = threading.Lock()  # one build at a time
        self._children = threading.Lock()  # guards _builders and _closed (close() takes it)
        self._builders: set[subprocess.Popen[str]] = set()
        self._closed = False
        _LIVE.add(self)

    def __call__(self, x: torch.Tensor, norms: torch.Tensor | None = None) -> torch.Tensor:
        shape = tuple(x.shape)
        graph = self._graphs.get(shape)
        if graph is None:
            graph = self._build(shape, norms)
        # a package assumes its example's dtypes and strides (channels-last frames, what
        # Stylizer feeds it; fp32 norms): anything else is converted (a no-op otherwise)
        frames = x.to(self.dtype).contiguous(memory_format=torch.channels_last)
        if norms is None:
            return graph(frames)
        return graph(frames, norms.float().contiguous())

    def close(self) -> None:
        """Stop a build under way (its child is killed) and refuse new ones."""
        with self._children:
            self._closed = True
            builders = list(self._builders)
        for child in builders:
            child.kill()

    def _build(self, shape: Shape, norms: torch.Tensor | None) -> Runner:
        with self._lock:
            if shape not in self._graphs:
                path = package_path(self.model, shape, self.precision)
                runner = _load(path)
                if runner is None:
                    start = time.perf_counter()
                    model = self._for_build(norms)
                    if self.isolated:
                        self._build_in_child(model, shape, path)
                    else:
                        build(model, self.precision, shape, path)
                    log.info(
                        "%s package for %s built in %.1f s (%d threads)",
                        self.precision,
                        shape,
                        time.perf_counter() - start,
                        torch.get_num_threads(),
                    )
                    runner = torch._inductor.aoti_load_package(str(path))
                self._graphs[shape] = runner
            return self._graphs[shape]

    def _for_build(self, norms: torch.Tensor | None) -> nn.Module:
        """The model to build from: a multi-style one carries the norms to calibrate on as
        its style table (not part of the package's name)."""
        table = self.calibration_norms if self.calibration_norms is not None else norms
        if not getattr(self.model, "norm_size", 0) or table is None:
            return self.model
        config = dataclasses.replace(self.model.config, styles=len(table))  # type: ignore[arg-type]
        model = TransformerNet(config).to(self.dtype)
        state = {**self.model.state_dict(), "style_table": table.detach().to("cpu", self.dtype)}
        model.load_state_dict(state)
        return model.eval()

    def _build_in_child(self, model: nn.Module, shape: Shape, path: Path) -> None:
        if self._closed:
            raise CompileStopped("closed: no more package builds")
        with tempfile.TemporaryDirectory(prefix="stylefusion-package-") as tmp:
            # the weights go over as a style folder (safetensors, fp32 holds bf16 exactly);
            # "lite" only names the slot, meta.json records the network
            folder = Path(tmp) / "model"
            save_transformer(folder, CHILD_SLOT, model, name="package", dtype=torch.float32)
            size = "x".join(map(str, shape))
            threads = str(torch.get_num_threads())  # the caller's: it is written into kernels
            command = [sys.executable, "-m", __name__, str(folder), size, str(path), threads]
            errors = self._run_child([*command, self.precision])
        if self._closed:
            raise CompileStopped(f"package build for {shape} stopped")
        if errors is not None:
            raise RuntimeError(f"{self.precision} package build for {shape} failed: {errors}")

    def _run_child(self, command: list[str]) -> str | None:
        """Run a build child; None on success, else its last line of errors."""
        # a plain interpreter (not multiprocessing's spawn, which imports the server's
        # __main__ again); started from this thread, it inherits its background niceness.
        # Started and registered under the lock close() takes: a close() landing while the
        # weights were being written would otherwise miss the child, which built on alone
        with self._children:
            if self._closed:
                raise CompileStopped("closed: no more package builds")
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
            with self._children:
                self._builders.discard(child)
        if child.returncode == 0:
            return None
        return (errors.strip().splitlines()[-1:] or [f"exit code {child.returncode}"])[0]


_LIVE: weakref.WeakSet[PackageCompiled] = weakref.WeakSet()


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
    """A build child's whole life: STYLE_FOLDER HxW-SHAPE PACKAGE THREADS PRECISION."""
    folder, size, package, threads, precision = argv
    logging.getLogger("torch").setLevel(logging.ERROR)  # export's chatter is not ours
    warnings.filterwarnings("ignore")
    torch.set_num_threads(int(threads))
    model = load_transformer(Path(folder), CHILD_SLOT)
    if precision == "bf16":
        model = model.to(torch.bfloat16)
    shape = tuple(int(v) for v in size.split("x"))
    build(model, precision, shape, Path(package))
    return 0


def build(model: nn.Module, precision: str, shape: Shape, path: Path) -> None:
    """Build the package of `model` for `shape` at `path` (int8: quantized first). A
    multi-style model takes (frames, norms): its style table's rows are the norms it is
    calibrated on and exported with."""
    batch = shape[0]
    table = model.style_table.detach() if getattr(model, "norm_size", 0) else None
    if precision == "int8":
        frames = calibration_frames(shape)
        examples = [_with_norms(f, table, i * batch) for i, f in enumerate(frames)]
        build_package(quantize(model, examples), examples[0], path)
    else:
        dtype = next(model.parameters()).dtype
        build_package(model, _with_norms(torch.zeros(shape, dtype=dtype), table, 0), path)


def _with_norms(frames: torch.Tensor, table: torch.Tensor | None, first: int) -> Inputs:
    """A call's inputs: the frames, and for a multi-style model a (B, P) cycle of its rows."""
    if table is None:
        return (frames,)
    rows = [(first + i) % len(table) for i in range(frames.shape[0])]
    return (frames, table[rows].float().contiguous())


def build_package(model: nn.Module, example: Inputs, path: Path) -> None:
    """Compile `model` for inputs like `example` into an AOTInductor package at `path`
    (written under a temporary name, then renamed into place)."""
    example = (example[0].contiguous(memory_format=torch.channels_last), *example[1:])
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f"{path.stem}.{os.getpid()}.{threading.get_ident()}.partial.pt2")
    try:
        with torch.inference_mode(False), torch.no_grad():
            program = torch.export.export(model, example, strict=True)
            # freezing: weights become constants, so convolutions run as prepacked oneDNN
            # kernels (VNNI for int8); unfrozen, the same int8 graph ran 3x slower
            torch._inductor.aoti_compile_and_package(
                program, package_path=str(partial), inductor_configs={"freezing": True}
            )
        os.replace(partial, path)
    finally:
        partial.unlink(missing_ok=True)


def package_path(model: nn.Module, shape: Shape, precision: str) -> Path:
    """Where the package of `model` for `shape` is kept: inductor's cache dir, named by the
    weights (a multi-style network's backbone: not its style table), the shape, the precision
    (and int8's calibration photos), torch and this CPU."""
    digest = hashlib.sha256()
    for name, tensor in model.state_dict().items():
        if name == "style_table":  # a multi-style package serves any norms: its backbone names it
            continue
        digest.update(name.encode())
        raw = tensor.detach().cpu().contiguous().reshape(-1).view(torch.uint8)  # bf16 too
        digest.update(raw.numpy().tobytes())
    photos = calibration_photos(max(CALIBRATION_PHOTOS, shape[0])) if precision == "int8" else []
    # the thread count: inductor writes it into the package's elementwise kernels
    names = [photo.name for photo in photos]
    key = (PACKAGE_VERSION, shape, precision, names, torch.__version__, torch.get_num_threads())
    digest.update(repr(key).encode())
    digest.update(repr(sorted(cpu_flags())).encode())
    from torch._inductor.runtime.cache_dir_utils import cache_dir  # 1 s to import: only here

    folder = Path(cache_dir()) / "stylefusion-packages"
    return folder / f"{precision}-{'x'.join(map(str, shape))}-{digest.hexdigest()[:20]}.pt2"


def _load(path: Path) -> Runner | None:
    """The package at path, or None if there is none (or it cannot be loaded: rebuilt)."""
    if not path.exists():
        return None
    try:
        return torch._inductor.aoti_load_package(str(path))  # type: ignore[no-any-return]
    except Exception:  # noqa: BLE001 - a truncated or stale package is rebuilt
        log.warning("package %s did not load; building it again", path.name, exc_info=True)
        path.unlink(missing_ok=True)
        return None


if __name__ == "__main__":
    sys.exit(_build_main(sys.argv[1:]))
