"""Scale-out benchmark: viewers per node, job throughput with 1 vs 2 Ray workers; JSON out.

    python bench/cluster.py --output bench/cluster.json            # the README's numbers
    python bench/cluster.py --tiny --output /tmp/cluster.json      # a quick check that it runs

Viewers: N WebRTC viewers (bench/live.py's peers) on one node; the node holds the largest N
whose slowest viewer still gets --min-fps. Jobs: --jobs training jobs submitted at once through
the job API of a node with --jobs-backend ray and --max-jobs W (W Ray workers); jobs per minute
from the first submit to the last done. --ray-address measures a real cluster instead of a
local Ray.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web
from live import instrument_server_track
from live import run as run_viewers

from server.app import setup_guards
from server.config import ServerConfig
from server.jobs import setup_jobs
from server.keys import CONFIG
from stylefusion.images import save_image
from stylefusion.style_folder import save_transformer
from stylefusion.transformer_net import build_transformer

log = logging.getLogger("bench.cluster")
TOKEN = "bench-cluster-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


def viewers_per_node(
    models: Path,
    counts: list[int],
    size: tuple[int, int],
    seconds: float,
    min_fps: float,
    compile: bool = True,
) -> dict[str, Any]:
    """fps of each viewer for each viewer count on one node; the most that keep min_fps."""
    runs = []
    for count in counts:
        result = asyncio.run(run_viewers(models, count, size, seconds, True, compile=compile))
        fps = [peer["fps"] for peer in result["per_peer"]]
        runs.append({"viewers": count, "fps_min": min(fps), "fps_mean": sum(fps) / len(fps)})
        log.info("%d viewer(s): slowest %.1f fps", count, min(fps))
    held = [r["viewers"] for r in runs if r["fps_min"] >= min_fps]
    return {
        "min_fps": min_fps,
        "size": f"{size[0]}x{size[1]}",
        "runs": runs,
        "viewers_per_node": max(held, default=0),
    }


def job_throughput(
    tmp: Path, workers: int, jobs: int, train: dict[str, str], address: str | None
) -> dict[str, Any]:
    """Run `jobs` training jobs on `workers` Ray workers; jobs per minute."""
    return asyncio.run(_job_throughput(tmp / f"ray-{workers}", workers, jobs, train, address))


async def _job_throughput(
    root: Path, workers: int, jobs: int, train: dict[str, str], address: str | None
) -> dict[str, Any]:
    painting = _synthetic_photos(root / "var" / "content", count=8)
    config = ServerConfig(
        models_dir=root / "models",
        data_dir=root / "var",
        admin_token=TOKEN,
        jobs_backend="ray",
        ray_address=address,
        max_jobs=workers,
    )
    app = web.Application()
    app[CONFIG] = config
    setup_guards(app)
    setup_jobs(app)
    runner, port = await _serve(app)
    url = f"http://127.0.0.1:{port}"
    try:
        async with aiohttp.ClientSession() as session:
            started = time.perf_counter()
            ids = [await _submit(session, url, painting, f"bench-{i}", train) for i in range(jobs)]
            states = [await _wait_done(session, url, job_id) for job_id in ids]
            elapsed = time.perf_counter() - started
    finally:
        await runner.cleanup()  # stops the local Ray it started
    log.info("%d Ray worker(s): %d jobs in %.1f s", workers, jobs, elapsed)
    return {
        "ray_workers": workers,
        "jobs": jobs,
        "done": states.count("done"),
        "seconds": round(elapsed, 2),
        "jobs_per_min": round(60 * jobs / elapsed, 2),
        "train": train,
    }


async def _serve(app: web.Application) -> tuple[web.AppRunner, int]:
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    return runner, site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]


async def _submit(
    session: aiohttp.ClientSession, url: str, painting: Path, name: str, train: dict[str, str]
) -> str:
    data = aiohttp.FormData()
    for key, value in ({"name": name} | train).items():
        data.add_field(key, value)
    data.add_field("style_image", painting.read_bytes(), filename=painting.name)
    async with session.post(f"{url}/api/jobs/train", data=data, headers=AUTH) as resp:
        body = await resp.json()
        assert resp.status == 202, body
        return body["id"]


async def _wait_done(session: aiohttp.ClientSession, url: str, job_id: str) -> str:
    while True:
        async with session.get(f"{url}/api/jobs/{job_id}", headers=AUTH) as resp:
            state = (await resp.json())["state"]
        if state in ("done", "failed", "cancelled"):
            return state
        await asyncio.sleep(0.2)


def _synthetic_photos(folder: Path, count: int, side: int = 160) -> Path:
    """A few seeded photos to train on; the first doubles as the painting."""
    import numpy as np

    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for i in range(count):
        save_image(folder / f"photo{i}.png", rng.integers(0, 256, (side, side, 3), dtype=np.uint8))
    return folder / "photo0.png"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """Command-line options."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--output", type=Path, help="write the JSON here too")
    p.add_argument("--tiny", action="store_true", help="tiny sizes: prove it runs, in seconds")
    p.add_argument("--viewers", type=int, nargs="+", default=[1, 2, 3, 4, 6, 8])
    p.add_argument("--size", default="320x240", help="viewer camera size")
    p.add_argument("--seconds", type=float, default=12.0, help="per viewer count")
    p.add_argument("--min-fps", type=float, default=15.0, help="what a viewer must still get")
    p.add_argument("--no-compile", action="store_true", help="eager model on the live node")
    p.add_argument("--workers", type=int, nargs="+", default=[1, 2], help="Ray workers to try")
    p.add_argument("--jobs", type=int, default=4, help="training jobs per worker count")
    p.add_argument("--steps", default="60", help="steps of each training job")
    p.add_argument("--train-size", default="128", help="crop size of each training job")
    p.add_argument("--ray-address", help="a running Ray cluster (default: a local Ray)")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Run both parts and print one JSON document."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    args = parse_args(argv)
    if args.tiny:
        args.viewers, args.size, args.seconds, args.jobs = [1], "64x48", 5.0, 2
        args.no_compile = True  # compiling costs minutes on a small CPU
        args.steps, args.train_size = "3", "32"
    size = tuple(int(v) for v in args.size.lower().split("x"))
    train = {"steps": args.steps, "size": args.train_size, "variant": "lite", "batch_size": "2"}
    instrument_server_track()
    with tempfile.TemporaryDirectory() as tmp:
        models = Path(tmp) / "models"
        save_transformer(models / "bench", "lite", build_transformer("lite"), name="bench")
        viewers = viewers_per_node(
            models, args.viewers, size, args.seconds, args.min_fps, not args.no_compile
        )
        jobs = [
            job_throughput(Path(tmp), w, args.jobs, train, args.ray_address) for w in args.workers
        ]
    result = {"viewers": viewers, "jobs": jobs, "tiny": args.tiny}
    text = json.dumps(result, indent=2)
    if args.output is not None:
        args.output.write_text(text + "\n")
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
