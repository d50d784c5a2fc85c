"""torch.compile without stalls: each new input shape compiles in a background thread.

A compiled transformer runs about twice as fast as eager on a CPU (and the GPU gains more),
but every new (batch, height, width) costs seconds of compilation. A live server cannot stop
all streams for that, so eager serves a shape until its compiled version is ready.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import os
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import torch
from torch import nn

from .errors import CompileStopped

log = logging.getLogger(__name__)

COMPILE_NICE = 19  # the compile thread's niceness (and that of the compilers it starts)


ShapeKey = tuple[tuple[int, ...], tuple[int, ...], torch.dtype, torch.device]


def compile_model(model: nn.Module, mode: str = "default") -> Callable[..., torch.Tensor]:
    """torch.compile with static shapes: one graph per (batch, size) seen.

    Every style of a variant shares forward's code, so the program should raise dynamo's
    recompile limit once (devices.configure_torch) to keep many shapes compiled. `mode` is
    torch.compile's; with "reduce-overhead" (CUDA graphs) each call starts a new graph step,
    since a stylized batch is copied out before the next call.
    """
    if mode in ("int8", "package"):  # AOTInductor packages built in a child (CPUs)
        from .packages import PackageCompiled

        return PackageCompiled(model, int8=mode == "int8")
    if mode == "frozen":  # weights become constants: compile a model whose weights stay put
        return torch.compile(model, dynamic=False, options={"freezing": True})  # type: ignore[return-value]
    compiled = torch.compile(model, dynamic=False, mode=None if mode == "default" else mode)
    if mode != "reduce-overhead":
        return compiled  # type: ignore[return-value]

    def run(*inputs: torch.Tensor) -> torch.Tensor:
        torch.compiler.cudagraph_mark_step_begin()
        return compiled(*inputs)

    return run


class CompileWorker:
    """One thread that compiles queued shapes in turn; models of one architecture share it,
    so a shape compiled for one style is reused (cheaply) by the next.

    Shapes frames are waiting for (`urgent`) go before shapes queued ahead of need, so a
    viewer's new size or style is not stuck behind start-up's list.
    """

    def __init__(self, name: str = "compile") -> None:
        self._todo: queue.PriorityQueue[_Job] = queue.PriorityQueue()
        self._order = itertools.count()  # first come, first served within a priority
        self.closed = False
        self._thread = threading.Thread(target=self._work, name=name, daemon=True)
        self._thread.start()

    def submit(self, runner: BackgroundCompiled, example: Inputs, urgent: bool = True) -> None:
        """Queue one shape of one model (urgent: before every shape queued ahead of need)."""
        self._todo.put(_Job(URGENT if urgent else AHEAD, next(self._order), runner, example))

    def close(self) -> None:
        """Stop the thread after its current shape."""
        self.closed = True
        self._todo.put(_Job(STOP, next(self._order)))

    def lower_priority(self, nice: int = COMPILE_NICE) -> None:
        """From now on compile as background work: serving threads come first.

        Compilers started afterwards (C++ compiler runs) inherit the thread's niceness.
        """
        if self._thread.native_id is not None:
            with contextlib.suppress(OSError):
                os.setpriority(os.PRIO_PROCESS, self._thread.native_id, nice)

    def _work(self) -> None:
        while True:
            job = self._todo.get()
            if job.runner is None or not job.example:  # close()
                return
            # a shape queued ahead and then again when frames came is compiled once
            if not job.runner.failed and not job.runner.ready(job.example[0]):
                job.runner.compile_now(*job.example)


STOP, URGENT, AHEAD = 0, 1, 2  # a compile queue's priorities, first served first
Inputs = tuple[torch.Tensor, ...]  # a model call's inputs: frames, and a multi-style net's norms


@dataclass(order=True)
class _Job:
    """One shape of one model on a compile queue; a job without a runner stops the thread."""

    priority: int
    order: int
    runner: BackgroundCompiled | None = field(default=None, compare=False)
    example: Inputs = field(default=(), compare=False)


class BackgroundCompiled:
    """Calls the compiled model for shapes already compiled, the eager one otherwise.

    A multi-style network's calls carry its per-frame norms, an input like the frames: one
    compiled version of a shape serves every style (and every blend) of the network.
    """

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
        self._requested: dict[ShapeKey, bool] = {}  # shape -> queued as urgent

    def __call__(self, x: torch.Tensor, norms: torch.Tensor | None = None) -> torch.Tensor:
        """Run x (and norms) through the compiled model if x's shape is ready, else eager
        (and queue the shape)."""
        inputs = _inputs(x, norms)
        if _key(x) in self._ready:
            return self.compiled(*inputs)
        self.request(x, norms, urgent=True)
        return self.eager(*inputs)

    def request(
        self, x: torch.Tensor, norms: torch.Tensor | None = None, urgent: bool = False
    ) -> None:
        """Queue x's shape for compiling unless it is ready or queued (urgent: frames wait)."""
        key = _key(x)
        if self.failed or key in self._ready:
            return
        queued = self._requested.get(key)
        if queued is None or (urgent and not queued):
            self._requested[key] = urgent
            # the same shapes, dtypes and strides; the norms as given (int8 calibrates on them)
            example = _inputs(torch.zeros_like(x), None if norms is None else norms.clone())
            self.worker.submit(self, example, urgent)

    def ready(self, x: torch.Tensor) -> bool:
        """Whether x's shape runs compiled."""
        return _key(x) in self._ready

    def shapes(self) -> dict[tuple[int, ...], bool]:
        """Every shape asked for so far -> whether the compiled model serves it."""
        ready = {key[0] for key in list(self._ready)}
        return {key[0]: key[0] in ready for key in list(self._requested)}

    def pending(self) -> int:
        """Shapes queued or compiling (none once compiling failed: eager serves for good)."""
        return 0 if self.failed else len(set(self._requested) - self._ready)

    def wait(
        self, x: torch.Tensor, norms: torch.Tensor | None = None, timeout_s: float = 300.0
    ) -> bool:
        """Queue x's shape if needed and block until it is compiled (or failed); for warm-ups."""
        self(x, norms)
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

    def compile_now(self, x: torch.Tensor, *norms: torch.Tensor) -> None:
        """Compile for x's shape (on the worker thread); a failure means eager for good."""
        start = time.perf_counter()
        try:
            with torch.inference_mode():
                self.compiled(x, *norms)
        except CompileStopped:
            log.debug("%s: compile for %s stopped", self.name, tuple(x.shape))
            self.failed = True  # closed: eager from now on, and no waiting for it
            return
        except Exception as exc:  # compiler toolchains vary; eager always works
            log.warning("compiling failed for %s (%s); it stays eager", self.name, exc)
            log.debug("the compile failure", exc_info=True)
            self.failed = True
            return
        self._ready.add(_key(x))
        elapsed = time.perf_counter() - start
        log.info("%s compiled for %s in %.1f s", self.name, tuple(x.shape), elapsed)


def _inputs(x: torch.Tensor, norms: torch.Tensor | None) -> Inputs:
    """A model call's inputs: a single-style network takes frames only."""
    return (x,) if norms is None else (x, norms)


def _key(x: torch.Tensor) -> ShapeKey:
    return (tuple(x.shape), tuple(x.stride()), x.dtype, x.device)
