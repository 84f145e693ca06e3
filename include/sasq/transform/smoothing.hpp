// SmoothQuant per-input-channel migration factors and the function-preserving folds:
//   s_j = max(max_t |X[t, j]|^α / max(max_o |W[o, j]|, ε)^(1−α), ε),   X' = X diag(s)⁻¹,   W' = W diag(s).
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <vector>

#include "sasq/core/matrix_view.hpp"
#include "sasq/core/span.hpp"
#include "sasq/core/status.hpp"

namespace sasq {

/// Lower clamp of the weight statistic and of the factors (SmoothQuant's smooth.py uses 1e-5).
inline constexpr float kSmoothEpsilon = 1e-5f;

/// out[j] = max(out[j], max_r |M[r, j]|): per-column abs-max, accumulated into `out` (start it at 0).
/// For activations X[T][C] this is the calibration statistic max_t |X[t, j]|; for weights W[O][C]
/// the per-input-channel statistic max_o |W[o, j]|. Throws on NaN/Inf.
inline void accumulate_column_absmax(MatrixView<const float> m, Span<float> out) {
  SASQ_REQUIRE(static_cast<std::size_t>(m.cols()) == out.size(), "matrix has ", m.cols(),
               " columns but the statistic has ", out.size(), " channels");
  for (std::ptrdiff_t r = 0; r < m.rows(); ++r) {
    for (std::ptrdiff_t c = 0; c < m.cols(); ++c) {
      const float v = m(r, c);
      SASQ_REQUIRE(std::isfinite(v), "non-finite value ", v, " at (", r, ", ", c, ")");
      out[static_cast<std::size_t>(c)] = std::max(out[static_cast<std::size_t>(c)], std::fabs(v));
    }
  }
}

/// Per-column abs-max of one matrix (see accumulate_column_absmax).
inline std::vector<float> column_absmax(MatrixView<const float> m) {
  std::vector<float> out(static_cast<std::size_t>(m.cols()), 0.0f);
  accumulate_column_absmax(m, out);
  return out;
}

/// SmoothQuant factors for one activation site (arXiv 2211.10438, eq. 4; smooth.py).
/// act_absmax[j] = max_t |X[t, j]| from calibration; `weights` are all linears reading this input
/// (q/k/v, or gate/up): the weight statistic is the max over all of them (the shared-input rule).
/// α in [0, 1] (0.5 default in SmoothQuant/SmoothRot; 0.85 in SmoothQuant's LLaMA demo).
inline std::vector<float> smooth_scales(Span<const float> act_absmax,
                                        const std::vector<MatrixView<const float>>& weights, float alpha,
                                        float epsilon = kSmoothEpsilon) {
  SASQ_REQUIRE(alpha >= 0.0f && alpha <= 1.0f, "alpha ", alpha, " is outside [0, 1]");
  SASQ_REQUIRE(epsilon > 0.0f, "epsilon ", epsilon, " must be positive");
  SASQ_REQUIRE(!weights.empty(), "at least one weight must read the smoothed input");
  std::vector<float> wmax(act_absmax.size(), 0.0f);
  for (const auto& w : weights) accumulate_column_absmax(w, wmax);
  std::vector<float> s(act_absmax.size());
  for (std::size_t j = 0; j < s.size(); ++j) {
    const float a = act_absmax[j];
    SASQ_REQUIRE(std::isfinite(a) && a >= 0.0f, "activation abs-max ", a, " at channel ", j,
                 " is not a finite non-negative number");
    const double v = std::pow(static_cast<double>(a), alpha) /
                     std::pow(static_cast<double>(std::max(wmax[j], epsilon)), 1.0 - alpha);
    s[j] = std::max(static_cast<float>(v), epsilon);
  }
  return s;
}

namespace detail {
inline void check_scales(Span<const float> s, std::ptrdiff_t n, const char* what) {
  SASQ_REQUIRE(static_cast<std::ptrdiff_t>(s.size()) == n, what, " has ", n, " channels but ", s.size(),
               " smoothing factors were given");
  for (std::size_t j = 0; j < s.size(); ++j) {
    SASQ_REQUIRE(std::isfinite(s[j]) && s[j] > 0.0f, "smoothing factor ", s[j], " at channel ", j,
                 " is not finite and positive");
  }
}
}  // namespace detail

/// W <- W diag(s): input channel j of a linear W[out][in] is multiplied by s_j.
inline void scale_columns(MatrixView<float> w, Span<const float> s) {
  detail::check_scales(s, w.cols(), "weight");
  for (std::ptrdiff_t r = 0; r < w.rows(); ++r) {
    for (std::ptrdiff_t c = 0; c < w.cols(); ++c) w(r, c) *= s[static_cast<std::size_t>(c)];
  }
}

/// X <- X diag(s)⁻¹: what the folds below do to the activation at run time (for analysis).
inline void divide_columns(MatrixView<float> x, Span<const float> s) {
  detail::check_scales(s, x.cols(), "activation");
  for (std::ptrdiff_t r = 0; r < x.rows(); ++r) {
    for (std::ptrdiff_t c = 0; c < x.cols(); ++c) x(r, c) /= s[static_cast<std::size_t>(c)];
  }
}

/// Folds 1/s into an RMSNorm weight g (y = x / rms(x) · g): g_j <- g_j / s_j.
inline void fold_into_norm(Span<float> norm_weight, Span<const float> s) {
  detail::check_scales(s, static_cast<std::ptrdiff_t>(norm_weight.size()), "norm weight");
  for (std::size_t j = 0; j < s.size(); ++j) norm_weight[j] /= s[j];
}

/// Folds 1/s into the rows of the linear that produces the smoothed input: row j of W[out][in]
/// (output channel j) is divided by s_j. For SwiGLU, down_proj's input silu(gate)·up is linear in
/// up, so dividing up_proj's rows divides down_proj's input channels (SmoothRot).
inline void fold_into_rows(MatrixView<float> w, Span<const float> s) {
  detail::check_scales(s, w.rows(), "producing weight (rows)");
  for (std::ptrdiff_t r = 0; r < w.rows(); ++r) {
    const float f = s[static_cast<std::size_t>(r)];
    for (std::ptrdiff_t c = 0; c < w.cols(); ++c) w(r, c) /= f;
  }
}

}  // namespace sasq
