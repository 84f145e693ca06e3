// Fake quantization with a learned per-tensor scale (LSQ, the SASQ trainer's quantizer) on the GPU:
//   forward:  y  = s · clamp(rne(x · (1/s)), qmin, qmax)                  (ste::Lsq<GridT>::forward)
//   backward: dx = dy · ∂y/∂x,   ds = grad_scale · Σ_i dy_i · ∂y_i/∂s     (ste::Lsq<GridT>::backward)
// ds is reduced deterministically: per-thread double sums, cub::BlockReduce per block into a
// caller-provided workspace, then one block sums the partials in block order.
#pragma once

#include <cub/block/block_reduce.cuh>

#include <cstddef>

#include "sasq/core/status.hpp"
#include "sasq/cuda/common.cuh"
#include "sasq/quant/params.hpp"
#include "sasq/quant/ste.hpp"

namespace sasq::cuda {

/// Doubles of workspace that fake_quant_backward needs (one partial sum per block).
inline constexpr std::size_t kFakeQuantPartials = 1024;

namespace detail {

inline constexpr int kFakeQuantThreads = 256;

template <class GridT>
__global__ void fake_quant_forward_kernel(const float* x, std::size_t n, float s, float* y) {
  for (std::size_t i = blockIdx.x * static_cast<std::size_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<std::size_t>(gridDim.x) * blockDim.x) {
    y[i] = ste::Lsq<GridT>::forward(x[i], s);
  }
}

template <class GridT, int kThreads>
__global__ void __launch_bounds__(kThreads) fake_quant_backward_kernel(const float* x, const float* dy,
                                                                       std::size_t n, float s, float* dx,
                                                                       double* partials) {
  using Reduce = cub::BlockReduce<double, kThreads>;
  __shared__ typename Reduce::TempStorage tmp;
  double sum = 0.0;
  for (std::size_t i = blockIdx.x * static_cast<std::size_t>(kThreads) + threadIdx.x; i < n;
       i += static_cast<std::size_t>(gridDim.x) * kThreads) {
    const ste::Grad g = ste::Lsq<GridT>::backward(x[i], s);
    dx[i] = dy[i] * g.dx;
    sum += static_cast<double>(dy[i]) * static_cast<double>(g.dparam);
  }
  sum = Reduce(tmp).Sum(sum);
  if (threadIdx.x == 0) partials[blockIdx.x] = sum;
}

template <int kThreads>
__global__ void __launch_bounds__(kThreads) sum_partials_kernel(const double* partials, int count,
                                                                float grad_scale, float* out) {
  using Reduce = cub::BlockReduce<double, kThreads>;
  __shared__ typename Reduce::TempStorage tmp;
  double sum = 0.0;
  for (int i = threadIdx.x; i < count; i += kThreads) sum += partials[i];
  sum = Reduce(tmp).Sum(sum);
  if (threadIdx.x == 0) *out = static_cast<float>(sum * static_cast<double>(grad_scale));
}

inline unsigned fake_quant_blocks(std::size_t n) {
  const std::size_t b = (n + kFakeQuantThreads - 1) / kFakeQuantThreads;
  return static_cast<unsigned>(b < 1 ? 1 : (b > kFakeQuantPartials ? kFakeQuantPartials : b));
}

inline Status check_scale(float s, const char* where) {
  try {
    validate_scale(s, where);
  } catch (const Error& e) {
    return Status(e.code(), e.what());
  }
  return Status::ok();
}

}  // namespace detail

/// y[i] = ste::Lsq<GridT>::forward(x[i], scale) for n contiguous floats (device memory; y may
/// alias x). scale must be finite, > 0 with a finite reciprocal.
template <class GridT>
Status fake_quant_forward(const float* x, std::size_t n, float scale, float* y, cudaStream_t stream) {
  constexpr const char* kWhere = "sasq::cuda::fake_quant_forward";
  if (Status s = detail::check_scale(scale, kWhere); !s) return s;
  if (n == 0) return Status::ok();
  if (x == nullptr || y == nullptr) return detail::invalid(kWhere, "x or y is null");
  detail::fake_quant_forward_kernel<GridT>
      <<<detail::fake_quant_blocks(n), detail::kFakeQuantThreads, 0, stream>>>(x, n, scale, y);
  return launch_status(kWhere);
}

/// LSQ backward of n elements quantized with one scale: dx[i] = dy[i] · ∂y/∂x (dx may alias dy)
/// and *dscale = grad_scale · Σ dy[i] · ∂y/∂s (LSQ: grad_scale = ste::lsq_grad_scale(n, qmax), or
/// 1). `workspace` holds kFakeQuantPartials doubles. All pointers are device memory.
template <class GridT>
Status fake_quant_backward(const float* x, const float* dy, std::size_t n, float scale, float grad_scale,
                           float* dx, float* dscale, double* workspace, cudaStream_t stream) {
  constexpr const char* kWhere = "sasq::cuda::fake_quant_backward";
  if (Status s = detail::check_scale(scale, kWhere); !s) return s;
  if (!std::isfinite(grad_scale)) return detail::invalid(kWhere, "grad_scale ", grad_scale, " is not finite");
  if (dscale == nullptr || workspace == nullptr) return detail::invalid(kWhere, "dscale or workspace is null");
  if (n > 0 && (x == nullptr || dy == nullptr || dx == nullptr)) {
    return detail::invalid(kWhere, "x, dy or dx is null");
  }
  const unsigned blocks = detail::fake_quant_blocks(n);
  if (n > 0) {
    detail::fake_quant_backward_kernel<GridT, detail::kFakeQuantThreads>
        <<<blocks, detail::kFakeQuantThreads, 0, stream>>>(x, dy, n, scale, dx, workspace);
    if (Status s = launch_status(kWhere); !s) return s;
  }
  detail::sum_partials_kernel<detail::kFakeQuantThreads><<<1, detail::kFakeQuantThreads, 0, stream>>>(
      workspace, n > 0 ? static_cast<int>(blocks) : 0, grad_scale, dscale);
  return launch_status(kWhere);
}

}  // namespace sasq::cuda
