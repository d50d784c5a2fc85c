"""Style folders: meta.json + full/lite safetensors + style.jpg, read and written safely."""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import logging
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from .errors import InvalidInput, StyleFormatError, StyleNotFound
from .fsutil import atomic_write, atomic_write_text
from .images import read_rgb, resize_longest, save_image
from .transformer_net import VARIANTS, TransformerConfig, TransformerNet

log = logging.getLogger(__name__)

FORMAT_VERSION = 1
META_FILE = "meta.json"
STYLE_IMAGE = "style.jpg"
NAME_PATTERN = re.compile(r"^[a-z0-9-]{1,40}$")


def weights_file(variant: str) -> str:
    """File name of a variant's weights in a style folder."""
    return f"{variant}.safetensors"


@dataclass(frozen=True)
class StyleInfo:
    """A validated style folder: its name, where it is, which variants it holds, its meta."""

    name: str
    display_name: str
    path: Path
    variants: tuple[str, ...]
    meta: dict[str, Any]

    @property
    def style_image(self) -> Path | None:
        """The style image, if the folder has one."""
        image = self.path / STYLE_IMAGE
        return image if image.is_file() else None

    def config(self, variant: str) -> TransformerConfig:
        """Architecture of one variant, as recorded in meta.json."""
        return TransformerConfig.from_dict(self.meta["variants"][variant]["architecture"])


def validate_name(name: str) -> str:
    """Style names are [a-z0-9-]{1,40}: safe as folder names and URL parts."""
    if not NAME_PATTERN.match(name):
        raise InvalidInput(f"invalid style name {name!r}: use 1-40 of a-z, 0-9 and '-'")
    return name


def read_meta(folder: Path) -> dict[str, Any]:
    """Load and check meta.json: JSON object, known format version, variants described."""
    path = Path(folder) / META_FILE
    if not path.is_file():
        raise StyleFormatError(f"{folder} is not a style folder: no {META_FILE}")
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise StyleFormatError(f"{path} is not valid JSON: {exc}") from exc
    if not isinstance(meta, dict):
        raise StyleFormatError(f"{path} must hold a JSON object")
    version = meta.get("format_version")
    if version != FORMAT_VERSION:
        raise StyleFormatError(
            f"{path} has format version {version!r}; this StyleFusion reads version "
            f"{FORMAT_VERSION} (retrain or convert the style)"
        )
    if not isinstance(meta.get("variants"), dict) or not isinstance(meta.get("name"), str):
        raise StyleFormatError(f"{path} lacks 'name' or 'variants'")
    return meta


def write_meta(folder: Path, meta: dict[str, Any]) -> None:
    """Replace a style folder's meta.json atomically (readers never see half a file)."""
    atomic_write_text(Path(folder) / META_FILE, json.dumps(meta, indent=2, sort_keys=True) + "\n")


def read_style(folder: Path) -> StyleInfo:
    """Validate a style folder's metadata and list the variants whose weights are present."""
    folder = Path(folder)
    meta = read_meta(folder)
    variants = tuple(
        v for v in VARIANTS if v in meta["variants"] and (folder / weights_file(v)).is_file()
    )
    if not variants:
        raise StyleFormatError(f"{folder} holds no full or lite weights")
    return StyleInfo(
        name=meta["name"],
        display_name=str(meta.get("display_name") or meta["name"]),
        path=folder,
        variants=variants,
        meta=meta,
    )


def list_styles(models_dir: Path) -> list[StyleInfo]:
    """Every valid style folder under models_dir, by name; broken ones are logged and skipped."""
    styles: list[StyleInfo] = []
    root = Path(models_dir)
    if not root.is_dir():
        return styles
    for folder in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")):
        try:
            styles.append(read_style(folder))
        except StyleFormatError as exc:
            log.warning("skipping style folder %s: %s", folder, exc)
    return styles


def resolve_style(name_or_dir: str | Path, models_dir: Path) -> Path:
    """A style given by NAME is looked up in models_dir; one given as a path is a style folder."""
    candidate = Path(name_or_dir)
    if candidate.is_dir() and (candidate / META_FILE).exists():
        return candidate
    by_name = Path(models_dir) / str(name_or_dir)
    if NAME_PATTERN.match(str(name_or_dir)) and by_name.is_dir():
        return by_name
    raise StyleNotFound(
        f"no style {str(name_or_dir)!r} (looked in {models_dir} and as a path); "
        + styles_there(Path(models_dir))
    )


