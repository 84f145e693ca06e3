// Layer-wise quantization error (arXiv 2506.01967):  E = ‖X Wᵀ − Q(X) Q(W)ᵀ‖_F²  with Q symmetric
// per-row RTN (per-token X, per-output-channel W), and its estimate
//   Ê = (‖W‖_F² Σ_t Δ_{x,t}² + ‖X‖_F² Σ_o Δ_{w,o}²) / 12,   Δ = (row max − row min) / (2^b − 1).
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
#include "sasq/quant/scheme.hpp"

namespace sasq {

namespace detail {
inline void check_bits(int bits) { SASQ_REQUIRE(bits == 4 || bits == 8, "bits must be 4 or 8, got ", bits); }

inline void check_finite(MatrixView<const float> m, const char* what) {
  for (std::ptrdiff_t r = 0; r < m.rows(); ++r) {
    for (std::ptrdiff_t c = 0; c < m.cols(); ++c) {
      SASQ_REQUIRE(std::isfinite(m(r, c)), what, " has a non-finite value ", m(r, c), " at (", r, ", ", c, ")");
    }
  }
}

template <class GridT>
void fake_quantize_rows_impl(MatrixView<const float> in, MatrixView<float> out) {
  for (std::ptrdiff_t r = 0; r < in.rows(); ++r) {
    float amax = 0.0f;
    for (std::ptrdiff_t c = 0; c < in.cols(); ++c) amax = std::max(amax, std::fabs(in(r, c)));
    if (amax == 0.0f) {
      for (std::ptrdiff_t c = 0; c < in.cols(); ++c) out(r, c) = 0.0f;
      continue;
    }
    const QuantParam p = QuantParam::make(amax / static_cast<float>(GridT::kQmax));
    for (std::ptrdiff_t c = 0; c < in.cols(); ++c) out(r, c) = fake_quantize_value<GridT>(in(r, c), p);
  }
}
}  // namespace detail

/// Symmetric per-row RTN fake quantization, scale = max|row| / (2^(b−1) − 1), grid
/// [−2^(b−1), 2^(b−1) − 1] (Grid<b, SymmetricFull>, as the paper's code). An all-zero row stays 0.
/// Returns rows × cols, row-major. bits is 4 or 8.
inline std::vector<float> fake_quantize_rows(MatrixView<const float> in, int bits) {
  detail::check_bits(bits);
  detail::check_finite(in, "input");
  std::vector<float> out(static_cast<std::size_t>(in.rows() * in.cols()));
  MatrixView<float> ov(out.data(), in.rows(), in.cols());
  if (bits == 4) {
    detail::fake_quantize_rows_impl<GridS4Full>(in, ov);
  } else {
    detail::fake_quantize_rows_impl<GridS8Full>(in, ov);
  }
  return out;
}

/// Σ (A − B)² over all elements, in double; shapes must match.
inline double squared_error(MatrixView<const float> a, MatrixView<const float> b) {
  SASQ_REQUIRE(a.rows() == b.rows() && a.cols() == b.cols(), "shapes ", a.rows(), "x", a.cols(), " and ",
               b.rows(), "x", b.cols(), " differ");
  double e = 0.0;
  for (std::ptrdiff_t r = 0; r < a.rows(); ++r) {
    for (std::ptrdiff_t c = 0; c < a.cols(); ++c) {
      const double d = static_cast<double>(a(r, c)) - b(r, c);
      e += d * d;
    }
  }
  return e;
}

/// ‖M‖_F² in double.
inline double squared_norm(MatrixView<const float> m) {
  double e = 0.0;
  for (std::ptrdiff_t r = 0; r < m.rows(); ++r) {
    for (std::ptrdiff_t c = 0; c < m.cols(); ++c) e += static_cast<double>(m(r, c)) * m(r, c);
  }
  return e;
}

/// Signal-to-quantization-noise ratio 10·log10(signal_energy / noise_energy) in dB;
/// +infinity for zero noise.
inline double sqnr_db(double signal_energy, double noise_energy) {
  if (noise_energy <= 0.0) return std::numeric_limits<double>::infinity();
  return 10.0 * std::log10(signal_energy / noise_energy);
}

/// Tensor error ‖X − Q(X)‖_F² with per-row symmetric RTN (fake_quantize_rows).
inline double tensor_quant_error(MatrixView<const float> x, int bits) {
  const std::vector<float> q = fake_quantize_rows(x, bits);
  return squared_error(x, MatrixView<const float>(q.data(), x.rows(), x.cols()));
}

/// E, Ê and SQNR of one linear layer Y = X Wᵀ.
struct LayerError {
  double error = 0.0;     ///< E = ‖X Wᵀ − Q(X) Q(W)ᵀ‖_F²
  double estimate = 0.0;  ///< Ê, the closed-form estimate
  double sqnr_db = 0.0;   ///< 10 log10(‖X Wᵀ‖_F² / E)
};

/// Closed-form estimate Ê (rounding noise modelled as independent uniform, variance Δ²/12; the
/// second-order noise × noise term dropped). Formula as in 2506.01967's quant_error_estimate.
inline double layer_quant_error_estimate(MatrixView<const float> x, MatrixView<const float> w, int bits) {
  detail::check_bits(bits);
  SASQ_REQUIRE(x.cols() == w.cols(), "X has ", x.cols(), " channels but W has ", w.cols(), " input channels");
  const double levels = static_cast<double>((1 << bits) - 1);
  auto sum_delta2 = [levels](MatrixView<const float> m) {
    double s = 0.0;
    for (std::ptrdiff_t r = 0; r < m.rows(); ++r) {
      const auto row = m.row(r);
      const auto [lo, hi] = std::minmax_element(row.begin(), row.end());
      const double d = (static_cast<double>(*hi) - *lo) / levels;
      s += d * d;
    }
    return s;
  };
  return (squared_norm(w) * sum_delta2(x) + squared_norm(x) * sum_delta2(w)) / 12.0;
}

/// E, Ê and SQNR for X[T][C] and W[O][C] at `bits` (4 or 8) with per-token X and per-output-
/// channel W (scalar quantize_value on Grid<bits, SymmetricFull>). The products are accumulated
/// in double, so E measures quantization only. Cost O(T·O·C).
inline LayerError layer_quant_error(MatrixView<const float> x, MatrixView<const float> w, int bits) {
  SASQ_REQUIRE(x.cols() == w.cols(), "X has ", x.cols(), " channels but W has ", w.cols(), " input channels");
  detail::check_finite(w, "W");
  const std::vector<float> xq = fake_quantize_rows(x, bits);
  const std::vector<float> wq = fake_quantize_rows(w, bits);
  const std::ptrdiff_t c_n = x.cols();
  double err = 0.0, sig = 0.0;
  for (std::ptrdiff_t t = 0; t < x.rows(); ++t) {
    const float* xr = x.row_ptr(t);
    const float* xqr = xq.data() + t * c_n;
    for (std::ptrdiff_t o = 0; o < w.rows(); ++o) {
      const float* wr = w.row_ptr(o);
      const float* wqr = wq.data() + o * c_n;
      double y = 0.0, yq = 0.0;
      for (std::ptrdiff_t c = 0; c < c_n; ++c) {
        y += static_cast<double>(xr[c]) * wr[c];
        yq += static_cast<double>(xqr[c]) * wqr[c];
      }
      err += (y - yq) * (y - yq);
      sig += y * y;
    }
  }
  return {err, layer_quant_error_estimate(x, w, bits), sqnr_db(sig, err)};
}

}  // namespace sasq
