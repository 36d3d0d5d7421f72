"""The vectorised torch hash grid against an explicit per-level, per-corner reference."""

from __future__ import annotations

import math

import pytest
import torch

from san.encodings.hashgrid import HashGridConfig, make_hash_encoding
from san.encodings.sh import spherical_harmonics


def reference_encoding(x: torch.Tensor, config: HashGridConfig, params: torch.Tensor) -> torch.Tensor:
    """instant-ngp's definition written out: loop over levels and corners, uint32 hashing."""
    F = config.features_per_level
    table = params.detach().double().t()  # entries x F
    max_params = 1 << config.log2_hashmap_size
    b = math.exp(math.log(config.max_resolution / config.base_resolution) / (config.num_levels - 1))
    out = torch.zeros(x.shape[0], config.num_levels * F, dtype=torch.float64)
    offset = 0
    for level in range(config.num_levels):
        scale = config.base_resolution * b**level - 1.0
        res = math.ceil(scale) + 1
        size = min(max_params, res**3)
        size = (size + 7) // 8 * 8
        for p in range(x.shape[0]):
            pos = [float(x[p, d]) * scale + 0.5 for d in range(3)]
            cell = [math.floor(v) for v in pos]
            frac = [v - c for v, c in zip(pos, cell)]
            acc = torch.zeros(F, dtype=torch.float64)
            for dx in (0, 1):
                for dy in (0, 1):
                    for dz in (0, 1):
                        i, j, k = cell[0] + dx, cell[1] + dy, cell[2] + dz
                        if res**3 <= size:
                            index = i + j * res + k * res * res
                        else:
                            index = ((i * 1) ^ (j * 2654435761) ^ (k * 805459861)) & 0xFFFFFFFF
                        index %= size
                        w = (frac[0] if dx else 1 - frac[0]) * (frac[1] if dy else 1 - frac[1]) * (frac[2] if dz else 1 - frac[2])
                        acc += w * table[offset + index]
            out[p, level * F : (level + 1) * F] = acc
        offset += size
    return out


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
    want = reference_encoding(x, config, enc.params)
    assert got.shape == (64, config.out_dim)
    torch.testing.assert_close(got, want, atol=1e-5, rtol=1e-5)


def test_torch_hashgrid_gradient_is_scatter_of_weights():
    config = HashGridConfig(num_levels=4, features_per_level=2, log2_hashmap_size=10, base_resolution=4, max_resolution=64)
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
    config = HashGridConfig(num_levels=16, features_per_level=2, log2_hashmap_size=19, base_resolution=16, max_resolution=2048)
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
