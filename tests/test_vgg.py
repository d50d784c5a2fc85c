"""The VGG19 loss network: original weights, named layers, frozen, computes only what is asked."""

import pytest
import torch

from stylefusion.vgg import LAYER_NAMES, VGG19


@pytest.fixture(scope="module")
def vgg() -> VGG19:
    return VGG19()


def test_layer_names_follow_the_paper(vgg: VGG19) -> None:
    assert LAYER_NAMES[:5] == ("conv1_1", "relu1_1", "conv1_2", "relu1_2", "pool1")
    assert "relu4_2" in LAYER_NAMES and "relu5_1" in LAYER_NAMES
    assert len([n for n in LAYER_NAMES if n.startswith("conv")]) == 16


def test_returns_named_feature_maps_with_expected_shapes(vgg: VGG19) -> None:
    x = torch.rand(2, 3, 64, 48)
    out = vgg(x, ["relu1_1", "relu2_2", "relu3_3", "relu4_2"])
    assert set(out) == {"relu1_1", "relu2_2", "relu3_3", "relu4_2"}
    assert out["relu1_1"].shape == (2, 64, 64, 48)
    assert out["relu2_2"].shape == (2, 128, 32, 24)
    assert out["relu3_3"].shape == (2, 256, 16, 12)
    assert out["relu4_2"].shape == (2, 512, 8, 6)
    assert (out["relu1_1"] >= 0).all()


def test_weights_are_frozen_and_loaded(vgg: VGG19) -> None:
    assert not any(p.requires_grad for p in vgg.parameters())
    w = vgg.layers["conv1_1"].weight
    assert w.shape == (64, 3, 3, 3)
    assert w.abs().max() > 0.1  # real weights, not a fresh init
    vgg.train()
    assert not vgg.training


def test_stops_at_the_deepest_layer_asked_for(vgg: VGG19) -> None:
    seen: list[str] = []
    hooks = [
        module.register_forward_hook(lambda m, i, o, name=name: seen.append(name))
        for name, module in vgg.layers.items()
    ]
    try:
        vgg(torch.rand(1, 3, 32, 32), ["relu2_1"])
    finally:
        for h in hooks:
            h.remove()
    assert seen[-1] == "relu2_1"
    assert "conv3_1" not in seen


def test_gradients_flow_to_the_input(vgg: VGG19) -> None:
    x = torch.rand(1, 3, 32, 32, requires_grad=True)
    vgg(x, ["relu2_1"])["relu2_1"].mean().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0


def test_classic_preprocessing_is_bgr_minus_mean(vgg: VGG19) -> None:
    x = torch.zeros(1, 3, 2, 2)
    x[:, 0] = 1.0  # pure red
    y = vgg.preprocess(x)
    assert torch.allclose(y[0, :, 0, 0], torch.tensor([-103.939, -116.779, 255 - 123.68]))


def test_unknown_layer_is_rejected(vgg: VGG19) -> None:
    with pytest.raises(ValueError, match="relu9_9"):
        vgg(torch.rand(1, 3, 16, 16), ["relu9_9"])
