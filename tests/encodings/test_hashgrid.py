"""The vectorised torch hash grid against the explicit per-level, per-corner reference."""

from __future__ import annotations

import math

import pytest
import torch

from san.encodings.config import HashGridConfig
from san.encodings.hashgrid import hash_encoding_reference, make_hash_encoding
from san.encodings.sh import spherical_harmonics


@pytest.mark.parametrize(
    "config",
    [
        HashGridConfig(num_levels=6, features_per_level=2, log2_hashmap_size=12, base_resolution=4, max_resolution=200),
        HashGridConfig(num_levels=3, features_per_level=4, log2_hashmap_size=10, base_resolution=2, max_resolution=64),
    ],
)
def test_torch_hashgrid_matches_reference(config):
    torch.manual_seed(0)
    enc = make_hash_encoding(config, backend="torch", device="cpu")
    assert enc.backend == "torch"
    layout = config.level_layout()
    assert any(d for *_, d in layout) and not all(d for *_, d in layout)  # both dense and hashed levels
    with torch.no_grad():
        enc.params.uniform_(-1, 1)
    x = torch.rand(64, 3)
    x[0] = 0.0
    x[1] = 1.0  # the far corner exercises the dense-index wrap-around
    got = enc(x).double()
    want = hash_encoding_reference(x, config, enc.params)
    assert got.shape == (64, config.out_dim)
    torch.testing.assert_close(got, want, atol=1e-5, rtol=1e-5)


def test_torch_hashgrid_gradient_is_scatter_of_weights():
    config = HashGridConfig(
        num_levels=4, features_per_level=2, log2_hashmap_size=10, base_resolution=4, max_resolution=64
    )
    torch.manual_seed(1)
    enc = make_hash_encoding(config, backend="torch", device="cpu")
    x = torch.rand(50, 3)
    params = enc.params.detach().clone().double().requires_grad_(True)
    g = torch.randn(50, config.out_dim, dtype=torch.float64)
    (enc(x).double() * g).sum().backward()
    (reference_encoding_autograd(x, enc, params) * g).sum().backward()
    torch.testing.assert_close(enc.params.grad.double(), params.grad, atol=1e-5, rtol=1e-5)


def reference_encoding_autograd(x, enc, params):
    """Same rows and weights, differentiated by plain autograd gather (no custom backward)."""
    rows, weights = enc.corner_rows_and_weights(x)
    table = params.t()
    per_level = (table[rows.long()] * weights.double()[..., None]).sum(1)  # L P F
    return per_level.permute(1, 0, 2).reshape(x.shape[0], -1)


def test_hashgrid_level_layout_follows_instant_ngp():
    config = HashGridConfig(
        num_levels=16, features_per_level=2, log2_hashmap_size=19, base_resolution=16, max_resolution=2048
    )
    layout = config.level_layout()
    assert layout[0][1] == 16 and abs(layout[-1][0] - 2047.0) < 1e-6
    assert config.per_level_scale == pytest.approx(math.exp(math.log(128) / 15))
    assert all(size <= 2**19 and size % 8 == 0 for _, _, size, _ in layout)


def test_auto_backend_is_torch_on_cpu_and_tcnn_request_fails_clearly():
    config = HashGridConfig(num_levels=2, log2_hashmap_size=8, base_resolution=2, max_resolution=8)
    assert make_hash_encoding(config, "auto", device="cpu").backend == "torch"
    with pytest.raises(RuntimeError, match="tcnn"):
        make_hash_encoding(config, "tcnn", device="cpu")


def test_spherical_harmonics_orthonormal():
    torch.manual_seed(0)
    d = torch.randn(200000, 3, dtype=torch.float64)
    d = d / d.norm(dim=-1, keepdim=True)
    Y = spherical_harmonics(d, 4)
    assert Y.shape == (200000, 16)
    gram = (Y.T @ Y) * (4 * math.pi / d.shape[0])  # Monte-Carlo integral over the sphere
    torch.testing.assert_close(gram, torch.eye(16, dtype=torch.float64), atol=0.03, rtol=0)


def test_tcnn_wrapper_shares_the_torch_state_dict_layout():
    """tiny-cuda-nn cannot be installed here: a stand-in with tcnn's interface (a flat, entry-major
    ``params`` buffer) checks the wrapper's state-dict plumbing, so models move between backends."""
    import types

    from torch import nn

    from san.encodings import hashgrid as hg

    config = HashGridConfig(
        num_levels=3, features_per_level=2, log2_hashmap_size=10, base_resolution=4, max_resolution=32
    )
    reference = hg.TorchHashEncoding(config)

    class StandInEncoding(nn.Module):
        def __init__(self, n_input_dims, encoding_config, dtype):
            super().__init__()
            assert encoding_config["per_level_scale"] == config.per_level_scale
            self.params = nn.Parameter(torch.zeros(config.num_entries * config.features_per_level))

        def forward(self, x):
            rows, w = reference.corner_rows_and_weights(x)
            return hg._HashGridInterpolate.apply(self.params.view(-1, config.features_per_level).t(), rows, w)

    wrapper = hg.TcnnHashEncoding(config, types.SimpleNamespace(Encoding=StandInEncoding))
    assert list(wrapper.state_dict()) == ["params"] and [n for n, _ in wrapper.named_parameters()] == ["params"]
    with torch.no_grad():
        reference.params.uniform_(-1, 1)
    wrapper.load_state_dict(reference.state_dict())
    x = torch.rand(10, 3)
    torch.testing.assert_close(wrapper(x), reference(x))
    assert torch.equal(wrapper.state_dict()["params"], reference.state_dict()["params"])
