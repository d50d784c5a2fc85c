"""Benchmarks: run_bench reports a plausible speed; bench/run.py writes its JSON."""

from __future__ import annotations

import dataclasses
import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from stylefusion.bench import BenchConfig, run_bench
from stylefusion.errors import InvalidInput

ROOT = Path(__file__).resolve().parents[1]


def test_run_bench_random_weights() -> None:
    result = run_bench(BenchConfig(device="cpu", width=40, height=24, repeats=2, warmup=1))
    assert result["fps"] > 0 and result["ms_per_batch"] > 0
    assert result["fps"] == pytest.approx(1000.0 / result["ms_per_batch"])
    assert (result["device"], result["variant"], result["size"]) == ("cpu", "lite", "40x24")
    assert len(result["ms_per_batch_all"]) == 2
    assert result["compiled"] is False  # eager is the CPU default
    json.dumps(result)  # JSON-ready


@pytest.mark.slow
def test_run_bench_compiled_on_cpu(models_dir: Path) -> None:
    config = BenchConfig(device="cpu", width=32, height=24, repeats=1, style=models_dir / "alpha")
    result = run_bench(dataclasses.replace(config, compile=True))
    assert result["compiled"] is True and result["fps"] > 0


def test_run_bench_with_a_style(models_dir: Path) -> None:
    config = BenchConfig(
        device="cpu", variant="full", width=32, height=32, batch_size=2, repeats=1, warmup=0,
        style=models_dir / "beta",
    )  # fmt: skip
    result = run_bench(config)
    assert (result["style"], result["variant"], result["batch_size"]) == ("beta", "full", 2)
    assert result["fps"] == pytest.approx(2000.0 / result["ms_per_batch"])


@pytest.mark.parametrize(
    "bad", [{"width": 4}, {"batch_size": 0}, {"repeats": 0}, {"variant": "huge"}]
)
def test_bad_bench_config(bad: dict) -> None:
    with pytest.raises(InvalidInput):
        BenchConfig(**bad)


def test_bench_script_writes_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    spec = importlib.util.spec_from_file_location("bench_run", ROOT / "bench" / "run.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    out = tmp_path / "results.json"
    argv = ["--output", str(out), "--sizes", "32x24", "--repeats", "1", "--train-steps", "0"]
    assert module.main(argv) == 0
    report = json.loads(out.read_text())
    assert json.loads(capsys.readouterr().out) == report
    rows = {(r["device"], r["variant"], r["size"]) for r in report["inference"]}
    assert rows == {("cpu", "full", "32x24"), ("cpu", "lite", "32x24")}
    assert all(r["fps"] > 0 for r in report["inference"])


def test_glass_to_glass_bench_times_flashes_and_merges_its_json(tmp_path: Path) -> None:
    out = tmp_path / "results.json"
    out.write_text(json.dumps({"inference": ["kept"]}))
    script = ROOT / "bench" / "live.py"
    args = ["--mode", "glass", "--peers", "1", "--size", "64x48", "--seconds", "3"]
    args += ["--no-compile", "--data-dir", str(tmp_path / "var"), "--output", str(out)]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    subprocess.run([sys.executable, str(script), *args], check=True, env=env, timeout=240)
    report = json.loads(out.read_text())
    assert report["inference"] == ["kept"]  # make bench's numbers survive
    (run,) = report["live_glass"]["runs"]
    assert run["per_peer"][0]["fps"] > 0
    assert {"jitter_buffer", "decode", "wait", "model", "encode"} <= run["stages_ms"].keys()


def test_glass_bench_puts_two_viewers_in_two_styles_of_one_network(tmp_path: Path) -> None:
    out = tmp_path / "results.json"
    script = ROOT / "bench" / "live.py"
    args = ["--mode", "glass", "--peers", "2", "--styles", "2", "--size", "64x48"]
    args += ["--seconds", "3", "--no-compile", "--data-dir", str(tmp_path / "var")]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    subprocess.run([sys.executable, str(script), *args, "--output", str(out)], check=True,
                   env=env, timeout=240)  # fmt: skip
    report = json.loads(out.read_text())["live_glass"]
    (run,) = report["runs"]
    assert report["styles"] == {"count": 2, "shared_network": True}
    assert run["styles"] == ["bench-0", "bench-1"]
    assert all(peer["fps"] > 0 for peer in run["per_peer"])
    assert run["batch_mean"] >= 1.0 and run["styles_per_call_mean"] >= 1.0


def test_clip_bench_times_the_sizes_and_a_clip_and_merges_its_json(
    tmp_path: Path, models_dir: Path
) -> None:
    from media_helpers import make_clip

    clip = make_clip(tmp_path / "clip.mkv", frames=20, fps=10, audio="ac3")
    out = tmp_path / "results.json"
    out.write_text(json.dumps({"inference": ["kept"]}))
    args = ["--clip", str(clip), "--seconds", "1", "--style", str(models_dir / "alpha")]
    args += ["--dry-run", "--output", str(out)]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    script = ROOT / "bench" / "clip.py"
    subprocess.run([sys.executable, str(script), *args], check=True, env=env, timeout=240)
    report = json.loads(out.read_text())
    assert report["inference"] == ["kept"]
    result = report["clip"]
    assert set(result["per_frame"]) == {"32", "48"}
    assert all(row["s_per_frame"] > 0 for row in result["per_frame"].values())
    assert result["clip"]["frames"] == 10 and result["clip"]["painted_at"] == "32x24"
    assert result["clip"]["sound"] is True and result["clip"]["fps"] > 0


def test_whep_fanout_bench_reports_each_watcher(tmp_path: Path) -> None:
    out = tmp_path / "results.json"
    out.write_text(json.dumps({"inference": ["kept"]}))
    script = ROOT / "bench" / "whep.py"
    args = ["--watchers", "2", "--size", "64x48", "--seconds", "3", "--no-compile"]
    args += ["--data-dir", str(tmp_path / "var"), "--output", str(out)]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    subprocess.run([sys.executable, str(script), *args], check=True, env=env, timeout=240)
    report = json.loads(out.read_text())
    assert report["inference"] == ["kept"]
    (run,) = report["whep"]["runs"]
    assert len(run["per_watcher"]) == 2 and all(w["fps"] > 0 for w in run["per_watcher"])
    assert run["published_fps"] > 0 and run["model_fps"] > 0
    assert set(run["met"]) == {"watcher_fps", "model_per_published", "glass_p50"}
