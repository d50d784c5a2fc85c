"""Shared fixtures: tiny seeded style folders and small synthetic inputs (nothing downloaded)."""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from stylefusion import devices
from stylefusion.backbone import write_backbone
from stylefusion.progress import Progress
from stylefusion.style_folder import save_shared_style, save_transformer
from stylefusion.transformer_net import TransformerConfig, TransformerNet

TINY = TransformerConfig(channels=(4, 8, 8), residual_blocks=1, edge_kernel=3)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Files holding a `slow` test go first (in their order): under make test's xdist
    (--dist loadfile --no-loadscope-reorder) the long files start at once and the short ones
    fill in around them, rather than a long one starting last and running alone."""
    slow = {item.path for item in items if item.get_closest_marker("slow")}
    items.sort(key=lambda item: item.path not in slow)  # stable: order within a file is kept


@pytest.fixture(autouse=True)
def _few_threads(monkeypatch: pytest.MonkeyPatch) -> None:
    # CI has 2 cores and make test runs two workers: a test's own process takes one. Library
    # code that defaults to all cores (a CLI train, run_bench) took both, so the other worker's
    # nice-19 job workers and package builds starved; tiny models gain nothing from more threads
    torch.set_num_threads(1)
    monkeypatch.setattr(devices, "cpu_count", lambda: 1)


COMPILE_CACHE = "TORCHINDUCTOR_CACHE_DIR"


@pytest.fixture(scope="session", autouse=True)
def _shared_compile_cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """One inductor cache for the whole run, every xdist worker and child process: the tiny
    models' torch.compile kernels are built once, not per test (a cold compile of TINY is
    36 s of a loaded 2-core box, a warm one 8 s). Tests that prove a cold build give
    themselves their own cache (test_packages, a server's --data-dir)."""
    root = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        root = root.parent  # the run's folder, shared by the workers' own basetemps
    before = os.environ.get(COMPILE_CACHE)
    os.environ[COMPILE_CACHE] = str(root / "inductor-cache")
    yield
    _set_env(COMPILE_CACHE, before)


@pytest.fixture(autouse=True)
def _compile_cache_restored() -> Iterator[None]:
    """An app under test points inductor at its own --data-dir, process-wide
    (devices.configure_torch): later tests must not build into an old test's folder."""
    before = os.environ.get(COMPILE_CACHE)
    yield
    _set_env(COMPILE_CACHE, before)


def _set_env(name: str, value: str | None) -> None:
    if value is None:
        os.environ.pop(name, None)
    else:
        os.environ[name] = value


class CancelAfter:
    """A cancel flag that trips once `steps` progress reports have arrived."""

    def __init__(self, steps: int) -> None:
        self.steps = steps
        self.seen = 0

    def __call__(self, progress: Progress) -> None:
        self.seen = progress.done

    def is_set(self) -> bool:
        return self.seen >= self.steps


def make_style_image(path: Path, seed: int, size: int = 64) -> Path:
    """A small, seeded, colourful 'painting'."""
    rng = np.random.default_rng(seed)
    pixels = rng.integers(0, 256, (size, size, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(path)
    return path


def make_tiny_style(models_dir: Path, name: str, seed: int, variants=("full", "lite")) -> Path:
    """A style folder with tiny random (non-identity) transformers, seeded."""
    folder = models_dir / name
    image = make_style_image(models_dir / f".{name}-src.png", seed)
    for variant in variants:
        torch.manual_seed(seed)
        save_transformer(folder, variant, TransformerNet(TINY), name=name, style_image=image)
    image.unlink()
    return folder


def tiny_multistyle(styles: int, seed: int) -> TransformerNet:
    """A seeded tiny multi-style network whose style table rows differ clearly."""
    torch.manual_seed(seed)
    net = TransformerNet(dataclasses.replace(TINY, styles=styles)).eval()
    with torch.no_grad():
        net.style_table.add_(torch.randn_like(net.style_table) * 0.5)
    return net


def make_tiny_multistyle(
    models_dir: Path, names: Sequence[str], seed: int, variants=("full", "lite")
) -> TransformerNet:
    """Style folders of one tiny shared backbone (the ml library's own save functions): each
    holds its norms, row i of the network's table; returns the network."""
    net = tiny_multistyle(len(names), seed)
    backbone_id = write_backbone(models_dir, net, {"styles": list(names)})
    for i, name in enumerate(names):
        image = make_style_image(models_dir / f".{name}-src.png", seed + i)
        for variant in variants:
            norms = net.style_norms(i)[0]
            save_shared_style(
                models_dir / name, variant, net, norms, backbone_id, name=name, style_image=image
            )
        image.unlink()
    return net


@pytest.fixture
def models_dir(tmp_path: Path) -> Path:
    """A models dir with two tiny styles, 'alpha' and 'beta', each with full and lite weights."""
    root = tmp_path / "models"
    root.mkdir()
    make_tiny_style(root, "alpha", seed=1)
    make_tiny_style(root, "beta", seed=2)
    return root


@pytest.fixture
def content_dir(tmp_path: Path) -> Path:
    """A folder of six small seeded photos (smooth gradients plus noise), one in a subfolder."""
    root = tmp_path / "content"
    (root / "sub").mkdir(parents=True)
    rng = np.random.default_rng(0)
    for i in range(6):
        h, w = 48 + 8 * i, 64
        yy, xx = np.mgrid[0:h, 0:w]
        base = np.stack([xx * 4, yy * 4, (xx + yy) * 2], axis=-1) % 256
        noise = rng.integers(0, 40, (h, w, 3))
        img = np.clip(base + noise, 0, 255).astype(np.uint8)
        folder = root / "sub" if i == 5 else root
        Image.fromarray(img).save(folder / f"photo{i}.jpg")
    return root
