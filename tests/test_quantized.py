"""int8 CPU inference: calibrated on the shipped photos, close to fp32, used only when asked."""

import time

import numpy as np
import pytest
import torch
from conftest import TINY, tiny_multistyle

from stylefusion import devices, quantized
from stylefusion.compiled import BackgroundCompiled, CompileWorker
from stylefusion.devices import cpu_precision, int8_supported
from stylefusion.errors import InvalidInput
from stylefusion.packages import PackageCompiled
from stylefusion.quantized import calibration_frames
from stylefusion.stylizer import Stylizer
from stylefusion.transformer_net import TransformerNet
from stylefusion.tuning import Tuning

needs_int8 = pytest.mark.skipif(not int8_supported(), reason="CPU without VNNI or no torchao")


@pytest.fixture(autouse=True, scope="module")
def inductor_cache(tmp_path_factory):
    """This module's own compile cache, where the packages land (as in --data-dir)."""
    patch = pytest.MonkeyPatch()
    patch.setenv("TORCHINDUCTOR_CACHE_DIR", str(tmp_path_factory.mktemp("inductor")))
    yield
    patch.undo()


def test_calibration_frames_are_photos_cut_to_the_shape() -> None:
    frames = calibration_frames((2, 3, 20, 28), count=3)
    assert len(frames) == 3
    assert all(f.shape == (2, 3, 20, 28) and f.dtype == torch.float32 for f in frames)
    assert all(float(f.min()) >= 0.0 and float(f.max()) <= 1.0 for f in frames)
    assert float(frames[0].std()) > 0.05  # real photos, not blank frames
    assert not torch.equal(frames[0][0], frames[0][1])  # a batch holds different photos


@needs_int8
def test_int8_stylizes_like_fp32() -> None:
    torch.manual_seed(0)
    net = TransformerNet(TINY).eval()
    int8 = Stylizer(net, "cpu", compile="inline", tuning=Tuning(mode="int8"))
    fp32 = Stylizer(net, "cpu", compile="off")
    assert int8.dtype == torch.float32  # the model takes fp32 frames and quantizes inside
    frames = np.random.default_rng(0).integers(0, 256, (1, 24, 32, 3), np.uint8)
    diff = np.abs(int8(frames).astype(int) - fp32(frames))
    assert diff.mean() < 3.0, diff.mean()  # of 255 levels
    assert isinstance(int8.model, PackageCompiled) and int8.model.precision == "int8"
    assert list(int8.model._graphs) == [(1, 3, 24, 32)]  # quantized for the shape it saw


@needs_int8
def test_int8_runs_in_the_background_while_fp32_eager_serves() -> None:
    torch.manual_seed(0)
    net = TransformerNet(TINY).eval()
    runner = BackgroundCompiled(net, "tiny", mode="int8")
    x = torch.rand(1, 3, 16, 20)
    expected = net(x).detach()
    deadline = time.monotonic() + 240
    served = 0
    with torch.inference_mode():
        # eager keeps serving in this thread while the worker exports and calibrates
        while not runner.ready(x) and not runner.failed and time.monotonic() < deadline:
            torch.testing.assert_close(runner(x), expected)
            served += 1
        assert runner.ready(x), "quantization did not finish"
        quantized_out = runner(x)
    runner.close()
    assert served > 1
    assert (quantized_out - expected).abs().mean() < 0.02


def test_auto_precision_is_int8_where_vnni_and_compiled_else_bf16_where_native(
    monkeypatch,
) -> None:
    monkeypatch.setattr(devices, "int8_supported", lambda: True)
    monkeypatch.setattr(devices, "cpu_has_bf16", lambda: True)
    assert cpu_precision("auto") == "int8"
    assert cpu_precision("auto", compiled=False) == "bf16"  # int8 exists only compiled
    assert cpu_precision("bf16") == "bf16"
    monkeypatch.setattr(devices, "int8_supported", lambda: False)
    assert cpu_precision("auto") == "bf16"
    monkeypatch.setattr(devices, "cpu_has_bf16", lambda: False)
    assert cpu_precision("auto") == "fp32"
    with pytest.raises(InvalidInput, match="int8 needs a CPU with VNNI"):
        cpu_precision("int8")
    with pytest.raises(InvalidInput, match="precision must be one of"):
        cpu_precision("int4")


def test_bf16_serves_a_size_while_its_int8_package_builds(monkeypatch) -> None:
    monkeypatch.setattr(quantized, "cpu_has_bf16", lambda: True)
    torch.manual_seed(3)
    net = TransformerNet(TINY).eval()
    compiler = CompileWorker("idle")
    compiler.close()  # nothing gets compiled: every call is served by the stand-in
    stylizer = Stylizer(
        net, "cpu", compile="background", compiler=compiler, tuning=Tuning(mode="int8")
    )
    frames = np.random.default_rng(3).integers(0, 256, (1, 16, 20, 3), np.uint8)
    fp32 = Stylizer(net, "cpu", compile="off")(frames)
    served = stylizer(frames)
    assert isinstance(stylizer.eager, quantized.Bfloat16StandIn)
    assert next(stylizer.eager.parameters()).dtype == torch.bfloat16
    assert np.abs(served.astype(int) - fp32).mean() < 3.0


@needs_int8
def test_one_int8_package_serves_every_style_of_a_multistyle_network() -> None:
    net = tiny_multistyle(styles=3, seed=10)
    int8 = Stylizer(net, "cpu", compile="inline", tuning=Tuning(mode="int8"))
    int8.set_reference_norms(net.style_norms([0, 1, 2]))  # calibrated on all three styles
    fp32 = Stylizer(net, "cpu", compile="off")
    frames = np.random.default_rng(4).integers(0, 256, (1, 24, 32, 3), np.uint8)
    for i in range(3):
        norms = net.style_norms([i])
        diff = np.abs(int8(frames, norms=norms).astype(int) - fp32(frames, norms=norms))
        assert diff.mean() < 3.0, (i, diff.mean())
    assert list(int8.model._graphs) == [(1, 3, 24, 32)]  # one package for the three styles
