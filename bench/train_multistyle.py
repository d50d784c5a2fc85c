"""Train the shipped styles into one multi-style lite network on the CPU, resumably.

    python bench/train_multistyle.py --styles-dir ../shared/data/styles \
        --content ../shared/data/content --shipped models --work /work/ckpt [--threads 1]

Two phases, each resumable from its checkpoint under --work (run the same command again):
  1. norms (--norms-steps, default 900): the shared convolutions are --init-backbone's
     (Candy's) and frozen; each style's norms start from its own shipped network and are
     fitted at 10x the learning rate. Fitting Udnie's norms alone to Candy's convolutions for
     150 steps scored 258k on the yardstick, against 432k for Udnie's own shipped network.
     Written to WORK/norms/.
  2. joint: convolutions and norms together (norms at --norms-lr-scale x the rate) with the
     temporal term, from phase 1's styles; style folders written to WORK/models/ at the end,
     snapshots to WORK/snapshot/ on the way.
(Pixel-MSE distillation of the six shipped networks into one was tried first: after 530
steps every style was a blurred blob, Candy's yardstick 4.3M against its network's 777k.)
The yardstick's held-out photos are left out of the content (a linked copy in WORK/content).
Pause with SIGSTOP / SIGCONT; a killed run resumes from its last checkpoint.
"""

from __future__ import annotations

import argparse
import logging
import shlex
import sys
import time
from pathlib import Path

from stylefusion.images import find_images
from stylefusion.multistyle_trainer import train_styles
from stylefusion.progress import Progress
from stylefusion.style_folder import read_style
from stylefusion.train_config import MotionConfig, MultiStyleConfig, StyleSource
from stylefusion.yardstick import HELD_OUT_PHOTOS

log = logging.getLogger("train_multistyle")

WHY = (
    (
        "content_weight, style_weight",
        "1 and 5: the yardstick's own weighting (content + 5 x "
        "style), so training lowers the number the styles are judged by; the shipped single-style "
        "networks used the same, and their faces and buildings stay readable",
    ),
    (
        "tv_weight",
        "1000 as the shipped styles: the TV term is ~0.03% of the loss, a light "
        "smoothing of single-pixel noise",
    ),
    (
        "size, batch_size",
        "128 px crops, batch 4: measured the cheapest per image on a 2-core "
        "CPU after batch 8 (0.58 vs 0.53 s per 128 px image, fp32, channels-last) while giving "
        "twice the optimiser steps; 192 px costs 0.77 s per 128 px of area",
    ),
    (
        "mixed_precision",
        "off: this CPU has no native bf16 (AVX2 only; a bf16 VGG step was 50x "
        "slower than fp32), so the fp32 loss network is the fast one here",
    ),
    ("channels_last", "on: 18% faster steps of the fp32 loss network (2.34 vs 2.84 s/step)"),
    (
        "init",
        "shared convolutions from the shipped Candy lite network, each style's norms from its "
        "own shipped network; phase 1 then fits the norms alone to Candy's frozen convolutions "
        "(Udnie's norms alone, 150 steps: yardstick 258k vs its own network's 432k); pixel-MSE "
        "distillation of all six was tried first and blurred them",
    ),
    (
        "lr",
        "convolutions 5e-4 decaying to 5e-5 (half the from-scratch rate: the start is "
        "trained); norms 10x that (norms_lr_scale), the rate that fitted Udnie in 150 steps",
    ),
    (
        "motion.weight",
        "5e6: the temporal MSE (pixels in [0, 1]) was ~0.005 at the start, so "
        "the term is ~25k, a few % of the loss: enough to pin textures to moving content without "
        "outweighing the style term",
    ),
)


def content_folder(source: Path, work: Path) -> Path:
    """WORK/content: links to every training photo except the yardstick's held-out ones."""
    folder = work / "content"
    folder.mkdir(parents=True, exist_ok=True)
    for photo in find_images(source):
        link = folder / photo.name
        if photo.stem not in HELD_OUT_PHOTOS and not link.exists():
            link.symlink_to(photo.resolve())
    return folder


