"""Device selection and CPU thread settings."""

from __future__ import annotations

import functools
import logging
import os
import platform
from pathlib import Path

import torch

from .choices import CPU_CLIP_SIDE, CPU_PRECISIONS, DEVICE_CHOICES
from .errors import InvalidInput

log = logging.getLogger(__name__)

VNNI_FLAGS = frozenset({"avx512_vnni", "avx_vnni", "amx_int8"})  # int8 dot products


def resolve_device(name: str = "auto") -> torch.device:
    """Map 'auto' | 'cpu' | 'cuda[:N]' to a torch.device, failing clearly if CUDA is absent."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cpu":
        return torch.device("cpu")
    if name.startswith("cuda"):
        if not torch.cuda.is_available():
            raise InvalidInput("--device cuda was asked for but no CUDA GPU is available")
        return torch.device(name)
    raise InvalidInput(f"unknown device {name!r}; choose one of {', '.join(DEVICE_CHOICES)}")


def default_variant(device: torch.device) -> str:
    """The transformer variant a device runs by default: full on GPU, lite on CPU."""
    return "full" if device.type == "cuda" else "lite"


def default_clip_side(device: torch.device) -> int | None:
    """The longest side of a clip's frames by default: CPU_CLIP_SIDE on a CPU; on a GPU the
    clip's own size (None), which the full network paints faster than it plays."""
    return None if device.type == "cuda" else CPU_CLIP_SIDE


def cpu_flags() -> frozenset[str]:
    """The words of /proc/cpuinfo (its feature flags among them); empty where it is unreadable."""
    try:
        return frozenset(Path("/proc/cpuinfo").read_text().split())
    except OSError:
        return frozenset()


def cpu_name() -> str:
    """The CPU's model name from /proc/cpuinfo, else what `platform` knows."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def cpu_has_bf16() -> bool:
    """Whether this CPU computes bfloat16 natively (AVX-512 BF16 or AMX)."""
    return bool(cpu_flags() & {"avx512_bf16", "amx_bf16"})


def int8_supported() -> bool:
    """Whether int8 pays here: a CPU with int8 dot products (VNNI/AMX) and torchao installed
    (stylefusion.quantized builds the int8 packages)."""
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


def cpu_precision(requested: str = "auto", compiled: bool = True) -> str:
    """The CPU inference precision to use. "auto": int8 where the CPU has int8 dot products
    (VNNI/AMX) and the model is compiled (stylefusion.quantized: 1.9x the fps of bf16 on our
    2-core AVX-512 box, the style loss within 0.1%), else bf16 where the CPU computes it
    natively, else fp32."""
    if requested not in CPU_PRECISIONS:
        raise InvalidInput(f"precision must be one of {CPU_PRECISIONS}, got {requested!r}")
    if requested == "int8" and not int8_supported():
        raise InvalidInput("int8 needs a CPU with VNNI or AMX and torchao installed")
    if requested != "auto":
        return requested
    if compiled and int8_supported():
        return "int8"
    return "bf16" if cpu_has_bf16() else "fp32"


def cpu_count() -> int:
    """Cores this process may run on (its affinity, not the machine's total)."""
    return len(os.sched_getaffinity(0))


def configure_cpu_threads(threads: int | None = None) -> int:
    """Set torch's intra-op thread count (default: all cores) and return it."""
    count = threads or cpu_count()
    if torch.get_num_threads() != count:
        torch.set_num_threads(count)
    return count


COMPILED_SHAPES = 64  # dynamo's recompile limit: every (batch, size) of a variant is one graph


def configure_torch(
    threads: int | None = None, compile_cache: Path | None = None, in_process: bool = True
) -> None:
    """Process-wide torch settings, set once by the program (server, CLI, bench) at start.

    threads: intra-op CPU threads (default: all cores); compile_cache: where inductor keeps
    compiled kernels and packages, so a restarted program reuses them instead of compiling
    again; in_process: the program torch.compiles in this process, so dynamo's recompile
    limit is raised (False where every build runs in a child, as a CPU server's packages do:
    importing dynamo costs seconds of start-up).
    """
    configure_cpu_threads(threads)
    if in_process:
        torch._dynamo.config.cache_size_limit = max(
            torch._dynamo.config.cache_size_limit, COMPILED_SHAPES
        )
    if compile_cache is not None:
        compile_cache.mkdir(parents=True, exist_ok=True)
        os.environ["TORCHINDUCTOR_CACHE_DIR"] = str(compile_cache.resolve())
