"""Score style folders with the quality yardstick on held-out photos; prints JSON.

    python bench/yardstick.py --models-dir models --photos held-out/ [--styles-dir styles/]

content (MSE at relu2_2) + 5 x style (Gram MSE over relu1_2..relu4_3), photos at 384 px, the
style image at 512 px on its short side (each style folder's style.jpg unless --styles-dir
holds <name>.jpg), mean over photos; also each lite score relative to its full twin, and each
variant's two terms apart: `<variant>_content` and `<variant>_style` (5 x style), which sum to it.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from stylefusion.style_folder import list_styles
from stylefusion.stylize_files import collect_images
from stylefusion.stylizer import Stylizer
from stylefusion.vgg import VGG19
from stylefusion.yardstick import PHOTO_SIZE, STYLE_SIZE, score


def score_models(
    models_dir: Path,
    photos: list[Path],
    styles_dir: Path | None = None,
    device: str = "cpu",
    sizes: tuple[int, int] = (PHOTO_SIZE, STYLE_SIZE),
) -> dict[str, dict[str, float]]:
    """name -> {variant: yardstick, its two terms, lite_over_full} for every style folder."""
    vgg = VGG19().to(device)
    results: dict[str, dict[str, float]] = {}
    for info in list_styles(models_dir):
        original = styles_dir / f"{info.name}.jpg" if styles_dir else None
        style_image = original if original and original.is_file() else info.style_image
        row: dict[str, float] = {}
        for variant in info.variants:
            # eager: scoring runs one shape once, compiling it would cost more than it saves
            stylizer = Stylizer.from_style(info.path, variant, device, compile="off")
            result = score(stylizer, photos, style_image, vgg, sizes)
            row[variant] = round(result.total, 4)
            row[f"{variant}_content"] = round(result.content, 4)
            row[f"{variant}_style"] = round(result.total - result.content, 4)
        if {"full", "lite"} <= row.keys():
            row["lite_over_full"] = round(row["lite"] / row["full"], 3)
        results[info.name] = row
    return results


def main(argv: list[str] | None = None) -> int:
    """Score every style and variant; print one JSON object."""
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--models-dir", type=Path, default=Path("models"))
    p.add_argument("--photos", type=Path, required=True, help="held-out photos (folder)")
    p.add_argument("--styles-dir", type=Path, help="original style images, <name>.jpg")
    p.add_argument("--device", default="cpu")
    args = p.parse_args(argv)
    photos = [path for path, _ in collect_images([args.photos])]
    results = score_models(args.models_dir, photos, args.styles_dir, args.device)
    json.dump({"photos": [p.name for p in photos], "scores": results}, sys.stdout, indent=2)
    print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
