"""Style folders on disk, as the admin manages them: hide, delete, rename, zip.

Every change is safe for readers that poll the models dir (this server's registry and other
server processes sharing the folder): a folder leaves by one atomic rename to a dot-name that no
scan picks up, and meta.json and the hidden list are replaced atomically.
"""

from __future__ import annotations

import io
import json
import logging
import os
import secrets
import shutil
import zipfile
from pathlib import Path
from typing import Any

from stylefusion.errors import InvalidInput
from stylefusion.fsutil import atomic_write_text
from stylefusion.style_folder import (
    META_FILE,
    NAME_PATTERN,
    STYLE_IMAGE,
    read_meta,
    weights_file,
    write_meta,
)
from stylefusion.transformer_net import VARIANTS

from ..errors import NotFound

log = logging.getLogger(__name__)

# styles hidden from the pages (their files stay), shared by every server on this models dir
HIDDEN_FILE = ".hidden.json"
TRASH_PREFIX = ".trash-"
SHIPPED_KEY = "shipped"  # meta.json flag of the styles that come with the project
DISPLAY_NAME_MAX = 80
STYLE_FILES = (META_FILE, STYLE_IMAGE, *(weights_file(v) for v in VARIANTS))


def style_folder(models_dir: Path, name: str) -> Path:
    """The folder of a style by name; NotFound unless it holds a meta.json."""
    folder = Path(models_dir) / name
    if not NAME_PATTERN.match(name) or not (folder / META_FILE).is_file():
        raise NotFound(f"no style {name!r}")
    return folder


def is_shipped(meta: dict[str, Any]) -> bool:
    """Whether a style came with the project (meta.json `"shipped": true`): hidden, not deleted."""
    return meta.get(SHIPPED_KEY) is True


def hidden_names(models_dir: Path) -> frozenset[str]:
    """The hidden style names (empty if the list is missing or unreadable)."""
    path = Path(models_dir) / HIDDEN_FILE
    try:
        names = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return frozenset()
    except (OSError, ValueError) as exc:
        log.warning("ignoring %s: %s", path, exc)
        return frozenset()
    return (
        frozenset(n for n in names if isinstance(n, str))
        if isinstance(names, list)
        else frozenset()
    )


def set_hidden(models_dir: Path, name: str, hidden: bool) -> None:
    """Add a style to the hidden list or take it off (the list is replaced atomically)."""
    names = set(hidden_names(models_dir))
    names = names | {name} if hidden else names - {name}
    atomic_write_text(Path(models_dir) / HIDDEN_FILE, json.dumps(sorted(names)) + "\n")


def delete_folder(folder: Path) -> None:
    """Remove a style folder: one atomic rename out of sight, then the files (and older trash)."""
    trash = folder.with_name(f"{TRASH_PREFIX}{folder.name}-{secrets.token_hex(4)}")
    os.rename(folder, trash)
    if folder.name in hidden_names(folder.parent):  # a new style of that name starts visible
        set_hidden(folder.parent, folder.name, False)
    for leftover in folder.parent.glob(f"{TRASH_PREFIX}*"):
        # also trash a crashed delete left behind; another process may be removing it too
        shutil.rmtree(leftover, ignore_errors=True)
    log.info("style folder %s deleted", folder)


def set_display_name(folder: Path, display_name: Any) -> str:
    """Validate and write a new display name into meta.json; returns it."""
    if not isinstance(display_name, str) or not display_name.strip():
        raise InvalidInput('"display_name" must be a non-empty string')
    text = " ".join(display_name.split())
    if len(text) > DISPLAY_NAME_MAX:
        raise InvalidInput(f'"display_name" must be at most {DISPLAY_NAME_MAX} characters')
    meta = read_meta(folder)
    meta["display_name"] = text
    write_meta(folder, meta)
    return text


def zip_folder(folder: Path) -> bytes:
    """The style's files as a zip whose one folder, `<name>/`, is a loadable style folder."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=1) as zf:
        for name in STYLE_FILES:
            path = folder / name
            if path.is_file():
                zf.write(path, f"{folder.name}/{name}")
    return buffer.getvalue()
