"""The radiance field: output ranges, shapes, the truncated exponential."""

from __future__ import annotations

import torch

from san.encodings.config import HashGridConfig
from san.fields.config import NeRFFieldConfig, ProposalFieldConfig
from san.fields.nerf_field import NeRFField, ProposalField, trunc_exp

SMALL_GRID = HashGridConfig(
    num_levels=3, features_per_level=2, log2_hashmap_size=10, base_resolution=4, max_resolution=32
)


def test_field_outputs_and_view_dependence():
    torch.manual_seed(0)
    field = NeRFField(
        NeRFFieldConfig(grid=SMALL_GRID, hidden_dim=16, color_hidden_dim=16), backend="torch", device="cpu"
    )
    x = torch.rand(50, 3)
    d = torch.nn.functional.normalize(torch.randn(50, 3), dim=-1)
    sigma, rgb = field(x, d)
    assert sigma.shape == (50,) and rgb.shape == (50, 3)
    assert bool((sigma > 0).all()) and bool(((rgb > 0) & (rgb < 1)).all())
    torch.testing.assert_close(field.density(x), sigma)
    _, rgb2 = field(x, -d)
    assert not torch.allclose(rgb, rgb2)  # colour depends on the direction, density does not


def test_proposal_field_density():
    field = ProposalField(ProposalFieldConfig(grid=SMALL_GRID, hidden_dim=8), backend="torch", device="cpu")
    sigma = field.density(torch.rand(20, 3))
    assert sigma.shape == (20,) and bool((sigma > 0).all())


def test_trunc_exp_forward_exact_gradient_clamped():
    x = torch.tensor([0.0, 2.0, 40.0], requires_grad=True)
    y = trunc_exp(x)
    torch.testing.assert_close(y.detach(), torch.exp(x.detach()))
    y.sum().backward()
    torch.testing.assert_close(x.grad, torch.exp(torch.tensor([0.0, 2.0, 15.0])))
