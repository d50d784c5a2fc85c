"""Every style folder shipped in models/ is valid, loads, and stylizes a frame."""

from pathlib import Path

import numpy as np
import pytest

from stylefusion.style_folder import read_style
from stylefusion.stylizer import Stylizer

MODELS = Path(__file__).resolve().parents[1] / "models"
FOLDERS = sorted(p for p in MODELS.iterdir() if p.is_dir() and not p.name.startswith("."))


@pytest.mark.skipif(not FOLDERS, reason="no style folders in models/ yet")
@pytest.mark.parametrize("folder", FOLDERS, ids=[p.name for p in FOLDERS])
def test_shipped_style_loads_and_stylizes(folder: Path) -> None:
    info = read_style(folder)
    assert info.name == folder.name
    assert info.style_image is not None, "the pages need style.jpg for thumbnails"
    assert info.meta.get("shipped") is True, "shipped styles can be hidden, never deleted"
    frame = np.random.default_rng(0).integers(0, 256, (1, 48, 64, 3), dtype=np.uint8)
    for variant in info.variants:
        out = Stylizer.from_style(folder, variant, device="cpu")(frame)
        assert out.shape == frame.shape
        assert np.abs(out.astype(int) - frame).mean() > 5, f"{variant} leaves frames unchanged"
    assert info.meta["variants"][info.variants[0]]["training"].get("command")


@pytest.mark.skipif(not FOLDERS, reason="no style folders in models/ yet")
def test_shipped_styles_share_one_network() -> None:
    """One backbone for every shipped style: a cold start builds one package per frame size,
    and viewers in different styles share model calls (issue 18)."""
    backbones = {read_style(f).meta["variants"]["lite"].get("backbone") for f in FOLDERS}
    assert len(backbones) == 1 and None not in backbones, backbones
    (backbone,) = backbones
    assert (MODELS / ".backbones" / backbone / "backbone.safetensors").is_file()
    on_disk = {p.name for p in (MODELS / ".backbones").iterdir()}
    assert on_disk == {backbone}, "a backbone no style uses is dead weight in every clone"
