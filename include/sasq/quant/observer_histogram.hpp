// Histogram-based clip observers: StreamingHistogram (power-of-two range that rebins on growth),
// PercentileObserver (quantile from the histogram, |error| <= bin width) and MseObserver /
// mse_optimal_absmax (clip = r * absmax minimising sum (x - x^)^2, r on a uniform grid).
#pragma once

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <vector>

#include "sasq/core/matrix_view.hpp"
#include "sasq/core/span.hpp"
#include "sasq/core/status.hpp"
#include "sasq/quant/affine.hpp"
#include "sasq/quant/observer_minmax.hpp"
#include "sasq/quant/params.hpp"
#include "sasq/quant/quantize.hpp"

namespace sasq {

/// Fixed-size histogram of real values over [-R, R], streaming. `bins` (a power of two >= 2)
/// bins of width w = 2R / bins; x goes to bin floor((x + R) / w) (x = R to the last bin).
/// R is the smallest power of two >= the largest |x| seen; when a batch exceeds it, R doubles
/// and pairs of bins merge exactly (the old range becomes the middle half), so the histogram
/// always equals the one built at the final R, and R < 2 * absmax. Zeros always sit in bin
/// bins / 2. Counts are exact; exact min and max are tracked alongside.
class StreamingHistogram {
 public:
  explicit StreamingHistogram(int bins = 2048) : counts_(static_cast<std::size_t>(bins > 0 ? bins : 0)) {
    SASQ_REQUIRE(bins >= 2 && (bins & (bins - 1)) == 0, "bins ", bins, " is not a power of two >= 2");
  }

  /// Adds every element of x (non-empty, finite; throws naming the first bad element).
  void add(MatrixView<const float> x) {
    const Range b = detail::observe_batch(x, "StreamingHistogram::add");
    if (total_ == 0 || b.min < min_) min_ = b.min;
    if (total_ == 0 || b.max > max_) max_ = b.max;
    grow_to(static_cast<double>(detail::abs_max_of(b)));
    const double inv_w = R_ > 0.0 ? static_cast<double>(counts_.size()) / (2.0 * R_) : 0.0;
    const auto last = static_cast<std::ptrdiff_t>(counts_.size()) - 1;
    const auto mid = static_cast<std::ptrdiff_t>(counts_.size() / 2);
    for (std::ptrdiff_t r = 0; r < x.rows(); ++r) {
      const float* row = x.row_ptr(r);
      for (std::ptrdiff_t c = 0; c < x.cols(); ++c) {
        std::ptrdiff_t i = R_ > 0.0 ? static_cast<std::ptrdiff_t>(std::floor((row[c] + R_) * inv_w)) : mid;
        i = i < 0 ? 0 : (i > last ? last : i);
        ++counts_[static_cast<std::size_t>(i)];
      }
    }
    total_ += static_cast<std::uint64_t>(x.size());
  }
  void add(Span<const float> x) { add(detail::as_row(x)); }

  int bins() const { return static_cast<int>(counts_.size()); }
  /// Half-width R of the covered range [-R, R] (0 while only zeros were seen).
  double range_radius() const { return R_; }
  /// w = 2R / bins: the error bound of quantile() and abs_quantile().
  double bin_width() const { return 2.0 * R_ / static_cast<double>(counts_.size()); }
  std::uint64_t total() const { return total_; }
  const std::vector<std::uint64_t>& counts() const { return counts_; }
  /// Centre of bin i.
  double bin_center(std::size_t i) const { return -R_ + (static_cast<double>(i) + 0.5) * bin_width(); }
  float min() const { require_data("min"); return min_; }
  float max() const { require_data("max"); return max_; }
  float absmax() const { return detail::abs_max_of({min(), max()}); }

  /// Estimate of the nearest-rank q-quantile, the k-th smallest element with k = max(1, ceil(q n)):
  /// the bin holding rank k, interpolated linearly by rank inside it and clamped to [min, max].
  /// |estimate - exact| <= bin_width() (up to double rounding, ~1e-16 R). q in [0, 1].
  double quantile(double q) const {
    require_data("quantile");
    SASQ_REQUIRE(q >= 0.0 && q <= 1.0, "quantile ", q, " is not in [0, 1]");
    const std::uint64_t k = rank(q);
    std::uint64_t before = 0;
    std::size_t i = 0;
    while (before + counts_[i] < k) before += counts_[i++];
    const double lo = -R_ + static_cast<double>(i) * bin_width();
    const double est = lo + bin_width() * static_cast<double>(k - before) / static_cast<double>(counts_[i]);
    return clamp(est, static_cast<double>(min_), static_cast<double>(max_));
  }

