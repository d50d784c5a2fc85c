"""The style registry: every style folder in the models dir, loaded once and kept warm."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import hashlib
import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch

from stylefusion.backbone import bundled_backbone_file, norms_file
from stylefusion.compiled import CompileWorker
from stylefusion.devices import cpu_precision, default_variant
from stylefusion.errors import StyleFusionError, StyleNotFound
from stylefusion.style_folder import (
    META_FILE,
    NAME_PATTERN,
    STYLE_IMAGE,
    StyleInfo,
    pick_variant,
    read_style,
    weights_file,
)
from stylefusion.stylizer import Stylizer
from stylefusion.transformer_net import VARIANTS

from .files import hidden_names
from .models import ModelPool, StyleModel

log = logging.getLogger(__name__)

Signature = tuple[tuple[str, int, int], ...]  # (file, mtime_ns, size) of the files that matter
VARIANT_FILES = (weights_file, norms_file, bundled_backbone_file)  # either form of a variant
WATCHED_FILES = (META_FILE, STYLE_IMAGE, *(f(v) for v in VARIANTS for f in VARIANT_FILES))


@dataclass(frozen=True)
class LoadedStyle:
    """A style folder plus the model that runs it on the server's device."""

    info: StyleInfo
    model: StyleModel
    signature: Signature

    @property
    def stylizer(self) -> Stylizer:
        """The Stylizer that runs the style (shared by the styles of one backbone)."""
        return self.model.stylizer

    @property
    def name(self) -> str:
        """The style's name (its folder name)."""
        return self.info.name

    @property
    def variant(self) -> str:
        """The variant loaded on the device."""
        return self.stylizer.variant

    @property
    def version(self) -> str:
        """A short token that changes whenever the folder's files change."""
        return hashlib.sha1(repr(self.signature).encode()).hexdigest()[:8]


