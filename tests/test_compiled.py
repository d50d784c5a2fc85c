"""Background compilation: eager serves new shapes at once, compiled takes over when ready."""

import threading
import time

import numpy as np
import pytest
import torch
from conftest import TINY

from stylefusion.compiled import BackgroundCompiled, CompileWorker
from stylefusion.stylizer import Stylizer
from stylefusion.transformer_net import TransformerNet


@pytest.fixture
def net() -> TransformerNet:
    torch.manual_seed(0)
    return TransformerNet(TINY).eval()


def test_new_shape_runs_eager_then_compiled_with_the_same_result(net: TransformerNet) -> None:
    runner = BackgroundCompiled(net, "tiny")
    x = torch.rand(1, 3, 24, 32)
    with torch.inference_mode():
        first = runner(x)  # not compiled yet: answered by eager, no stall
        assert runner.wait(x, timeout_s=240), "compilation did not finish"
        compiled = runner(x)
    runner.close()
    torch.testing.assert_close(first, net(x).detach())
    torch.testing.assert_close(compiled, first, rtol=1e-4, atol=1e-4)
    assert not runner.ready(torch.rand(2, 3, 24, 32))  # each shape compiles on its own


def test_a_failing_compiler_leaves_eager_serving(net: TransformerNet) -> None:
    runner = BackgroundCompiled(net, "tiny")

    def broken(x: torch.Tensor) -> torch.Tensor:
        raise RuntimeError("no C++ compiler")

    runner.compiled = broken
    x = torch.rand(1, 3, 16, 16)
    with torch.inference_mode():
        assert not runner.wait(x, timeout_s=30)
        assert runner.failed
        torch.testing.assert_close(runner(x), net(x))


def test_stylizer_warm_up_waits_for_the_compiled_shape(models_dir) -> None:
    stylizer = Stylizer.from_style(models_dir / "alpha", device="cpu", compile="background")
    eager = Stylizer.from_style(models_dir / "alpha", device="cpu")
    stylizer.warm_up(20, 28, 1)
    frames = np.random.default_rng(0).integers(0, 256, (1, 20, 28, 3), np.uint8)
    assert isinstance(stylizer.model, BackgroundCompiled)
    assert stylizer.model.ready(stylizer._prepare(torch.from_numpy(frames)))
    assert np.abs(stylizer(frames).astype(int) - eager(frames)).max() <= 1
    stylizer.close()


def test_frozen_bf16_matches_eager_bf16(net: TransformerNet) -> None:
    model = net.to(torch.bfloat16)
    runner = BackgroundCompiled(model, "tiny", mode="frozen")
    x = torch.rand(1, 3, 24, 32, dtype=torch.bfloat16)
    with torch.inference_mode():
        assert runner.wait(x, timeout_s=240), "compilation did not finish"
        frozen, eager = runner(x).float(), model(x).float()
    runner.close()
    assert (frozen - eager).abs().mean() < 0.02  # bf16 rounding, same picture


def test_a_shape_frames_wait_for_builds_before_shapes_queued_ahead(net: TransformerNet) -> None:
    worker = CompileWorker("test-compile")
    runner = BackgroundCompiled(net, "tiny", worker)
    built: list[tuple[int, ...]] = []
    building, gate = threading.Event(), threading.Event()

    def slow_build(x: torch.Tensor) -> torch.Tensor:
        building.set()
        gate.wait(30)
        built.append(tuple(x.shape))
        return net(x)

    runner.compiled = slow_build
    ahead = [torch.rand(1, 3, 8, 8 + 4 * i) for i in range(3)]
    for x in ahead:
        runner.request(x)  # start-up's list: the first starts building, the others wait
    assert building.wait(30)
    wanted = torch.rand(1, 3, 12, 12)
    with torch.inference_mode():
        torch.testing.assert_close(runner(wanted), net(wanted))  # eager serves it meanwhile
        runner(ahead[2])  # frames came for a queued shape too: it moves up, builds once
    assert runner.pending() == 4
    gate.set()
    deadline = time.monotonic() + 30
    while runner.pending() and time.monotonic() < deadline:
        time.sleep(0.01)
    worker.close()
    assert built == [(1, 3, 8, 8), (1, 3, 12, 12), (1, 3, 8, 16), (1, 3, 8, 12)]
    assert runner.shapes() == {tuple(x.shape): True for x in [*ahead, wanted]}
