"""Shared backbones of multi-style networks: stored once per models dir, content-addressed.

    models/.backbones/<id>/backbone.safetensors   the shared convolutions (no norm parameters)
    models/.backbones/<id>/meta.json              format version, id, architecture, sha256, ...

`<id>` is the first 16 hex digits of the SHA-256 of backbone.safetensors. A backbone is written
into a temporary folder and renamed into place, so servers sharing a models dir see it whole or
not at all; writing the same weights again is a no-op. Deleting a style never touches it. A
style folder may carry its own copy as `<variant>.backbone.safetensors` (what a zip download
bundles); it is used, after its hash is checked, where `.backbones/<id>` is absent.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import os
import shutil
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load, load_file, save

from .architecture import TransformerConfig
from .errors import StyleFormatError
from .transformer_net import TransformerNet, backbone_state

log = logging.getLogger(__name__)

BACKBONES_DIR = ".backbones"
BACKBONE_FILE = "backbone.safetensors"
BACKBONE_META = "meta.json"
BACKBONE_FORMAT = 1
ID_LENGTH = 16


def bundled_backbone_file(variant: str) -> str:
    """File name of a backbone copy carried inside a style folder."""
    return f"{variant}.backbone.safetensors"


def norms_file(variant: str) -> str:
    """File name of a multi-style variant's own norm parameters in a style folder."""
    return f"{variant}.norms.safetensors"


@dataclass(frozen=True)
class SharedStyle:
    """A style of a multi-style network: the shared model and this style's (P,) norms."""

    model: TransformerNet  # shared by every style of the backbone: never modify it
    norms: torch.Tensor  # (P,) float32
    backbone_id: str


def backbone_dir(models_dir: Path, backbone_id: str) -> Path:
    """Where a backbone lives in a models dir."""
    return Path(models_dir) / BACKBONES_DIR / backbone_id


def encode_backbone(model: TransformerNet, dtype: torch.dtype = torch.float16) -> bytes:
    """The safetensors bytes of a network's shared weights (its norms left out)."""
    state = {k: v.detach().to("cpu", dtype).contiguous() for k, v in backbone_state(model).items()}
    # one metadata key: safetensors writes a map's keys in no fixed order, and the bytes are hashed
    return save(state, {"format": f"stylefusion-backbone-{BACKBONE_FORMAT}"})


def backbone_id_of(data: bytes) -> str:
    """The content address of backbone bytes."""
    return hashlib.sha256(data).hexdigest()[:ID_LENGTH]


def write_backbone(
    models_dir: Path,
    model: TransformerNet,
    info: dict[str, Any] | None = None,
    dtype: torch.dtype = torch.float16,
) -> str:
    """Store a network's shared weights under models_dir/.backbones/<id>; return the id."""
    data = encode_backbone(model, dtype)
    backbone_id = backbone_id_of(data)
    final = backbone_dir(models_dir, backbone_id)
    if (final / BACKBONE_META).is_file():
        return backbone_id  # the same weights are already stored (content-addressed)
    meta = {
        **(info or {}),
        "format_version": BACKBONE_FORMAT,
        "id": backbone_id,
        "architecture": model.config.to_dict(),
        "dtype": str(dtype).removeprefix("torch."),
        "sha256": hashlib.sha256(data).hexdigest(),
    }
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{backbone_id}.", suffix=".tmp", dir=final.parent))
    try:
        _write_synced(tmp / BACKBONE_FILE, data)
        _write_synced(tmp / BACKBONE_META, json.dumps(meta, indent=2, sort_keys=True).encode())
        os.chmod(tmp, 0o755)
        try:
            os.rename(tmp, final)  # atomic; fails if another writer got there first
        except OSError:
            if not (final / BACKBONE_META).is_file():
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    _fsync_dir(final.parent)
    log.info("backbone %s stored in %s", backbone_id, final)
    return backbone_id


def _write_synced(path: Path, data: bytes) -> None:
    with open(path, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.chmod(path, 0o644)


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def find_backbone(style_folder: Path, variant: str, backbone_id: str) -> Path | None:
    """The backbone file a style uses: the models dir's store first, then the bundled copy."""
    stored = backbone_dir(Path(style_folder).parent, backbone_id) / BACKBONE_FILE
    if stored.is_file():
        return stored
    bundled = Path(style_folder) / bundled_backbone_file(variant)
    return bundled if bundled.is_file() else None


def read_backbone(path: Path, backbone_id: str, config: TransformerConfig) -> TransformerNet:
    """Build a multi-style network from a backbone file, checking it is the one named (fp32,
    eval; its style table holds identity norms: each style's own norms come from its folder)."""
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise StyleFormatError(f"cannot read backbone {path}: {exc}") from exc
    if backbone_id_of(data) != backbone_id:
        raise StyleFormatError(f"{path} is not backbone {backbone_id} (its hash differs)")
    if not config.conditional:
        raise StyleFormatError(f"backbone {backbone_id} needs a multi-style architecture")
    try:
        state = {k: v.float() for k, v in load(data).items()}
    except (SafetensorError, ValueError) as exc:
        raise StyleFormatError(f"{path} is not a safetensors file: {exc}") from exc
    model = TransformerNet(config)
    missing, unexpected = model.load_state_dict(state, strict=False)
    if unexpected or set(missing) != {"style_table"}:
        raise StyleFormatError(
            f"backbone {backbone_id} does not match its architecture "
            f"(missing {sorted(set(missing) - {'style_table'})}, unexpected {sorted(unexpected)})"
        )
    return model.eval().requires_grad_(False)


def load_shared(
    folder: Path,
    variant: str,
    backbone_id: str,
    config: TransformerConfig,
    cache: BackboneCache | None = None,
) -> SharedStyle:
    """A style folder's multi-style variant: its backbone (once per cache) and its norms."""
    path = find_backbone(folder, variant, backbone_id)
    if path is None:
        raise StyleFormatError(f"backbone {backbone_id} of style {Path(folder).name} is missing")
    model = (cache if cache is not None else BackboneCache()).get(path, backbone_id, config)
    norms_path = Path(folder) / norms_file(variant)
    norms = read_tensors(norms_path).get("norms")
    if norms is None or norms.shape != (model.norm_size,):
        raise StyleFormatError(f"{norms_path} does not hold ({model.norm_size},) norms")
    return SharedStyle(model=model, norms=norms.float(), backbone_id=backbone_id)


def read_tensors(path: Path) -> dict[str, torch.Tensor]:
    """A safetensors file's tensors on the CPU; a clear error when it is not one."""
    try:
        return load_file(str(path), device="cpu")
    except (SafetensorError, OSError, ValueError) as exc:
        raise StyleFormatError(f"{path} is not a safetensors file: {exc}") from exc


class BackboneCache:
    """Backbones loaded once and shared in memory by every style that names them (thread-safe)."""

    def __init__(self) -> None:
        self._models: dict[tuple[str, TransformerConfig], TransformerNet] = {}
        self._lock = threading.Lock()

    def get(self, path: Path, backbone_id: str, config: TransformerConfig) -> TransformerNet:
        """The shared network of a backbone, read from `path` the first time it is asked for
        (styles trained with it at different times record different table sizes; the
        shared network's table is one identity row)."""
        config = dataclasses.replace(config, styles=1)
        key = (backbone_id, config)
        with self._lock:
            model = self._models.get(key)
            if model is None:
                model = read_backbone(path, backbone_id, config)
                self._models[key] = model
            return model

    def __len__(self) -> int:
        return len(self._models)