  /// Same for |x|: the nearest-rank q-quantile of the absolute values, from the histogram folded
  /// at 0 (|x| bin j = bins bins/2 + j and bins/2 - 1 - j, width w). Same bound.
  double abs_quantile(double q) const {
    require_data("abs_quantile");
    SASQ_REQUIRE(q >= 0.0 && q <= 1.0, "quantile ", q, " is not in [0, 1]");
    const std::uint64_t k = rank(q);
    const std::size_t half = counts_.size() / 2;
    std::uint64_t before = 0;
    std::size_t j = 0;
    for (;; ++j) {
      const std::uint64_t n = counts_[half + j] + counts_[half - 1 - j];
      if (before + n >= k) {
        const double est = static_cast<double>(j) * bin_width() +
                           bin_width() * static_cast<double>(k - before) / static_cast<double>(n);
        return clamp(est, 0.0, static_cast<double>(absmax()));
      }
      before += n;
    }
  }

 private:
  static double clamp(double v, double lo, double hi) { return v < lo ? lo : (v > hi ? hi : v); }
  void require_data(const char* what) const {
    if (total_ == 0) fail(ErrorCode::kInvalidArgument, "StreamingHistogram::", what, ": no data added yet");
  }
  std::uint64_t rank(double q) const {
    const double k = std::ceil(q * static_cast<double>(total_));
    return k < 1.0 ? 1 : (k > static_cast<double>(total_) ? total_ : static_cast<std::uint64_t>(k));
  }
  /// Makes R >= a: the first nonzero a sets R = 2^ceil(log2 a); later ones double R and merge.
  void grow_to(double a) {
    if (a <= R_) return;
    if (R_ == 0.0) {
      int e = 0;
      const double m = std::frexp(a, &e);  // a = m 2^e, m in [0.5, 1)
      R_ = m == 0.5 ? a : std::ldexp(1.0, e);
      return;  // only zeros so far, all in the middle bin, which stays the middle bin
    }
    const std::size_t n = counts_.size();
    while (R_ < a) {
      std::vector<std::uint64_t> merged(n, 0);
      for (std::size_t k = 0; k < n / 2; ++k) merged[n / 4 + k] = counts_[2 * k] + counts_[2 * k + 1];
      counts_.swap(merged);
      R_ *= 2.0;
    }
  }

  std::vector<std::uint64_t> counts_;
  double R_ = 0.0;
  std::uint64_t total_ = 0;
  float min_ = 0.0f;
  float max_ = 0.0f;
};

namespace detail {

/// Clip ratio of candidate i in the MSE search: r_i = min_ratio + (1 - min_ratio) * i / grid.
inline float mse_ratio(int i, int grid, float min_ratio) {
  return min_ratio + (1.0f - min_ratio) * static_cast<float>(i) / static_cast<float>(grid);
}

inline void require_mse_grid(int grid, float min_ratio) {
  SASQ_REQUIRE(grid >= 1, "grid ", grid, " must be >= 1");
  SASQ_REQUIRE(min_ratio > 0.0f && min_ratio <= 1.0f, "min_ratio ", min_ratio, " is not in (0, 1]");
}

}  // namespace detail

/// Percentile clipping: symmetric grids clip at the `percentile` quantile of |x|
/// (param_from_absmax), asymmetric grids at the (1 - percentile, percentile) quantiles of x
/// (param_from_range). Streaming via StreamingHistogram; each clip is within bin_width() of the
/// exact nearest-rank percentile of all observed elements.
class PercentileObserver {
 public:
  explicit PercentileObserver(double percentile = 0.9999, int bins = 2048)
      : percentile_(percentile), hist_(bins) {
    SASQ_REQUIRE(percentile > 0.0 && percentile <= 1.0, "percentile ", percentile, " is not in (0, 1]");
  }
  void observe(MatrixView<const float> x) { hist_.add(x); }
  void observe(Span<const float> x) { hist_.add(x); }

  double percentile() const { return percentile_; }
  const StreamingHistogram& histogram() const { return hist_; }
  /// Symmetric clip: the percentile-quantile of |x|.
  float absmax() const { return static_cast<float>(hist_.abs_quantile(percentile_)); }
  /// Asymmetric clip: (quantile(1 - p), quantile(p)).
  Range range() const {
    return {static_cast<float>(hist_.quantile(1.0 - percentile_)), static_cast<float>(hist_.quantile(percentile_))};
  }
  template <class GridT>
  QuantParam param() const {
    if constexpr (GridT::kSymmetric) {
      return param_from_absmax<GridT>(absmax());
    } else {
      const Range r = range();
      return param_from_range<GridT>(r.min, r.max);
    }
  }

