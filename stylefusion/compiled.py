"""torch.compile without stalls: each new input shape compiles in a background thread.

A compiled transformer runs about twice as fast as eager on a CPU (and the GPU gains more),
but every new (batch, height, width) costs seconds of compilation. A live server cannot stop
all streams for that, so eager serves a shape until its compiled version is ready.
"""

from __future__ import annotations

import contextlib
import logging
import os
import queue
import threading
import time
from collections.abc import Callable

import torch
from torch import nn

from .errors import CompileStopped

log = logging.getLogger(__name__)

COMPILE_NICE = 19  # the compile thread's niceness (and that of the compilers it starts)


ShapeKey = tuple[tuple[int, ...], tuple[int, ...], torch.dtype, torch.device]


def compile_model(
    model: nn.Module, mode: str = "default"
) -> Callable[[torch.Tensor], torch.Tensor]:
    """torch.compile with static shapes: one graph per (batch, size) seen.

    Every style of a variant shares forward's code, so the program should raise dynamo's
    recompile limit once (devices.configure_torch) to keep many shapes compiled. `mode` is
    torch.compile's; with "reduce-overhead" (CUDA graphs) each call starts a new graph step,
    since a stylized batch is copied out before the next call.
    """
    if mode == "int8":  # quantized per input shape (x86 CPUs)
        from .quantized import Int8Compiled

        return Int8Compiled(model)
    if mode == "frozen":  # weights become constants: compile a model whose weights stay put
        return torch.compile(model, dynamic=False, options={"freezing": True})  # type: ignore[return-value]
    compiled = torch.compile(model, dynamic=False, mode=None if mode == "default" else mode)
    if mode != "reduce-overhead":
        return compiled  # type: ignore[return-value]

    def run(x: torch.Tensor) -> torch.Tensor:
        torch.compiler.cudagraph_mark_step_begin()
        return compiled(x)

    return run


class CompileWorker:
    """One thread that compiles queued shapes in turn; models of one architecture share it,
    so a shape compiled for one style is reused (cheaply) by the next."""

    def __init__(self, name: str = "compile") -> None:
        self._todo: queue.SimpleQueue[tuple[BackgroundCompiled, torch.Tensor] | None]
        self._todo = queue.SimpleQueue()
        self.closed = False
        self._thread = threading.Thread(target=self._work, name=name, daemon=True)
        self._thread.start()

    def submit(self, runner: BackgroundCompiled, example: torch.Tensor) -> None:
        """Queue one shape of one model."""
        self._todo.put((runner, example))

    def close(self) -> None:
        """Stop the thread after its current shape."""
        self.closed = True
        self._todo.put(None)

    def lower_priority(self, nice: int = COMPILE_NICE) -> None:
        """From now on compile as background work: serving threads come first.

        Compilers started afterwards (C++ compiler runs) inherit the thread's niceness.
        """
        if self._thread.native_id is not None:
            with contextlib.suppress(OSError):
                os.setpriority(os.PRIO_PROCESS, self._thread.native_id, nice)

    def _work(self) -> None:
        while (item := self._todo.get()) is not None:
            runner, example = item
            if not runner.failed:
                runner.compile_now(example)


class BackgroundCompiled:
    """Calls the compiled model for shapes already compiled, the eager one otherwise."""

    def __init__(
        self,
        model: nn.Module,
        name: str = "model",
        worker: CompileWorker | None = None,
        mode: str = "default",
        eager: nn.Module | None = None,
    ) -> None:
        """eager: what serves a shape until it is compiled (default: the model itself)."""
        self.eager = eager or model
        self.compiled = compile_model(model, mode)
        self.name = name
        self.failed = False
        self._own_worker = worker is None
        self.worker = worker or CompileWorker(f"compile-{name}")
        self._ready: set[ShapeKey] = set()
        self._requested: set[ShapeKey] = set()

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        """Run x through the compiled model if its shape is ready, else eager (and queue it)."""
        key = _key(x)
        if key in self._ready:
            return self.compiled(x)
        if not self.failed and key not in self._requested:
            self._requested.add(key)
            self.worker.submit(self, torch.zeros_like(x))  # same shape, dtype, device, strides
        return self.eager(x)

    def ready(self, x: torch.Tensor) -> bool:
        """Whether x's shape runs compiled."""
        return _key(x) in self._ready

    def wait(self, x: torch.Tensor, timeout_s: float = 300.0) -> bool:
        """Queue x's shape if needed and block until it is compiled (or failed); for warm-ups."""
        self(x)
        deadline = time.monotonic() + timeout_s
        while not self.ready(x) and not self.failed and time.monotonic() < deadline:
            if self.worker.closed:  # shutting down: nothing more will compile
                break
            time.sleep(0.05)
        return self.ready(x)

    def close(self) -> None:
        """Stop this model's builds under way and its compile thread, if it has its own."""
        stop = getattr(self.compiled, "close", None)
        if stop is not None:
            stop()
        if self._own_worker:
            self.worker.close()

    def compile_now(self, example: torch.Tensor) -> None:
        """Compile for example's shape (on the worker thread); a failure means eager for good."""
        start = time.perf_counter()
        try:
            with torch.inference_mode():
                self.compiled(example)
        except CompileStopped:
            log.debug("%s: compile for %s stopped", self.name, tuple(example.shape))
            self.failed = True  # closed: eager from now on, and no waiting for it
            return
        except Exception as exc:  # compiler toolchains vary; eager always works
            log.warning("torch.compile failed for %s (%s); it stays eager", self.name, exc)
            log.debug("the compile failure", exc_info=True)
            self.failed = True
            return
        self._ready.add(_key(example))
        elapsed = time.perf_counter() - start
        log.info("%s compiled for %s in %.1f s", self.name, tuple(example.shape), elapsed)


def _key(x: torch.Tensor) -> ShapeKey:
    return (tuple(x.shape), tuple(x.stride()), x.dtype, x.device)
