"""Losses against values computed by hand."""

import torch

from stylefusion.losses import (
    content_loss,
    gram_matrix,
    style_loss,
    total_variation,
    weighted_terms,
)


def test_content_loss_is_mean_squared_error() -> None:
    a = torch.tensor([[[[1.0, 2.0], [3.0, 4.0]]]])
    b = torch.tensor([[[[1.0, 0.0], [3.0, 8.0]]]])
    assert content_loss(a, b).item() == (0 + 4 + 0 + 16) / 4


def test_gram_matrix_normalised_by_chw() -> None:
    f = torch.tensor([[[[1.0, 2.0]], [[3.0, 4.0]]]])  # (1, C=2, H=1, W=2)
    expected = torch.tensor([[[5.0, 11.0], [11.0, 25.0]]]) / (2 * 1 * 2)
    torch.testing.assert_close(gram_matrix(f), expected)


def test_style_loss_sums_layers_and_broadcasts_target() -> None:
    f1 = torch.tensor([[[[1.0, 2.0]], [[3.0, 4.0]]]]).repeat(2, 1, 1, 1)
    target = torch.zeros(1, 2, 2)
    g = gram_matrix(f1[:1])
    expected = (g**2).mean()
    loss = style_loss({"a": f1, "b": f1}, {"a": target, "b": target}, {"a": 1.0, "b": 0.5})
    torch.testing.assert_close(loss, expected * 1.5)
    assert style_loss({"a": f1}, {"a": g}).item() == 0.0


def test_total_variation_of_flat_and_striped_images() -> None:
    flat = torch.full((1, 3, 4, 4), 0.5)
    assert total_variation(flat).item() == 0.0
    stripes = torch.zeros(1, 1, 2, 2)
    stripes[..., :, 1] = 1.0  # vertical stripes: |dx| = 1 everywhere, dy = 0
    assert total_variation(stripes).item() == 1.0


def test_weighted_terms_sum_with_their_weights() -> None:
    c, s, tv = torch.tensor(2.0), torch.tensor(3.0), torch.tensor(5.0)
    terms = weighted_terms(c, s, tv, (1.0, 5.0, 0.1))
    assert terms["loss"].item() == 2.0 + 15.0 + 0.5
    assert (terms["content"], terms["style"], terms["tv"]) == (c, s, tv)
