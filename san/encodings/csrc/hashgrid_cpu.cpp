// Multiresolution hash encoding (instant-ngp) on the CPU: the forward gather with trilinear weights
// and the gradient of the table, one pass over points x levels each, corners computed on the fly.
//
// The same definitions as san/encodings/hashgrid.py (TorchHashEncoding, the pure-torch reference
// this kernel is tested against): level l maps a point p in [0,1]^3 to p * scale_l + 0.5; corner k
// of its cell has bits (x, y, z) = (k & 1, k >> 1 & 1, k >> 2 & 1); dense levels index
// (i + j*res + k*res^2) mod size, hashed levels (i*1 ^ j*2654435761 ^ k*805459861) mod size (a power
// of two); every level's rows start at its offset in the table. The table is F x E (features x
// entries) with any strides: an entry-major one (strides (1, F)) reads one cache line per corner.
#include <torch/extension.h>

#include <ATen/Parallel.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>

namespace {

constexpr int64_t kBlock = 32;  // points whose corner rows are computed and prefetched before the gathers

struct Level {
  double scale;
  uint32_t res;
  uint32_t size;
  uint32_t offset;
  bool dense;
};

template <typename scalar_t>
inline void corners(const Level& lv, const scalar_t* p, int64_t sx, uint32_t rows[8], scalar_t w[8]) {
  uint32_t c[3];
  scalar_t f[3];
  for (int d = 0; d < 3; ++d) {
    const scalar_t v = std::min(std::max(p[d * sx], scalar_t(0)), scalar_t(1)) * scalar_t(lv.scale) + scalar_t(0.5);
    const scalar_t fl = std::floor(v == v ? v : scalar_t(0));  // NaN: a valid cell, NaN weights
    f[d] = v - fl;
    c[d] = static_cast<uint32_t>(fl);
  }
  for (int k = 0; k < 8; ++k) {
    const uint32_t dx = k & 1, dy = (k >> 1) & 1, dz = (k >> 2) & 1;
    const uint32_t i = c[0] + dx, j = c[1] + dy, l = c[2] + dz;
    const uint32_t row = lv.dense ? (i + j * lv.res + l * lv.res * lv.res) % lv.size
                                  : ((i * 1u) ^ (j * 2654435761u) ^ (l * 805459861u)) & (lv.size - 1u);
    rows[k] = row + lv.offset;
    const scalar_t wz = dz ? f[2] : scalar_t(1) - f[2];
    const scalar_t wy = dy ? f[1] : scalar_t(1) - f[1];
    const scalar_t wx = dx ? f[0] : scalar_t(1) - f[0];
    w[k] = (wz * wy) * wx;
  }
}

std::vector<Level> make_levels(const std::vector<double>& scales, const std::vector<int64_t>& res,
                               const std::vector<int64_t>& sizes, const std::vector<int64_t>& offsets,
                               int64_t num_dense) {
  TORCH_CHECK(res.size() == scales.size() && sizes.size() == scales.size() && offsets.size() == scales.size(),
              "hashgrid_cpu: per-level lists differ in length");
  std::vector<Level> out;
  for (size_t l = 0; l < scales.size(); ++l) {
    const bool dense = static_cast<int64_t>(l) < num_dense;
    TORCH_CHECK(dense || (sizes[l] & (sizes[l] - 1)) == 0, "hashgrid_cpu: hashed level ", l,
                " has a table size that is not a power of two");
    out.push_back({scales[l], static_cast<uint32_t>(res[l]), static_cast<uint32_t>(sizes[l]),
                   static_cast<uint32_t>(offsets[l]), dense});
  }
  return out;
}

void check_points(const torch::Tensor& x, const torch::Tensor& table) {
  TORCH_CHECK(x.device().is_cpu() && table.device().is_cpu(), "hashgrid_cpu: CPU tensors only");
  TORCH_CHECK(x.dim() == 2 && x.size(1) == 3, "hashgrid_cpu: points must be P x 3");
  TORCH_CHECK(table.dim() == 2, "hashgrid_cpu: table must be F x E");
  TORCH_CHECK(x.scalar_type() == table.scalar_type(), "hashgrid_cpu: points and table differ in dtype");
}

}  // namespace

