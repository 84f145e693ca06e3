// Outlier truncation (clipping) policies for symmetric grids and the statistics a trainer logs:
//   threshold a = percentile of |x|  |  argmin_a Σ (x − Q_a(x))²  |  learned scale · qmax (SASQ/LSQ),
//   Q_a = fake_quantize_value<GridT>(·, param_from_absmax<GridT>(a));  values with |x| > a are truncated.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <limits>
#include <vector>

#include "sasq/core/matrix_view.hpp"
#include "sasq/core/span.hpp"
#include "sasq/core/status.hpp"
#include "sasq/quant/affine.hpp"
#include "sasq/quant/observer_histogram.hpp"
#include "sasq/quant/params.hpp"

namespace sasq {

/// No truncation: a = max |x|.
struct AbsMaxClip {};

/// Percentile clip: a = the `percentile` quantile of |x| (PercentileObserver, within one
/// histogram bin of the exact nearest-rank value).
struct PercentileClip {
  double percentile = 0.9999;
  int bins = 2048;
};

/// MSE-optimal clip: a = mse_optimal_absmax<GridT>(x, grid, min_ratio), the candidate
/// r · max|x| (r = min_ratio .. 1 in `grid` steps) with the smallest Σ (x − Q_a(x))².
struct MseClip {
  int grid = 100;
  float min_ratio = 0.2f;
};

/// Loss-aware (learned) clip, the SASQ view: a trained step size s (LSQ-style) truncates at
/// a = s · qmax. `scale` must be a valid scale (finite, > 0).
struct LearnedClip {
  float scale = 1.0f;
};

namespace detail {
template <class GridT>
void require_symmetric_grid() {
  static_assert(GridT::kSymmetric, "truncation policies define a symmetric threshold: use a Symmetric grid");
}
}  // namespace detail

/// Threshold a for one tensor (or one channel) under `policy`; see each policy's formula.
template <class GridT>
float clip_threshold(Span<const float> x, AbsMaxClip) {
  detail::require_symmetric_grid<GridT>();
  const Range r = detail::observe_batch(detail::as_row(x), "clip_threshold");
  return detail::abs_max_of(r);
}

template <class GridT>
float clip_threshold(Span<const float> x, const PercentileClip& policy) {
  detail::require_symmetric_grid<GridT>();
  PercentileObserver obs(policy.percentile, policy.bins);
  obs.observe(x);
  return obs.absmax();
}

template <class GridT>
float clip_threshold(Span<const float> x, const MseClip& policy) {
  detail::require_symmetric_grid<GridT>();
  return mse_optimal_absmax<GridT>(x, policy.grid, policy.min_ratio);
}

template <class GridT>
float clip_threshold(Span<const float> /*x*/, const LearnedClip& policy) {
  detail::require_symmetric_grid<GridT>();
  validate_scale(policy.scale, "clip_threshold(LearnedClip)");
  return policy.scale * static_cast<float>(GridT::kQmax);
}

/// Per-channel thresholds of a matrix: axis 1 = one per column (input channel of an activation
/// X[T][C]), axis 0 = one per row (output channel of a weight W[O][C]).
template <class GridT, class Policy>
std::vector<float> clip_thresholds_per_channel(MatrixView<const float> x, const Policy& policy, int axis) {
  SASQ_REQUIRE(axis == 0 || axis == 1, "axis must be 0 (rows) or 1 (columns), got ", axis);
  SASQ_REQUIRE(!x.empty(), "empty matrix (", x.rows(), " x ", x.cols(), ")");
  const std::ptrdiff_t n = axis == 0 ? x.rows() : x.cols();
  const std::ptrdiff_t len = axis == 0 ? x.cols() : x.rows();
  std::vector<float> out(static_cast<std::size_t>(n)), line(static_cast<std::size_t>(len));
  for (std::ptrdiff_t i = 0; i < n; ++i) {
    for (std::ptrdiff_t k = 0; k < len; ++k) line[static_cast<std::size_t>(k)] = axis == 0 ? x(i, k) : x(k, i);
    out[static_cast<std::size_t>(i)] = clip_threshold<GridT>(Span<const float>(line), policy);
  }
  return out;
}

/// Learned per-channel thresholds: a_c = scales[c] · qmax.
template <class GridT>
std::vector<float> learned_thresholds(Span<const float> scales) {
  detail::require_symmetric_grid<GridT>();
  std::vector<float> out(scales.size());
  for (std::size_t c = 0; c < scales.size(); ++c) {
    validate_scale(scales[c], "learned_thresholds");
    out[c] = scales[c] * static_cast<float>(GridT::kQmax);
  }
  return out;
}

/// What truncation at a threshold does to a tensor (log these per quantizer).
struct TruncationStats {
  std::size_t count = 0;           ///< number of elements
  double fraction_clipped = 0.0;   ///< #{|x| > a} / count
  double max_over_threshold = 0.0; ///< max |x| / a (> 1 when something is truncated)
  double sqnr_before_db = 0.0;     ///< SQNR of Q with a = max |x| (no truncation)
  double sqnr_after_db = 0.0;      ///< SQNR of Q with the given threshold a
};

namespace detail {
/// Accumulates Σx², the two noise energies, the clip count and max |x| for one threshold.
struct TruncationAccumulator {
  double signal = 0.0, noise_before = 0.0, noise_after = 0.0, amax = 0.0;
  std::size_t clipped = 0, count = 0;

