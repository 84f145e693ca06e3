// Activation quantize kernels feeding gemm(): f32 -> int8 on the full symmetric grid [-128, 127].
//   static:            q[m][k] = clamp(rne(x[m][k] · (1.0f / s)), -128, 127)        (SASQ inference)
//   dynamic per-token: s[m] = max(c · max_k |x[m][k]| / 127, FLT_MIN) (1 for an all-zero row), with the
//                      clip ratio c in (0, 1] (1: abs-max; QuaRot uses 0.9 and saturates the largest values),
//                      q[m][k] = clamp(rne(x[m][k] · (1.0f / s[m])), -128, 127)
// Both equal quantize_value<GridS8Full> (quant/affine.hpp) element by element, for every ISA.
#pragma once

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>

#include "sasq/core/matrix_view.hpp"
#include "sasq/core/span.hpp"
#include "sasq/core/status.hpp"
#include "sasq/cpu/avx2/quantize_kernel.hpp"
#include "sasq/cpu/avx512_vnni/quantize_kernel.hpp"
#include "sasq/cpu/isa.hpp"
#include "sasq/cpu/scalar/quantize_kernel.hpp"
#include "sasq/gemm/packed_weights.hpp"
#include "sasq/gemm/problem.hpp"

namespace sasq {

namespace detail {

inline void require_quantize_shapes(MatrixView<const float> x, MatrixView<std::int8_t> out) {
  require_view(x, "x");
  require_view(out, "out");
  if (out.rows() != x.rows() || out.cols() != x.cols())
    fail(ErrorCode::kInvalidArgument, "out is ", out.rows(), " x ", out.cols(), ", x is ", x.rows(), " x ", x.cols());
}

[[noreturn]] inline void fail_non_finite(MatrixView<const float> x, std::ptrdiff_t row) {
  for (std::ptrdiff_t k = 0; k < x.cols(); ++k)
    if (!std::isfinite(x(row, k))) fail(ErrorCode::kInvalidArgument, "x(", row, ", ", k, ") = ", x(row, k), " is not finite");
  fail(ErrorCode::kInvalidArgument, "x row ", row, " is not finite");
}

template <class IsaT>
void quantize_static_rows(MatrixView<const float> x, float inv, MatrixView<std::int8_t> out) {
  for (std::ptrdiff_t r = 0; r < x.rows(); ++r)
    if (!cpu::QuantizeKernel<IsaT>::row(x.row_ptr(r), x.cols(), inv, out.row_ptr(r))) fail_non_finite(x, r);
}

template <class IsaT>
void quantize_dynamic_rows(MatrixView<const float> x, MatrixView<std::int8_t> out, Span<float> scales,
                           float clip_ratio) {
  for (std::ptrdiff_t r = 0; r < x.rows(); ++r) {
    bool finite = true;
    const float amax = clip_ratio * cpu::QuantizeKernel<IsaT>::abs_max(x.row_ptr(r), x.cols(), finite);
    if (!finite) fail_non_finite(x, r);
    float s = amax / 127.0f;
    s = amax == 0.0f ? 1.0f : (s < std::numeric_limits<float>::min() ? std::numeric_limits<float>::min() : s);
    scales[static_cast<std::size_t>(r)] = s;
    cpu::QuantizeKernel<IsaT>::row(x.row_ptr(r), x.cols(), 1.0f / s, out.row_ptr(r));
  }
}

}  // namespace detail

/// Static quantization with a fixed (e.g. SASQ-trained) scale; single-threaded, streams x once.
/// Throws kInvalidArgument for mismatched shapes, a scale that is not finite and positive, or NaN/Inf
/// in x (naming the first such element); kUnsupported for an unavailable ISA.
inline void quantize_static_s8(MatrixView<const float> x, float scale, MatrixView<std::int8_t> out,
                               Isa isa = Isa::kAuto) {
  detail::require_quantize_shapes(x, out);
  detail::require_scale(scale, "activation scale", 0);
  const float inv = 1.0f / scale;
  switch (cpu::resolve_isa(isa)) {
#if SASQ_HAS_X86_KERNELS
    case Isa::kAvx512Vnni: detail::quantize_static_rows<isa::avx512_vnni>(x, inv, out); return;
    case Isa::kAvx2: detail::quantize_static_rows<isa::avx2>(x, inv, out); return;
#endif
    default: detail::quantize_static_rows<isa::scalar>(x, inv, out); return;
  }
}

/// Dynamic per-token quantization: one abs-max reduction and one quantize sweep per row (the row is
/// re-read from cache); writes x.rows() scales. clip_ratio c scales each row's abs-max (values beyond
/// c · abs-max saturate). Throws like quantize_static_s8, when scales.size() differs from x.rows(), and
/// for c outside (0, 1].
inline void quantize_dynamic_per_token_s8(MatrixView<const float> x, MatrixView<std::int8_t> out,
                                          Span<float> scales, Isa isa = Isa::kAuto, float clip_ratio = 1.0f) {
  detail::require_quantize_shapes(x, out);
  SASQ_REQUIRE(static_cast<std::ptrdiff_t>(scales.size()) == x.rows(), "need ", x.rows(), " scales, got ",
               scales.size());
  SASQ_REQUIRE(clip_ratio > 0.0f && clip_ratio <= 1.0f, "clip ratio ", clip_ratio, " is outside (0, 1]");
  switch (cpu::resolve_isa(isa)) {
#if SASQ_HAS_X86_KERNELS
    case Isa::kAvx512Vnni: detail::quantize_dynamic_rows<isa::avx512_vnni>(x, out, scales, clip_ratio); return;
    case Isa::kAvx2: detail::quantize_dynamic_rows<isa::avx2>(x, out, scales, clip_ratio); return;
#endif
    default: detail::quantize_dynamic_rows<isa::scalar>(x, out, scales, clip_ratio); return;
  }
}

}  // namespace sasq