// x P x 3 in [0, 1]^3 (clamped), table F x E -> P x (L * F), level-major.
torch::Tensor hashgrid_forward(const torch::Tensor& x, const torch::Tensor& table, std::vector<double> scales,
                               std::vector<int64_t> res, std::vector<int64_t> sizes, std::vector<int64_t> offsets,
                               int64_t num_dense) {
  check_points(x, table);
  const auto levels = make_levels(scales, res, sizes, offsets, num_dense);
  const int64_t P = x.size(0), L = static_cast<int64_t>(levels.size()), F = table.size(0);
  auto out = torch::empty({P, L * F}, table.options());
  AT_DISPATCH_FLOATING_TYPES(table.scalar_type(), "hashgrid_forward", [&] {
    const scalar_t* xp = x.data_ptr<scalar_t>();
    const int64_t xs0 = x.stride(0), xs1 = x.stride(1);
    const scalar_t* tp = table.data_ptr<scalar_t>();
    const int64_t sf = table.stride(0), se = table.stride(1);
    scalar_t* op = out.data_ptr<scalar_t>();
    at::parallel_for(0, P, 2048, [&](int64_t begin, int64_t end) {
      uint32_t rows[kBlock][8];
      scalar_t w[kBlock][8];
      for (int64_t l = 0; l < L; ++l) {  // level-outer: one level's table is the working set
        for (int64_t b = begin; b < end; b += kBlock) {
          const int64_t n = std::min<int64_t>(kBlock, end - b);
          for (int64_t i = 0; i < n; ++i) {  // corners of a block first, their rows prefetched
            corners(levels[l], xp + (b + i) * xs0, xs1, rows[i], w[i]);
            for (int k = 0; k < 8; ++k) __builtin_prefetch(tp + rows[i][k] * se, 0, 1);
          }
          for (int64_t i = 0; i < n; ++i) {
            for (int64_t f = 0; f < F; ++f) {
              const scalar_t* t = tp + f * sf;
              scalar_t acc = 0;
              for (int k = 0; k < 8; ++k) acc += w[i][k] * t[rows[i][k] * se];
              op[((b + i) * L + l) * F + f] = acc;
            }
          }
        }
      }
    });
  });
  return out;
}

// grad_out P x (L * F) -> d loss / d table, F x E with the strides of `like` (zeros, then a serial scatter).
torch::Tensor hashgrid_backward(const torch::Tensor& grad_out, const torch::Tensor& x, const torch::Tensor& like,
                                std::vector<double> scales, std::vector<int64_t> res, std::vector<int64_t> sizes,
                                std::vector<int64_t> offsets, int64_t num_dense) {
  check_points(x, like);
  const auto levels = make_levels(scales, res, sizes, offsets, num_dense);
  const int64_t P = x.size(0), L = static_cast<int64_t>(levels.size()), F = like.size(0);
  TORCH_CHECK(grad_out.dim() == 2 && grad_out.size(0) == P && grad_out.size(1) == L * F,
              "hashgrid_cpu: gradient must be P x (L * F)");
  const auto g = grad_out.to(like.scalar_type()).contiguous();
  auto grad = torch::zeros_like(like);  // preserves an entry-major layout
  AT_DISPATCH_FLOATING_TYPES(like.scalar_type(), "hashgrid_backward", [&] {
    const scalar_t* xp = x.data_ptr<scalar_t>();
    const int64_t xs0 = x.stride(0), xs1 = x.stride(1);
    const scalar_t* gp = g.data_ptr<scalar_t>();
    scalar_t* tp = grad.data_ptr<scalar_t>();
    const int64_t sf = grad.stride(0), se = grad.stride(1);
    uint32_t rows[kBlock][8];
    scalar_t w[kBlock][8];
    for (int64_t l = 0; l < L; ++l) {
      for (int64_t b = 0; b < P; b += kBlock) {
        const int64_t n = std::min<int64_t>(kBlock, P - b);
        for (int64_t i = 0; i < n; ++i) {
          corners(levels[l], xp + (b + i) * xs0, xs1, rows[i], w[i]);
          for (int k = 0; k < 8; ++k) __builtin_prefetch(tp + rows[i][k] * se, 1, 1);
        }
        for (int64_t i = 0; i < n; ++i) {
          for (int64_t f = 0; f < F; ++f) {
            const scalar_t gv = gp[((b + i) * L + l) * F + f];
            scalar_t* t = tp + f * sf;
            for (int k = 0; k < 8; ++k) t[rows[i][k] * se] += w[i][k] * gv;
          }
        }
      }
    }
  });
  return grad;
}

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {
  m.def("forward", &hashgrid_forward, "hash-grid encoding forward (CPU)");
  m.def("backward", &hashgrid_backward, "hash-grid encoding table gradient (CPU)");
}
