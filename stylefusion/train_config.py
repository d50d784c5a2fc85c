"""Training settings (TrainConfig), their validation, and the result of a run."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .architecture import VARIANTS, TransformerConfig
from .errors import InvalidInput, StyleFormatError

DEFAULT_STEPS = 2000
# The default new-style job (style_fit.new_style_config): a new painting's norms fitted to a
# shared backbone. Measured fitting Udnie's norms to the shipped Candy network's convolutions
# (2-core EPYC, one thread): 60 steps scored 344k on the yardstick, 150 steps 258k (Udnie's own
# network: 432k); a 60-step job used 132 CPU-seconds in all, so 120 steps take ~4 min on one
# free core.
FIT_SIZE = 128  # crops of the default new-style job
FIT_BATCH = 4
FIT_STEPS = 120  # the default job's budget: live within 5 minutes
MIN_FIT_STEPS = 60  # the fewest steps measured to beat a single-style network


@dataclass(frozen=True)
class TrainConfig:
    """Everything one fast-style training run needs; exactly one of steps / seconds (or neither)."""

    style_image: Path
    content_dir: Path
    name: str
    output_dir: Path = Path("models")
    variant: str = "full"
    steps: int | None = None  # default DEFAULT_STEPS when seconds is not given either
    seconds: float | None = None
    size: int = 256  # square training crops
    batch_size: int = 8
    style_weight: float = 5.0
    content_weight: float = 1.0
    tv_weight: float = 1000.0
    lr: float = 1e-3
    lr_final: float = 1e-4
    device: str = "auto"
    resume: bool = False
    seed: int = 0
    checkpoint_every_s: float = 60.0
    preview_every: int = 100  # 0: no previews
    threads: int | None = None
    overwrite: bool = False
    style_size: int = 512  # short side of the style image when its Grams are computed
    architecture: TransformerConfig | None = None  # overrides the variant's architecture
    checkpoint_path: Path | None = None  # default output_dir/.checkpoints/{name}-{variant}.pt
    display_name: str | None = None
    command: str | None = None  # the command line, recorded in meta.json
    mixed_precision: bool | None = None  # bf16 loss network; default: where bf16 is native
    spike_factor: float = 5.0  # skip a step whose loss exceeds this times the running average
    max_images: int = 5000  # content images held in memory (a seeded subset of larger folders)
    # A new style in minutes: fit only this style's norms against a stored shared backbone,
    # named by its id or by a style (in output_dir) that uses it; see style_fit.py
    backbone: str | None = None
    fine_tune: bool = False  # with a backbone: train its convolutions too (a backbone of its own)

    @property
    def checkpoint_file(self) -> Path:
        """Where this run's training checkpoint lives."""
        default = self.output_dir / ".checkpoints" / f"{self.name}-{self.variant}.pt"
        return Path(self.checkpoint_path or default)

    @property
    def total_steps(self) -> int | None:
        """The step budget, or None for a seconds budget."""
        if self.seconds is not None:
            return None
        return self.steps if self.steps is not None else DEFAULT_STEPS


@dataclass(frozen=True)
class TrainResult:
    """What a finished run produced: the style folder, steps done, wall seconds, final losses."""

    folder: Path
    steps: int
    seconds: float
    losses: dict[str, float]


@dataclass(frozen=True)
class StyleSource:
    """One style of a multi-style run: its name, painting, and optionally where its norms start
    (a style folder: a single-style network's affine norms, or a multi-style style's own)."""

    name: str
    style_image: Path
    display_name: str | None = None
    init_from: Path | None = None


@dataclass(frozen=True)
class MotionConfig:
    """The temporal term: a random small affine motion of each crop, its flow known exactly.

    Loss: mean over valid pixels of (T(warp(x) + noise) - warp(T(x)))^2: the output must move
    with the input (no flicker in video) and ignore small input noise (Gupta et al. 2017)."""

    weight: float = 0.0  # 0: off
    max_shift: float = 4.0  # pixels
    max_degrees: float = 2.0
    max_zoom: float = 0.03  # relative
    noise_std: float = 0.02  # input noise, in [0, 1] units; 0: no noise


