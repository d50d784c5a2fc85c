"""The style transformer: shapes, dtypes and any input size, for both variants."""

import pytest
import torch

from stylefusion.errors import StyleFormatError
from stylefusion.transformer_net import (
    VARIANTS,
    TransformerConfig,
    TransformerNet,
    build_transformer,
)


@pytest.mark.parametrize("variant", ["full", "lite"])
@pytest.mark.parametrize("size", [(37, 53), (64, 64), (3, 5), (121, 90)])
def test_output_matches_input_size_at_odd_sizes(variant: str, size: tuple[int, int]) -> None:
    torch.manual_seed(0)
    net = build_transformer(variant).eval()
    x = torch.rand(2, 3, *size)
    with torch.no_grad():
        y = net(x)
    assert y.shape == x.shape
    assert y.dtype == torch.float32
    assert torch.isfinite(y).all()


def test_lite_is_much_smaller_than_full() -> None:
    def count(net: TransformerNet) -> int:
        return sum(p.numel() for p in net.parameters())

    assert count(build_transformer("lite")) * 3 < count(build_transformer("full"))


def test_full_variant_matches_johnson_widths() -> None:
    net = build_transformer("full")
    assert net.down1.conv.conv.out_channels == 32
    assert net.down3.conv.conv.out_channels == 128
    assert len(net.residuals) == 5
    assert not any(isinstance(m, torch.nn.ConvTranspose2d) for m in net.modules())


def test_batch_items_are_independent() -> None:
    """Instance norm: one frame's result does not depend on its batch neighbours."""
    torch.manual_seed(0)
    net = build_transformer("lite").eval()
    a, b = torch.rand(1, 3, 32, 40), torch.rand(1, 3, 32, 40)
    with torch.no_grad():
        alone = net(a)
        batched = net(torch.cat([a, b]))[:1]
    torch.testing.assert_close(alone, batched, rtol=1e-4, atol=1e-5)


def test_config_round_trips_through_dict() -> None:
    for config in VARIANTS.values():
        assert TransformerConfig.from_dict(config.to_dict()) == config


def test_bad_config_or_variant_fails_clearly() -> None:
    with pytest.raises(StyleFormatError, match="architecture"):
        TransformerConfig.from_dict({"channels": [1, 2]})
    with pytest.raises(StyleFormatError, match="unknown variant"):
        build_transformer("huge")
