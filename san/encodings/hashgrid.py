"""Multiresolution hash encoding (instant-ngp): pure PyTorch, a compiled CPU kernel, tiny-cuda-nn.

The backend is chosen in exactly one place, :func:`make_hash_encoding`:

* ``tcnn``: tiny-cuda-nn, when it is importable *and* the encoding lives on a CUDA device;
* ``cpp``: :class:`CppHashEncoding`, this package's C++ kernel (``csrc/hashgrid_cpu.cpp``, built
  once per machine by :func:`load_cpu_kernel`) for an encoding on the CPU;
* ``torch``: :class:`TorchHashEncoding`, the pure-PyTorch reference every other path is tested
  against, and the fallback wherever neither of the others is available.

All give every hyperparameter of :class:`HashGridConfig` the same meaning and have the same state
dict: ``params``, ``features_per_level x entries`` (entries level after level), so a model trained
with one backend loads into any other (the tcnn and C++ backends keep their tables entry-major and
transpose on save / load).

Level ``l`` (instant-ngp / tiny-cuda-nn definitions)::

    per_level_scale = exp(ln(max_resolution / base_resolution) / (num_levels - 1))
    scale_l         = base_resolution * per_level_scale ** l - 1
    resolution_l    = ceil(scale_l) + 1
    table_l         = min(2 ** log2_hashmap_size, next_multiple_of_8(resolution_l ** 3))

A point ``x`` in ``[0, 1]^3`` lands at ``x * scale_l + 0.5`` in level ``l``'s grid; its eight
surrounding vertices are interpolated trilinearly. Levels with ``resolution_l ** 3 <= table_l``
index densely (``i + j * res + k * res^2``, no collisions), finer ones hash with
``(i * 1) xor (j * 2654435761) xor (k * 805459861)``; both are taken modulo ``table_l``.
"""

from __future__ import annotations

import hashlib
import logging
import math
import os
import shutil
import sys
from pathlib import Path

import torch
from torch import nn

from san.encodings.config import Backend, HashGridConfig

PRIMES = (1, 2654435761, 805459861)
CPU_KERNEL_SOURCE = Path(__file__).with_name("csrc") / "hashgrid_cpu.cpp"
CPU_KERNEL_FLAGS = ("-O3", "-ffp-contract=off")

log = logging.getLogger(__name__)


