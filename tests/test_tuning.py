"""The measured inference tuning: one JSON per GPU model, read by every Stylizer."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from stylefusion.errors import InvalidInput
from stylefusion.stylizer import Stylizer
from stylefusion.transformer_net import build_transformer
from stylefusion.tuning import Tuning, read_tunings, tuning_for, write_tuning


def test_a_written_tuning_is_read_back_for_that_gpu_only(tmp_path: Path) -> None:
    path = tmp_path / "cuda_tuning.json"
    write_tuning(path, "NVIDIA H100 80GB HBM3", Tuning("bfloat16", "reduce-overhead"), {"x": 1})
    write_tuning(path, "NVIDIA A100", Tuning("float16", "eager"), {})
    assert tuning_for("NVIDIA H100 80GB HBM3", path) == Tuning("bfloat16", "reduce-overhead")
    assert tuning_for("NVIDIA A100", path) == Tuning("float16", "eager")
    assert tuning_for("Some Other GPU", path) == Tuning()  # unmeasured: the safe default


def test_a_missing_or_broken_tuning_file_gives_the_default(tmp_path: Path) -> None:
    assert read_tunings(tmp_path / "missing.json") == {}
    broken = tmp_path / "broken.json"
    broken.write_text('{"gpus": {"X": {"dtype": "float8", "mode": "default"}}}')
    assert read_tunings(broken) == {}
    assert tuning_for("X", broken) == Tuning()


def test_bad_tunings_are_refused() -> None:
    with pytest.raises(InvalidInput, match="dtype"):
        Tuning("int8", "default")
    with pytest.raises(InvalidInput, match="mode"):
        Tuning("float16", "fastest")


def test_stylizer_follows_its_tuning() -> None:
    model = build_transformer("lite")
    eager = Stylizer(model, "cpu", half=True, compile="inline", tuning=Tuning("bfloat16", "eager"))
    assert eager.dtype == torch.bfloat16 and eager.compile_mode == "off"
    assert eager.model is eager.eager  # "eager" wins over a compile request
    plain = Stylizer(build_transformer("lite"), "cpu")
    assert plain.dtype == torch.float32 and plain.tuning == Tuning()
