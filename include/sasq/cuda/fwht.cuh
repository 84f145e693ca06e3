// Online Hadamard rotation of activation rows on the GPU, x <- x Q with Q = B ⊗ (H_p / √p):
//   n = m · p, p = 2^k; every length-p segment gets the normalized fast Walsh–Hadamard transform
//   (sasq::fwht: butterflies a + b, a - b, then · 1/√p), then y[a·p + b] = Σ_i B[i][a] · x[i·p + b]
//   with B the orthonormal order-m factor (Rotation::hadamard's base, H_m / √m).
#pragma once

#include <cmath>
#include <cstdint>

#include "sasq/core/matrix_view.hpp"
#include "sasq/core/status.hpp"
#include "sasq/cuda/common.cuh"

namespace sasq::cuda {

/// Longest row fwht_rows accepts (the row is staged in shared memory).
inline constexpr std::ptrdiff_t kFwhtMaxLength = 16384;

namespace detail {

inline constexpr int kFwhtThreads = 256;

/// One block per row: stage the row in shared memory, log2(p) butterfly passes over the whole row
/// (pairs never cross a segment since p is a multiple of 2h), scale by 1/√p, then the dense
/// order-m mix (fmaf in i order) while writing back.
template <int kThreads = kFwhtThreads>
__global__ void __launch_bounds__(kThreads) fwht_rows_kernel(MatrixView<float> x, int log2p, const float* base,
                                                             int m, float norm) {
  extern __shared__ float row[];
  const int n = static_cast<int>(x.cols()), p = 1 << log2p;  // n <= kFwhtMaxLength: int indices
  for (std::ptrdiff_t r = blockIdx.x; r < x.rows(); r += gridDim.x) {
    float* xr = x.row_ptr(r);
    for (int i = threadIdx.x; i < n; i += kThreads) row[i] = xr[i];
    __syncthreads();
    for (int h = 1; h < p; h *= 2) {
      for (int t = threadIdx.x; t < n / 2; t += kThreads) {
        const int j = ((t & ~(h - 1)) << 1) | (t & (h - 1));  // (t / h) * 2h + t % h
        const float a = row[j], b = row[j + h];
        row[j] = a + b;
        row[j + h] = a - b;
      }
      __syncthreads();
    }
    for (int i = threadIdx.x; i < n; i += kThreads) {
      if (m == 1) {
        xr[i] = row[i] * norm;
      } else {
        const int a = i >> log2p, b = i & (p - 1);
        float acc = 0.0f;
        for (int k = 0; k < m; ++k) acc = fmaf(base[k * m + a], row[(k << log2p) + b] * norm, acc);
        xr[i] = acc;
      }
    }
    __syncthreads();  // `row` is reused by the next row
  }
}

}  // namespace detail

/// Rotates every row of x (device, rows x n) in place by Q = B ⊗ (H_p / √p), n = m · p with p a
/// power of two. `base` is the m x m orthonormal factor B, row-major in device memory (null for
/// m == 1), e.g. Rotation::hadamard(n)'s base uploaded once. For m == 1 the result is bit-exact to
/// sasq::fwht on each row; for m > 1 the mix accumulates in float (the CPU mixes in double).
/// n <= kFwhtMaxLength.
inline Status fwht_rows(MatrixView<float> x, int m, const float* base, cudaStream_t stream) {
  constexpr const char* kWhere = "sasq::cuda::fwht_rows";
  if (Status s = detail::check_view(x, kWhere, "x"); !s) return s;
  if (m < 1) return detail::invalid(kWhere, "factor order m = ", m, " is not positive");
  const std::ptrdiff_t n = x.cols();
  if (n % m != 0) return detail::invalid(kWhere, "row length ", n, " is not a multiple of m = ", m);
  const std::ptrdiff_t p = n / m;
  if (p < 1 || (p & (p - 1)) != 0) {
    return detail::invalid(kWhere, "row length ", n, " / m = ", p, " is not a power of two");
  }
  if (n > kFwhtMaxLength) return detail::invalid(kWhere, "row length ", n, " exceeds ", kFwhtMaxLength);
  if (m > 1 && base == nullptr) return detail::invalid(kWhere, "base is null for m = ", m);
  if (x.rows() == 0) return Status::ok();
  const std::size_t smem = static_cast<std::size_t>(n) * sizeof(float);
  if (smem > 48 * 1024) {
    if (Status s = cuda_status(cudaFuncSetAttribute(detail::fwht_rows_kernel<>,
                                                    cudaFuncAttributeMaxDynamicSharedMemorySize,
                                                    static_cast<int>(smem)),
                               kWhere);
        !s) {
      return s;
    }
  }
  const float norm = static_cast<float>(1.0 / std::sqrt(static_cast<double>(p)));
  int log2p = 0;
  while ((std::ptrdiff_t{1} << log2p) < p) ++log2p;
  const unsigned blocks = static_cast<unsigned>(x.rows() < 65535 * 32 ? x.rows() : 65535 * 32);
  detail::fwht_rows_kernel<><<<blocks, detail::kFwhtThreads, smem, stream>>>(x, log2p, base, m, norm);
  return launch_status(kWhere);
}

}  // namespace sasq::cuda
