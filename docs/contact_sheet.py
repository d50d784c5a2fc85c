"""Render the README's contact sheet: every shipped style on two photos.

    python docs/contact_sheet.py --photos a.jpg b.jpg --output docs/styles.jpg [--models-dir models]

Columns: each photo, then one column per style (its thumbnail on top); the variant run is the
one the device would use (lite on CPU) unless --variant says otherwise.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from stylefusion.images import load_image
from stylefusion.style_folder import list_styles
from stylefusion.stylizer import Stylizer

CELL = 256
LABEL = 24


def cell(rgb: np.ndarray) -> Image.Image:
    """Centre-crop to a square and scale to CELL."""
    img = Image.fromarray(rgb)
    side = min(img.size)
    left, top = (img.width - side) // 2, (img.height - side) // 2
    return img.crop((left, top, left + side, top + side)).resize((CELL, CELL))


def main(argv: list[str] | None = None) -> int:
    """Stylize each photo with each style and tile the results into one JPEG."""
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--photos", type=Path, nargs="+", required=True)
    p.add_argument("--output", type=Path, default=Path("docs/styles.jpg"))
    p.add_argument("--models-dir", type=Path, default=Path("models"))
    p.add_argument("--variant", choices=("full", "lite"))
    p.add_argument("--device", default="auto")
    args = p.parse_args(argv)
    styles = list_styles(args.models_dir)
    photos = [load_image(path, max_side=768) for path in args.photos]
    sheet = Image.new("RGB", ((len(styles) + 1) * CELL, LABEL + (len(photos) + 1) * CELL), "white")
    draw = ImageDraw.Draw(sheet)
    for col, info in enumerate(styles, start=1):
        draw.text((col * CELL + 8, 6), info.display_name, fill="black")
        if info.style_image:
            sheet.paste(cell(load_image(info.style_image)), (col * CELL, LABEL))
        stylizer = Stylizer.from_style(info.path, args.variant, args.device)
        for row, photo in enumerate(photos, start=1):
            sheet.paste(cell(stylizer(photo)[0]), (col * CELL, LABEL + row * CELL))
    for row, photo in enumerate(photos, start=1):
        sheet.paste(cell(photo), (0, LABEL + row * CELL))
    args.output.parent.mkdir(parents=True, exist_ok=True)
    sheet.save(args.output, quality=88)
    return 0


if __name__ == "__main__":
    sys.exit(main())
