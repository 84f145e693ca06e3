// Quantize/dequantize kernels: static per-tensor, dynamic per-token (CUB block reduction fused with
// the quantize), dynamic per-group; int8 and packed int4 outputs.
//   q[r][c] = clamp(rne(x[r][c] * inv_scale) + z, qmin, qmax)     (sasq/quant/affine.hpp)
//   dynamic scales: param_from_range_unchecked(c · min(row or group), c · max(row or group))
//                   with the clip ratio c in (0, 1] (1: the full range; QuaRot uses 0.9, values beyond
//                   c · abs-max saturate)                        (sasq/quant/params.hpp)
#pragma once

#include <cub/block/block_reduce.cuh>
#include <cuda/functional>

#include <cstdint>

#include "sasq/core/matrix_view.hpp"
#include "sasq/core/status.hpp"
#include "sasq/cuda/common.cuh"
#include "sasq/quant/affine.hpp"
#include "sasq/quant/params.hpp"
#include "sasq/quant/scheme.hpp"

namespace sasq::cuda {

/// Where the parameter of element (r, c) lives in a dense array of scales (and zero points):
/// index = r * row_stride + c / group_size. Per-tensor: {0, cols}; per-token: {1, cols};
/// per-group: {cols / group_size, group_size}.
struct ScaleLayout {
  std::ptrdiff_t row_stride = 0;
  std::ptrdiff_t group_size = 1;
  SASQ_HOST_DEVICE std::ptrdiff_t index(std::ptrdiff_t r, std::ptrdiff_t c) const {
    return r * row_stride + c / group_size;
  }
};

namespace detail {

inline constexpr int kQuantThreads = 256;

/// Quantized "unit" u of a row: element u (8-bit grids) or the byte holding elements 2u, 2u + 1
/// (4-bit grids; a missing odd tail element packs as nibble 0, as pack_int4 does).
template <class GridT>
__device__ __forceinline__ quantized_t<GridT> quantize_unit(const float* xr, std::ptrdiff_t cols,
                                                             std::ptrdiff_t u, QuantParam p) {
  if constexpr (GridT::kBits == 4) {
    const std::ptrdiff_t c = 2 * u;
    const int lo = quantize_value<GridT>(xr[c], p);
    const int hi = c + 1 < cols ? quantize_value<GridT>(xr[c + 1], p) : 0;
    return static_cast<std::uint8_t>((lo & 0xF) | ((hi & 0xF) << 4));
  } else {
    return static_cast<quantized_t<GridT>>(quantize_value<GridT>(xr[u], p));
  }
}

/// Dynamic parameter of a row or group with extremes lo <= 0 <= hi, clipped by c. __fmul_rn keeps each
/// product a separately rounded multiply (never contracted into an FMA with the asymmetric formula's
/// hi - lo), so the scale equals the host's param_from_range(c * lo, c * hi), and on symmetric grids
/// quantize_dynamic_per_token_s8's c * abs-max / qmax (fl(c * x) is monotone and odd in x).
template <class GridT>
__device__ __forceinline__ QuantParam clipped_range_param(float lo, float hi, float clip_ratio) {
  return param_from_range_unchecked<GridT>(__fmul_rn(clip_ratio, lo), __fmul_rn(clip_ratio, hi));
}

/// Decodes element c of a quantized row (sign-extending nibbles of signed 4-bit grids).
template <class GridT>
__device__ __forceinline__ int load_quantized(const quantized_t<GridT>* qr, std::ptrdiff_t c) {
  if constexpr (GridT::kBits == 4) {
    const int nib = (qr[c / 2] >> ((c & 1) * 4)) & 0xF;
    return GridT::kSymmetric ? nib - ((nib & 0x8) << 1) : nib;
  } else {
    return static_cast<int>(qr[c]);
  }
}

template <class GridT>
__global__ void quantize_static_kernel(MatrixView<const float> x, QuantParam p,
                                       MatrixView<quantized_t<GridT>> q) {
  const std::ptrdiff_t units = q.cols();
  for (std::ptrdiff_t r = blockIdx.y; r < x.rows(); r += gridDim.y) {
    const float* xr = x.row_ptr(r);
    quantized_t<GridT>* qr = q.row_ptr(r);
    for (std::ptrdiff_t u = blockIdx.x * blockDim.x + threadIdx.x; u < units;
         u += static_cast<std::ptrdiff_t>(gridDim.x) * blockDim.x) {
      qr[u] = quantize_unit<GridT>(xr, x.cols(), u, p);
    }
  }
}

/// One block per row: min/max over the row with cub::BlockReduce, thread 0 derives the parameter,
/// then the block quantizes the row (the second pass reads the row back from L1/L2).
template <class GridT, int kThreads>
__global__ void __launch_bounds__(kThreads) quantize_per_token_kernel(
    MatrixView<const float> x, MatrixView<quantized_t<GridT>> q, float* scales,
    std::int32_t* zero_points, float clip_ratio) {
  using Reduce = cub::BlockReduce<float, kThreads>;
  __shared__ typename Reduce::TempStorage tmp;
  __shared__ QuantParam param;
  for (std::ptrdiff_t r = blockIdx.x; r < x.rows(); r += gridDim.x) {
    const float* xr = x.row_ptr(r);
    float lo = 0.0f, hi = 0.0f;
    for (std::ptrdiff_t c = threadIdx.x; c < x.cols(); c += kThreads) {
      lo = fminf(lo, xr[c]);
      hi = fmaxf(hi, xr[c]);
    }
    lo = Reduce(tmp).Reduce(lo, ::cuda::minimum<float>{});
    __syncthreads();
    hi = Reduce(tmp).Reduce(hi, ::cuda::maximum<float>{});
    if (threadIdx.x == 0) {
      param = clipped_range_param<GridT>(lo, hi, clip_ratio);
      scales[r] = param.scale;
      if (zero_points != nullptr) zero_points[r] = param.zero_point;
    }
    __syncthreads();
    const QuantParam p = param;
    quantized_t<GridT>* qr = q.row_ptr(r);
    for (std::ptrdiff_t u = threadIdx.x; u < q.cols(); u += kThreads) {
      qr[u] = quantize_unit<GridT>(xr, x.cols(), u, p);
    }
    __syncthreads();  // `param` and `tmp` are reused by the next row
  }
}

/// One warp per group of `group_size` consecutive elements of a row: min/max by butterfly
/// shuffles, then the warp quantizes its group.
template <class GridT>
__global__ void quantize_per_group_kernel(MatrixView<const float> x, std::ptrdiff_t group_size,
                                          MatrixView<quantized_t<GridT>> q, float* scales,
                                          std::int32_t* zero_points, float clip_ratio) {
  constexpr int kPerUnit = GridT::kBits == 4 ? 2 : 1;
  const std::ptrdiff_t groups_per_row = x.cols() / group_size;
  const std::ptrdiff_t total = x.rows() * groups_per_row;
  const int lane = threadIdx.x & 31;
  const std::ptrdiff_t warps = static_cast<std::ptrdiff_t>(gridDim.x) * (blockDim.x / 32);
  for (std::ptrdiff_t g = blockIdx.x * (blockDim.x / 32) + threadIdx.x / 32; g < total; g += warps) {
    const std::ptrdiff_t r = g / groups_per_row;
    const std::ptrdiff_t c0 = (g % groups_per_row) * group_size;
    const float* xr = x.row_ptr(r);
    float lo = 0.0f, hi = 0.0f;
    for (std::ptrdiff_t c = lane; c < group_size; c += 32) {
      lo = fminf(lo, xr[c0 + c]);
      hi = fmaxf(hi, xr[c0 + c]);
    }
    for (int off = 16; off > 0; off >>= 1) {
      lo = fminf(lo, __shfl_xor_sync(0xffffffffu, lo, off));
      hi = fmaxf(hi, __shfl_xor_sync(0xffffffffu, hi, off));
    }
    const QuantParam p = clipped_range_param<GridT>(lo, hi, clip_ratio);
    if (lane == 0) {
      scales[g] = p.scale;
      if (zero_points != nullptr) zero_points[g] = p.zero_point;
    }
    quantized_t<GridT>* qr = q.row_ptr(r);
    for (std::ptrdiff_t u = lane; u < group_size / kPerUnit; u += 32) {
      qr[c0 / kPerUnit + u] = quantize_unit<GridT>(xr, x.cols(), c0 / kPerUnit + u, p);
    }
  }
}

template <class GridT>
__global__ void dequantize_kernel(MatrixView<const quantized_t<GridT>> q, const float* scales,
                                  const std::int32_t* zero_points, ScaleLayout layout,
                                  MatrixView<float> x) {
  for (std::ptrdiff_t r = blockIdx.y; r < x.rows(); r += gridDim.y) {
    const quantized_t<GridT>* qr = q.row_ptr(r);
    float* xr = x.row_ptr(r);
    for (std::ptrdiff_t c = blockIdx.x * blockDim.x + threadIdx.x; c < x.cols();
         c += static_cast<std::ptrdiff_t>(gridDim.x) * blockDim.x) {
      const std::ptrdiff_t i = layout.index(r, c);
      const QuantParam p{scales[i], 1.0f, zero_points != nullptr ? zero_points[i] : 0};
      xr[c] = dequantize_value(load_quantized<GridT>(qr, c), p);
    }
  }
}

template <class GridT>
Status check_quantize_views(MatrixView<const float> x, MatrixView<quantized_t<GridT>> q,
                            const char* where) {
  if (Status s = check_view(x, where, "x"); !s) return s;
  if (Status s = check_view(q, where, "q"); !s) return s;
  if (q.rows() != x.rows() || q.cols() != quantized_row_bytes<GridT>(x.cols())) {
    return invalid(where, "q is ", q.rows(), " x ", q.cols(), ", expected ", x.rows(), " x ",
                   quantized_row_bytes<GridT>(x.cols()), " for x ", x.rows(), " x ", x.cols(),
                   " on a ", GridT::kBits, "-bit grid");
  }
  return Status::ok();
}

/// The clip ratio check of quantize_dynamic_per_token_s8, with its message (NaN fails too).
inline Status check_clip_ratio(float clip_ratio, const char* where) {
  if (clip_ratio > 0.0f && clip_ratio <= 1.0f) return Status::ok();
  return invalid(where, "clip ratio ", clip_ratio, " is outside (0, 1]");
}

inline dim3 elementwise_grid(std::ptrdiff_t rows, std::ptrdiff_t units) {
  const std::ptrdiff_t bx = ceil_div<std::ptrdiff_t>(units, kQuantThreads);
  return dim3(static_cast<unsigned>(bx < 1 ? 1 : (bx > 1024 ? 1024 : bx)),
              static_cast<unsigned>(rows < 1 ? 1 : (rows > 65535 ? 65535 : rows)));
}

}  // namespace detail

/// Static per-tensor quantization of x (device, row-major) into q (device; 4-bit grids: packed,
/// q.cols() == ceil(x.cols() / 2)). `p` must be a valid parameter of GridT (QuantParam::make).
template <class GridT>
Status quantize_per_tensor(MatrixView<const float> x, QuantParam p, MatrixView<quantized_t<GridT>> q,
                           cudaStream_t stream) {
  constexpr const char* kWhere = "sasq::cuda::quantize_per_tensor";
  if (Status s = detail::check_quantize_views<GridT>(x, q, kWhere); !s) return s;
  try {
    validate_param<GridT>(p, kWhere);
  } catch (const Error& e) {
    return Status(e.code(), e.what());
  }
  if (x.empty()) return Status::ok();
  detail::quantize_static_kernel<GridT>
      <<<detail::elementwise_grid(x.rows(), q.cols()), detail::kQuantThreads, 0, stream>>>(x, p, q);
  return launch_status(kWhere);
}

/// Dynamic per-token quantization: row r gets param_from_range_unchecked<GridT>(c · min, c · max) of that
/// row, written to scales[r] (and zero_points[r], required for asymmetric grids, ignored and
/// may be null for symmetric ones); all pointers are device memory. The clip ratio c = clip_ratio
/// in (0, 1] scales the row's range (values beyond it saturate; QuaRot: 0.9); on symmetric 8-bit
/// grids the scales equal quantize_dynamic_per_token_s8's bit for bit. Inputs are not scanned for
/// NaN/Inf (that would need a sync): NaN is left out of the range and quantizes to the zero point,
/// an infinite row gets an infinite scale.
template <class GridT>
Status quantize_per_token(MatrixView<const float> x, MatrixView<quantized_t<GridT>> q, float* scales,
                          std::int32_t* zero_points, cudaStream_t stream, float clip_ratio = 1.0f) {
  constexpr const char* kWhere = "sasq::cuda::quantize_per_token";
  if (Status s = detail::check_quantize_views<GridT>(x, q, kWhere); !s) return s;
  if (Status s = detail::check_clip_ratio(clip_ratio, kWhere); !s) return s;
  if (x.rows() > 0 && scales == nullptr) return detail::invalid(kWhere, "scales is null");
  if (!GridT::kSymmetric && x.rows() > 0 && zero_points == nullptr) {
    return detail::invalid(kWhere, "zero_points is null on an asymmetric grid");
  }
  if (x.rows() == 0) return Status::ok();
  const std::ptrdiff_t blocks = x.rows() < 65535 * 32 ? x.rows() : 65535 * 32;
  detail::quantize_per_token_kernel<GridT, detail::kQuantThreads>
      <<<static_cast<unsigned>(blocks), detail::kQuantThreads, 0, stream>>>(
          x, q, scales, GridT::kSymmetric ? nullptr : zero_points, clip_ratio);
  return launch_status(kWhere);
}

/// Dynamic per-group quantization: each run of `group_size` consecutive elements of a row gets its
/// own parameter, written to scales[r * (cols / group_size) + c / group_size] (and zero_points
/// likewise, required for asymmetric grids). cols must be a multiple of group_size, and
/// group_size even on 4-bit grids. Same clip ratio (applied to each group's range) and NaN/Inf
/// behaviour as quantize_per_token.
template <class GridT>
Status quantize_per_group(MatrixView<const float> x, std::ptrdiff_t group_size,
                          MatrixView<quantized_t<GridT>> q, float* scales, std::int32_t* zero_points,
                          cudaStream_t stream, float clip_ratio = 1.0f) {
  constexpr const char* kWhere = "sasq::cuda::quantize_per_group";
  if (Status s = detail::check_quantize_views<GridT>(x, q, kWhere); !s) return s;
  if (Status s = detail::check_clip_ratio(clip_ratio, kWhere); !s) return s;
  if (group_size <= 0) return detail::invalid(kWhere, "group size ", group_size, " is not positive");
  if (x.cols() % group_size != 0) {
    return detail::invalid(kWhere, "cols ", x.cols(), " is not a multiple of the group size ", group_size);
  }
  if (GridT::kBits == 4 && group_size % 2 != 0) {
    return detail::invalid(kWhere, "group size ", group_size, " is odd on a 4-bit grid");
  }
  if (x.empty()) return Status::ok();
  if (scales == nullptr) return detail::invalid(kWhere, "scales is null");
  if (!GridT::kSymmetric && zero_points == nullptr) {
    return detail::invalid(kWhere, "zero_points is null on an asymmetric grid");
  }
  const std::ptrdiff_t total = x.rows() * (x.cols() / group_size);
  constexpr int kWarps = detail::kQuantThreads / 32;
  const std::ptrdiff_t want = ceil_div<std::ptrdiff_t>(total, kWarps);
  const unsigned blocks = static_cast<unsigned>(want < 65535 * 32 ? want : 65535 * 32);
  detail::quantize_per_group_kernel<GridT><<<blocks, detail::kQuantThreads, 0, stream>>>(
      x, group_size, q, scales, GridT::kSymmetric ? nullptr : zero_points, clip_ratio);
  return launch_status(kWhere);
}

/// x[r][c] = scale[i] * (q[r][c] - z[i]) with i = layout.index(r, c); zero_points may be null
/// (z = 0). q as produced by the quantize kernels (4-bit grids packed). Scales are used as
/// given (device memory, not validated).
template <class GridT>
Status dequantize(MatrixView<const quantized_t<GridT>> q, const float* scales,
                  const std::int32_t* zero_points, ScaleLayout layout, MatrixView<float> x,
                  cudaStream_t stream) {
  constexpr const char* kWhere = "sasq::cuda::dequantize";
  if (Status s = detail::check_view(x, kWhere, "x"); !s) return s;
  if (Status s = detail::check_view(q, kWhere, "q"); !s) return s;
  if (q.rows() != x.rows() || q.cols() != quantized_row_bytes<GridT>(x.cols())) {
    return detail::invalid(kWhere, "q is ", q.rows(), " x ", q.cols(), ", expected ", x.rows(), " x ",
                           quantized_row_bytes<GridT>(x.cols()));
  }
  if (layout.group_size <= 0 || layout.row_stride < 0) {
    return detail::invalid(kWhere, "scale layout {row_stride ", layout.row_stride, ", group_size ",
                           layout.group_size, "} is invalid");
  }
  if (x.empty()) return Status::ok();
  if (scales == nullptr) return detail::invalid(kWhere, "scales is null");
  detail::dequantize_kernel<GridT><<<detail::elementwise_grid(x.rows(), x.cols()),
                                     detail::kQuantThreads, 0, stream>>>(q, scales, zero_points,
                                                                          layout, x);
  return launch_status(kWhere);
}

}  // namespace sasq::cuda
