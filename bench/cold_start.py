"""Cold start as a newcomer's `make run` sees it: seconds until viewers are taken and streamed.

Starts the real server (`python -m server`, the shipped styles, a fresh --data-dir: no compiled
kernels, no int8 packages), polls /healthz, and connects an in-process aiortc viewer (the
tests' webrtc_helpers.Viewer) as soon as it says "ok". JSON out: seconds from the spawn to the
first HTTP answer, to "status": "ok", to the viewer's first stylized frame; then, for --watch
seconds, the viewer's fps and when its frame size switched from eager to its build.

    python bench/cold_start.py --models-dir models --watch 120 --output bench/results.json
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
from aiohttp import ClientError, ClientSession
from PIL import Image
from results import merge_results

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
from webrtc_helpers import Viewer, difference, free_port  # noqa: E402

from stylefusion.bench import describe_machine  # noqa: E402
from stylefusion.devices import resolve_device  # noqa: E402

POLL_S = 0.1


async def health(session: ClientSession) -> dict[str, Any] | None:
    """GET /healthz as JSON, None while the server does not answer yet."""
    try:
        async with session.get("/healthz") as response:
            return await response.json()  # type: ignore[no-any-return]
    except (ClientError, OSError, ValueError):
        return None


async def until_ok(session: ClientSession, spawned: float, timeout_s: float) -> dict[str, float]:
    """Poll /healthz until it says ok; seconds from the spawn to its first answer and to ok."""
    marks: dict[str, float] = {}
    deadline = spawned + timeout_s
    while time.monotonic() < deadline:
        status = await health(session)
        if status is not None:
            marks.setdefault("listening_s", time.monotonic() - spawned)
            if status["status"] == "ok":
                marks["ok_s"] = time.monotonic() - spawned
                return marks
        await asyncio.sleep(POLL_S)
    raise TimeoutError(f"/healthz did not say ok within {timeout_s} s")


async def watch(viewer: Viewer, session: ClientSession, seconds: float) -> dict[str, Any]:
    """The viewer's fps per 10 s and when the size it is served at left eager, if it did."""
    start = time.monotonic()
    switched, next_check, counts, size = None, start, [0], ""
    while (now := time.monotonic()) - start < seconds:
        image = await viewer.next_image(timeout=30)
        size = f"{image.shape[1]}x{image.shape[0]}"
        slot = int((now - start) // 10)
        counts.extend([0] * (slot + 1 - len(counts)))
        counts[slot] += 1
        if switched is None and now >= next_check:
            next_check = now + 0.5
            sizes = ((await health(session)) or {}).get("inference", {}).get("sizes", {})
            if any(s.get(size, "eager") != "eager" for s in sizes.values()):
                switched = now - start
    return {"fps_per_10s": [c / 10 for c in counts], "size": size, "switched_after_s": switched}


def stylized(image: np.ndarray, camera: np.ndarray) -> bool:
    """Whether a received frame differs from the camera picture (scaled to the frame's size)."""
    height, width = image.shape[:2]
    scaled = np.asarray(Image.fromarray(camera).resize((width, height), Image.BILINEAR))
    return difference(image, scaled) > 10


async def measure(args: argparse.Namespace, data_dir: Path) -> dict[str, Any]:
    """Spawn the server, time it to ok and to the first frame, watch, stop it."""
    port = free_port()
    command = [sys.executable, "-m", "server", "--host", "127.0.0.1", "--port", str(port)]
    command += ["--models-dir", str(args.models_dir), "--data-dir", str(data_dir)]
    env = os.environ | {
        "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
    }
    spawned = time.monotonic()
    quiet = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL}  # JSON is ours alone
    server = subprocess.Popen(command, env=env, cwd=ROOT, **quiet)
    try:
        async with ClientSession(base_url=f"http://127.0.0.1:{port}") as session:
            result: dict[str, Any] = await until_ok(session, spawned, args.timeout)
            result["health_at_ok"] = (await health(session) or {}).get("inference")
            viewer = Viewer(args.width, args.height)
            try:
                await viewer.connect(session)  # type: ignore[arg-type] - posts like a TestClient
                image = await viewer.next_image(timeout=args.timeout)
                result["first_frame_s"] = time.monotonic() - spawned
                result["first_frame_size"] = f"{image.shape[1]}x{image.shape[0]}"
                result["first_frame_stylized"] = stylized(image, viewer.camera.image)
                if args.watch > 0:
                    result["watch"] = await watch(viewer, session, args.watch)
                result["health_at_end"] = (await health(session) or {}).get("inference")
            finally:
                await viewer.close()
    finally:
        server.terminate()
        server.wait(30)
    return result


def main(argv: list[str] | None = None) -> int:
    """Measure one cold start; print (and optionally merge into --output) its JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models-dir", type=Path, default=ROOT / "models")
    parser.add_argument("--width", type=int, default=640, help="the viewer's camera width")
    parser.add_argument("--height", type=int, default=480, help="the viewer's camera height")
    parser.add_argument("--watch", type=float, default=0.0, help="seconds to keep streaming")
    parser.add_argument("--timeout", type=float, default=300.0)
    parser.add_argument("--output", type=Path, help="merge the result into this JSON file")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="stylefusion-cold-") as tmp:
        result = asyncio.run(measure(args, Path(tmp) / "var"))
    report = {"machine": describe_machine(resolve_device("auto")), **result}
    print(json.dumps(report, indent=2))
    if args.output:
        merge_results(args.output, "cold_start", report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
