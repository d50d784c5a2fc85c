"""Multi-style style folders: one shared backbone per models dir, a few KB of norms per style."""

from __future__ import annotations

import dataclasses
import os
import shutil
import zipfile
from pathlib import Path

import pytest
import torch
from conftest import TINY, make_style_image

from stylefusion.backbone import (
    BACKBONES_DIR,
    BackboneCache,
    backbone_dir,
    bundled_backbone_file,
    write_backbone,
)
from stylefusion.errors import StyleFormatError
from stylefusion.style_folder import (
    list_styles,
    load_shared_style,
    load_transformer,
    read_style,
    save_shared_style,
    style_files,
)
from stylefusion.transformer_net import TransformerNet

MULTI = dataclasses.replace(TINY, styles=2)


def _trained(seed: int = 0) -> TransformerNet:
    """A seeded multi-style network whose two table rows differ."""
    torch.manual_seed(seed)
    net = TransformerNet(MULTI).eval()
    with torch.no_grad():
        net.style_table.add_(torch.randn_like(net.style_table) * 0.3)
    return net


def _save_two(models: Path, net: TransformerNet) -> str:
    backbone_id = write_backbone(models, net, {"styles": ["ink", "oil"]})
    for i, name in enumerate(["ink", "oil"]):
        image = make_style_image(models / f".{name}.png", seed=i)
        save_shared_style(
            models / name, "lite", net, net.style_norms(i)[0], backbone_id,
            name=name, style_image=image,
        )  # fmt: skip
    return backbone_id


def test_each_style_stores_only_its_norms_and_names_the_backbone(tmp_path: Path) -> None:
    net = _trained()
    backbone_id = _save_two(tmp_path, net)
    folder = tmp_path / "ink"
    assert (folder / "lite.norms.safetensors").stat().st_size < 8 * 1024
    assert not (folder / "lite.safetensors").exists()
    info = read_style(folder)
    assert info.variants == ("lite",) and info.backbone_id("lite") == backbone_id
    assert [s.name for s in list_styles(tmp_path)] == ["ink", "oil"]  # .backbones is no style
    assert (tmp_path / BACKBONES_DIR / backbone_id / "backbone.safetensors").is_file()


def test_loaded_style_computes_what_the_trained_network_did(tmp_path: Path) -> None:
    net = _trained()
    _save_two(tmp_path, net)
    x = torch.rand(2, 3, 20, 20)
    with torch.no_grad():
        want = net(x, net.style_norms([1, 1]))
        shared = load_shared_style(tmp_path / "oil", "lite")
        got = shared.model(x, shared.norms.expand(2, -1))
        folded = load_transformer(tmp_path / "oil", "lite")(x)  # what single-style users get
    torch.testing.assert_close(got, want, rtol=2e-3, atol=2e-3)  # fp16 backbone
    torch.testing.assert_close(folded, got, rtol=1e-4, atol=1e-4)


def test_styles_of_one_backbone_share_one_model_in_memory(tmp_path: Path) -> None:
    _save_two(tmp_path, _trained())
    cache = BackboneCache()
    ink = load_shared_style(tmp_path / "ink", "lite", cache)
    oil = load_shared_style(tmp_path / "oil", "lite", cache)
    assert ink.model is oil.model and len(cache) == 1
    assert not torch.equal(ink.norms, oil.norms)


def test_the_same_weights_are_stored_once(tmp_path: Path) -> None:
    net = _trained()
    first = write_backbone(tmp_path, net)
    assert write_backbone(tmp_path, net) == first
    assert [p.name for p in (tmp_path / BACKBONES_DIR).iterdir()] == [first]  # no temp left
    with torch.no_grad():
        net.out.conv.bias.add_(1.0)
    assert write_backbone(tmp_path, net) != first


def test_deleting_a_style_keeps_the_shared_backbone(tmp_path: Path) -> None:
    backbone_id = _save_two(tmp_path, _trained())
    shutil.rmtree(tmp_path / "ink")
    assert backbone_dir(tmp_path, backbone_id).is_dir()
    assert read_style(tmp_path / "oil").variants == ("lite",)


def test_a_zipped_style_carries_its_backbone_and_loads_elsewhere(tmp_path: Path) -> None:
    net = _trained()
    _save_two(tmp_path / "here", net)
    archive = tmp_path / "ink.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for name, path in style_files(tmp_path / "here" / "ink"):
            zf.write(path, f"ink/{name}")
    there = tmp_path / "there"
    zipfile.ZipFile(archive).extractall(there)  # a models dir without .backbones
    assert (there / "ink" / bundled_backbone_file("lite")).is_file()
    x = torch.rand(1, 3, 16, 16)
    with torch.no_grad():
        want = load_transformer(tmp_path / "here" / "ink", "lite")(x)
        torch.testing.assert_close(load_transformer(there / "ink", "lite")(x), want)


def test_a_style_whose_backbone_is_gone_is_not_listed(tmp_path: Path, caplog) -> None:
    backbone_id = _save_two(tmp_path, _trained())
    shutil.rmtree(backbone_dir(tmp_path, backbone_id))
    assert list_styles(tmp_path) == []
    assert "no full or lite weights" in caplog.text


def test_a_damaged_bundled_backbone_is_refused(tmp_path: Path) -> None:
    _save_two(tmp_path / "here", _trained())
    copy = tmp_path / "there" / "ink"
    shutil.copytree(tmp_path / "here" / "ink", copy)
    (copy / bundled_backbone_file("lite")).write_bytes(b"not the backbone")
    with pytest.raises(StyleFormatError, match="hash differs"):
        load_transformer(copy, "lite")


def test_a_half_written_backbone_is_never_seen(tmp_path: Path, monkeypatch) -> None:
    def crash(src: str, dst: str) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(os, "rename", crash)
    with pytest.raises(OSError, match="disk full"):
        write_backbone(tmp_path, _trained())
    assert list((tmp_path / BACKBONES_DIR).iterdir()) == []