def styles_there(models_dir: Path, at_most: int = 12) -> str:
    """One phrase naming the styles a models dir holds, for an error about a missing one."""
    names = sorted(
        p.name
        for p in (models_dir.iterdir() if models_dir.is_dir() else ())
        if NAME_PATTERN.match(p.name) and (p / META_FILE).is_file()
    )
    if not names:
        return f"{models_dir} holds no styles yet"
    shown = ", ".join(names[:at_most])
    more = f" and {len(names) - at_most} more" if len(names) > at_most else ""
    return f"styles in {models_dir}: {shown}{more}"


def pick_variant(info: StyleInfo, wanted: str | None, preferred: str) -> str:
    """The variant to run: `wanted` if given (must exist), else `preferred`, else what there is."""
    if wanted is not None:
        if wanted not in info.variants:
            raise StyleNotFound(f"style {info.name!r} has no {wanted!r} variant ({info.variants})")
        return wanted
    return preferred if preferred in info.variants else info.variants[0]


def load_transformer(folder: Path, variant: str) -> TransformerNet:
    """Build the recorded architecture and load its safetensors weights (float32, CPU, eval)."""
    info = read_style(folder)
    if variant not in info.variants:
        raise StyleNotFound(f"style {info.name!r} has no {variant!r} weights")
    model = TransformerNet(info.config(variant))
    path = Path(folder) / weights_file(variant)
    try:
        state = load_file(str(path), device="cpu")
    except (SafetensorError, OSError, ValueError) as exc:
        raise StyleFormatError(f"{path} is not a safetensors file: {exc}") from exc
    state = {k: v.float() for k, v in state.items()}
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        first = str(exc).splitlines()[0]
        raise StyleFormatError(
            f"{path} does not match the architecture in meta.json: {first}"
        ) from None
    return model.eval()


def file_sha256(path: Path) -> str:
    """Hex SHA-256 of a file."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def save_transformer(
    folder: Path,
    variant: str,
    model: TransformerNet,
    *,
    name: str,
    display_name: str | None = None,
    training: dict[str, Any] | None = None,
    losses: dict[str, float] | None = None,
    style_image: Path | None = None,
    dtype: torch.dtype = torch.float16,
) -> StyleInfo:
    """Write (or add) one variant to a style folder, atomically; other variants are kept."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    with _locked(folder):
        return _add_variant(folder, variant, model, name, display_name, training, losses,
                            style_image, dtype)  # fmt: skip


@contextlib.contextmanager
def _locked(folder: Path) -> Iterator[None]:
    """Hold the folder's lock: trainings of two variants of one style may finish together,
    and each must keep the other's entry in meta.json."""
    fd = os.open(folder, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # releases the lock


def _add_variant(
    folder: Path,
    variant: str,
    model: TransformerNet,
    name: str,
    display_name: str | None,
    training: dict[str, Any] | None,
    losses: dict[str, float] | None,
    style_image: Path | None,
    dtype: torch.dtype,
) -> StyleInfo:
    """save_transformer's work, under the folder's lock."""
    try:
        meta = read_meta(folder)
    except StyleFormatError:
        meta = {"format_version": FORMAT_VERSION, "name": name, "variants": {}}
    meta.update(name=name, display_name=display_name or meta.get("display_name") or name)
    if style_image is not None:
        _write_style_image(Path(style_image), folder / STYLE_IMAGE)
        meta["style_image_sha256"] = file_sha256(Path(style_image))
    meta["variants"][variant] = {
        "architecture": model.config.to_dict(),
        "dtype": str(dtype).removeprefix("torch."),
        "training": training or {},
        "losses": losses or {},
    }
    state = {k: v.detach().to("cpu", dtype).contiguous() for k, v in model.state_dict().items()}
    file_meta = {"format_version": str(FORMAT_VERSION), "variant": variant}
    atomic_write(folder / weights_file(variant), lambda p: save_file(state, str(p), file_meta))
    write_meta(folder, meta)
    return read_style(folder)


def _write_style_image(source: Path, dest: Path) -> None:
    """Store the style image as a JPEG of at most 1024 px (the pages' thumbnail source)."""
    image = read_rgb(source)
    if max(image.size) > 1024:
        image = resize_longest(image, 1024)
    save_image(dest, image, quality=90)