  template <class GridT>
  void add(Span<const float> x, float threshold, float absmax_of_group) {
    validate_scale(threshold, "truncation_stats: threshold");
    const QuantParam after = param_from_absmax<GridT>(threshold);
    const QuantParam before = param_from_absmax<GridT>(absmax_of_group);
    for (float v : x) {
      const double d_after = static_cast<double>(v) - fake_quantize_value<GridT>(v, after);
      const double d_before = static_cast<double>(v) - fake_quantize_value<GridT>(v, before);
      signal += static_cast<double>(v) * v;
      noise_after += d_after * d_after;
      noise_before += d_before * d_before;
      clipped += std::fabs(v) > threshold;
      amax = std::max(amax, static_cast<double>(std::fabs(v)) / threshold);
      ++count;
    }
  }

  TruncationStats finish() const {
    auto db = [this](double noise) {
      return noise > 0.0 ? 10.0 * std::log10(signal / noise) : std::numeric_limits<double>::infinity();
    };
    return {count, count ? static_cast<double>(clipped) / static_cast<double>(count) : 0.0, amax, db(noise_before),
            db(noise_after)};
  }
};
}  // namespace detail

/// Statistics of truncating x at threshold a (> 0) on GridT.
template <class GridT>
TruncationStats truncation_stats(Span<const float> x, float threshold) {
  const float amax = clip_threshold<GridT>(x, AbsMaxClip{});
  detail::TruncationAccumulator acc;
  acc.add<GridT>(x, threshold, amax > 0.0f ? amax : threshold);
  return acc.finish();
}

/// Statistics of per-channel truncation (thresholds from clip_thresholds_per_channel with the
/// same axis), aggregated over the whole matrix; "before" uses each channel's own max |x|.
/// max_over_threshold is the largest max|x_c| / a_c over channels.
template <class GridT>
TruncationStats truncation_stats(MatrixView<const float> x, Span<const float> thresholds, int axis) {
  SASQ_REQUIRE(axis == 0 || axis == 1, "axis must be 0 (rows) or 1 (columns), got ", axis);
  const std::ptrdiff_t n = axis == 0 ? x.rows() : x.cols();
  const std::ptrdiff_t len = axis == 0 ? x.cols() : x.rows();
  SASQ_REQUIRE(static_cast<std::ptrdiff_t>(thresholds.size()) == n, "got ", thresholds.size(),
               " thresholds for ", n, " channels along axis ", axis);
  detail::TruncationAccumulator acc;
  std::vector<float> line(static_cast<std::size_t>(len));
  for (std::ptrdiff_t i = 0; i < n; ++i) {
    for (std::ptrdiff_t k = 0; k < len; ++k) line[static_cast<std::size_t>(k)] = axis == 0 ? x(i, k) : x(k, i);
    const float amax = clip_threshold<GridT>(Span<const float>(line), AbsMaxClip{});
    const float a = thresholds[static_cast<std::size_t>(i)];
    acc.add<GridT>(Span<const float>(line), a, amax > 0.0f ? amax : a);
  }
  return acc.finish();
}

}  // namespace sasq
