"""Live benchmark on the GPU box: glass-to-glass at 640x480 and 1280x720 @ 30, viewers that fit.

    python bench/gpu_live.py --out OUT [--peers-480 1 4 8 12] [--peers-720 1 4 8] [--dry-run]

Runs `bench/live.py --mode glass` (in-process viewers against the real server). A viewer count
fits when every viewer gets at least 28 fps with a glass-to-glass median under 100 ms; each run
names its slowest stage (model, wait, decode, encode, jitter buffer) as the likely limit.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

MIN_FPS, MAX_P50_MS = 28.0, 100.0


def live_runs(
    size: str, peers: list[int], seconds: float, dry_run: bool, data_dir: Path
) -> dict[str, Any]:
    """One bench/live.py call (all viewer counts at one size); its JSON."""
    device = ["--device", "cpu", "--variant", "lite", "--no-compile"] if dry_run else [
        "--device", "cuda", "--variant", "full"
    ]  # fmt: skip
    argv = [sys.executable, "bench/live.py", "--mode", "glass", "--fps", "30", "--size", size]
    argv += ["--seconds", str(seconds), "--peers", *map(str, peers), *device]
    argv += ["--data-dir", str(data_dir)]
    done = subprocess.run(argv, capture_output=True, text=True, check=True)
    return json.loads(done.stdout)


def fits(run: dict[str, Any]) -> bool:
    """Every viewer at >= 28 fps with a glass-to-glass median under 100 ms."""
    peers = run["per_peer"]
    slowest = min(p["fps"] for p in peers)
    worst_p50 = max(p["glass_to_glass_ms"].get("p50", float("inf")) for p in peers)
    return slowest >= MIN_FPS and worst_p50 <= MAX_P50_MS


def slowest_stage(run: dict[str, Any]) -> str | None:
    """The stage that takes longest per frame (its median, or mean where only that is kept)."""
    times = {k: v.get("p50", v.get("mean", 0.0)) for k, v in run.get("stages_ms", {}).items()}
    return max(times, key=times.__getitem__) if times else None


def main(argv: list[str] | None = None) -> int:
    """Run both sizes, write live.json with the viewer capacity of each."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--peers-480", type=int, nargs="+", default=[1, 4, 8, 12])
    p.add_argument("--peers-720", type=int, nargs="+", default=[1, 4, 8])
    p.add_argument("--seconds", type=float, default=8.0, help="per viewer count")
    p.add_argument("--dry-run", action="store_true", help="CPU, lite, 64x48, one viewer")
    p.add_argument("--data-dir", type=Path, default=Path("var/bench"), help="compile cache")
    a = p.parse_args(argv)
    plan = {"640x480": a.peers_480, "1280x720": a.peers_720}
    if a.dry_run:
        plan, a.seconds = {"64x48": [1]}, 3.0
    result: dict[str, Any] = {"limits": {"min_fps": MIN_FPS, "max_round_trip_p50_ms": MAX_P50_MS}}
    for size, peers in plan.items():
        runs = live_runs(size, peers, a.seconds, a.dry_run, a.data_dir)["runs"]
        for run in runs:
            run["slowest_stage"] = slowest_stage(run)
        fitting = [r["peers"] for r in runs if fits(r)]
        result[size] = {"viewers_that_fit": max(fitting, default=0), "runs": runs}
    (a.out / "live.json").write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps({k: v["viewers_that_fit"] for k, v in result.items() if k != "limits"}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