@dataclass(frozen=True)
class Convergence:
    """When a run counts as converged, judged on its smoothed losses at the end; a run that is
    not is not written as a style (NotConverged)."""

    min_drop: float = 0.1  # the loss fell by at least this share of its start (first 5 steps)
    max_style_share: float = 0.9  # the weighted style term is at most this share of the loss
    # (the shipped networks end at 0.52..0.83; an unfitted start sits at 0.95 and more)


@dataclass(frozen=True)
class MultiStyleConfig:
    """One network for several styles (conditional instance norms), and how to train it."""

    styles: tuple[StyleSource, ...]
    content_dir: Path
    output_dir: Path = Path("models")
    variant: str = "lite"  # the architecture's name, and the variant the styles are written as
    architecture: TransformerConfig | None = None  # overrides the variant's (styles filled in)
    steps: int | None = None  # default DEFAULT_STEPS when seconds is not given either
    seconds: float | None = None
    size: int = 128
    batch_size: int = 4
    style_weight: float = 5.0
    content_weight: float = 1.0
    tv_weight: float = 1000.0
    motion: MotionConfig = MotionConfig()
    lr: float = 1e-3
    lr_final: float = 1e-4
    norms_lr_scale: float = 1.0  # the norms' learning rate relative to the convolutions'
    init_backbone: Path | None = None  # a style folder whose convolutions start the shared ones
    backbone: str | None = None  # a stored backbone (id) to start from instead
    freeze_backbone: bool = False  # fit only the styles' norms (a backbone must be given)
    device: str = "auto"
    resume: bool = False
    seed: int = 0
    checkpoint_every_s: float = 60.0
    checkpoint_path: Path | None = None  # default output_dir/.checkpoints/multistyle.pt
    snapshot_every: int = 0  # steps between style-folder snapshots in snapshot_dir; 0: none
    snapshot_dir: Path | None = None
    preview_every: int = 100  # 0: no previews
    threads: int | None = None
    overwrite: bool = False
    style_size: int = 512
    mixed_precision: bool | None = None  # bf16 loss network; default: where bf16 is native
    # channels-last loss network: ~20% faster steps on a CPU, but oneDNN's channels-last
    # kernels are not bit-reproducible, so a resumed run then matches only to rounding
    channels_last: bool = False
    spike_factor: float = 5.0
    max_images: int = 5000
    command: str | None = None
    notes: tuple[tuple[str, str], ...] = ()  # (setting, why) recorded in every meta.json
    convergence: Convergence | None = None  # checked before any style is written

    @property
    def checkpoint_file(self) -> Path:
        """Where this run's training checkpoint lives."""
        return Path(self.checkpoint_path or self.output_dir / ".checkpoints" / "multistyle.pt")

    @property
    def total_steps(self) -> int | None:
        """The step budget, or None for a seconds budget."""
        if self.seconds is not None:
            return None
        return self.steps if self.steps is not None else DEFAULT_STEPS

    @property
    def network(self) -> TransformerConfig:
        """The multi-style architecture: the variant's (or the override), one row per style."""
        base = self.architecture or VARIANTS.get(self.variant, VARIANTS["lite"])
        return dataclasses.replace(base, styles=len(self.styles))


def validate_multistyle(config: MultiStyleConfig) -> None:
    """Fail with InvalidInput before any work if the config cannot make its styles."""
    from .style_folder import validate_name  # loads torch: this module stays light for --help

    names = [s.name for s in config.styles]
    for name in names:
        validate_name(name)
    if not names or len(set(names)) != len(names):
        raise InvalidInput(f"give one or more styles with distinct names, not {names}")
    _check_budget(config)
    if config.variant not in VARIANTS:
        raise InvalidInput(f"unknown variant {config.variant!r}")
    if config.freeze_backbone and config.backbone is None and config.init_backbone is None:
        raise InvalidInput("freezing the backbone needs one to start from (backbone=)")
    _check_numbers(config)
    motion = config.motion
    if min(motion.weight, motion.max_shift, motion.max_degrees, motion.max_zoom) < 0:
        raise InvalidInput("invalid training settings: motion settings (not negative)")
    if motion.noise_std < 0 or config.norms_lr_scale <= 0 or config.snapshot_every < 0:
        raise InvalidInput("invalid training settings: noise, norms lr scale or snapshot interval")
    for source in config.styles:
        if not Path(source.style_image).is_file():
            raise InvalidInput(f"style image {source.style_image} does not exist")
    if not Path(config.content_dir).is_dir():
        raise InvalidInput(f"content folder {config.content_dir} does not exist")
    for name in names:
        folder = Path(config.output_dir) / name
        resuming = config.resume and config.checkpoint_file.is_file()
        if folder.exists() and not (config.overwrite or resuming):
            raise InvalidInput(f"style {name!r} exists in {config.output_dir}; use overwrite")


