"""The vectorised torch hash grid against the explicit per-level, per-corner reference."""

from __future__ import annotations

import math
import os

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


def test_tcnn_request_on_cpu_fails_clearly():
    config = HashGridConfig(num_levels=2, log2_hashmap_size=8, base_resolution=2, max_resolution=8)
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


def _cpp_or_skip():
    from san.encodings import hashgrid as hg

    if hg.load_cpu_kernel() is None:
        if os.environ.get("CI") == "true":
            pytest.fail(f"the C++ CPU hash-grid kernel must build in CI: {hg.cpu_kernel_error()}")
        pytest.skip(f"C++ CPU hash-grid kernel unavailable here: {hg.cpu_kernel_error()}")


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_cpp_hashgrid_matches_torch_and_reference(dtype):
    """The compiled kernel against the pure-torch backend (same draw, same outputs, same gradient)
    and the literal reference, on a grid with dense and hashed levels and points on the cube's faces."""
    _cpp_or_skip()
    config = HashGridConfig(
        num_levels=6, features_per_level=4, log2_hashmap_size=12, base_resolution=4, max_resolution=200
    )
    torch.manual_seed(0)
    ref = make_hash_encoding(config, backend="torch", device="cpu").to(dtype)
    torch.manual_seed(0)
    cpp = make_hash_encoding(config, backend="cpp", device="cpu").to(dtype)
    assert cpp.backend == "cpp" and cpp.params.shape == (config.num_entries, config.features_per_level)
    assert cpp.params.is_contiguous() and torch.equal(cpp.params.t(), ref.params)  # same draw for one seed
    x = torch.rand(300, 3, dtype=dtype)
    x[0], x[1], x[2] = 0.0, 1.0, torch.tensor([1.2, -0.3, 0.5])  # faces, far corner, clamped outside
    got, want = cpp(x), ref(x)
    torch.testing.assert_close(got, want, atol=1e-6, rtol=0)
    torch.testing.assert_close(got.double(), hash_encoding_reference(x, config, ref.params), atol=1e-5, rtol=1e-5)
    g = torch.randn_like(got)
    got.backward(g)
    want.backward(g)
    assert cpp.params.grad.is_contiguous()  # no re-layout copy in AccumulateGrad
    torch.testing.assert_close(cpp.params.grad.t(), ref.params.grad, atol=1e-5, rtol=1e-5)


def test_cpp_hashgrid_state_dict_moves_between_backends():
    _cpp_or_skip()
    config = HashGridConfig(
        num_levels=3, features_per_level=2, log2_hashmap_size=10, base_resolution=4, max_resolution=32
    )
    torch.manual_seed(3)
    cpp = make_hash_encoding(config, backend="cpp", device="cpu")
    with torch.no_grad():
        cpp.params.uniform_(-1, 1)
    state = cpp.state_dict()
    assert list(state) == ["params"] and state["params"].is_contiguous()
    torch_backend = make_hash_encoding(config, backend="torch", device="cpu")
    torch_backend.load_state_dict(state)
    x = torch.rand(40, 3)
    torch.testing.assert_close(torch_backend(x), cpp(x), atol=1e-6, rtol=0)
    back = make_hash_encoding(config, backend="cpp", device="cpu")
    back.load_state_dict(torch_backend.state_dict())
    assert torch.equal(back.params, cpp.params) and torch.equal(back(x), cpp(x))
    with pytest.raises(RuntimeError, match="features x entries"):
        back.load_state_dict({"params": torch.zeros(3, config.num_entries)})


def test_auto_backend_on_cpu_prefers_the_cpp_kernel_and_reports_why_not(monkeypatch):
    from san.encodings import hashgrid as hg

    config = HashGridConfig(num_levels=2, log2_hashmap_size=8, base_resolution=2, max_resolution=8)
    monkeypatch.setattr(hg, "_CPU_KERNEL", {"module": None, "error": "CalledProcessError: no g++"})
    assert make_hash_encoding(config, "auto", device="cpu").backend == "torch"
    with pytest.raises(RuntimeError, match="no g\\+\\+"):
        make_hash_encoding(config, "cpp", device="cpu")
    monkeypatch.undo()
    _cpp_or_skip()
    assert make_hash_encoding(config, "auto", device="cpu").backend == "cpp"


