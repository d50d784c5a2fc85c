"""Score style folders with the quality yardstick on held-out photos; prints JSON.

    python bench/yardstick.py --models-dir models --photos held-out/ [--styles-dir styles/] \
        [--reference before.json [--reference-key KEY]] [--output bench/results.json --key KEY]

content (MSE at relu2_2) + 5 x style (Gram MSE over relu1_2..relu4_3), photos at 384 px, the
style image at 512 px on its short side (each style folder's style.jpg unless --styles-dir
holds <name>.jpg), mean over photos. Per style and variant: the total and its two terms
(`<variant>_content`, `<variant>_style` = 5 x the style loss: the two sum to the total); each
lite score relative to its full twin; with --reference, each total over the reference's (a
JSON object name -> total or name -> {variant: total}, or this script's own output;
--reference-key picks one key of a bigger file such as bench/results.json). A table goes to
stderr, JSON to stdout; --output merges it into that file under --key, keeping other
benchmarks' keys.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import torch
from results import merge_results

from stylefusion.bench import describe_machine
from stylefusion.errors import StyleFusionError
from stylefusion.style_folder import list_styles
from stylefusion.stylize_files import collect_images
from stylefusion.stylizer import Stylizer
from stylefusion.vgg import VGG19
from stylefusion.yardstick import PHOTO_SIZE, STYLE_SIZE, STYLE_WEIGHT, Score, score

Reference = dict[str, float | dict[str, float]]


def score_models(
    models_dir: Path,
    photos: list[Path],
    styles_dir: Path | None = None,
    device: str = "cpu",
    sizes: tuple[int, int] = (PHOTO_SIZE, STYLE_SIZE),
) -> dict[str, dict[str, float]]:
    """name -> {variant: total, variant_content, variant_style, lite_over_full} for every
    style folder of a models dir."""
    vgg = VGG19().to(device)
    results: dict[str, dict[str, float]] = {}
    for info in list_styles(models_dir):
        original = styles_dir / f"{info.name}.jpg" if styles_dir else None
        style_image = original if original and original.is_file() else info.style_image
        row: dict[str, float] = {}
        for variant in info.variants:
            # eager: scoring runs one shape once, compiling it would cost more than it saves
            stylizer = Stylizer.from_style(info.path, variant, device, compile="off")
            row.update(_terms(variant, score(stylizer, photos, style_image, vgg, sizes)))
        if {"full", "lite"} <= row.keys():
            row["lite_over_full"] = round(row["lite"] / row["full"], 3)
        results[info.name] = row
    return results


def _terms(variant: str, result: Score) -> dict[str, float]:
    """A variant's total and its two terms, rounded."""
    return {
        variant: round(result.total, 4),
        f"{variant}_content": round(result.content, 4),
        f"{variant}_style": round(STYLE_WEIGHT * result.style, 4),  # weighted: the two sum
    }


def read_reference(path: Path, key: str | None = None) -> Reference:
    """Reference totals from a JSON file: name -> total, or name -> {variant: total, ...}."""
    data: Any = json.loads(path.read_text())
    if key is not None:
        data = data.get(key) if isinstance(data, dict) else None
        if data is None:
            raise ValueError(f"{path} has no key {key!r}")
    if isinstance(data, dict) and isinstance(data.get("scores"), dict):
        data = data["scores"]  # this script's own output
    if not isinstance(data, dict):
        raise ValueError(f"{path} does not hold a JSON object of reference scores")
    return {str(k): v for k, v in data.items() if isinstance(v, int | float | dict)}


def over_reference(scores: dict[str, dict[str, float]], reference: Reference) -> None:
    """Add `<variant>_over_reference` to every score the reference has a total for."""
    for name, row in scores.items():
        ref = reference.get(name)
        for variant in ("full", "lite"):
            total = ref.get(variant) if isinstance(ref, dict) else ref
            if variant in row and isinstance(total, int | float) and total > 0:
                row[f"{variant}_over_reference"] = round(row[variant] / total, 3)


def table(scores: dict[str, dict[str, float]]) -> str:
    """The scores as aligned text: one line per style and variant."""
    lines = [f"{'style':<16}{'variant':<8}{'content':>12}{'style':>12}{'5 x style':>12}"
             f"{'total':>12}{'/ ref':>8}"]  # fmt: skip
    for name, row in scores.items():
        for variant in ("full", "lite"):
            if variant not in row:
                continue
            style = row[f"{variant}_style"] / STYLE_WEIGHT
            ratio = row.get(f"{variant}_over_reference")
            lines.append(
                f"{name:<16}{variant:<8}{row[f'{variant}_content']:>12,.0f}{style:>12,.0f}"
                f"{STYLE_WEIGHT * style:>12,.0f}{row[variant]:>12,.0f}"
                + (f"{ratio:>8.3f}" if ratio is not None else f"{'-':>8}")
            )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Score every style and variant; print one JSON object (and the table to stderr)."""
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    args = _parse(argv)
    load = os.getloadavg()
    try:
        reference = read_reference(args.reference, args.reference_key) if args.reference else {}
        photos = [path for path, _ in collect_images([args.photos])]
        sizes = (args.photo_size, args.style_size)
        scores = score_models(args.models_dir, photos, args.styles_dir, args.device, sizes)
    except (StyleFusionError, OSError, ValueError) as exc:
        print(f"yardstick: error: {exc}", file=sys.stderr)
        return 2
    over_reference(scores, reference)
    report = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": describe_machine(torch.device(args.device)),
        "load_average": [round(v, 2) for v in (*load, *os.getloadavg())],  # at start, at end
        "models_dir": str(args.models_dir),
        "styles_dir": str(args.styles_dir) if args.styles_dir else None,
        "photos": [p.name for p in photos],
        "sizes": {"photo": args.photo_size, "style_image": args.style_size},
        "reference": str(args.reference) if args.reference else None,
        "scores": scores,
    }
    print(table(scores), file=sys.stderr)
    if args.output:
        merge_results(args.output, args.key, report)
    json.dump(report, sys.stdout, indent=2)
    print()
    return 0


def _parse(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--models-dir", type=Path, default=Path("models"))
    p.add_argument("--photos", type=Path, required=True, help="held-out photos (folder)")
    p.add_argument("--styles-dir", type=Path, help="original style images, <name>.jpg")
    p.add_argument("--device", default="cpu")
    p.add_argument("--photo-size", type=int, default=PHOTO_SIZE, help="the yardstick's: 384")
    p.add_argument("--style-size", type=int, default=STYLE_SIZE, help="the yardstick's: 512")
    p.add_argument("--reference", type=Path, help="JSON of reference totals (see above)")
    p.add_argument("--reference-key", help="the key of --reference that holds them")
    p.add_argument("--output", type=Path, help="a results JSON to merge the report into")
    p.add_argument("--key", default="yardstick", help="its key in --output (yardstick)")
    return p.parse_args(argv)


if __name__ == "__main__":
    sys.exit(main())
