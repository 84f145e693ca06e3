// CUDA plumbing shared by the sasq kernels: runtime errors as Status, argument checks, ceil_div.
#pragma once

#if !defined(__CUDACC__)
#error "sasq/cuda/*.cuh hold __global__ code: include them from a .cu file compiled by nvcc"
#endif

#include <cuda_runtime.h>

#include <cstdint>
#include <type_traits>

#include "sasq/core/matrix_view.hpp"
#include "sasq/core/status.hpp"
#include "sasq/quant/scheme.hpp"

namespace sasq::cuda {

/// Converts a CUDA runtime error into a Status naming the operation `where`.
inline Status cuda_status(cudaError_t err, const char* where) {
  if (err == cudaSuccess) return Status::ok();
  return Status(ErrorCode::kCudaError,
                sasq::detail::concat(where, ": ", cudaGetErrorName(err), " (", cudaGetErrorString(err), ")"));
}

/// Status of the most recent kernel launch on this thread (launch-configuration errors only; it
/// does not synchronize, so faults inside the kernel surface at the caller's next sync).
inline Status launch_status(const char* where) { return cuda_status(cudaGetLastError(), where); }

/// Number of usable CUDA devices; 0 when the runtime reports none or has no driver.
inline int device_count() noexcept {
  int n = 0;
  if (cudaGetDeviceCount(&n) != cudaSuccess) {
    (void)cudaGetLastError();  // clear the sticky "no driver" error
    return 0;
  }
  return n;
}

template <class T>
SASQ_HOST_DEVICE constexpr T ceil_div(T a, T b) {
  return (a + b - 1) / b;
}

/// Storage of one quantized matrix element on the device: int8/uint8 for 8-bit grids, and for
/// 4-bit grids a byte holding two nibbles (element 2i in the low nibble, as pack_int4).
template <class GridT>
using quantized_t = std::conditional_t<GridT::kBits == 4, std::uint8_t, typename GridT::storage_type>;

/// Bytes of one quantized row of `cols` elements.
template <class GridT>
constexpr std::ptrdiff_t quantized_row_bytes(std::ptrdiff_t cols) {
  return GridT::kBits == 4 ? (cols + 1) / 2 : cols;
}

namespace detail {

inline bool aligned_to(const void* p, std::uintptr_t bytes) {
  return reinterpret_cast<std::uintptr_t>(p) % bytes == 0;
}

/// Status(kInvalidArgument) built from the streamed message, prefixed by `where`.
template <class... Args>
Status invalid(const char* where, const Args&... args) {
  return Status(ErrorCode::kInvalidArgument, sasq::detail::concat(where, ": ", args...));
}

/// Checks that a view is well-formed: non-negative extents, ld >= cols, data present when
/// non-empty. `what` names the operand in the message.
template <class T>
Status check_view(MatrixView<T> v, const char* where, const char* what) {
  if (v.rows() < 0 || v.cols() < 0) {
    return invalid(where, what, " has negative shape ", v.rows(), " x ", v.cols());
  }
  if (v.ld() < v.cols()) return invalid(where, what, " has ld ", v.ld(), " < cols ", v.cols());
  if (!v.empty() && v.data() == nullptr) return invalid(where, what, " is null");
  return Status::ok();
}

}  // namespace detail

}  // namespace sasq::cuda