def test_adam_state_of_the_torch_backend_resumes_on_the_cpp_backend():
    """A NeRF checkpoint written with the torch backend, resumed with the C++ one: fused Adam must
    continue exactly as the torch run does (its moments are F x E, the C++ table E x F: without
    re-laying them, fused Adam on the CPU computes wrong updates), and back again."""
    _cpp_or_skip()
    import io

    from san.utils.training import load_optimizer_state

    config = HashGridConfig(
        num_levels=3, features_per_level=4, log2_hashmap_size=10, base_resolution=4, max_resolution=32
    )
    x = torch.rand(100, 3, generator=torch.Generator().manual_seed(0))
    torch.manual_seed(0)
    src = make_hash_encoding(config, "torch", "cpu")
    opt = torch.optim.Adam(src.parameters(), lr=1e-2, fused=True)

    def step(enc, optimizer):
        optimizer.zero_grad()
        enc(x).square().sum().backward()
        optimizer.step()

    for _ in range(3):
        step(src, opt)
    buf = io.BytesIO()
    torch.save({"model": src.state_dict(), "optimizer": opt.state_dict()}, buf)
    buf.seek(0)
    saved = torch.load(buf)
    dst = make_hash_encoding(config, "cpp", "cpu")
    dst_opt = torch.optim.Adam(dst.parameters(), lr=1e-2, fused=True)
    dst.load_state_dict(saved["model"])
    load_optimizer_state(dst_opt, saved["optimizer"])
    assert dst_opt.state[dst.params]["exp_avg"].shape == dst.params.shape
    step(src, opt)
    step(dst, dst_opt)
    torch.testing.assert_close(dst.params.t(), src.params, atol=1e-6, rtol=0)
    buf = io.BytesIO()
    torch.save({"model": dst.state_dict(), "optimizer": dst_opt.state_dict()}, buf)
    buf.seek(0)
    saved = torch.load(buf)
    load_optimizer_state(opt, saved["optimizer"])  # and back to the torch backend
    assert opt.state[src.params]["exp_avg"].shape == src.params.shape
    step(src, opt)
    step(dst, dst_opt)
    torch.testing.assert_close(dst.params.t(), src.params, atol=1e-6, rtol=0)
    with pytest.raises(ValueError, match="another model"):
        load_optimizer_state(torch.optim.Adam([torch.nn.Parameter(torch.zeros(5, 3))]), saved["optimizer"])


def test_cpp_encoding_is_a_well_behaved_module():
    """Strict loading names unexpected keys; deepcopy works (no extension module held); dtypes the
    kernel is not compiled for take the torch path; NaN points give NaN features, not a crash."""
    import copy

    _cpp_or_skip()
    config = HashGridConfig(
        num_levels=3, features_per_level=2, log2_hashmap_size=10, base_resolution=4, max_resolution=32
    )
    enc = make_hash_encoding(config, backend="cpp", device="cpu")
    state = enc.state_dict()
    with pytest.raises(RuntimeError, match="Unexpected key.*bogus"):
        enc.load_state_dict({**state, "bogus": torch.zeros(1)})
    enc.load_state_dict({**state, "bogus": torch.zeros(1)}, strict=False)
    x = torch.rand(20, 3)
    twin = copy.deepcopy(enc)
    assert torch.equal(twin(x), enc(x))
    half = copy.deepcopy(enc).to(torch.bfloat16)
    torch.testing.assert_close(half(x).float(), enc(x), atol=0.02, rtol=0.02)
    x[3] = float("nan")
    out = enc(x)
    assert out[3].isnan().all() and out[[0, 1, 2, 4]].isfinite().all()


def test_cpu_kernel_build_dir_is_content_addressed(monkeypatch, tmp_path):
    from san.encodings import hashgrid as hg

    monkeypatch.setenv("TORCH_EXTENSIONS_DIR", str(tmp_path))
    first = hg.cpu_kernel_build_dir()
    assert (
        first.parent == tmp_path and first.name.startswith("san_hashgrid_cpu_") and first == hg.cpu_kernel_build_dir()
    )
    source = tmp_path / "other.cpp"
    source.write_text(hg.CPU_KERNEL_SOURCE.read_text() + "\n// changed\n")
    monkeypatch.setattr(hg, "CPU_KERNEL_SOURCE", source)
    assert hg.cpu_kernel_build_dir() != first


def test_flat_tcnn_moments_resume_on_a_2d_table():
    """tiny-cuda-nn's table (and its Adam moments) is one flat entry-major vector."""
    from san.utils.training import load_optimizer_state

    E, F = 6, 2
    flat = torch.nn.Parameter(torch.zeros(E * F))
    opt = torch.optim.Adam([flat])
    flat.grad = torch.arange(E * F, dtype=torch.float32)
    opt.step()
    saved = opt.state_dict()
    for shape, view in (((F, E), lambda m: m.t()), ((E, F), lambda m: m)):
        param = torch.nn.Parameter(torch.zeros(shape))
        target = torch.optim.Adam([param])
        load_optimizer_state(target, saved)
        moment = target.state[param]["exp_avg"]
        assert moment.shape == shape and torch.equal(view(moment).reshape(-1), saved["state"][0]["exp_avg"])
    back = torch.optim.Adam([torch.nn.Parameter(torch.zeros(E * F))])
    load_optimizer_state(back, target.state_dict())
    assert torch.equal(back.state[back.param_groups[0]["params"][0]]["exp_avg"], saved["state"][0]["exp_avg"])
