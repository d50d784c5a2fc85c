"""Typed parameters of each job kind, built from and checked by the library's own configs.

The API builds them from form fields, the store keeps them as JSON, and the worker (or any
other backend) turns them into the library's `VideoConfig`, `RenderConfig` or `TrainConfig`.
Defaults are those configs' own (a dataclass keeps each default as a class attribute),
never retyped here. File names are relative to the job folder, so a job row holds no
machine's absolute path.
"""

from __future__ import annotations

import dataclasses
import math
import re
import types
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path, PureWindowsPath
from typing import Any, ClassVar, TypeVar, Union, get_type_hints
from urllib.parse import unquote

from stylefusion.errors import InvalidInput
from stylefusion.render_config import RenderConfig, check_render_settings
from stylefusion.style_fit import check_budget
from stylefusion.style_folder import resolve_style, validate_name
from stylefusion.train_config import TrainConfig, check_train_settings
from stylefusion.video import VideoConfig

RENDER_RESULT = "result.png"
VIDEO_RESULT = "result.mp4"
CHECKPOINT_FILE = "checkpoint.pt"
CONTENT_FOLDER = "content"  # uploaded training photos, inside the job folder
MAX_TITLE_CHARS = 80  # an upload's own name, kept to name the download after it


@dataclass(frozen=True)
class WorkerSettings:
    """What runs a job needs besides its params; picklable, handed over at spawn."""

    data_dir: Path
    models_dir: Path
    device: str = "auto"
    threads: int | None = 1  # torch threads on CPU (live inference keeps the other cores)
    nice: int = 19  # lowest CPU priority: live viewers come first
    poll_s: float = 0.5
    checkpoint_every_s: float = 30.0
    content_dir: Path | None = None  # photos for training when a job uploads none
    yield_fraction: float = 0.5  # sleep this share of each step's time while peers are live
    preview_every: int = 20
    clip_seconds: float | None = None  # clip jobs stop here even when the duration is unknown
    clip_pixels: int | None = None  # clip jobs fail on any frame larger than this


_CHECKING = WorkerSettings(data_dir=Path(), models_dir=Path())  # for settings-only checks


@dataclass(frozen=True)
class VideoParams:
    """A clip job: the uploaded clip, a style name, its strength and an optional size cap."""

    kind: ClassVar[str] = "video"
    files: ClassVar[tuple[str, ...]] = ("input",)
    titles: ClassVar[tuple[str, ...]] = ("title",)

    style: str
    input: str = ""  # the clip's file name in the job folder
    strength: float = VideoConfig.strength
    max_side: int | None = None  # None: the server's default for its device; 0: the clip's size
    title: str = ""  # the uploaded clip's own name, without its extension

    def result_name(self) -> str:
        """The download's file name: after the clip and the style, e.g. holiday-candy.mp4."""
        return f"{slug(self.title) or 'clip'}-{self.style}.mp4"

    def check(self) -> None:
        """Raise InvalidInput if the library would refuse these settings."""
        validate_name(self.style)
        VideoConfig(style=Path(self.style), max_side=self.max_side or None, strength=self.strength)

    def config(self, settings: WorkerSettings) -> VideoConfig:
        """The library config for this clip (the style looked up in the models dir)."""
        return VideoConfig(
            style=resolve_style(self.style, settings.models_dir),
            device=settings.device,
            max_side=self.max_side or None,
            strength=self.strength,
            max_duration_s=settings.clip_seconds,
            max_pixels=settings.clip_pixels,
        )


