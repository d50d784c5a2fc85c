"""What a clip costs on this machine: the lite model's seconds per frame at 360/480/720 px, and
a real clip stylized end to end at the default size, as the admin page's clip job runs it (one
torch thread: the worker leaves the other cores to the live server).

    python bench/clip.py --clip /work/shared/data/clips/megamind.avi --output bench/results.json

JSON out (key "clip"): per side, the frame size and the median seconds per frame (the first
call, which lays out the weights, left out); for the clip, its length, frames, the size they
were painted at, the wall seconds and the frames per second. `--seconds S` stylizes only the
clip's first S seconds (cut by stream copy, no re-encode); `--dry-run` runs tiny sizes.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import av
import numpy as np
import torch
from results import merge_results

from stylefusion.bench import describe_machine
from stylefusion.devices import default_clip_side, resolve_device
from stylefusion.stylizer import Stylizer
from stylefusion.video import VideoConfig, even_size, probe_video, stylize_video

ROOT = Path(__file__).resolve().parents[1]
SIDES = (360, 480, 720)


def per_frame(style: Path, width: int, height: int, sides: tuple[int, ...], repeats: int) -> dict:
    """Median seconds per frame of the lite model at each longest side, one thread."""
    stylizer = Stylizer.from_style(style, "lite", "cpu")
    rows: dict[str, Any] = {}
    for side in sides:
        w, h = even_size(width, height, side)
        frame = np.random.default_rng(0).integers(0, 256, (1, h, w, 3), dtype=np.uint8)
        stylizer(frame)  # the first call lays out the weights: not the clip's pace
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            stylizer(frame)
            times.append(time.perf_counter() - start)
        rows[str(side)] = {"size": f"{w}x{h}", "s_per_frame": round(float(np.median(times)), 3)}
    return rows


def first_seconds(clip: Path, seconds: float, folder: Path) -> Path:
    """The clip's first `seconds`, cut by stream copy into an MKV (any codec fits)."""
    out = folder / "cut.mkv"
    with av.open(str(clip)) as source, av.open(str(out), "w") as sink:
        streams = {s.index: sink.add_stream_from_template(s) for s in source.streams}
        for packet in source.demux():
            if packet.dts is None or packet.stream.index not in streams:
                continue
            if packet.pts is not None and float(packet.pts * packet.time_base) >= seconds:
                continue
            packet.stream = streams[packet.stream.index]
            sink.mux(packet)
    return out


def whole_clip(clip: Path, style: Path, max_side: int | None) -> dict[str, Any]:
    """Stylize a clip as a clip job does (lite on CPU), timed end to end."""
    info = probe_video(clip)
    with tempfile.TemporaryDirectory() as tmp:
        config = VideoConfig(style=style, device="cpu", max_side=max_side)
        start = time.perf_counter()
        result = stylize_video(clip, Path(tmp) / "out.mp4", config)
        seconds = time.perf_counter() - start
    return {
        "max_side": max_side,
        "clip_seconds": info.duration_s,
        "frames": result.frames,
        "painted_at": f"{result.width}x{result.height}",
        "sound": result.has_audio,
        "wall_s": round(seconds, 1),
        "fps": round(result.frames / seconds, 2),
    }


def main(argv: list[str] | None = None) -> int:
    """Time the model per size and one clip; print (and merge) the JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clip", type=Path, required=True, help="a real clip")
    parser.add_argument("--seconds", type=float, help="only the clip's first S seconds")
    parser.add_argument("--style", type=Path, default=ROOT / "models" / "candy")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--dry-run", action="store_true", help="tiny sizes, one repeat")
    parser.add_argument("--output", type=Path, help="merge the result into this JSON file")
    args = parser.parse_args(argv)
    machine = describe_machine(resolve_device("cpu"))
    torch.set_num_threads(1)  # as the job worker runs beside the live server
    info = probe_video(args.clip)
    sides = (32, 48) if args.dry_run else SIDES
    side = 32 if args.dry_run else default_clip_side(resolve_device("cpu"))
    repeats = 1 if args.dry_run else args.repeats
    with tempfile.TemporaryDirectory() as tmp:
        clip = first_seconds(args.clip, args.seconds, Path(tmp)) if args.seconds else args.clip
        result = {
            "machine": machine,
            "threads": 1,
            "load_before": os.getloadavg()[0],  # other work on the box skews every number
            "per_frame": per_frame(args.style, info.width, info.height, sides, repeats),
            "clip": {"file": args.clip.name, **whole_clip(clip, args.style, side)},
        }
    print(json.dumps(result, indent=2))
    if args.output is not None:
        merge_results(args.output, "clip", result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
