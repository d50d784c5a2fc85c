"""Copy the shared training data into .gpu-data/ for a GPU device call (bench/gpu.sh part 2).

    python bench/gpu_data.py [--shared ../shared/data] [--out .gpu-data]

styles/ as they are; content/ without the yardstick's held-out photos, re-encoded (JPEG 90,
short side at most 512 px: training reads them at twice its 256 px crops, so nothing is lost)
so the call stays under the device's 64 MiB; heldout/ as they are.
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

from stylefusion.images import find_images, read_rgb, save_image
from stylefusion.yardstick import HELD_OUT_PHOTOS

SHORT_SIDE = 512


def main(argv: list[str] | None = None) -> int:
    """Lay out styles/, content/ and heldout/; print what was copied."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--shared", type=Path, default=Path("../shared/data"))
    p.add_argument("--out", type=Path, default=Path(".gpu-data"))
    args = p.parse_args(argv)
    shutil.rmtree(args.out, ignore_errors=True)
    for folder in ("styles", "content", "heldout"):
        (args.out / folder).mkdir(parents=True)
    for style in sorted((args.shared / "styles").glob("*.jpg")):
        shutil.copy2(style, args.out / "styles" / style.name)
    for photo in find_images(args.shared / "content"):
        if photo.stem in HELD_OUT_PHOTOS:
            shutil.copy2(photo, args.out / "heldout" / photo.name)
        else:
            image = read_rgb(photo, short_side=SHORT_SIDE)
            save_image(args.out / "content" / f"{photo.stem}.jpg", image, quality=90)
    for folder in ("styles", "content", "heldout"):
        files = list((args.out / folder).iterdir())
        size = sum(f.stat().st_size for f in files) / 2**20
        print(f"{folder}: {len(files)} files, {size:.1f} MiB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
