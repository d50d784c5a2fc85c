"""Multi-style transformer: per-sample norms, packed order, blends, old configs still load."""

from __future__ import annotations

import dataclasses

import pytest
import torch
from conftest import TINY

from stylefusion.transformer_net import (
    TransformerConfig,
    TransformerNet,
    affine_norms,
    fold_norms,
    identity_norms,
    norm_layer_names,
)

MULTI = dataclasses.replace(TINY, styles=3)


def _randomised(config: TransformerConfig, seed: int) -> TransformerNet:
    """A seeded network whose norm parameters are far from the identity."""
    torch.manual_seed(seed)
    net = TransformerNet(config).eval()
    with torch.no_grad():
        for name, param in net.named_parameters():
            if "norm" in name or name == "style_table":
                param.copy_(torch.randn_like(param) * 0.5 + (1.0 if "weight" in name else 0.0))
    return net


def test_norm_size_counts_a_gamma_and_beta_per_channel_of_every_norm() -> None:
    net = TransformerNet(MULTI)
    c1, c2, c3 = MULTI.channels
    assert net.norm_size == 2 * (c1 + c2 + c3 + 2 * c3 * MULTI.residual_blocks + c2 + c1)
    assert net.style_table.shape == (3, net.norm_size)
    assert net.style_norms(1).shape == (1, net.norm_size)
    assert net.style_norms([0, 2, 2]).shape == (3, net.norm_size)
    assert TransformerNet(TINY).norm_size == 0


def test_one_batch_serves_each_sample_in_its_own_style() -> None:
    net = _randomised(MULTI, seed=0)
    x = torch.rand(3, 3, 20, 28)
    with torch.no_grad():
        mixed = net(x, net.style_norms([2, 0, 1]))
        alone = [net(x[i : i + 1], net.style_norms(s)) for i, s in enumerate([2, 0, 1])]
    torch.testing.assert_close(mixed, torch.cat(alone), rtol=1e-4, atol=1e-5)
    assert (alone[0] - net(x[:1], net.style_norms(0))).abs().max() > 1e-3  # styles differ


def test_a_single_style_net_is_the_multi_style_net_with_its_packed_norms() -> None:
    """The packed order is the documented one: the affine params of a single-style network
    copied into it reproduce that network exactly."""
    single = _randomised(TINY, seed=1)
    multi = TransformerNet(MULTI).eval()
    multi.load_state_dict(
        {k: v for k, v in single.state_dict().items() if "norm" not in k}, strict=False
    )
    x = torch.rand(2, 3, 24, 24)
    norms = affine_norms(single).expand(2, -1)
    with torch.no_grad():
        torch.testing.assert_close(multi(x, norms), single(x), rtol=1e-4, atol=1e-5)
        folded = fold_norms(multi, norms[0])
        torch.testing.assert_close(folded(x), single(x), rtol=1e-4, atol=1e-5)
    assert len(norm_layer_names(TINY)) == 5 + 2 * TINY.residual_blocks


def test_a_blend_is_a_linear_interpolation_of_two_norm_vectors() -> None:
    net = _randomised(MULTI, seed=2)
    x = torch.rand(1, 3, 16, 16)
    a, b = net.style_norms(0), net.style_norms(1)
    with torch.no_grad():
        start, end = net(x, torch.lerp(a, b, 0.0)), net(x, torch.lerp(a, b, 1.0))
        halfway = net(x, torch.lerp(a, b, 0.5))
    torch.testing.assert_close(start, net(x, a))
    torch.testing.assert_close(end, net(x, b))
    assert 0 < (halfway - start).abs().mean() < (end - start).abs().mean()


def test_fresh_table_rows_are_identity_norms() -> None:
    net = TransformerNet(MULTI)
    assert torch.equal(net.style_norms(2)[0], identity_norms(MULTI))


def test_norms_must_match_the_kind_of_network() -> None:
    with pytest.raises(ValueError, match="needs norms"):
        TransformerNet(MULTI)(torch.rand(1, 3, 16, 16))
    with pytest.raises(ValueError, match="single-style"):
        TransformerNet(TINY).style_norms(0)


def test_old_architecture_entries_load_as_single_style() -> None:
    old = {"channels": [16, 32, 64], "residual_blocks": 5, "edge_kernel": 5}
    assert TransformerConfig.from_dict(old).styles == 0
    assert TransformerConfig.from_dict(old).to_dict() == old  # meta.json entries unchanged
    assert TransformerConfig.from_dict(MULTI.to_dict()) == MULTI


def test_multi_style_net_exports_with_norms_as_an_input() -> None:
    net = _randomised(MULTI, seed=3)
    x, norms = torch.rand(2, 3, 16, 16), net.style_norms([0, 1]).detach()
    exported = torch.export.export(net, (x, norms))
    with torch.no_grad():
        torch.testing.assert_close(exported.module()(x, norms), net(x, norms))
