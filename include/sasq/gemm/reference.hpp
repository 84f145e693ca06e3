// Scalar reference gemm that defines every kernel's result, on the unpacked weights W[N][K]:
//   acc_g[m][n] = Σ_{k in g} (a[m][k] - z[m]) · w[n][k]  (int64, checked to fit int32), then the
//   epilogue stages of sasq/gemm/epilogue.hpp in order. Slow by design; for tests and benchmarks.
#pragma once

#include <cstdint>
#include <limits>

#include "sasq/core/matrix_view.hpp"
#include "sasq/core/span.hpp"
#include "sasq/core/status.hpp"
#include "sasq/gemm/epilogue.hpp"
#include "sasq/gemm/packed_weights.hpp"
#include "sasq/gemm/problem.hpp"

namespace sasq {

/// C = epilogue(A · Wᵀ) computed directly from W[N][K] (values in the int8 / int4 range of `fmt`) and its
/// scales (layout of pack_weights). Same argument rules as gemm(); throws kOutOfRange if an accumulator
/// would not fit int32 (impossible for K <= kMaxK; the check makes the bound testable).
template <class TA, class TC>
void gemm_reference(MatrixView<const TA> a, const ActivationQuant& act, MatrixView<const std::int8_t> w,
                    Span<const float> w_scales, WeightFormat fmt, const Epilogue& ep, MatrixView<TC> c) {
  detail::require_view(w, "W");
  detail::require_gemm_problem(a, act, w.rows(), w.cols(), fmt, ep, c);
  const std::ptrdiff_t k = w.cols(), gs = fmt.group_size == 0 ? k : fmt.group_size;
  const std::ptrdiff_t groups = detail::scales_per_row(fmt, k);
  SASQ_REQUIRE(static_cast<std::ptrdiff_t>(w_scales.size()) == w.rows() * groups, "expected ",
               w.rows() * groups, " weight scales, got ", w_scales.size());
  const float inv_out = 1.0f / ep.output_scale;
  auto dequantized = [&](std::ptrdiff_t m, std::ptrdiff_t n) {
    const std::int64_t z = act.zero_point_of(m);
    float y = 0.0f;
    for (std::ptrdiff_t g = 0; g < groups; ++g) {
      std::int64_t acc = 0;
      for (std::ptrdiff_t kk = g * gs; kk < k && kk < (g + 1) * gs; ++kk)
        acc += (static_cast<std::int64_t>(a(m, kk)) - z) * static_cast<std::int64_t>(w(n, kk));
      if (acc < std::numeric_limits<std::int32_t>::min() || acc > std::numeric_limits<std::int32_t>::max())
        fail(ErrorCode::kOutOfRange, "gemm_reference: accumulator ", acc, " at (", m, ", ", n,
             ") overflows int32");
      y = epilogue::Dequantize::apply_group(y, static_cast<std::int32_t>(acc), w_scales[static_cast<std::size_t>(n * groups + g)]);
    }
    return epilogue::Dequantize::apply_row(y, act.scale_of(m), ep.bias.empty() ? 0.0f : ep.bias[static_cast<std::size_t>(n)]);
  };
  for (std::ptrdiff_t m = 0; m < c.rows(); ++m) {
    for (std::ptrdiff_t j = 0; j < c.cols(); ++j) {
      float y = dequantized(m, j);
      if (ep.activation == Activation::kSilu) y = epilogue::Silu::apply(y);
      if (ep.activation == Activation::kSwiGlu) y = epilogue::SwiGlu::apply(y, dequantized(m, j + c.cols()));
      epilogue::StoreFor<TC>::type::apply(y, &c(m, j), inv_out);
    }
  }
}

}  // namespace sasq
