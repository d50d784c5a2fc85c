"""Style folders from a multi-style training checkpoint: measure a run before it ends.

    python bench/checkpoint_styles.py /work/ckpt/multistyle.pt --output /tmp/multi \
        --styles-dir ../shared/data/styles [--shipped models]

Reads the checkpoint bench/train_multistyle.py keeps (weights, step, smoothed losses; never
written to), stores its backbone in OUTPUT/.backbones/ and one style folder per style, as the
run's own snapshots would be; display names come from --shipped's folders of the same name.
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import sys
from pathlib import Path
from typing import Any

import torch

from stylefusion.architecture import VARIANTS, TransformerConfig
from stylefusion.backbone import write_backbone
from stylefusion.style_folder import read_style, save_shared_style
from stylefusion.transformer_net import TransformerNet

log = logging.getLogger("checkpoint_styles")


def write_checkpoint_styles(
    checkpoint: Path, output: Path, styles_dir: Path, shipped: Path | None = None
) -> list[Path]:
    """One style folder per style of a multi-style checkpoint, in output; their paths."""
    payload = torch.load(checkpoint, map_location="cpu", weights_only=True)
    names: list[str] = payload["fingerprint"]["styles"]
    config = TransformerConfig.from_dict(payload["fingerprint"]["architecture"])
    model = TransformerNet(config)
    model.load_state_dict(payload["model"])
    step = int(payload["step"])
    backbone_id = write_backbone(output, model, {"styles": names, "checkpoint_step": step})
    training = {"checkpoint": str(checkpoint), "steps": step, "seconds": payload["elapsed_s"]}
    folders = []
    for row, name in enumerate(names):
        folder = output / name
        save_shared_style(
            folder, _variant_of(config), model, model.style_table[row].detach(), backbone_id,
            name=name, display_name=_display_name(shipped, name), training=training,
            losses=_losses(payload["ema"], name), style_image=styles_dir / f"{name}.jpg",
        )  # fmt: skip
        folders.append(folder)
    log.info("step %d: %d styles on backbone %s in %s", step, len(names), backbone_id, output)
    return folders


def _variant_of(config: TransformerConfig) -> str:
    """The named variant whose widths the network has (lite unless it is the full one)."""
    single = dataclasses.replace(config, styles=0)
    return next((name for name, known in VARIANTS.items() if known == single), "lite")


def _display_name(shipped: Path | None, name: str) -> str | None:
    """The display name of the shipped style of that name, if there is one."""
    if shipped is None or not (shipped / name).is_dir():
        return None
    return read_style(shipped / name).display_name


def _losses(ema: dict[str, Any], name: str) -> dict[str, float]:
    """The style's smoothed loss terms at the checkpoint."""
    prefix = f"{name}/"
    return {k.removeprefix(prefix): float(v) for k, v in ema.items() if k.startswith(prefix)}


def main(argv: list[str] | None = None) -> int:
    """Write the style folders; print their paths."""
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("checkpoint", type=Path)
    p.add_argument("--output", type=Path, required=True, help="a models dir to write into")
    p.add_argument("--styles-dir", type=Path, required=True, help="the paintings, <name>.jpg")
    p.add_argument("--shipped", type=Path, default=Path("models"), help="for display names")
    args = p.parse_args(argv)
    for folder in write_checkpoint_styles(args.checkpoint, args.output, args.styles_dir,
                                          args.shipped):  # fmt: skip
        print(folder)
    return 0


if __name__ == "__main__":
    sys.exit(main())