@dataclass(frozen=True)
class RenderParams:
    """An iterative render: two uploaded images and the RenderConfig settings users choose."""

    kind: ClassVar[str] = "render"
    files: ClassVar[tuple[str, ...]] = ("content", "style_image")
    titles: ClassVar[tuple[str, ...]] = ("title", "style_title")

    content: str = ""  # file names in the job folder
    style_image: str = ""
    title: str = ""  # the uploaded photo's and painting's own names, without extensions
    style_title: str = ""
    size: int = RenderConfig.size
    iterations: int = RenderConfig.iterations
    optimizer: str = RenderConfig.optimizer
    style_weight: float = RenderConfig.style_weight

    def result_name(self) -> str:
        """The download's file name: after the photo and the painting, e.g. cat-starry-night.png."""
        return f"{slug(self.title) or 'render'}-{slug(self.style_title) or 'style'}.png"

    def check(self) -> None:
        """Raise InvalidInput if the renderer would refuse these settings (size >= 32, ...)."""
        check_render_settings(self.config(Path(), _CHECKING))

    def config(self, folder: Path, settings: WorkerSettings) -> RenderConfig:
        """The library config, reading and writing inside the job folder."""
        return RenderConfig(
            content=folder / self.content,
            style_image=folder / self.style_image,
            output=folder / RENDER_RESULT,
            size=self.size,
            iterations=self.iterations,
            optimizer=self.optimizer,
            style_weight=self.style_weight,
            device=settings.device,
            preview_every=max(1, min(settings.preview_every, self.iterations // 10 or 1)),
            threads=settings.threads,
        )


@dataclass(frozen=True)
class TrainParams:
    """A training job: a style image, a name, a budget and the TrainConfig settings users choose.

    backbone: the shared backbone (id) whose frozen convolutions the new style's norms are
    fitted to (fine_tune: trained too); None, as in rows stored before it, a network of its own.
    """

    kind: ClassVar[str] = "train"
    files: ClassVar[tuple[str, ...]] = ("style_image", "content")
    titles: ClassVar[tuple[str, ...]] = ()

    name: str
    variant: str
    style_image: str = ""  # file name in the job folder
    content: str | None = None  # folder of uploaded photos in the job folder; None: the default
    display_name: str | None = None
    overwrite: bool = False
    steps: int | None = TrainConfig.steps
    seconds: float | None = TrainConfig.seconds
    size: int = TrainConfig.size
    batch_size: int = TrainConfig.batch_size
    style_weight: float = TrainConfig.style_weight
    backbone: str | None = TrainConfig.backbone
    fine_tune: bool = TrainConfig.fine_tune
    style_size: int = TrainConfig.style_size  # the painting's short side for its Grams

    def check(self) -> None:
        """Raise InvalidInput if the trainer would refuse these settings (name, budget, ...;
        BudgetTooSmall for a norm fit's step budget under the minimum)."""
        config = self.config(Path(), _CHECKING)
        check_train_settings(config)
        if config.backbone is not None:
            check_budget(config)

    def result_name(self) -> str:
        """The download's file name: the new style's meta.json, e.g. water-lilies-meta.json."""
        return f"{self.name}-meta.json"

    def with_budget(self) -> TrainParams:
        """The same params with the library's default step budget filled in if none was given."""
        steps = self.config(Path(), _CHECKING).total_steps
        return dataclasses.replace(self, steps=steps)

    def config(
        self,
        folder: Path,
        settings: WorkerSettings,
        job_id: str = "",
        checkpoint: Path | None = None,
    ) -> TrainConfig:
        """The library config: photos uploaded with the job, else the server's default set.

        The recorded command names the job, so a rerun can tell the style it wrote itself.
        """
        content = folder / self.content if self.content else settings.content_dir
        return TrainConfig(
            style_image=folder / self.style_image,
            content_dir=Path(content or folder / CONTENT_FOLDER),
            name=self.name,
            display_name=self.display_name,
            output_dir=settings.models_dir,
            variant=self.variant,
            steps=self.steps,
            seconds=self.seconds,
            size=self.size,
            batch_size=self.batch_size,
            style_weight=self.style_weight,
            backbone=self.backbone,
            fine_tune=self.fine_tune,
            style_size=self.style_size,
            device=settings.device,
            resume=True,  # a requeued job continues from its checkpoint
            checkpoint_path=checkpoint or folder / CHECKPOINT_FILE,
            checkpoint_every_s=settings.checkpoint_every_s,
            preview_every=settings.preview_every,
            threads=settings.threads,
            overwrite=self.overwrite,
            command=f"stylefusion-server job {job_id}" if job_id else None,
        )


JobParams = Union[VideoParams, RenderParams, TrainParams]  # noqa: UP007 (a runtime alias)
PARAMS: dict[str, type[JobParams]] = {p.kind: p for p in (VideoParams, RenderParams, TrainParams)}
P = TypeVar("P", VideoParams, RenderParams, TrainParams)


def from_fields(cls: type[P], fields: Mapping[str, str], **defaults: Any) -> P:
    """Params from plain form fields (strings) over the server's defaults; checked.

    File fields are left empty here; the caller fills them in once the files are stored.
    Raises InvalidInput naming the field for a missing, malformed, unknown or refused value.
    """
    values = parse_fields(cls, fields)
    missing = missing_fields(cls, values, defaults)
    if missing:
        raise InvalidInput(f"missing field {missing[0]!r}")
    params = cls(**(defaults | values))
    params.check()
    return params


def parse_fields(cls: type[P], fields: Mapping[str, str]) -> dict[str, Any]:
    """Each sent field as its type; InvalidInput for a field the form does not take.

    An empty value means "not given" (the default); every other value is used, none dropped.
    """
    hints = get_type_hints(cls)
    settable = form_fields(cls)
    unknown = sorted(set(fields) - set(settable))
    if unknown:
        raise InvalidInput(f"unknown field {unknown[0]!r} (this form takes {', '.join(settable)})")
    return {name: _parse(name, raw, hints[name]) for name, raw in fields.items() if raw != ""}


def missing_fields(
    cls: type[P], values: Mapping[str, Any], defaults: Mapping[str, Any]
) -> list[str]:
    """The required fields neither sent nor given a server default."""
    return [
        f.name
        for f in dataclasses.fields(cls)
        if f.default is dataclasses.MISSING and f.name not in values and f.name not in defaults
    ]


def form_fields(cls: type[P]) -> list[str]:
    """The plain fields a job form takes: its params, less the files and their titles."""
    return [f.name for f in dataclasses.fields(cls) if f.name not in (*cls.files, *cls.titles)]


def _parse(name: str, raw: str, hint: Any) -> Any:
    """One form string as the field's type (bool, int, float or str; optional or not)."""
    if isinstance(hint, types.UnionType):
        hint = next(t for t in hint.__args__ if t is not type(None))
    if hint is bool:
        return raw.lower() in ("1", "true", "yes", "on")
    if hint is str:
        return raw
    try:
        value = hint(raw)
    except ValueError:
        kind = "a whole number" if hint is int else "a number"
        raise InvalidInput(f"{name!r} must be {kind}, not {raw!r}") from None
    if isinstance(value, float) and not math.isfinite(value):
        raise InvalidInput(f"{name!r} must be a finite number, not {raw!r}")
    return value


def title_of(upload_name: str) -> str:
    """An upload's own name without folders or extension, as its title (bounded).

    Clients percent-escape some characters of a multipart file name (browsers a quote as %22,
    aiohttp a space as %20), so the name is unquoted; either path separator is a folder.
    """
    return Path(PureWindowsPath(unquote(upload_name)).name).stem[:MAX_TITLE_CHARS]


def slug(text: str) -> str:
    """Safe ASCII for a file name: "Été à Paris!" -> "ete-a-paris" (may be empty)."""
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return re.sub(r"[^a-z0-9]+", "-", ascii_text.lower()).strip("-")[:60].strip("-")


def to_json(params: JobParams) -> dict[str, Any]:
    """The params as a JSON-ready dict (what the store keeps)."""
    return dataclasses.asdict(params)


def from_json(kind: str, data: Mapping[str, Any]) -> JobParams:
    """Params of a stored job; unknown keys are ignored, and a null means the default."""
    cls = PARAMS[kind]
    known = {f.name for f in dataclasses.fields(cls)}
    values = {k: v for k, v in data.items() if k in known and v is not None}
    if kind == "train" and data.get("content_files"):  # rows written before typed params
        values["content"] = CONTENT_FOLDER
    return cls(**values)
