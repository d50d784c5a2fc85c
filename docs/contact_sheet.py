"""Render the README's contact sheet: every shipped style on two photos.

    python docs/contact_sheet.py --photos a.jpg b.jpg --output docs/styles.jpg [--models-dir models]
    python docs/contact_sheet.py --photos face.jpg city.jpg --output before-after.png \
        --models-dir models /tmp/multi --labels single multi

Columns: each photo, then one column per style (its thumbnail on top); with several models dirs,
each style's columns sit side by side, one per dir, labelled (--labels, default the dirs'
names). The variant run is the one the device would use (lite on CPU) unless --variant says
otherwise.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from stylefusion.images import load_image
from stylefusion.style_folder import StyleInfo, list_styles
from stylefusion.stylizer import Stylizer

CELL = 256
LINE = 14  # one line of the header's text


def cell(rgb: np.ndarray) -> Image.Image:
    """Centre-crop to a square and scale to CELL."""
    img = Image.fromarray(rgb)
    side = min(img.size)
    left, top = (img.width - side) // 2, (img.height - side) // 2
    return img.crop((left, top, left + side, top + side)).resize((CELL, CELL))


def columns(models_dirs: list[Path], labels: list[str]) -> list[tuple[str, StyleInfo]]:
    """(label, style) per column: each style's folders from every dir, side by side, in the
    order the dirs list them (a style only one dir has gets one column)."""
    sets = [{info.name: info for info in list_styles(folder)} for folder in models_dirs]
    names = list(dict.fromkeys(name for styles in sets for name in styles))
    return [
        (label, styles[name])
        for name in names
        for label, styles in zip(labels, sets, strict=True)
        if name in styles
    ]


def draw_sheet(
    cols: list[tuple[str, StyleInfo]], photos: list[np.ndarray], variant: str | None, device: str
) -> Image.Image:
    """The sheet: a header row (names, labels, thumbnails), then one row per photo."""
    header = LINE * (2 if any(label for label, _ in cols) else 1) + 8
    sheet = Image.new("RGB", ((len(cols) + 1) * CELL, header + (len(photos) + 1) * CELL), "white")
    draw = ImageDraw.Draw(sheet)
    for col, (label, info) in enumerate(cols, start=1):
        draw.text((col * CELL + 8, 4), info.display_name, fill="black")
        if label:
            draw.text((col * CELL + 8, 4 + LINE), label, fill="dimgray")
        if info.style_image:
            sheet.paste(cell(load_image(info.style_image)), (col * CELL, header))
        stylizer = Stylizer.from_style(info.path, variant, device)
        for row, photo in enumerate(photos, start=1):
            sheet.paste(cell(stylizer(photo)[0]), (col * CELL, header + row * CELL))
    for row, photo in enumerate(photos, start=1):
        sheet.paste(cell(photo), (0, header + row * CELL))
    return sheet


def main(argv: list[str] | None = None) -> int:
    """Stylize each photo with each style and tile the results into one image."""
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--photos", type=Path, nargs="+", required=True)
    p.add_argument("--output", type=Path, default=Path("docs/styles.jpg"))
    p.add_argument("--models-dir", type=Path, nargs="+", default=[Path("models")])
    p.add_argument("--labels", nargs="+", help="one per models dir (default: their names)")
    p.add_argument("--variant", choices=("full", "lite"))
    p.add_argument("--device", default="auto")
    args = p.parse_args(argv)
    if args.labels and len(args.labels) != len(args.models_dir):
        p.error("give one --labels entry per --models-dir")
    several = len(args.models_dir) > 1
    labels = args.labels or [d.name if several else "" for d in args.models_dir]
    photos = [load_image(path, max_side=768) for path in args.photos]
    sheet = draw_sheet(columns(args.models_dir, labels), photos, args.variant, args.device)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    sheet.save(args.output, quality=88)
    return 0


if __name__ == "__main__":
    sys.exit(main())
