// Channel-magnitude statistics (arXiv 2506.01967): m_j = ‖X[:, j]‖₂ over rows,
//   QD(X) = std_j(m_j) with the unbiased (N − 1) denominator; kurtosis; max/median channel-norm ratio.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <vector>

#include "sasq/core/matrix_view.hpp"
#include "sasq/core/span.hpp"
#include "sasq/core/status.hpp"

namespace sasq {

/// m_j = sqrt(Σ_r M[r, j]²) for every column j (accumulated in double). For activations X[T][C]
/// the norm runs over tokens; for weights W[O][C] over output rows, i.e. per input channel.
inline std::vector<float> channel_magnitudes(MatrixView<const float> m) {
  SASQ_REQUIRE(m.rows() > 0 && m.cols() > 0, "empty matrix (", m.rows(), " x ", m.cols(), ")");
  std::vector<double> acc(static_cast<std::size_t>(m.cols()), 0.0);
  for (std::ptrdiff_t r = 0; r < m.rows(); ++r) {
    for (std::ptrdiff_t c = 0; c < m.cols(); ++c) {
      const double v = m(r, c);
      SASQ_REQUIRE(std::isfinite(v), "non-finite value ", v, " at (", r, ", ", c, ")");
      acc[static_cast<std::size_t>(c)] += v * v;
    }
  }
  std::vector<float> out(acc.size());
  for (std::size_t j = 0; j < acc.size(); ++j) out[j] = static_cast<float>(std::sqrt(acc[j]));
  return out;
}

/// Unbiased standard deviation sqrt(Σ (v − mean)² / (n − 1)) (torch.std); needs n >= 2.
inline double unbiased_std(Span<const float> v) {
  SASQ_REQUIRE(v.size() >= 2, "need at least 2 values, got ", v.size());
  double mean = 0.0;
  for (float x : v) mean += x;
  mean /= static_cast<double>(v.size());
  double ss = 0.0;
  for (float x : v) ss += (x - mean) * (x - mean);
  return std::sqrt(ss / static_cast<double>(v.size() - 1));
}

/// Quantization difficulty QD(M) = unbiased std of channel_magnitudes(M) (2506.01967, sec. 3).
inline double quant_difficulty(MatrixView<const float> m) {
  const std::vector<float> mags = channel_magnitudes(m);
  return unbiased_std(mags);
}

/// Pearson kurtosis E[(v − μ)⁴] / E[(v − μ)²]² (population moments; 3 for a Gaussian, 1.8 for a
/// uniform distribution, large for heavy-tailed activations). Returns 0 for a constant input.
inline double kurtosis(Span<const float> v) {
  SASQ_REQUIRE(!v.empty(), "empty input");
  double mean = 0.0;
  for (float x : v) mean += x;
  mean /= static_cast<double>(v.size());
  double m2 = 0.0, m4 = 0.0;
  for (float x : v) {
    const double d = (x - mean) * (x - mean);
    m2 += d;
    m4 += d * d;
  }
  m2 /= static_cast<double>(v.size());
  m4 /= static_cast<double>(v.size());
  return m2 > 0.0 ? m4 / (m2 * m2) : 0.0;
}

/// Kurtosis of all elements of a matrix.
inline double kurtosis(MatrixView<const float> m) {
  std::vector<float> all;
  all.reserve(static_cast<std::size_t>(m.size()));
  for (std::ptrdiff_t r = 0; r < m.rows(); ++r) all.insert(all.end(), m.row_ptr(r), m.row_ptr(r) + m.cols());
  return kurtosis(Span<const float>(all));
}

/// max_j m_j / median_j m_j (the median of an even count is the mean of the two middle values).
/// Throws when the median is 0.
inline double max_median_ratio(Span<const float> magnitudes) {
  SASQ_REQUIRE(!magnitudes.empty(), "empty input");
  std::vector<float> s(magnitudes.begin(), magnitudes.end());
  std::sort(s.begin(), s.end());
  const std::size_t n = s.size();
  const double median = n % 2 ? s[n / 2] : 0.5 * (static_cast<double>(s[n / 2 - 1]) + s[n / 2]);
  SASQ_REQUIRE(median > 0.0, "median channel magnitude is 0");
  return s.back() / median;
}

}  // namespace sasq
