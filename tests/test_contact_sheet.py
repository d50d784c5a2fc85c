"""docs/contact_sheet.py: old and new styles side by side, one labelled column per models dir."""

from __future__ import annotations

import importlib.util
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import make_tiny_style
from media_helpers import make_photo
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def sheet_module():
    spec = importlib.util.spec_from_file_location("contact_sheet", ROOT / "docs/contact_sheet.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def test_each_style_shows_once_per_models_dir_side_by_side(
    tmp_path: Path, models_dir: Path, sheet_module
) -> None:
    newer = tmp_path / "newer"
    shutil.copytree(models_dir / "beta", newer / "beta")
    make_tiny_style(newer, "gamma", seed=3, variants=("lite",))
    cols = sheet_module.columns([models_dir, newer], ["old", "new"])
    assert [(label, info.name) for label, info in cols] == [
        ("old", "alpha"), ("old", "beta"), ("new", "beta"), ("new", "gamma"),
    ]  # fmt: skip
    photos = [make_photo(tmp_path / "a.png", 64, 48), make_photo(tmp_path / "b.png", 48, 64, 1)]
    out = tmp_path / "sheet.png"
    argv = ["--photos", *map(str, photos), "--output", str(out), "--device", "cpu"]
    argv += ["--models-dir", str(models_dir), str(newer), "--labels", "old", "new"]
    assert sheet_module.main(argv) == 0
    sheet = np.asarray(Image.open(out))
    cell = sheet_module.CELL
    assert sheet.shape[1] == 5 * cell and sheet.shape[0] > 3 * cell
    top = sheet.shape[0] - 2 * cell  # the first photo's row
    alpha, old_beta, new_beta = (
        sheet[top : top + cell, c * cell : (c + 1) * cell] for c in (1, 2, 3)
    )
    np.testing.assert_array_equal(old_beta, new_beta)  # the same weights paint the same
    assert np.abs(alpha.astype(int) - old_beta).mean() > 1  # another style paints otherwise
    with pytest.raises(SystemExit):
        sheet_module.main([*argv[:-2], "--labels", "only-one"])
