"""Style folders: meta.json + full/lite safetensors + style.jpg, read and written safely.

A variant is either a single-style network, `<variant>.safetensors`, or a style of a
multi-style network: its own norms, `<variant>.norms.safetensors` (a (P,) float32 tensor
"norms", a few KB), and its meta.json entry naming the shared backbone ("backbone": id) and the
multi-style architecture. The backbone is found in the models dir's `.backbones/<id>/`, else in
the folder's own `<variant>.backbone.safetensors` copy (see backbone.py).
"""

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
from safetensors.torch import save_file

from .backbone import (
    BackboneCache,
    SharedStyle,
    bundled_backbone_file,
    find_backbone,
    load_shared,
    norms_file,
    read_tensors,
)
from .errors import InvalidInput, StyleFormatError, StyleNotFound
from .fsutil import atomic_write, atomic_write_text
from .images import read_rgb, resize_longest, save_image
from .transformer_net import VARIANTS, TransformerConfig, TransformerNet, fold_norms

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

    def backbone_id(self, variant: str) -> str | None:
        """The shared backbone a multi-style variant needs; None for a single-style network."""
        value = self.meta["variants"][variant].get("backbone")
        return str(value) if value is not None else None


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
    variants = tuple(v for v in VARIANTS if _variant_present(folder, v, meta))
    if not variants:
        raise StyleFormatError(f"{folder} holds no full or lite weights")
    return StyleInfo(
        name=meta["name"],
        display_name=str(meta.get("display_name") or meta["name"]),
        path=folder,
        variants=variants,
        meta=meta,
    )


def _variant_present(folder: Path, variant: str, meta: dict[str, Any]) -> bool:
    """A variant counts when meta.json describes it and its files are all there."""
    entry = meta["variants"].get(variant)
    if not isinstance(entry, dict):
        return False
    backbone = entry.get("backbone")
    if backbone is None:
        return (folder / weights_file(variant)).is_file()
    found = find_backbone(folder, variant, str(backbone))
    return (folder / norms_file(variant)).is_file() and found is not None


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


def load_transformer(
    folder: Path, variant: str, cache: BackboneCache | None = None
) -> TransformerNet:
    """Build the recorded architecture and load its safetensors weights (float32, CPU, eval).

    A style of a multi-style network comes back as the single-style network it amounts to
    (its norms folded into affine ones); load_shared_style gives the shared form."""
    info = read_style(folder)
    if variant not in info.variants:
        raise StyleNotFound(f"style {info.name!r} has no {variant!r} weights")
    if info.backbone_id(variant) is not None:
        shared = load_shared_style(folder, variant, cache)
        return fold_norms(shared.model, shared.norms).eval()
    model = TransformerNet(info.config(variant))
    path = Path(folder) / weights_file(variant)
    state = {k: v.float() for k, v in read_tensors(path).items()}
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        first = str(exc).splitlines()[0]
        raise StyleFormatError(
            f"{path} does not match the architecture in meta.json: {first}"
        ) from None
    return model.eval()


def load_shared_style(
    folder: Path, variant: str, cache: BackboneCache | None = None
) -> SharedStyle:
    """A multi-style variant: its backbone (loaded once per cache) and its own norms."""
    info = read_style(folder)
    backbone_id = info.backbone_id(variant) if variant in info.variants else None
    if backbone_id is None:
        raise StyleNotFound(f"style {info.name!r} has no multi-style {variant!r} variant")
    return load_shared(info.path, variant, backbone_id, info.config(variant), cache)


def style_files(folder: Path) -> list[tuple[str, Path]]:
    """(name in the folder, file) of everything a copy or zip of a style must hold, a
    multi-style variant's backbone included (as its bundled copy)."""
    info = read_style(folder)
    files = [(n, info.path / n) for n in (META_FILE, STYLE_IMAGE) if (info.path / n).is_file()]
    for variant in info.variants:
        backbone_id = info.backbone_id(variant)
        if backbone_id is None:
            files.append((weights_file(variant), info.path / weights_file(variant)))
            continue
        files.append((norms_file(variant), info.path / norms_file(variant)))
        backbone = find_backbone(info.path, variant, backbone_id)
        if backbone is not None:
            files.append((bundled_backbone_file(variant), backbone))
    return files


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


def save_shared_style(
    folder: Path,
    variant: str,
    model: TransformerNet,
    norms: torch.Tensor,
    backbone_id: str,
    *,
    name: str,
    display_name: str | None = None,
    training: dict[str, Any] | None = None,
    losses: dict[str, float] | None = None,
    style_image: Path | None = None,
    bundle: Path | None = None,
) -> StyleInfo:
    """Write one multi-style variant: its (P,) norms and a meta.json entry naming the backbone
    (already stored with backbone.write_backbone); `bundle`: a backbone file to copy in too."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    if norms.shape != (model.norm_size,):
        raise ValueError(f"norms must have shape ({model.norm_size},), not {tuple(norms.shape)}")
    entry = {
        "architecture": model.config.to_dict(),
        "backbone": backbone_id,
        "dtype": "float32",
        "training": training or {},
        "losses": losses or {},
    }
    tensors = {"norms": norms.detach().to("cpu", torch.float32).contiguous()}
    file_meta = {"format_version": str(FORMAT_VERSION), "variant": variant, "backbone": backbone_id}
    with _locked(folder):
        if bundle is not None:
            data = Path(bundle).read_bytes()
            atomic_write(folder / bundled_backbone_file(variant), lambda p: p.write_bytes(data))
        atomic_write(folder / norms_file(variant), lambda p: save_file(tensors, str(p), file_meta))
        (folder / weights_file(variant)).unlink(missing_ok=True)  # the variant's one form
        return _write_entry(folder, variant, entry, name, display_name, style_image)


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
    entry = {
        "architecture": model.config.to_dict(),
        "dtype": str(dtype).removeprefix("torch."),
        "training": training or {},
        "losses": losses or {},
    }
    state = {k: v.detach().to("cpu", dtype).contiguous() for k, v in model.state_dict().items()}
    file_meta = {"format_version": str(FORMAT_VERSION), "variant": variant}
    atomic_write(folder / weights_file(variant), lambda p: save_file(state, str(p), file_meta))
    for stale in (norms_file(variant), bundled_backbone_file(variant)):
        (folder / stale).unlink(missing_ok=True)  # the variant's one form
    return _write_entry(folder, variant, entry, name, display_name, style_image)


def _write_entry(
    folder: Path,
    variant: str,
    entry: dict[str, Any],
    name: str,
    display_name: str | None,
    style_image: Path | None,
) -> StyleInfo:
    """Record a variant's entry (and the style image) in meta.json; other variants are kept."""
    try:
        meta = read_meta(folder)
    except StyleFormatError:
        meta = {"format_version": FORMAT_VERSION, "name": name, "variants": {}}
    meta.update(name=name, display_name=display_name or meta.get("display_name") or name)
    if style_image is not None:
        _write_style_image(Path(style_image), folder / STYLE_IMAGE)
        meta["style_image_sha256"] = file_sha256(Path(style_image))
    meta["variants"][variant] = entry
    write_meta(folder, meta)
    return read_style(folder)


def _write_style_image(source: Path, dest: Path) -> None:
    """Store the style image as a JPEG of at most 1024 px (the pages' thumbnail source)."""
    image = read_rgb(source)
    if max(image.size) > 1024:
        image = resize_longest(image, 1024)
    save_image(dest, image, quality=90)
