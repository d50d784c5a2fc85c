"""The quality yardstick used to accept shipped styles."""

import importlib.util
import json
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import make_style_image
from PIL import Image

from stylefusion.stylizer import Stylizer
from stylefusion.transformer_net import TransformerNet
from stylefusion.vgg import VGG19
from stylefusion.yardstick import PHOTO_SIZE, score, square_photo


class Identity(torch.nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x


@pytest.fixture(scope="module")
def vgg() -> VGG19:
    return VGG19()


def test_photos_become_centred_squares(tmp_path: Path) -> None:
    path = tmp_path / "wide.png"
    Image.fromarray(np.zeros((100, 300, 3), np.uint8)).save(path)
    assert square_photo(path).shape == (PHOTO_SIZE, PHOTO_SIZE, 3)


def test_identity_has_no_content_loss_and_a_real_net_has_some(tmp_path, content_dir, vgg) -> None:
    photos = sorted(content_dir.glob("*.jpg"))[:1]
    style = make_style_image(tmp_path / "style.png", seed=5)
    identity = score(Stylizer(Identity(), "cpu"), photos, style, vgg)
    assert identity.content == 0.0 and identity.style > 0
    torch.manual_seed(0)
    random_net = score(Stylizer(TransformerNet(), "cpu"), photos, style, vgg)
    assert random_net.content > 0
    assert random_net.total == pytest.approx(random_net.content + 5 * random_net.style)


def _yardstick_script():
    root = Path(__file__).resolve().parents[1]
    sys.path.insert(0, str(root / "bench"))  # the script imports results.py beside it
    spec = importlib.util.spec_from_file_location("bench_yardstick", root / "bench/yardstick.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_script_reports_both_terms_and_the_ratio_to_a_reference(
    tmp_path: Path, models_dir: Path, content_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    photos = tmp_path / "held-out"
    photos.mkdir()
    for photo in sorted(content_dir.glob("*.jpg"))[:2]:
        shutil.copy(photo, photos / photo.name)
    reference = tmp_path / "before.json"
    reference.write_text(json.dumps({"before": {"scores": {"alpha": {"lite": 1000.0}}}}))
    output = tmp_path / "results.json"
    output.write_text(json.dumps({"flicker": {"kept": True}}))
    argv = ["--models-dir", str(models_dir), "--photos", str(photos), "--photo-size", "32"]
    argv += ["--style-size", "32", "--reference", str(reference), "--reference-key", "before"]
    assert _yardstick_script().main([*argv, "--output", str(output), "--key", "after"]) == 0
    printed = capsys.readouterr()
    results = json.loads(output.read_text())
    assert results["flicker"] == {"kept": True} and results["after"] == json.loads(printed.out)
    alpha = results["after"]["scores"]["alpha"]
    assert alpha["lite"] == pytest.approx(alpha["lite_content"] + alpha["lite_style"], rel=1e-6)
    assert alpha["lite_over_reference"] == pytest.approx(alpha["lite"] / 1000.0, abs=1e-3)
    assert "full_over_reference" not in alpha  # the reference has no full total
    assert "lite_over_reference" not in results["after"]["scores"]["beta"]
    rows = [line.split() for line in printed.err.splitlines()]
    expected = [[style, variant] for style in ("alpha", "beta") for variant in ("full", "lite")]
    assert [row[:2] for row in rows[1:]] == expected


def test_a_reference_without_the_key_exits_2(tmp_path: Path, models_dir: Path, capsys) -> None:
    reference = tmp_path / "before.json"
    reference.write_text("{}")
    argv = ["--models-dir", str(models_dir), "--photos", str(tmp_path), "--reference"]
    assert _yardstick_script().main([*argv, str(reference), "--reference-key", "nope"]) == 2
    assert "no key 'nope'" in capsys.readouterr().err