def main(argv: list[str] | None = None) -> int:
    """Run (or resume) both phases; log progress to WORK/train.log."""
    args = _parse(argv)
    work: Path = args.work
    work.mkdir(parents=True, exist_ok=True)
    logging.basicConfig(
        filename=work / "train.log",
        level=logging.INFO,
        format="%(asctime)s %(name)s %(levelname)s %(message)s",
    )
    command = "python bench/train_multistyle.py " + shlex.join(argv or sys.argv[1:])
    content = content_folder(args.content, work)
    names = [s.strip() for s in args.styles.split(",")]
    base = dict(
        content_dir=content,
        variant="lite",
        size=args.size,
        batch_size=args.batch_size,
        threads=args.threads,
        device="cpu",
        resume=True,
        overwrite=True,
        checkpoint_every_s=args.checkpoint_every,
        channels_last=True,
        mixed_precision=False,
        preview_every=0,
        command=command,
        notes=WHY,
    )
    fitted = work / "norms"
    if args.norms_steps and not _complete(fitted, names):
        config = MultiStyleConfig(
            styles=_sources(args, names, args.shipped),
            output_dir=fitted,
            steps=args.norms_steps,
            lr=args.norms_lr,
            lr_final=args.norms_lr / 10,
            norms_lr_scale=args.norms_lr_scale,
            init_backbone=args.shipped / args.init_backbone,
            freeze_backbone=True,
            checkpoint_path=work / "norms.pt",
            **base,
        )
        log.info("phase 1: fitting the norms of %s to frozen convolutions", names)
        train_styles(config, progress=_logger(args.log_every))
    start = fitted if args.norms_steps else args.shipped
    motion = MotionConfig(weight=args.temporal_weight, noise_std=args.noise_std)
    config = MultiStyleConfig(
        styles=_sources(args, names, start),
        output_dir=work / "models",
        steps=args.steps,
        lr=args.lr,
        lr_final=args.lr / 10,
        norms_lr_scale=args.norms_lr_scale,
        style_weight=args.style_weight,
        content_weight=args.content_weight,
        tv_weight=args.tv_weight,
        motion=motion,
        init_backbone=start / args.init_backbone,
        checkpoint_path=work / "multistyle.pt",
        snapshot_every=args.snapshot_every,
        snapshot_dir=work / "snapshot",
        **base,
    )
    log.info("phase 2: perceptual training of %s", names)
    result = train_styles(config, progress=_logger(args.log_every))
    log.info("done: %s on backbone %s", [str(f) for f in result.folders], result.backbone_id)
    return 0


def _sources(args: argparse.Namespace, names: list[str], start: Path) -> tuple[StyleSource, ...]:
    """The styles, each starting from its norms in the `start` models dir."""
    return tuple(
        StyleSource(
            n,
            args.styles_dir / f"{n}.jpg",
            display_name=read_style(args.shipped / n).display_name,
            init_from=start / n,
        )
        for n in names
    )


def _complete(folder: Path, names: list[str]) -> bool:
    """Whether a phase already wrote every style."""
    return all((folder / n / "meta.json").is_file() for n in names)


def _logger(every: int):
    """A progress callback that logs the losses every `every` steps."""
    started = time.monotonic()

    def report(p: Progress) -> None:
        if p.done % every == 0:
            terms = " ".join(f"{k}={v:.4g}" for k, v in sorted(p.metrics.items()))
            rate = f"{p.rate:.3g} img/s" if p.rate else "?"
            log.info("step %d/%d %s (%s, %.0f s)", p.done, p.total, terms, rate,
                     time.monotonic() - started)  # fmt: skip

    return report


def _parse(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--styles-dir", type=Path, default=Path("../shared/data/styles"))
    p.add_argument("--content", type=Path, default=Path("../shared/data/content"))
    p.add_argument("--shipped", type=Path, default=Path("models"), help="single-style styles")
    p.add_argument("--work", type=Path, required=True, help="checkpoints, log, outputs")
    p.add_argument("--styles", default="candy,mosaic,rain-princess,starry-night,sunflower,udnie")
    p.add_argument("--init-backbone", default="candy", help="shipped style whose convs start")
    p.add_argument("--norms-steps", type=int, default=900, help="phase 1; 0: skip it")
    p.add_argument("--norms-lr", type=float, default=1e-3, help="phase 1 (x the scale)")
    p.add_argument("--norms-lr-scale", type=float, default=10.0)
    p.add_argument("--steps", type=int, default=30000)
    p.add_argument("--lr", type=float, default=5e-4)
    p.add_argument("--size", type=int, default=128)
    p.add_argument("--batch-size", type=int, default=4)
    p.add_argument("--content-weight", type=float, default=1.0)
    p.add_argument("--style-weight", type=float, default=5.0)
    p.add_argument("--tv-weight", type=float, default=1000.0)
    p.add_argument("--temporal-weight", type=float, default=0.0)
    p.add_argument("--noise-std", type=float, default=0.02)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--checkpoint-every", type=float, default=180.0)
    p.add_argument("--snapshot-every", type=int, default=1000)
    p.add_argument("--log-every", type=int, default=20)
    return p.parse_args(argv)


if __name__ == "__main__":
    sys.exit(main())