 private:
  double percentile_;
  StreamingHistogram hist_;
};

/// Clip value minimising the exact error over a whole tensor:
/// candidates a_i = r_i * max|x| with r_i = min_ratio + (1 - min_ratio) i / grid, i = 0..grid,
/// each scored by sum_j |x_j - fake_quantize_value<GridT>(x_j, param_from_absmax<GridT>(a_i))|^norm
/// in double (norm 2: squared error; GPTQ/QuaRot's weight clip uses 2.4); ties keep the larger
/// clip. Returns 0 for an all-zero x. Throws for empty or non-finite x, grid < 1, min_ratio
/// outside (0, 1] or a norm that is not finite and positive. Cost O(n * grid).
template <class GridT>
float mse_optimal_absmax(Span<const float> x, int grid = 100, float min_ratio = 0.2f, float norm = 2.0f) {
  detail::require_mse_grid(grid, min_ratio);
  SASQ_REQUIRE(std::isfinite(norm) && norm > 0.0f, "error norm ", norm, " is not finite and positive");
  const Range mm = detail::observe_batch(detail::as_row(x), "mse_optimal_absmax");
  const float absmax = detail::abs_max_of(mm);
  if (absmax == 0.0f) return 0.0f;
  float best = absmax;
  double best_err = 0.0;
  for (int i = grid; i >= 0; --i) {
    const float a = detail::mse_ratio(i, grid, min_ratio) * absmax;
    const QuantParam p = param_from_absmax<GridT>(a);
    double err = 0.0;
    for (float v : x) {
      const double d = static_cast<double>(v) - static_cast<double>(fake_quantize_value<GridT>(v, p));
      err += norm == 2.0f ? d * d : std::pow(std::fabs(d), static_cast<double>(norm));
    }
    if (i == grid || err < best_err) {
      best_err = err;
      best = a;
    }
  }
  return best;
}

/// Candidates and error norm of mse_optimal_absmax, as one value. The defaults are GPTQ's and
/// QuaRot's weight clip search (w_clip; its WeightQuantizer with mse: shrink p = 1.00, 0.99, ...,
/// 0.21 of max|w|, error sum |w - w^|^2.4), which GptqConfig uses.
struct ClipSearch {
  int grid = 79;            ///< candidates min_ratio + (1 - min_ratio) i / grid, i = 0..grid
  float min_ratio = 0.21f;  ///< smallest clip / max|w|
  float norm = 2.4f;        ///< error exponent
};

/// Streaming MSE-optimal clip: the candidates of mse_optimal_absmax (symmetric grids: clip
/// r_i * absmax; asymmetric: range r_i * (min(min, 0), max(max, 0))), each scored on the
/// StreamingHistogram with every element replaced by its bin centre:
/// err_i = sum_b count_b (c_b - x^(c_b))^2. Ties keep the larger clip.
class MseObserver {
 public:
  explicit MseObserver(int grid = 100, float min_ratio = 0.2f, int bins = 2048)
      : grid_(grid), min_ratio_(min_ratio), hist_(bins) {
    detail::require_mse_grid(grid, min_ratio);
  }
  void observe(MatrixView<const float> x) { hist_.add(x); }
  void observe(Span<const float> x) { hist_.add(x); }

  const StreamingHistogram& histogram() const { return hist_; }
  int grid() const { return grid_; }
  float min_ratio() const { return min_ratio_; }

  /// Clip ratio r_i chosen for GridT.
  template <class GridT>
  float ratio() const {
    const Range full{hist_.min(), hist_.max()};
    float best = 1.0f;
    double best_err = 0.0;
    for (int i = grid_; i >= 0; --i) {
      const float r = detail::mse_ratio(i, grid_, min_ratio_);
      const QuantParam p = candidate<GridT>(full, r);
      double err = 0.0;
      const auto& counts = hist_.counts();
      for (std::size_t b = 0; b < counts.size(); ++b) {
        if (counts[b] == 0) continue;
        const auto c = static_cast<float>(hist_.bin_center(b));
        const double d = static_cast<double>(c) - static_cast<double>(fake_quantize_value<GridT>(c, p));
        err += static_cast<double>(counts[b]) * d * d;
      }
      if (i == grid_ || err < best_err) {
        best_err = err;
        best = r;
      }
    }
    return best;
  }
  template <class GridT>
  QuantParam param() const {
    return candidate<GridT>({hist_.min(), hist_.max()}, ratio<GridT>());
  }

 private:
  template <class GridT>
  static QuantParam candidate(Range full, float r) {
    if constexpr (GridT::kSymmetric) {
      return param_from_absmax<GridT>(r * detail::abs_max_of(full));
    } else {
      const float lo = full.min < 0.0f ? full.min : 0.0f;
      const float hi = full.max > 0.0f ? full.max : 0.0f;
      return param_from_range<GridT>(r * lo, r * hi);
    }
  }

  int grid_;
  float min_ratio_;
  StreamingHistogram hist_;
};

}  // namespace sasq
