// SmoothRot (arXiv 2506.05413): channel-wise smoothing, then rotation, of one linear's input:
//   X''' = X diag(s)⁻¹ H,   W''' = W diag(s) H,   s = smooth_scales(max_t |X|, W, α),
// and the α search minimizing the layer error E = ‖X Wᵀ − Q(X''') Q(W''')ᵀ‖_F² on calibration data.
#pragma once

#include <cstddef>
#include <limits>
#include <vector>

#include "sasq/core/matrix_view.hpp"
#include "sasq/core/span.hpp"
#include "sasq/core/status.hpp"
#include "sasq/metrics/layer_error.hpp"
#include "sasq/transform/rotation.hpp"
#include "sasq/transform/smoothing.hpp"

namespace sasq {

/// Copies X (T × C) and W (O × C) into contiguous buffers and applies the hybrid transform with
/// factors s (empty: no smoothing) and rotation h (nullptr: none). Output is what a quantizer sees.
struct TransformedPair {
  std::vector<float> x;  ///< T × C, row-major
  std::vector<float> w;  ///< O × C, row-major
  std::ptrdiff_t tokens = 0, outputs = 0, channels = 0;
  MatrixView<float> x_view() { return {x.data(), tokens, channels}; }
  MatrixView<float> w_view() { return {w.data(), outputs, channels}; }
  MatrixView<const float> x_view() const { return {x.data(), tokens, channels}; }
  MatrixView<const float> w_view() const { return {w.data(), outputs, channels}; }
};

/// X diag(s)⁻¹ H and W diag(s) H (the product X Wᵀ is unchanged up to rounding).
inline TransformedPair smooth_rotate(MatrixView<const float> x, MatrixView<const float> w,
                                     Span<const float> s, const Rotation* h) {
  SASQ_REQUIRE(x.cols() == w.cols(), "X has ", x.cols(), " channels but W has ", w.cols(), " input channels");
  TransformedPair p;
  p.tokens = x.rows();
  p.outputs = w.rows();
  p.channels = x.cols();
  p.x.resize(static_cast<std::size_t>(p.tokens * p.channels));
  p.w.resize(static_cast<std::size_t>(p.outputs * p.channels));
  for (std::ptrdiff_t r = 0; r < p.tokens; ++r) {
    for (std::ptrdiff_t c = 0; c < p.channels; ++c) p.x[static_cast<std::size_t>(r * p.channels + c)] = x(r, c);
  }
  for (std::ptrdiff_t r = 0; r < p.outputs; ++r) {
    for (std::ptrdiff_t c = 0; c < p.channels; ++c) p.w[static_cast<std::size_t>(r * p.channels + c)] = w(r, c);
  }
  if (!s.empty()) {
    divide_columns(p.x_view(), s);
    scale_columns(p.w_view(), s);
  }
  if (h) {
    apply_rotation(*h, p.x_view());
    rotate_linear_input(p.w_view(), *h);
  }
  return p;
}

/// Result of the SmoothRot α search.
struct AlphaSearch {
  float best_alpha = 0.0f;
  double best_error = 0.0;
  std::vector<float> alphas;   ///< candidates, in the order given
  std::vector<double> errors;  ///< E at each candidate
};

/// Searches α over `alphas` (SmoothRot sweeps 0, 0.05, ..., 1) for one linear: for each α,
/// s = smooth_scales(max_t |X|, {W}, α) and E = layer_quant_error(X diag(s)⁻¹ H, W diag(s) H, bits).
/// X are calibration inputs of this linear (T × C), h the rotation its input gets (order C).
/// Returns the α with the smallest E (the first one on ties).
inline AlphaSearch search_smoothrot_alpha(MatrixView<const float> x, MatrixView<const float> w, const Rotation& h,
                                          Span<const float> alphas, int bits) {
  SASQ_REQUIRE(!alphas.empty(), "no alpha candidates");
  SASQ_REQUIRE(static_cast<std::ptrdiff_t>(h.size()) == x.cols(), "rotation order ", h.size(), " != ",
               x.cols(), " channels");
  const std::vector<float> act_absmax = column_absmax(x);
  AlphaSearch out;
  out.best_error = std::numeric_limits<double>::infinity();
  for (float a : alphas) {
    const std::vector<float> s = smooth_scales(act_absmax, {w}, a);
    TransformedPair p = smooth_rotate(x, w, s, &h);
    const double e = layer_quant_error(p.x_view(), p.w_view(), bits).error;
    out.alphas.push_back(a);
    out.errors.push_back(e);
    if (e < out.best_error) {
      out.best_error = e;
      out.best_alpha = a;
    }
  }
  return out;
}

}  // namespace sasq
