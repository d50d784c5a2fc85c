"""AOTInductor packages: built in a child process beside a serving thread, kept on disk."""

import subprocess
import threading
import time

import pytest
import torch
from conftest import TINY, tiny_multistyle

from stylefusion import packages
from stylefusion.compiled import BackgroundCompiled
from stylefusion.errors import CompileStopped
from stylefusion.packages import PackageCompiled
from stylefusion.transformer_net import TransformerNet

pytestmark = pytest.mark.slow  # every test builds a package in a child: tens of seconds


@pytest.fixture(autouse=True, scope="module")
def inductor_cache(tmp_path_factory):
    """This module's own compile cache, where the packages land (as in --data-dir); cold at
    its start. Each test builds what it proves is built (other weights, shapes, precisions),
    except that the multi-style test finds the package the first test built of the same
    network and shape (one build of tens of seconds less)."""
    patch = pytest.MonkeyPatch()
    patch.setenv("TORCHINDUCTOR_CACHE_DIR", str(tmp_path_factory.mktemp("inductor")))
    yield
    patch.undo()


def test_a_new_shape_builds_beside_a_serving_one_and_packages_outlive_the_process(
    monkeypatch,
) -> None:
    net = tiny_multistyle(styles=3, seed=6)  # as the multi-style test below: one build for both
    norms = net.style_norms([1])  # (1, P): the frames' style goes in beside them
    small, large = torch.rand(1, 3, 16, 20), torch.rand(1, 3, 24, 32)
    runner = PackageCompiled(net)
    with torch.inference_mode():
        served = runner(small, norms)
    torch.testing.assert_close(served, net(small, norms).detach(), rtol=1e-4, atol=1e-4)
    # tracing (export, torch.compile) patches torch.nn.Module.__call__ process-wide while it
    # runs, which broke an eager model serving in another thread: none of it happens here
    in_this_process: list[str] = []

    def forbidden(*args, **kwargs):
        in_this_process.append(threading.current_thread().name)
        raise AssertionError("traced in the serving process")

    monkeypatch.setattr(torch.export, "export", forbidden)
    monkeypatch.setattr(torch._inductor, "aoti_compile_and_package", forbidden)
    built: list[BaseException | torch.Tensor] = []

    def build() -> None:
        try:
            with torch.inference_mode():
                built.append(runner(large, norms))
        except BaseException as exc:  # noqa: BLE001 - reported by the assert below
            built.append(exc)

    builder = threading.Thread(target=build, name="builder")
    builder.start()
    calls = 0
    with torch.inference_mode():
        while builder.is_alive() or calls == 0:
            torch.testing.assert_close(runner(small, norms), served, atol=0, rtol=0)
            torch.testing.assert_close(net(small, norms), served, rtol=1e-4, atol=1e-4)  # eager
            calls += 1
            time.sleep(0.02)  # a viewer's pace, not a busy loop taking a core from the build
    builder.join()
    assert isinstance(built[0], torch.Tensor), built[0]
    assert calls > 1
    assert in_this_process == []
    # a restarted server finds both packages on disk and builds nothing
    monkeypatch.setattr(packages, "build_package", pytest.fail)
    restarted = PackageCompiled(net)
    with torch.inference_mode():
        torch.testing.assert_close(restarted(small, norms), served, atol=0, rtol=0)
        torch.testing.assert_close(restarted(large, norms), built[0], atol=0, rtol=0)
    # retrained weights, or another precision, are another package
    before = packages.package_path(net, (1, 3, 16, 20), "fp32")
    assert packages.package_path(net, (1, 3, 16, 20), "bf16") != before
    with torch.no_grad():
        net.down1.conv.conv.weight.add_(0.01)  # a convolution (the style table names nothing)
    assert packages.package_path(net, (1, 3, 16, 20), "fp32") != before


def test_a_bf16_package_serves_bf16_frames_after_eager_bf16() -> None:
    torch.manual_seed(4)
    model = TransformerNet(TINY).eval().to(torch.bfloat16)
    runner = BackgroundCompiled(model, "tiny", mode="package")
    x = torch.rand(1, 3, 16, 20, dtype=torch.bfloat16)
    with torch.inference_mode():
        eager = runner(x)  # eager bf16 while the package builds
        assert runner.wait(x, timeout_s=600), "the package did not build"
        packaged = runner(x)
    runner.close()
    assert packaged.dtype == torch.bfloat16
    assert (packaged.float() - eager.float()).abs().mean() < 0.02  # bf16 rounding, same picture


def test_closing_stops_a_build_under_way() -> None:
    torch.manual_seed(2)
    runner = PackageCompiled(TransformerNet(TINY).eval())
    failures: list[BaseException] = []

    def build() -> None:
        try:
            with torch.inference_mode():
                runner(torch.rand(1, 3, 12, 12))
        except CompileStopped as exc:
            failures.append(exc)

    builder = threading.Thread(target=build)
    builder.start()
    deadline = time.monotonic() + 30
    while not runner._builders and time.monotonic() < deadline:
        time.sleep(0.05)
    (child,) = runner._builders
    runner.close()
    builder.join(timeout=30)
    assert not builder.is_alive() and child.poll() is not None
    assert "stopped" in str(failures[0])
    with pytest.raises(CompileStopped, match="closed"):
        runner(torch.rand(1, 3, 12, 16))


def test_a_close_while_a_build_gets_ready_starts_no_child(monkeypatch) -> None:
    torch.manual_seed(3)
    runner = PackageCompiled(TransformerNet(TINY).eval())
    save, popen = packages.save_transformer, subprocess.Popen
    started: list[subprocess.Popen] = []

    def save_then_close(*args, **kwargs) -> None:
        save(*args, **kwargs)
        runner.close()  # the server stops just as a build's weights are written

    def spy(*args, **kwargs) -> subprocess.Popen:
        started.append(popen(*args, **kwargs))
        return started[-1]

    monkeypatch.setattr(packages, "save_transformer", save_then_close)
    monkeypatch.setattr(packages.subprocess, "Popen", spy)
    try:
        with pytest.raises(CompileStopped), torch.inference_mode():
            runner(torch.rand(1, 3, 12, 12))
    finally:
        for child in started:
            child.kill()
            child.wait()
    assert started == []  # no build child left to run on after its server


def test_one_package_per_shape_serves_every_style_and_blend_of_a_multistyle_network() -> None:
    net = tiny_multistyle(styles=3, seed=6)
    runner = BackgroundCompiled(net, "tiny", mode="package")
    x = torch.rand(1, 3, 16, 20)
    with torch.inference_mode():
        assert runner.wait(x, net.style_norms([0]), timeout_s=600), "the package did not build"
        blend = torch.lerp(net.style_norms([0]), net.style_norms([2]), 0.3)
        for norms in [net.style_norms([i]) for i in range(3)] + [blend]:
            torch.testing.assert_close(runner(x, norms), net(x, norms), rtol=1e-4, atol=1e-4)
    runner.close()
    assert runner.shapes() == {(1, 3, 16, 20): True}  # one build for every style
    # the package is named by the backbone: other styles of it find the same one
    other = tiny_multistyle(styles=5, seed=6)
    other.load_state_dict({**net.state_dict(), "style_table": other.style_table})
    shape = (1, 3, 16, 20)
    assert packages.package_path(other, shape, "fp32") == packages.package_path(net, shape, "fp32")
