// Streaming range observers: running min/max, EMA of per-batch min/max, and the mean over
// batches of per-batch abs-max (SASQ's initialisation: s = mean_b(max|X_b|) / qmax).
#pragma once

#include <cstddef>
#include <limits>

#include "sasq/core/matrix_view.hpp"
#include "sasq/core/span.hpp"
#include "sasq/core/status.hpp"
#include "sasq/quant/affine.hpp"
#include "sasq/quant/params.hpp"
#include "sasq/quant/quantize.hpp"

namespace sasq {

/// A closed real interval [min, max].
struct Range {
  float min;
  float max;
};

namespace detail {

/// Validates a non-empty, finite batch and returns its min/max.
inline Range observe_batch(MatrixView<const float> x, const char* where) {
  if (x.empty()) fail(ErrorCode::kInvalidArgument, where, ": batch is empty (", x.rows(), " x ", x.cols(), ")");
  require_finite(x, where);
  const auto mm = block_min_max(x, 0, x.rows(), 0, x.cols());
  return {mm.first, mm.second};
}

inline MatrixView<const float> as_row(Span<const float> x) {
  return {x.data(), 1, static_cast<std::ptrdiff_t>(x.size())};
}

inline void require_observed(std::size_t batches, const char* where) {
  if (batches == 0) fail(ErrorCode::kInvalidArgument, where, ": no batch observed yet");
}

inline float abs_max_of(Range r) {
  const float a = r.min < 0.0f ? -r.min : r.min;
  const float b = r.max < 0.0f ? -r.max : r.max;
  return a > b ? a : b;
}

}  // namespace detail

/// Running min and max over every observed element; equals the min/max of the concatenated
/// batches exactly. param<GridT>() = param_from_range<GridT>(min, max).
class MinMaxObserver {
 public:
  /// Adds a batch (non-empty, finite; throws naming the first bad element otherwise).
  void observe(MatrixView<const float> x) {
    const Range b = detail::observe_batch(x, "MinMaxObserver::observe");
    if (batches_ == 0 || b.min < range_.min) range_.min = b.min;
    if (batches_ == 0 || b.max > range_.max) range_.max = b.max;
    ++batches_;
  }
  void observe(Span<const float> x) { observe(detail::as_row(x)); }

  std::size_t batches() const { return batches_; }
  /// Observed [min, max]; throws before the first batch.
  Range range() const {
    detail::require_observed(batches_, "MinMaxObserver::range");
    return range_;
  }
  /// max(|min|, |max|).
  float absmax() const { return detail::abs_max_of(range()); }
  template <class GridT>
  QuantParam param() const {
    const Range r = range();
    return param_from_range<GridT>(r.min, r.max);
  }

 private:
  Range range_{0.0f, 0.0f};
  std::size_t batches_ = 0;
};

/// Exponential moving average of per-batch min and max: the first batch sets them, then
/// min <- momentum * min + (1 - momentum) * batch_min (same for max); momentum in [0, 1] is the
/// weight of the history (PyTorch's MovingAverageMinMaxObserver averaging_constant = 1 - momentum).
class EmaMinMaxObserver {
 public:
  explicit EmaMinMaxObserver(float momentum = 0.9f) : momentum_(momentum) {
    SASQ_REQUIRE(momentum >= 0.0f && momentum <= 1.0f, "momentum ", momentum, " is not in [0, 1]");
  }
  void observe(MatrixView<const float> x) {
    const Range b = detail::observe_batch(x, "EmaMinMaxObserver::observe");
    if (batches_ == 0) {
      range_ = b;
    } else {
      range_.min = momentum_ * range_.min + (1.0f - momentum_) * b.min;
      range_.max = momentum_ * range_.max + (1.0f - momentum_) * b.max;
    }
    ++batches_;
  }
  void observe(Span<const float> x) { observe(detail::as_row(x)); }

  float momentum() const { return momentum_; }
  std::size_t batches() const { return batches_; }
  Range range() const {
    detail::require_observed(batches_, "EmaMinMaxObserver::range");
    return range_;
  }
  float absmax() const { return detail::abs_max_of(range()); }
  template <class GridT>
  QuantParam param() const {
    const Range r = range();
    return param_from_range<GridT>(r.min, r.max);
  }

 private:
  float momentum_;
  Range range_{0.0f, 0.0f};
  std::size_t batches_ = 0;
};

/// Mean over batches of per-batch statistics, accumulated in double: absmax() = mean_b max|X_b|
/// (SASQ's PTQ initialisation, "the average of the per-batch factors"), range() = (mean_b min X_b,
/// mean_b max X_b). param<GridT>() uses absmax() on symmetric grids (s = absmax / qmax) and
/// range() on asymmetric ones.
class MeanAbsMaxObserver {
 public:
  void observe(MatrixView<const float> x) {
    const Range b = detail::observe_batch(x, "MeanAbsMaxObserver::observe");
    sum_absmax_ += static_cast<double>(detail::abs_max_of(b));
    sum_min_ += static_cast<double>(b.min);
    sum_max_ += static_cast<double>(b.max);
    ++batches_;
  }
  void observe(Span<const float> x) { observe(detail::as_row(x)); }

  std::size_t batches() const { return batches_; }
  float absmax() const {
    detail::require_observed(batches_, "MeanAbsMaxObserver::absmax");
    return static_cast<float>(sum_absmax_ / static_cast<double>(batches_));
  }
  Range range() const {
    detail::require_observed(batches_, "MeanAbsMaxObserver::range");
    const double n = static_cast<double>(batches_);
    return {static_cast<float>(sum_min_ / n), static_cast<float>(sum_max_ / n)};
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
  double sum_absmax_ = 0.0;
  double sum_min_ = 0.0;
  double sum_max_ = 0.0;
  std::size_t batches_ = 0;
};

}  // namespace sasq
