"""Make a multi-style run's style folders the shipped styles of a models dir.

    python bench/ship_styles.py /work/ckpt/snapshot --output models [--yardstick yard.json]

Copies each style folder of SOURCE (bench/train_multistyle.py's WORK/models or WORK/snapshot,
or bench/checkpoint_styles.py's output) over the folder of the same name in --output, with
only the backbone its styles point at, and marks each `"shipped": true` (hidden, never
deleted). A replaced folder's old weights (a single-style `lite.safetensors`) go with it;
backbones in --output that no style points at any more are removed. --yardstick (this
benchmark's JSON: bench/yardstick.py's stdout) records each style's score in its meta.json.
"""

from __future__ import annotations

import argparse
import json
import logging
import shutil
import sys
from pathlib import Path
from typing import Any

from stylefusion.style_folder import StyleInfo, list_styles

log = logging.getLogger("ship_styles")

BACKBONES = ".backbones"


def ship(source: Path, output: Path, scores: dict[str, Any] | None = None) -> list[str]:
    """Copy SOURCE's styles (and the backbones they use) into output as shipped styles."""
    styles = list_styles(source)
    if not styles:
        raise SystemExit(f"no style folders in {source}")
    used = _backbones_of(styles)
    for backbone in sorted(used):
        target = output / BACKBONES / backbone
        if not target.is_dir():
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copytree(source / BACKBONES / backbone, target)
    for style in styles:
        target = output / style.name
        staged = output / f".{style.name}.shipping"
        shutil.rmtree(staged, ignore_errors=True)
        shutil.copytree(source / style.name, staged)
        meta = dict(style.meta, shipped=True)
        if scores and style.name in scores:
            meta["yardstick"] = scores[style.name]
        (staged / "meta.json").write_text(json.dumps(meta, indent=2, sort_keys=True) + "\n")
        shutil.rmtree(target, ignore_errors=True)
        staged.rename(target)
    _drop_unused_backbones(output)
    log.info("shipped %d styles on %s", len(styles), sorted(used))
    return [s.name for s in styles]


def _backbones_of(styles: list[StyleInfo]) -> set[str]:
    """The shared backbones the styles' variants point at."""
    ids = {s.backbone_id(variant) for s in styles for variant in s.variants}
    return {i for i in ids if i is not None}


def _drop_unused_backbones(models: Path) -> None:
    """Remove backbones no style folder of the models dir points at."""
    root = models / BACKBONES
    if not root.is_dir():
        return
    used = _backbones_of(list_styles(models))
    for backbone in root.iterdir():
        if backbone.name not in used:
            shutil.rmtree(backbone)


def main(argv: list[str] | None = None) -> int:
    """Ship the styles; print their names."""
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("source", type=Path, help="a models dir of one multi-style run's styles")
    p.add_argument("--output", type=Path, default=Path("models"))
    p.add_argument("--yardstick", type=Path, help="bench/yardstick.py's JSON for these styles")
    args = p.parse_args(argv)
    scores = None
    if args.yardstick:
        report = json.loads(args.yardstick.read_text())
        scores = report.get("scores", report)
    for name in ship(args.source, args.output, scores):
        print(name)
    return 0


if __name__ == "__main__":
    sys.exit(main())
