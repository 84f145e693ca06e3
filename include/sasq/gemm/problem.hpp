// Activation quantization parameters of a gemm call and the argument checks shared by gemm() and
// gemm_reference(): A[M][K] int8 (symmetric, z = 0) or uint8 (asymmetric, z in [0, 255]) with a
// static per-tensor scale or dynamic per-token scales; real A = scale[m] · (a[m][k] - z[m]).
#pragma once

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <type_traits>

#include "sasq/core/matrix_view.hpp"
#include "sasq/core/span.hpp"
#include "sasq/core/status.hpp"
#include "sasq/gemm/epilogue.hpp"
#include "sasq/gemm/packed_weights.hpp"

namespace sasq {

/// Scales (and zero points, uint8 A only) of the activations A: one per tensor (static, SASQ) or
/// one per row (dynamic per-token). Holds views only.
struct ActivationQuant {
  float scale = 1.0f;              ///< per-tensor scale, used when row_scales is empty
  std::int32_t zero_point = 0;     ///< per-tensor zero point (uint8 A), used when row_zero_points is empty
  Span<const float> row_scales;    ///< empty, or M per-token scales
  Span<const std::int32_t> row_zero_points;  ///< empty, or M per-token zero points (uint8 A)

  static ActivationQuant per_tensor(float scale, std::int32_t zero_point = 0) {
    return {scale, zero_point, {}, {}};
  }
  static ActivationQuant per_token(Span<const float> scales, Span<const std::int32_t> zero_points = {}) {
    return {1.0f, 0, scales, zero_points};
  }
  float scale_of(std::ptrdiff_t m) const { return row_scales.empty() ? scale : row_scales[static_cast<std::size_t>(m)]; }
  std::int32_t zero_point_of(std::ptrdiff_t m) const {
    return row_zero_points.empty() ? zero_point : row_zero_points[static_cast<std::size_t>(m)];
  }
};

namespace detail {

template <class T>
void require_view(MatrixView<T> v, const char* name) {
  if (v.rows() < 0 || v.cols() < 0 || v.ld() < v.cols() || (!v.empty() && v.data() == nullptr))
    fail(ErrorCode::kInvalidArgument, name, " view is invalid: ", v.rows(), " x ", v.cols(), ", ld ", v.ld(),
         v.data() == nullptr ? ", null data" : "");
}

/// Checks a gemm problem: A[M][K] against K and weight rows, C[M][out_cols], activation scales and zero
/// points, bias length and finiteness, SwiGLU pairing, and the int8 output scale. Throws sasq::Error naming the problem.
template <class TA, class TC>
void require_gemm_problem(MatrixView<const TA> a, const ActivationQuant& act, std::ptrdiff_t w_rows,
                          std::ptrdiff_t k, const WeightFormat& fmt, const Epilogue& ep, MatrixView<TC> c) {
  static_assert(std::is_same_v<TA, std::int8_t> || std::is_same_v<TA, std::uint8_t>,
                "gemm activations are int8_t (symmetric) or uint8_t (asymmetric with zero points)");
  static_assert(std::is_same_v<TC, float> || std::is_same_v<TC, std::int8_t>,
                "gemm output is float or int8_t (requantized with Epilogue::output_scale)");
  require_view(a, "A");
  require_view(c, "C");
  require_weight_format(fmt, k);
  const std::ptrdiff_t m = a.rows(), out_cols = fmt.gate_up_pair ? w_rows / 2 : w_rows;
  if (a.cols() != k) fail(ErrorCode::kInvalidArgument, "A has ", a.cols(), " columns but W has K = ", k);
  if (c.rows() != m || c.cols() != out_cols)
    fail(ErrorCode::kInvalidArgument, "C is ", c.rows(), " x ", c.cols(), ", expected ", m, " x ", out_cols,
         fmt.gate_up_pair ? " (F = half the gate/up rows)" : "");
  if (!act.row_scales.empty() && static_cast<std::ptrdiff_t>(act.row_scales.size()) != m)
    fail(ErrorCode::kInvalidArgument, "expected ", m, " per-token activation scales, got ", act.row_scales.size());
  if (act.row_scales.empty()) {
    require_scale(act.scale, "activation scale", 0);
  } else {
    for (std::size_t i = 0; i < act.row_scales.size(); ++i)
      require_scale(act.row_scales[i], "activation row scale", static_cast<std::ptrdiff_t>(i));
  }
  if (std::is_same_v<TA, std::int8_t>) {
    if (act.zero_point != 0 || !act.row_zero_points.empty())
      fail(ErrorCode::kInvalidArgument, "int8 activations are symmetric: zero points must be 0 / empty");
  } else {
    if (!act.row_zero_points.empty() && static_cast<std::ptrdiff_t>(act.row_zero_points.size()) != m)
      fail(ErrorCode::kInvalidArgument, "expected ", m, " per-token zero points, got ", act.row_zero_points.size());
    for (std::ptrdiff_t i = 0; i < (act.row_zero_points.empty() ? 1 : m); ++i) {
      const std::int32_t z = act.row_zero_points.empty() ? act.zero_point : act.row_zero_points[static_cast<std::size_t>(i)];
      if (z < 0 || z > 255) fail(ErrorCode::kInvalidArgument, "activation zero point ", z, " (row ", i, ") is outside [0, 255]");
    }
  }
  if (!ep.bias.empty() && static_cast<std::ptrdiff_t>(ep.bias.size()) != w_rows)
    fail(ErrorCode::kInvalidArgument, "bias has ", ep.bias.size(), " entries, expected one per weight row (", w_rows, ")");
  for (std::size_t i = 0; i < ep.bias.size(); ++i)
    if (!std::isfinite(ep.bias[i]))
      fail(ErrorCode::kInvalidArgument, "bias entry ", i, " is ", std::isnan(ep.bias[i]) ? "NaN" : "infinite");
  if ((ep.activation == Activation::kSwiGlu) != fmt.gate_up_pair)
    fail(ErrorCode::kInvalidArgument,
         "Activation::kSwiGlu needs weights packed with gate_up_pair, and gate_up_pair needs kSwiGlu");
  if (std::is_same_v<TC, std::int8_t>) require_scale(ep.output_scale, "output scale", 0);
}

}  // namespace detail
}  // namespace sasq