class _HashGridInterpolate(torch.autograd.Function):
    """``out[p, l, f] = sum_c weights[l, c, p] * table[rows[l, c, p], f]`` and its table gradient.

    Everything is laid out "planar" (points innermost, one feature at a time): on CPU, 1-D
    ``index_select`` / ``index_add_`` per feature are 4-5x faster than gathers and scatters of
    ``F``-wide rows, and elementwise ops on a long contiguous innermost dimension avoid
    TensorIterator's slow tiny-inner-dimension broadcasting. Gradients reach the table only.
    """

    @staticmethod
    def forward(ctx, table: torch.Tensor, rows: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
        L, _, P = rows.shape
        F = table.shape[0]
        flat = rows.reshape(-1)
        out = torch.empty(F, L, P, dtype=table.dtype, device=table.device)
        for f in range(F):
            out[f] = (table[f].index_select(0, flat).view(L, 8, P) * weights).sum(1)
        ctx.save_for_backward(rows, weights)
        ctx.entries = table.shape[1]
        return out.permute(2, 1, 0).reshape(P, L * F)

    @staticmethod
    def backward(ctx, grad_out: torch.Tensor):
        rows, weights = ctx.saved_tensors
        L, _, P = rows.shape
        F = grad_out.shape[1] // L
        g = grad_out.reshape(P, L, F).permute(2, 1, 0).contiguous()  # F L P
        contrib = g.unsqueeze(2) * weights  # F L 8 P, contiguous
        grad = torch.zeros(F, ctx.entries, dtype=grad_out.dtype, device=grad_out.device)
        flat = rows.reshape(-1)
        for f in range(F):
            grad[f].index_add_(0, flat, contrib[f].reshape(-1))
        return grad, None, None


class TorchHashEncoding(nn.Module):
    """Pure-PyTorch hash encoding; all levels in one vectorised gather (no Python loop over levels).

    Forward: ``x Px3`` in ``[0, 1]^3`` (clamped) -> ``P x (num_levels * features_per_level)``,
    level-major (level 0's features first).

    Speed notes (CPU, measured on 24576 points x 8 levels x 4 features, one core: 70 ms forward +
    backward, vs 136 ms for a row-major ``embedding_bag`` + 2-D scatter version and ~300 ms for
    plain autograd gathers): corner rows are built from per-axis terms (dense levels: base row plus
    a per-level ``8``-vector of corner offsets; hashed levels: xor of per-axis products) in int32
    (hash products only need their low bits, so wrap-around is harmless); trilinear weights are
    outer products of per-axis ``(1 - f, f)`` pairs; all in an ``L x 8 x P`` layout. Corner order:
    ``x`` bit fastest, then ``y``, then ``z``.
    """

    backend = "torch"

    def __init__(self, config: HashGridConfig):
        super().__init__()
        self.config = config
        layout = config.level_layout()
        F = config.features_per_level
        self.params = nn.Parameter(torch.empty(F, config.num_entries).uniform_(-config.init_scale, config.init_scale))
        sizes = [size for _, _, size, _ in layout]
        offsets = [sum(sizes[:i]) for i in range(len(sizes))]
        if offsets[-1] + sizes[-1] >= 2**31:
            raise ValueError("HashGridConfig: more than 2^31 table entries")
        self.num_dense = sum(dense for _, _, _, dense in layout)  # dense levels are the coarsest ones
        res = torch.tensor([r for _, r, _, _ in layout], dtype=torch.int32)
        self.register_buffer("scales", torch.tensor([s for s, _, _, _ in layout]).view(-1, 1, 1), persistent=False)
        self.register_buffer("resolutions", res.view(-1, 1), persistent=False)
        self.register_buffer("sizes", torch.tensor(sizes, dtype=torch.int32).view(-1, 1, 1), persistent=False)
        self.register_buffer("offsets", torch.tensor(offsets, dtype=torch.int32).view(-1, 1, 1), persistent=False)
        one, r2 = torch.ones_like(res), res * res
        corner_offsets = torch.stack([0 * res, one, res, res + one, r2, r2 + one, r2 + res, r2 + res + one], dim=-1)
        self.register_buffer("dense_corner_offsets", corner_offsets[..., None], persistent=False)  # L x 8 x 1
        primes = torch.tensor([p - 2**32 if p >= 2**31 else p for p in PRIMES], dtype=torch.int32)
        self.register_buffer("primes", primes, persistent=False)

    @property
    def out_dim(self) -> int:
        return self.config.out_dim

    def corner_rows_and_weights(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Flat-table rows and trilinear weights of the 8 corners of every level.

        Args:
            x: ``Px3`` points in ``[0, 1]^3`` (clamped).

        Returns:
            ``(rows Lx8xP int32, weights Lx8xP)``.
        """
        P, L, nd = x.shape[0], self.config.num_levels, self.num_dense
        pos = x.clamp(0.0, 1.0).t()[None] * self.scales + 0.5  # L 3 P
        cell_f = pos.floor()
        frac = pos - cell_f
        cell = cell_f.to(torch.int32)
        parts = []
        if nd > 0:
            res = self.resolutions[:nd]
            c = cell[:nd]
            base = c[:, 0] + c[:, 1] * res + c[:, 2] * (res * res)  # nd P
            rows = (base[:, None, :] + self.dense_corner_offsets[:nd]) % self.sizes[:nd]
            parts.append(rows + self.offsets[:nd])
        if nd < L:
            c = cell[nd:]
            p = self.primes
            hx, hy, hz = c[:, 0] * p[0], c[:, 1] * p[1], c[:, 2] * p[2]
            hx = torch.stack([hx, hx + p[0]], dim=1)
            hy = torch.stack([hy, hy + p[1]], dim=1)
            hz = torch.stack([hz, hz + p[2]], dim=1)
            rows = (hz[:, :, None, None, :] ^ hy[:, None, :, None, :] ^ hx[:, None, None, :, :]).view(L - nd, 8, P)
            parts.append((rows & (self.sizes[nd:] - 1)) + self.offsets[nd:])
        rows = parts[0] if len(parts) == 1 else torch.cat(parts, dim=0)
        wx = torch.stack([1.0 - frac[:, 0], frac[:, 0]], dim=1)  # L 2 P
        wy = torch.stack([1.0 - frac[:, 1], frac[:, 1]], dim=1)
        wz = torch.stack([1.0 - frac[:, 2], frac[:, 2]], dim=1)
        weights = (wz[:, :, None, None, :] * wy[:, None, :, None, :] * wx[:, None, None, :, :]).view(L, 8, P)
        return rows, weights

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        rows, weights = self.corner_rows_and_weights(x)
        return _HashGridInterpolate.apply(self.params, rows, weights.to(self.params.dtype))


class _HashGridCpu(torch.autograd.Function):
    """The C++ kernel's forward and table gradient (corners recomputed in the backward pass), over
    an entry-major ``E x F`` table (the kernel reads it as the ``F x E`` transposed view)."""

    @staticmethod
    def forward(ctx, table: torch.Tensor, x: torch.Tensor, kernel, levels: tuple) -> torch.Tensor:
        ctx.save_for_backward(table, x)
        ctx.kernel, ctx.levels = kernel, levels
        return kernel.forward(x, table.t(), *levels)

    @staticmethod
    def backward(ctx, grad_out: torch.Tensor):
        table, x = ctx.saved_tensors
        grad = ctx.kernel.backward(grad_out, x, table.t(), *ctx.levels)  # F x E, strides (1, F)
        return grad.t(), None, None, None  # E x F, contiguous like the table


_KERNEL_DTYPES = (torch.float32, torch.float64)  # compiled; other dtypes take the pure-torch path


class CppHashEncoding(TorchHashEncoding):
    """The same encoding through the compiled CPU kernel (:func:`load_cpu_kernel`).

    Same hyperparameters, initial values (for a given seed) and state dict (``params``,
    ``F x E``) as :class:`TorchHashEncoding`; the parameter itself is the entry-major ``E x F``
    table, contiguous, so one corner's ``F`` features share a cache line and the optimiser works on
    contiguous memory (torch's fused Adam is 3x slower on a strided table). Forward: ``x Px3`` in
    ``[0, 1]^3`` (clamped) -> ``P x (num_levels * features_per_level)``, level-major; gradients
    reach the table only. On a non-CPU device, or in a dtype other than float32 / float64, it falls
    back to the pure-torch path.

    Speed against the torch backend, one core, the demo NeRF's grid: ``benchmarks/bench_hashgrid_cpu.py``
    (figures in ``benchmarks/results/hashgrid_cpu.json``).
    """

    backend = "cpp"

    def __init__(self, config: HashGridConfig):
        super().__init__(config)
        with torch.no_grad():  # the torch backend's random draw, re-laid entry-major
            self.params = nn.Parameter(self.params.detach().t().contiguous())
        self._levels = (  # the buffers' values, so both backends use the same (float32) scales
            [float(v) for v in self.scales.view(-1).tolist()],
            [int(v) for v in self.resolutions.view(-1).tolist()],
            [int(v) for v in self.sizes.view(-1).tolist()],
            [int(v) for v in self.offsets.view(-1).tolist()],
            int(self.num_dense),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        kernel = load_cpu_kernel()  # memoised: the module is looked up, not held (deepcopy / pickle work)
        if kernel is None or self.params.device.type != "cpu" or self.params.dtype not in _KERNEL_DTYPES:
            rows, weights = self.corner_rows_and_weights(x)
            return _HashGridInterpolate.apply(self.params.t(), rows, weights.to(self.params.dtype))
        return _HashGridCpu.apply(self.params, x.to(self.params.dtype), kernel, self._levels)

    def _save_to_state_dict(self, destination, prefix, keep_vars):
        params = self.params if keep_vars else self.params.detach()
        destination[prefix + "params"] = params.t().contiguous()

    def _load_from_state_dict(
        self, state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys, error_msgs
    ):
        key = prefix + "params"
        if strict:
            unexpected_keys.extend(
                k for k in state_dict if k.startswith(prefix) and k != key and "." not in k[len(prefix) :]
            )
        if key not in state_dict:
            missing_keys.append(key)
            return
        value = state_dict[key]
        if tuple(value.shape) != tuple(self.params.shape[::-1]):
            error_msgs.append(
                f"size mismatch for {key}: copying a param with shape {tuple(value.shape)}, the hash grid "
                f"expects {tuple(self.params.shape[::-1])} (features x entries)"
            )
            return
        with torch.no_grad():
            self.params.copy_(value.t())


class TcnnHashEncoding(nn.Module):
    """tiny-cuda-nn's ``HashGrid`` with the same hyperparameters and state dict (CUDA only).

    The tcnn module is held outside the module tree (its ``params`` is registered here directly),
    so the state dict has exactly one key, ``params``, transposed to the torch backend's
    ``features x entries`` layout on save and back on load.
    """

    backend = "tcnn"

    def __init__(self, config: HashGridConfig, tcnn_module):
        super().__init__()
        self.config = config
        encoding = tcnn_module.Encoding(
            n_input_dims=3,
            encoding_config={
                "otype": "HashGrid",
                "n_levels": config.num_levels,
                "n_features_per_level": config.features_per_level,
                "log2_hashmap_size": config.log2_hashmap_size,
                "base_resolution": config.base_resolution,
                "per_level_scale": config.per_level_scale,
                "interpolation": "Linear",
            },
            dtype=torch.float32,
        )
        if encoding.params.numel() != config.num_entries * config.features_per_level:
            raise RuntimeError(
                f"tiny-cuda-nn allocated {encoding.params.numel()} hash-grid parameters, expected "
                f"{config.num_entries * config.features_per_level}: layouts differ, use backend='torch'"
            )
        self._tcnn = (encoding,)  # a tuple: not a child module
        self.params = encoding.params
        with torch.no_grad():
            self.params.uniform_(-config.init_scale, config.init_scale)

    @property
    def out_dim(self) -> int:
        return self.config.out_dim

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self._tcnn[0](x.clamp(0.0, 1.0)).to(torch.float32)

    def _save_to_state_dict(self, destination, prefix, keep_vars):
        params = self.params if keep_vars else self.params.detach()
        destination[prefix + "params"] = params.view(-1, self.config.features_per_level).t()

    def _load_from_state_dict(
        self, state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys, error_msgs
    ):
        key = prefix + "params"
        if key not in state_dict:
            missing_keys.append(key)
            return
        with torch.no_grad():
            self.params.copy_(state_dict[key].t().reshape(-1))


def hash_encoding_reference(x: torch.Tensor, config: HashGridConfig, params: torch.Tensor) -> torch.Tensor:
    """Slow, literal reference of the encoding (for tests): a Python loop over levels, points and
    corners with explicit instant-ngp indexing (uint32 hashing) and trilinear weights.

    Args:
        x: ``Px3`` points in ``[0, 1]^3``.
        config: grid hyperparameters.
        params: the ``features x entries`` table (:attr:`TorchHashEncoding.params`).

    Returns:
        ``P x out_dim`` float64.
    """
    F = config.features_per_level
    table = params.detach().double().t()  # entries x F
    max_params = 1 << config.log2_hashmap_size
    b = (
        math.exp(math.log(config.max_resolution / config.base_resolution) / (config.num_levels - 1))
        if config.num_levels > 1
        else 1.0
    )
    out = torch.zeros(x.shape[0], config.num_levels * F, dtype=torch.float64)
    offset = 0
    for level in range(config.num_levels):
        scale = config.base_resolution * b**level - 1.0
        res = math.ceil(scale) + 1
        size = (min(max_params, res**3) + 7) // 8 * 8
        for p in range(x.shape[0]):
            pos = [min(max(float(x[p, d]), 0.0), 1.0) * scale + 0.5 for d in range(3)]
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
                            index = ((i * PRIMES[0]) ^ (j * PRIMES[1]) ^ (k * PRIMES[2])) & 0xFFFFFFFF
                        w = (
                            (frac[0] if dx else 1 - frac[0])
                            * (frac[1] if dy else 1 - frac[1])
                            * (frac[2] if dz else 1 - frac[2])
                        )
                        acc += w * table[offset + index % size]
            out[p, level * F : (level + 1) * F] = acc
        offset += size
    return out


_CPU_KERNEL: dict[str, object] = {}  # "module" or "error", once per process


def cpu_kernel_build_dir() -> Path:
    """Where the kernel is built: ``$TORCH_EXTENSIONS_DIR`` (default ``~/.cache/torch_extensions``)
    / ``san_hashgrid_cpu_<digest>``, the digest of the source, the compiler flags, torch's and
    Python's versions. Content-addressed, so checkouts with the same source share one build (torch
    keys its builds by name, and ninja rebuilds whenever the source *path* changes: two checkouts
    under one name rebuilt each other's library, and a process could import it mid-link)."""
    digest = hashlib.sha256()
    digest.update(CPU_KERNEL_SOURCE.read_bytes())
    digest.update(repr((CPU_KERNEL_FLAGS, torch.__version__, sys.version_info[:2])).encode())
    root = Path(os.environ.get("TORCH_EXTENSIONS_DIR") or Path.home() / ".cache" / "torch_extensions")
    return root / f"san_hashgrid_cpu_{digest.hexdigest()[:12]}"


def _load_kernel_module(verbose: bool):
    build = cpu_kernel_build_dir()
    build.mkdir(parents=True, exist_ok=True)
    source = build / CPU_KERNEL_SOURCE.name
    if not source.is_file() or source.read_bytes() != CPU_KERNEL_SOURCE.read_bytes():
        tmp = build / f".{source.name}.{os.getpid()}.tmp"
        shutil.copyfile(CPU_KERNEL_SOURCE, tmp)
        os.replace(tmp, source)  # atomic: a concurrent process never reads half a file
    cpp_log = logging.getLogger("torch.utils.cpp_extension")
    level = cpp_log.level
    cpp_log.setLevel(logging.ERROR)  # "No CUDA runtime is found": irrelevant for a CPU kernel
    try:
        from torch.utils.cpp_extension import load
    finally:
        cpp_log.setLevel(level)
    path = os.environ.get("PATH", "")
    if shutil.which("ninja") is None:  # the pip-installed ninja of this environment, if not on PATH
        os.environ["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{path}"
    try:
        return load(
            name=build.name,
            sources=[str(source)],
            extra_cflags=list(CPU_KERNEL_FLAGS),
            build_directory=str(build),
            with_cuda=False,
            verbose=verbose,
        )
    finally:
        os.environ["PATH"] = path


def load_cpu_kernel(verbose: bool = False):
    """Build (once per machine and source) and import the C++ CPU kernel; ``None`` if it cannot be built.

    ``verbose`` shows the compiler's command lines and output (``san build-kernel --verbose-build``).

    Compiled by ``torch.utils.cpp_extension.load`` from a copy of :data:`CPU_KERNEL_SOURCE` in
    :func:`cpu_kernel_build_dir` (g++, the Python headers and ninja; ~30 s the first time); later
    processes import the built library in well under a second. ``make install`` builds it. The
    reason for a failure is kept in :func:`cpu_kernel_error` and logged once.
    """
    if "module" in _CPU_KERNEL:
        return _CPU_KERNEL["module"]
    try:
        module = _load_kernel_module(verbose)
    except Exception as exc:  # a missing compiler, headers or ninja: the torch backend still works
        _CPU_KERNEL["error"] = f"{type(exc).__name__}: {str(exc).strip().splitlines()[-1] if str(exc).strip() else ''}"
        log.warning("hash grid: C++ CPU kernel unavailable (%s); using the pure-torch backend", _CPU_KERNEL["error"])
        module = None
    _CPU_KERNEL["module"] = module
    return module


def cpu_kernel_error() -> str | None:
    """Why :func:`load_cpu_kernel` returned ``None`` (``None`` if it was not tried or succeeded)."""
    return _CPU_KERNEL.get("error")  # type: ignore[return-value]


def _import_tcnn():
    try:
        import tinycudann
    except ImportError:
        return None
    return tinycudann


def make_hash_encoding(
    config: HashGridConfig, backend: Backend = "auto", device: torch.device | str | None = None
) -> nn.Module:
    """The one place that picks the hash-grid implementation.

    Args:
        config: grid hyperparameters.
        backend: ``"auto"`` (tiny-cuda-nn if importable and ``device`` is CUDA; on the CPU the C++
            kernel if it builds; else torch), ``"torch"``, ``"cpp"`` or ``"tcnn"`` (the last two
            raise ``RuntimeError`` when unavailable).
        device: where the encoding will run (``None``: CUDA if available). The module is returned on it.

    Returns:
        A module mapping ``Px3`` points in ``[0, 1]^3`` to ``P x config.out_dim`` features, with a
        ``backend`` attribute (``"torch"``, ``"cpp"`` or ``"tcnn"``) and a ``params`` table parameter.
    """
    if device is None:
        device = "cuda" if torch.cuda.is_available() else "cpu"
    device = torch.device(device)
    if backend not in ("auto", "torch", "cpp", "tcnn"):
        raise ValueError(f"hash encoding backend {backend!r} is not one of auto, torch, cpp, tcnn")
    tcnn = _import_tcnn() if backend != "torch" and device.type == "cuda" else None
    if backend == "tcnn" and tcnn is None:
        raise RuntimeError(
            "hash encoding backend 'tcnn' requested but tinycudann is not importable or device is not CUDA"
        )
    if tcnn is not None:
        with torch.cuda.device(device):
            return TcnnHashEncoding(config, tcnn).to(device)
    if backend in ("auto", "cpp") and device.type == "cpu":
        if load_cpu_kernel() is not None:
            return CppHashEncoding(config)
        if backend == "cpp":
            raise RuntimeError(f"hash encoding backend 'cpp': the C++ CPU kernel did not build ({cpu_kernel_error()})")
    elif backend == "cpp":
        raise RuntimeError(f"hash encoding backend 'cpp' runs on the CPU only, not on {device}")
    return TorchHashEncoding(config).to(device)
