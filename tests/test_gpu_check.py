"""bench/gpu.sh --dry-run: the GPU check runs end to end on a CPU, so it never rots between
the sessions that are lent a GPU; every result file has the fields the README reports."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_gpu_check_dry_run_writes_every_result(tmp_path: Path) -> None:
    out = tmp_path / "out"
    env = os.environ | {"OUT": str(out), "GPU_WORK": str(tmp_path / "work")}
    env |= {"PYTHON": sys.executable, "PYTHONPATH": str(ROOT)}
    done = subprocess.run(
        ["bash", "bench/gpu.sh", "--dry-run"], cwd=ROOT, env=env, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]

    assert json.loads((out / "cuda_tests.json").read_text())["exit"] == 0  # skipped on a CPU
    inference = json.loads((out / "inference.json").read_text())
    measured = [c for c in inference["cells"] if "fps" in c]
    assert {c["variant"] for c in measured} == {"full", "lite"}
    assert {c["dtype"] for c in measured} == {"float16", "bfloat16"}
    assert {"ms_per_batch", "model_ms", "fps", "fraction_of_floor"} <= set(measured[0])
    assert 3e5 < inference["flops_per_pixel"]["full"] < 3.2e5  # ~307 kFLOP per pixel
    tuning = json.loads((out / "cuda_tuning.json").read_text())["gpus"]
    assert [t["mode"] for t in tuning.values()] == [inference["tuning"]["mode"]]

    live = json.loads((out / "live.json").read_text())
    assert (
        live["64x48"]["runs"][0]["per_peer"][0]["fps"] > 0 and "viewers_that_fit" in live["64x48"]
    )

    train = json.loads((out / "train.json").read_text())
    assert set(train["training"]["exit"].values()) == {0}
    run = train["runs"]["dry/full"]
    assert run["steps"] == 2 and run["command"].startswith("stylefusion train --style-image")
    assert {"loss", "content", "style"} <= set(run["losses"])
    assert train["scores"]["dry"]["lite_over_full"] > 0
    assert train["admin_api"]["state"] == "done" and train["admin_api"]["score"] > 0
    with tarfile.open(out / train["tars"][0]) as tar:
        assert {"dry/meta.json", "dry/full.safetensors", "dry/lite.safetensors"} <= set(
            tar.getnames()
        )
