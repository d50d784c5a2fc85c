"""Training settings (TrainConfig), their validation, and the result of a run."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .architecture import VARIANTS, TransformerConfig
from .errors import InvalidInput, StyleFormatError

DEFAULT_STEPS = 2000


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
    mixed_precision: bool | None = None  # bf16 loss network; default: on CUDA only
    spike_factor: float = 5.0  # skip a step whose loss exceeds this times the running average
    max_images: int = 5000  # content images held in memory (a seeded subset of larger folders)

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
    if config.steps is not None and config.seconds is not None:
        raise InvalidInput("give a step budget or a seconds budget, not both")
    if config.steps is not None and config.steps < 1:
        raise InvalidInput(f"steps must be at least 1, not {config.steps}")
    if config.seconds is not None and not config.seconds > 0:
        raise InvalidInput(f"seconds must be positive, not {config.seconds}")
    if config.architecture is None and config.variant not in VARIANTS:
        raise InvalidInput(
            f"unknown variant {config.variant!r}; choose one of {', '.join(VARIANTS)}"
        )
    _check_numbers(config)


def _check_numbers(config: TrainConfig) -> None:
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