class StyleRegistry:
    """Loads every style of a models dir onto one device; rescans to pick up new folders."""

    def __init__(
        self,
        models_dir: Path,
        device: torch.device,
        variant: str | None = None,
        compile: bool = False,
        precision: str = "auto",
    ) -> None:
        """precision (CPU only): "fp32", "bf16", "int8" or "auto" (int8 where the CPU has
        VNNI and compile is on, else bf16 where native: stylefusion.devices.cpu_precision);
        bf16 and int8 run compiled."""
        self.models_dir = Path(models_dir)
        self.device = device
        self.preferred_variant = variant or default_variant(device)
        self._styles: dict[str, LoadedStyle] = {}
        self._broken: dict[str, Signature] = {}  # folders already reported as broken
        self.hidden: frozenset[str] = frozenset()  # style folders the admin hid (files kept)
        self._listeners: list[Callable[[list[StyleInfo]], None]] = []
        self._lock = asyncio.Lock()
        self.precision = cpu_precision(precision, compile) if device.type == "cpu" else "fp32"
        # one compile thread for all styles: a shape compiled for one is reused by the others
        self.compiler = CompileWorker("style-compile") if compile else None
        self.models = ModelPool(device, self.precision, self.compiler)

    @property
    def compiling(self) -> bool:
        """Whether styles compile each frame size in the background (eager serves it meanwhile)."""
        return self.compiler is not None

    def inference(self) -> dict[str, object]:
        """How the styles run: precision, whether they compile, the builds still pending, and
        per style each frame size's server ("eager" while its compiled version builds)."""
        loaded = self.loaded()
        stylizers = {id(style.stylizer): style.stylizer for style in loaded}  # shared: once
        precision = self.precision  # a GPU runs its measured half dtype (stylefusion.tuning)
        if self.device.type != "cpu" and loaded:
            precision = str(loaded[0].stylizer.dtype).removeprefix("torch.")
        return {
            "precision": precision,
            "compiled": self.compiling,
            "builds_pending": sum(s.builds_pending() for s in stylizers.values()),
            "sizes": {style.name: style.stylizer.serving() for style in loaded},
        }

    def lower_priority(self) -> None:
        """From now on builds run as background work: the viewers' frames come first."""
        if self.compiler is not None:
            self.compiler.lower_priority()

    def close(self) -> None:
        """Stop the styles' builds under way and the background compile thread."""
        for style in self._styles.values():
            self.models.release(style.model)
        self.models.close()
        if self.compiler is not None:
            self.compiler.close()

    def styles(self) -> list[StyleInfo]:
        """The ready styles, sorted by name."""
        return [self._styles[n].info for n in sorted(self._styles)]

    def loaded(self) -> list[LoadedStyle]:
        """The ready styles with their stylizers, sorted by name."""
        return [self._styles[n] for n in sorted(self._styles)]

    @property
    def default(self) -> str | None:
        """The style a peer gets when it names none: the first by name (None if no styles)."""
        return min(self._styles) if self._styles else None

    def __contains__(self, name: object) -> bool:
        return name in self._styles

    def get(self, name: str) -> LoadedStyle:
        """The loaded style of that name; StyleNotFound if there is none."""
        try:
            return self._styles[name]
        except KeyError:
            raise StyleNotFound(f"no style {name!r} is loaded") from None

    def stylizer(self, name: str) -> Stylizer:
        """The Stylizer of a style (safe to call from the inference thread)."""
        return self.get(name).stylizer

    def model(self, name: str) -> StyleModel:
        """What runs a style: Stylizer, norms, network (safe from the inference thread)."""
        return self.get(name).model

    def on_change(self, callback: Callable[[list[StyleInfo]], None]) -> None:
        """Call callback(styles) on the event loop whenever the style list changes."""
        self._listeners.append(callback)

    async def rescan(self) -> list[str]:
        """Load new or changed style folders, forget removed ones; returns the names (re)loaded."""
        async with self._lock:
            found, self.hidden = await asyncio.to_thread(scan_models_dir, self.models_dir)
            removed = [name for name in self._styles if name not in found]
            for name in removed:
                log.info("style %s removed", name)
                self.models.release(self._styles.pop(name).model)  # its builds stop
            if removed:
                self._notify()  # at once: listeners move the removed styles' viewers on
            loaded = []
            for name, signature in sorted(found.items()):
                if self._is_known(name, signature):
                    continue
                style = await self._load(self.models_dir / name, signature)
                if style is not None:
                    old = self._styles.get(name)
                    if old is not None and old.stylizer is not style.stylizer:
                        self.models.release(old.model)  # retrained weights: old builds stop
                    self._styles[name] = style
                    loaded.append(name)
            if loaded or removed:
                self.models.refresh(style.model for style in self._styles.values())
            if loaded:
                self._notify()
            return loaded

    async def poll(self, interval_s: float) -> None:
        """Rescan forever every interval_s seconds (run it as a task; errors are logged)."""
        while True:
            await asyncio.sleep(interval_s)
            try:
                await self.rescan()
            except Exception:  # noqa: BLE001 - a bad scan must never stop the polling
                log.exception("rescanning %s failed", self.models_dir)

    def _is_known(self, name: str, signature: Signature) -> bool:
        loaded = self._styles.get(name)
        return (loaded is not None and loaded.signature == signature) or (
            self._broken.get(name) == signature
        )

    async def _load(self, folder: Path, signature: Signature) -> LoadedStyle | None:
        """Load one folder off the event loop; a broken folder is logged once and skipped."""
        try:
            style = await asyncio.to_thread(self._reload_blocking, folder, signature)
        except (StyleFusionError, OSError, ValueError, RuntimeError) as exc:
            log.warning("skipping style folder %s: %s", folder, exc)
            self._broken[folder.name] = signature
            return None
        self._broken.pop(folder.name, None)
        log.info("style %s ready (%s on %s)", style.name, style.variant, self.device)
        return style

    def _reload_blocking(self, folder: Path, signature: Signature) -> LoadedStyle:
        """Re-read only meta.json when nothing but it changed (a rename), else load it all."""
        old = self._styles.get(folder.name)
        if old is None or _weights(old.signature) != _weights(signature):
            return self._load_blocking(folder, signature)
        info = _named(read_style(folder), folder)
        if info.variants != old.info.variants or info.config(old.variant) != old.info.config(
            old.variant
        ):
            return self._load_blocking(folder, signature)
        return dataclasses.replace(old, info=info, signature=signature)

    def _load_blocking(self, folder: Path, signature: Signature) -> LoadedStyle:
        info = _named(read_style(folder), folder)
        variant = pick_variant(info, None, self.preferred_variant)
        return LoadedStyle(info=info, model=self.models.load(info, variant), signature=signature)

    def _notify(self) -> None:
        styles = self.styles()
        for callback in self._listeners:
            try:
                callback(styles)
            except Exception:  # noqa: BLE001 - one listener must not break the others
                log.exception("style listener failed")


def _named(info: StyleInfo, folder: Path) -> StyleInfo:
    """A style is named after its folder, whatever its meta.json says."""
    return info if info.name == folder.name else dataclasses.replace(info, name=folder.name)


def _weights(signature: Signature) -> Signature:
    """The weight files' part of a signature."""
    return tuple(entry for entry in signature if entry[0].endswith(".safetensors"))


def scan_models_dir(models_dir: Path) -> tuple[dict[str, Signature], frozenset[str]]:
    """The visible style folders (name -> signature) and the names of the hidden ones."""
    found = scan_folders(models_dir)
    hidden = hidden_names(models_dir)
    visible = {name: sig for name, sig in found.items() if name not in hidden}
    return visible, frozenset(name for name in found if name in hidden)


def scan_folders(models_dir: Path) -> dict[str, Signature]:
    """Folder name -> signature of every candidate style folder (valid name, has meta.json)."""
    found: dict[str, Signature] = {}
    if not models_dir.is_dir():
        return found
    for folder in models_dir.iterdir():
        if folder.is_dir() and NAME_PATTERN.match(folder.name):
            signature = folder_signature(folder)
            if signature:
                found[folder.name] = signature
    return found


def folder_signature(folder: Path) -> Signature:
    """(file, mtime_ns, size) of the style files present; empty when meta.json is absent."""
    entries = []
    for name in WATCHED_FILES:
        with contextlib.suppress(OSError):
            st = (folder / name).stat()
            entries.append((name, st.st_mtime_ns, st.st_size))
    has_meta = any(name == META_FILE for name, _, _ in entries)
    return tuple(entries) if has_meta else ()
