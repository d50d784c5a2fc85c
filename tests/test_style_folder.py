"""Style folders: round trip, variants, and clear failures on wrong, old or garbage files."""

import json
import pickle
from pathlib import Path

import pytest
import torch
from conftest import TINY, make_style_image, make_tiny_style

from stylefusion.errors import InvalidInput, StyleFormatError, StyleNotFound
from stylefusion.style_folder import (
    list_styles,
    load_transformer,
    read_style,
    resolve_style,
    save_transformer,
    validate_name,
)
from stylefusion.transformer_net import TransformerNet


def test_round_trip_keeps_weights_and_metadata(tmp_path: Path) -> None:
    torch.manual_seed(3)
    net = TransformerNet(TINY)
    image = make_style_image(tmp_path / "painting.png", seed=3)
    folder = tmp_path / "models" / "waves"
    info = save_transformer(
        folder,
        "full",
        net,
        name="waves",
        display_name="Great Wave",
        training={"steps": 10},
        losses={"content": 1.5},
        style_image=image,
        dtype=torch.float32,
    )
    assert info.variants == ("full",)
    assert info.display_name == "Great Wave"
    assert (folder / "style.jpg").is_file()
    meta = json.loads((folder / "meta.json").read_text())
    assert meta["format_version"] == 1
    assert meta["variants"]["full"]["architecture"]["channels"] == list(TINY.channels)
    assert meta["variants"]["full"]["losses"] == {"content": 1.5}
    assert len(meta["style_image_sha256"]) == 64
    loaded = load_transformer(folder, "full")
    for key, value in net.state_dict().items():
        assert torch.equal(loaded.state_dict()[key], value), key


def test_adding_a_variant_keeps_the_other(tmp_path: Path) -> None:
    folder = make_tiny_style(tmp_path, "duo", seed=1, variants=("full",))
    save_transformer(folder, "lite", TransformerNet(TINY), name="duo")
    assert read_style(folder).variants == ("full", "lite")
    load_transformer(folder, "full")


def test_fp16_weights_are_the_default_and_load_as_fp32(tmp_path: Path) -> None:
    folder = make_tiny_style(tmp_path, "half", seed=1, variants=("lite",))
    assert json.loads((folder / "meta.json").read_text())["variants"]["lite"]["dtype"] == "float16"
    net = load_transformer(folder, "lite")
    assert all(p.dtype == torch.float32 for p in net.parameters())


def test_missing_variant_is_a_clear_error(tmp_path: Path) -> None:
    folder = make_tiny_style(tmp_path, "solo", seed=1, variants=("lite",))
    with pytest.raises(StyleNotFound, match="no 'full'"):
        load_transformer(folder, "full")


def test_old_format_version_is_refused(models_dir: Path) -> None:
    meta_path = models_dir / "alpha" / "meta.json"
    meta = json.loads(meta_path.read_text())
    meta["format_version"] = 0
    meta_path.write_text(json.dumps(meta))
    with pytest.raises(StyleFormatError, match="format version 0"):
        read_style(models_dir / "alpha")


def test_garbage_meta_is_refused(models_dir: Path) -> None:
    (models_dir / "alpha" / "meta.json").write_bytes(b"\x00\xffnot json")
    with pytest.raises(StyleFormatError, match="not valid JSON"):
        read_style(models_dir / "alpha")


def test_garbage_weights_are_refused(models_dir: Path) -> None:
    (models_dir / "alpha" / "lite.safetensors").write_bytes(b"garbage" * 10)
    with pytest.raises(StyleFormatError, match="not a safetensors file"):
        load_transformer(models_dir / "alpha", "lite")


def test_a_pickle_is_never_unpickled(models_dir: Path, tmp_path: Path) -> None:
    marker = tmp_path / "pwned"

    class Evil:
        def __reduce__(self):  # runs on unpickling
            return (marker.write_text, ("x",))

    (models_dir / "alpha" / "lite.safetensors").write_bytes(pickle.dumps(Evil()))
    with pytest.raises(StyleFormatError):
        load_transformer(models_dir / "alpha", "lite")
    torch_pickle = models_dir / "beta" / "lite.safetensors"
    torch.save(TransformerNet(TINY).state_dict(), torch_pickle)
    with pytest.raises(StyleFormatError):
        load_transformer(models_dir / "beta", "lite")
    assert not marker.exists()


def test_weights_not_matching_the_architecture_are_refused(models_dir: Path) -> None:
    meta_path = models_dir / "alpha" / "meta.json"
    meta = json.loads(meta_path.read_text())
    meta["variants"]["lite"]["architecture"]["channels"] = [8, 16, 16]
    meta_path.write_text(json.dumps(meta))
    with pytest.raises(StyleFormatError, match="does not match the architecture"):
        load_transformer(models_dir / "alpha", "lite")


def test_list_styles_skips_broken_folders(models_dir: Path, caplog) -> None:
    (models_dir / "broken").mkdir()
    (models_dir / "broken" / "meta.json").write_text("{")
    (models_dir / "empty").mkdir()
    names = [s.name for s in list_styles(models_dir)]
    assert names == ["alpha", "beta"]
    assert "broken" in caplog.text


def test_resolve_by_name_or_path(models_dir: Path) -> None:
    assert resolve_style("alpha", models_dir) == models_dir / "alpha"
    assert resolve_style(str(models_dir / "beta"), Path("/nonexistent")) == models_dir / "beta"
    with pytest.raises(StyleNotFound, match="no style 'gamma'"):
        resolve_style("gamma", models_dir)
    with pytest.raises(StyleNotFound):
        resolve_style("../alpha", models_dir / "sub")


@pytest.mark.parametrize("name", ["", "Has-Caps", "a" * 41, "../up", "sp ace", "dot.name"])
def test_bad_style_names_are_refused(name: str) -> None:
    with pytest.raises(InvalidInput, match="invalid style name"):
        validate_name(name)


def test_good_style_name_passes() -> None:
    assert validate_name("starry-night-2") == "starry-night-2"


def test_two_variants_finishing_together_both_stay(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import threading
    import time

    from stylefusion import style_folder

    slow_read = style_folder.read_meta

    def read_meta(folder: Path) -> dict:
        time.sleep(0.3)  # without the lock, both trainings would read before either writes
        return slow_read(folder)

    monkeypatch.setattr(style_folder, "read_meta", read_meta)
    folder = tmp_path / "twins"
    savers = [
        threading.Thread(
            target=save_transformer,
            args=(folder, v, TransformerNet(TINY)),
            kwargs={"name": "twins"},
        )
        for v in ("full", "lite")
    ]
    for saver in savers:
        saver.start()
    for saver in savers:
        saver.join()
    assert sorted(read_style(folder).variants) == ["full", "lite"]
