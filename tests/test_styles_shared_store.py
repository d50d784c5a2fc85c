"""A models dir shared by several servers: a reader never finds a half-written style folder."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from conftest import make_tiny_style

from server.styles.registry import scan_folders
from stylefusion import fsutil
from stylefusion.style_folder import load_transformer, read_style


def _what_a_reader_loads(models_dir: Path, name: str) -> tuple[str, ...] | None:
    """What another server's registry would load right now: None (not a style yet) or variants."""
    if name not in scan_folders(models_dir):
        return None
    info = read_style(models_dir / name)
    for variant in info.variants:
        load_transformer(models_dir / name, variant)  # raises on a half-written folder
    return info.variants


def test_every_step_of_writing_a_style_is_a_whole_style_or_none(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    models = tmp_path / "models"
    models.mkdir()
    seen: list[tuple[str, ...] | None] = []
    real_replace = os.replace

    def replace_then_look(src: str, dst: str) -> None:  # every file lands by rename
        real_replace(src, dst)
        seen.append(_what_a_reader_loads(models, "shared"))

    monkeypatch.setattr(fsutil.os, "replace", replace_then_look)
    make_tiny_style(models, "shared", seed=1, variants=("lite",))  # a new style
    make_tiny_style(models, "shared", seed=2, variants=("full",))  # a variant added to it
    monkeypatch.undo()
    new, added = seen[:3], seen[3:]
    assert new == [None, None, ("lite",)]  # style.jpg, weights: invisible until meta.json
    assert added == [("lite",), ("lite",), ("full", "lite")]  # the old style, then both
