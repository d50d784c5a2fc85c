"""The CUDA path (fp16/bf16, channels-last, torch.compile modes, bf16 loss network training).

Marked `cuda`: skipped without a GPU; bench/gpu.sh runs them on a lent one (`pytest -m cuda`).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import make_style_image

from stylefusion.stylizer import Stylizer
from stylefusion.trainer import TrainConfig, train
from stylefusion.transformer_net import build_transformer
from stylefusion.tuning import MODES, Tuning

pytestmark = [
    pytest.mark.cuda,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU"),
]


def _frames(seed: int, batch: int = 2, height: int = 72, width: int = 96) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (batch, height, width, 3), np.uint8)


# max-autotune compiles for minutes; bench/gpu_inference.py checks its output against eager
@pytest.mark.parametrize(
    ("dtype", "mode"),
    [("float16", m) for m in MODES if m != "max-autotune"] + [("bfloat16", "default")],
)
def test_cuda_matches_cpu_in_every_mode(dtype: str, mode: str) -> None:
    torch.manual_seed(0)
    model = build_transformer("full")
    reference = Stylizer(model, "cpu")(_frames(1))  # fp32, eager
    tuning = Tuning(dtype, mode)
    compile = "off" if mode == "eager" else "inline"
    gpu = Stylizer(build_transformer("full").requires_grad_(False), "cuda", tuning=tuning,
                   compile=compile)  # fmt: skip
    gpu.eager.load_state_dict(model.state_dict())
    out = gpu(_frames(1))
    assert gpu.dtype == tuning.torch_dtype and (gpu.model is not gpu.eager) == tuning.compiled
    diff = np.abs(out.astype(int) - reference.astype(int))
    assert diff.mean() < 3 and np.percentile(diff, 99) < 24  # half precision, same picture


def test_cuda_graphs_do_not_return_a_stale_batch() -> None:
    torch.manual_seed(0)
    gpu = Stylizer(build_transformer("lite"), "cuda", tuning=Tuning("float16", "reduce-overhead"))
    first, second = _frames(1), _frames(2)
    a1, b1, a2 = gpu(first), gpu(second), gpu(first)
    assert np.abs(a1.astype(int) - a2.astype(int)).max() <= 1  # the first batch's picture again
    assert np.abs(a1.astype(int) - b1.astype(int)).mean() > 1


def test_batched_frames_match_single_frames() -> None:
    torch.manual_seed(0)
    gpu = Stylizer(build_transformer("full"), "cuda", compile="off")
    frames = _frames(3, batch=4)
    batched = gpu(frames)
    single = np.concatenate([gpu(f[None]) for f in frames])
    diff = np.abs(batched.astype(int) - single.astype(int))
    assert diff.mean() < 0.5 and diff.max() <= 4  # kernels may differ by batch size, not much


def test_training_on_cuda_uses_bf16_losses_and_writes_a_style(
    tmp_path: Path, content_dir: Path
) -> None:
    config = TrainConfig(
        style_image=make_style_image(tmp_path / "style.png", seed=3),
        content_dir=content_dir,
        name="gpu-tiny",
        output_dir=tmp_path / "models",
        steps=20,
        size=64,
        batch_size=4,
        device="cuda",
        preview_every=0,
    )
    result = train(config)
    assert result.steps == 20 and all(np.isfinite(v) for v in result.losses.values())
    stylizer = Stylizer.from_style(result.folder, "full", "cuda", compile="off")
    assert stylizer.dtype == stylizer.tuning.torch_dtype  # half precision on the GPU
    assert stylizer(_frames(4)).shape == (2, 72, 96, 3)
    again = train(dataclasses.replace(config, name="gpu-tiny-2", mixed_precision=False))
    assert again.steps == 20  # the fp32 loss network also runs
