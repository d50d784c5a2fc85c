"""bench/flicker.py end to end at tiny sizes: the still stretch, the pan, ratios, merged JSON."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

from media_helpers import make_photo, moving_frame, write_frames

ROOT = Path(__file__).resolve().parents[1]


def _bench_module():
    sys.path.insert(0, str(ROOT / "bench"))  # the script imports results.py beside it
    spec = importlib.util.spec_from_file_location("bench_flicker", ROOT / "bench" / "flicker.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def _clip_with_a_still_stretch(path: Path) -> Path:
    """A clip whose square moves for 6 frames, then stays put for 6."""
    return write_frames(path, [moving_frame(min(i, 6)) for i in range(12)])


def test_the_benchmark_scores_each_set_and_keeps_other_keys(
    tmp_path: Path, models_dir: Path, capsys
) -> None:
    clip = _clip_with_a_still_stretch(tmp_path / "clip.mp4")
    photo = make_photo(tmp_path / "photo.png", width=96, height=64)
    output = tmp_path / "results.json"
    output.write_text(json.dumps({"cpu_model": {"kept": True}}))
    argv = ["--clip", str(clip), "--photo", str(photo), "--max-side", "32", "--frames", "5"]
    argv += ["--models", f"base={models_dir}", "--models", f"again={models_dir}"]
    assert _bench_module().main([*argv, "--blend", "0.5", "--output", str(output)]) == 0
    results = json.loads(output.read_text())
    assert results["cpu_model"] == {"kept": True}
    report = results["flicker"]
    assert report["inputs"]["clip"]["frames"][0] >= 6  # the still stretch, not the motion
    assert report["inputs"]["pan"]["size"] == [32, 24]
    assert set(report["scores"]) == {"base", "again"}
    alpha = report["scores"]["base"]["alpha"]
    assert {"clip", "pan", "pan_floor", "clip_blend", "pan_blend"} <= alpha.keys()
    assert report["ratios"]["again"]["alpha"] == {"clip": 1.0, "pan": 1.0}  # same models
    assert "base_blend" in report["ratios"] and report["blend_ms_per_frame"]["frames"] > 0
    assert json.loads(capsys.readouterr().out) == report


def test_a_missing_clip_exits_2_with_one_line(tmp_path: Path, models_dir: Path, capsys) -> None:
    argv = ["--clip", str(tmp_path / "none.mp4"), "--models", f"base={models_dir}"]
    assert _bench_module().main([*argv, "--output", str(tmp_path / "r.json")]) == 2
    assert len(capsys.readouterr().err.strip().splitlines()) == 1
    assert not (tmp_path / "r.json").exists()