def validate_config(config: TrainConfig) -> None:
    """Fail with InvalidInput before any work if the config cannot make a style."""
    check_train_settings(config)
    if not Path(config.style_image).is_file():
        raise InvalidInput(f"style image {config.style_image} does not exist")
    if not Path(config.content_dir).is_dir():
        raise InvalidInput(f"content folder {config.content_dir} does not exist")
    _check_existing_style(config)


def check_train_settings(config: TrainConfig) -> None:
    """Fail with InvalidInput if name, budget, variant or numbers are unusable (files unread)."""
    from .style_folder import validate_name  # loads torch: this module stays light for --help

    validate_name(config.name)
    _check_budget(config)
    if config.architecture is None and config.variant not in VARIANTS:
        raise InvalidInput(
            f"unknown variant {config.variant!r}; choose one of {', '.join(VARIANTS)}"
        )
    _check_numbers(config)
    if config.fine_tune and config.backbone is None:
        raise InvalidInput("fine-tuning trains a shared backbone's convolutions: name a backbone")


def _check_budget(config: TrainConfig | MultiStyleConfig) -> None:
    if config.steps is not None and config.seconds is not None:
        raise InvalidInput("give a step budget or a seconds budget, not both")
    if config.steps is not None and config.steps < 1:
        raise InvalidInput(f"steps must be at least 1, not {config.steps}")
    if config.seconds is not None and not config.seconds > 0:
        raise InvalidInput(f"seconds must be positive, not {config.seconds}")


def _check_numbers(config: TrainConfig | MultiStyleConfig) -> None:
    checks = {
        "size (at least 32)": config.size >= 32,
        "batch size (at least 1)": config.batch_size >= 1,
        "style size (at least 32)": config.style_size >= 32,
        "weights (not negative)": min(config.style_weight, config.content_weight, config.tv_weight)
        >= 0,
        "learning rates (positive)": config.lr > 0 and config.lr_final > 0,
        "checkpoint interval (positive)": config.checkpoint_every_s > 0,
        "preview interval (0 or more)": config.preview_every >= 0,
        "threads (at least 1)": config.threads is None or config.threads >= 1,
        "spike factor (above 1)": config.spike_factor > 1,
        "seed (0 to 2**40)": 0 <= config.seed < 2**40,
    }
    bad = [name for name, ok in checks.items() if not ok]
    if bad:
        raise InvalidInput(f"invalid training settings: {', '.join(bad)}")


def _check_existing_style(config: TrainConfig) -> None:
    """Refuse to replace a trained variant unless asked to, or when continuing from a checkpoint."""
    from .style_folder import read_style

    folder = Path(config.output_dir) / config.name
    resuming = config.resume and config.checkpoint_file.is_file()
    if config.overwrite or resuming or not folder.exists():
        return
    try:
        variants = read_style(folder).variants
    except StyleFormatError:
        if any(folder.iterdir()):
            raise InvalidInput(f"{folder} exists and is not a style folder") from None
        return
    if config.variant in variants:
        raise InvalidInput(
            f"style {config.name!r} already has a {config.variant!r} variant; "
            "use overwrite (--overwrite) to replace it"
        )


def plain_value(value: Any) -> Any:
    """A JSON-ready form of a config value; paths never as this machine's absolute path."""
    if isinstance(value, Path):
        return portable_path(value)
    if isinstance(value, TransformerConfig):
        return value.to_dict()
    return value


def portable_path(path: Path) -> str:
    """A path for meta.json: relative to the working folder when inside it, else its name.

    Style folders are copied between machines; an absolute path would leak and mean nothing there.
    """
    if not path.is_absolute():
        return str(path)
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return path.name
