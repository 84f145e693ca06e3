// Orthogonal rotations Q of order n = m · 2^k applied to row vectors (x <- x Q):
//   Q = D · (B ⊗ H_{2^k} / √(2^k)),   D = diag(±1) or I,   B (m × m) = H_m / √m or seeded random orthogonal.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <vector>

#include "sasq/core/matrix_view.hpp"
#include "sasq/core/span.hpp"
#include "sasq/core/status.hpp"
#include "sasq/transform/hadamard.hpp"
#include "sasq/transform/orthogonal.hpp"

namespace sasq {

/// An orthogonal n × n matrix Q stored in factored form and applied to row vectors in
/// O(n log 2^k + n m) per vector: an optional ±1 diagonal D, then a normalized FWHT on each of the
/// m contiguous blocks of 2^k elements, then the dense orthonormal m × m factor B across blocks
/// (y[a·2^k + b] = Σ_i B[i][a] z[i·2^k + b]), i.e. Q = D (B ⊗ H_{2^k} / √(2^k)).
/// Conventions used across sasq/transform: activations x (row vectors) become x Q; a linear layer
/// reading x (W[out][in]) becomes W Q; a linear layer writing x becomes Qᵀ W.
class Rotation {
 public:
  /// Exact normalized Hadamard H_n / √n (kUnsupported when hadamard_factors(n) finds no split).
  static Rotation hadamard(std::size_t n) {
    const HadamardFactors f = hadamard_factors(n);
    if (f.construction == HadamardConstruction::kNone) {
      fail(ErrorCode::kUnsupported, "Rotation::hadamard: no Hadamard construction for order ", n,
           "; use Rotation::hadamard_or_orthogonal");
    }
    Rotation r(n, f.m);
    const std::vector<std::int8_t> hm = hadamard_factor_matrix(f);
    const float norm = static_cast<float>(1.0 / std::sqrt(static_cast<double>(f.m)));
    for (std::size_t i = 0; i < hm.size(); ++i) r.base_[i] = static_cast<float>(hm[i]) * norm;
    return r;
  }

  /// Randomized Hadamard D · H_n / √n with seeded random signs D (QuaRot's R1).
  static Rotation randomized_hadamard(std::size_t n, std::uint64_t seed) {
    Rotation r = hadamard(n);
    r.signs_ = random_signs(n, seed);
    return r;
  }

  /// Seeded random orthogonal matrix of order n, stored dense (m = n, k = 0). O(n³) to build.
  static Rotation random_orthogonal(std::size_t n, std::uint64_t seed) {
    Rotation r(n, n);
    r.base_ = sasq::random_orthogonal(n, seed);
    return r;
  }

  /// Best available rotation of order n = m · 2^k (largest 2^k dividing n): the exact Hadamard
  /// when one is constructible, otherwise B ⊗ H_{2^k} / √(2^k) with B a seeded random orthogonal
  /// matrix of order m (the documented fallback; e.g. 172 -> B of order 43 ⊗ H_4, 11008 -> B_43 ⊗ H_256).
  /// With randomize, a seeded ±1 diagonal is applied first in both cases.
  static Rotation hadamard_or_orthogonal(std::size_t n, std::uint64_t seed, bool randomize = false) {
    SASQ_REQUIRE(n > 0, "order must be positive");
    Rotation r = has_hadamard_construction(n) ? hadamard(n) : [&] {
      std::size_t p = 1;
      while (n % (2 * p) == 0) p *= 2;
      Rotation o(n, n / p);
      o.base_ = sasq::random_orthogonal(n / p, seed);
      return o;
    }();
    if (randomize) r.signs_ = random_signs(n, seed ^ 0x9E3779B97F4A7C15ull);
    return r;
  }

  /// Order n.
  std::size_t size() const { return n_; }
  /// Order m of the dense factor B (1 for a pure Sylvester Hadamard).
  std::size_t dense_order() const { return m_; }
  /// True when a ±1 diagonal D is part of Q.
  bool randomized() const { return !signs_.empty(); }

  /// x <- x Q for one row vector of length n.
  void apply(Span<float> x) const {
    check_length(x.size());
    std::vector<float> tmp(m_ > 1 ? n_ : 0);
    apply_impl(x.data(), tmp.data());
  }

  /// x <- x Qᵀ (= x Q⁻¹) for one row vector of length n.
  void apply_transpose(Span<float> x) const {
    check_length(x.size());
    std::vector<float> tmp(m_ > 1 ? n_ : 0);
    apply_transpose_impl(x.data(), tmp.data());
  }

  /// X <- X Q for every row of X (rows × n): activations, or W <- W Q for a linear reading x.
  /// Bit-identical to apply() on each row: the dense factor B is applied to blocks of rows at once
  /// (mix_rows), with every output's double sum taken in the same order as mix().
  void apply_rows(MatrixView<float> x) const {
    check_length(static_cast<std::size_t>(x.cols()));
    if (m_ == 1) {
      for (std::ptrdiff_t r = 0; r < x.rows(); ++r) apply_impl(x.row_ptr(r), nullptr);
      return;
    }
    const std::size_t p = n_ / m_;
    std::vector<double> xd(m_ * kMixRows * p), acc(kMixRows * p);
    for (std::ptrdiff_t r0 = 0; r0 < x.rows(); r0 += kMixRows) {
      const std::ptrdiff_t rows = std::min<std::ptrdiff_t>(kMixRows, x.rows() - r0);
      for (std::ptrdiff_t r = r0; r < r0 + rows; ++r) {
        float* row = x.row_ptr(r);
        if (!signs_.empty()) {
          for (std::size_t i = 0; i < n_; ++i) row[i] *= signs_[i];
        }
        if (p > 1) {
          for (std::size_t i = 0; i < m_; ++i) fwht(Span<float>(row + i * p, p));
        }
      }
      mix_rows(x, r0, rows, xd.data(), acc.data());
    }
  }

  /// W <- Qᵀ W for W of shape n × cols (every column c: w_c <- Qᵀ w_c), for a linear writing x.
  void apply_transpose_left(MatrixView<float> w) const {
    check_length(static_cast<std::size_t>(w.rows()));
    std::vector<float> col(n_), tmp(m_ > 1 ? n_ : 0);
    for (std::ptrdiff_t c = 0; c < w.cols(); ++c) {
      for (std::size_t i = 0; i < n_; ++i) col[i] = w(static_cast<std::ptrdiff_t>(i), c);
      apply_impl(col.data(), tmp.data());  // (Qᵀ w)ᵀ = wᵀ Q
      for (std::size_t i = 0; i < n_; ++i) w(static_cast<std::ptrdiff_t>(i), c) = col[i];
    }
  }

  /// The dense n × n matrix Q, row-major (row r = e_r Q). For tests and small orders.
  std::vector<float> dense() const {
    std::vector<float> q(n_ * n_, 0.0f);
    for (std::size_t r = 0; r < n_; ++r) q[r * n_ + r] = 1.0f;
    apply_rows(MatrixView<float>(q.data(), static_cast<std::ptrdiff_t>(n_), static_cast<std::ptrdiff_t>(n_)));
    return q;
  }

 private:
  Rotation(std::size_t n, std::size_t m) : n_(n), m_(m), base_(m * m, 0.0f) {}

  void check_length(std::size_t len) const {
    SASQ_REQUIRE(len == n_, "length ", len, " does not match the rotation order ", n_);
  }

  void apply_impl(float* x, float* tmp) const {
    const std::size_t p = n_ / m_;
    if (!signs_.empty()) {
      for (std::size_t i = 0; i < n_; ++i) x[i] *= signs_[i];
    }
    if (p > 1) {
      for (std::size_t i = 0; i < m_; ++i) fwht(Span<float>(x + i * p, p));
    }
    if (m_ > 1) mix(x, tmp, /*transpose=*/false);
  }

  void apply_transpose_impl(float* x, float* tmp) const {
    const std::size_t p = n_ / m_;
    if (m_ > 1) mix(x, tmp, /*transpose=*/true);
    if (p > 1) {
      for (std::size_t i = 0; i < m_; ++i) fwht(Span<float>(x + i * p, p));
    }
    if (!signs_.empty()) {
      for (std::size_t i = 0; i < n_; ++i) x[i] *= signs_[i];
    }
  }

  /// y[a·p + b] = Σ_i B[i][a] x[i·p + b] (or B[a][i] for the transpose); accumulates in double.
  void mix(float* x, float* tmp, bool transpose) const {
    const std::size_t p = n_ / m_;
    for (std::size_t a = 0; a < m_; ++a) {
      for (std::size_t b = 0; b < p; ++b) {
        double acc = 0.0;
        for (std::size_t i = 0; i < m_; ++i) {
          const float coef = transpose ? base_[a * m_ + i] : base_[i * m_ + a];
          acc += static_cast<double>(coef) * x[i * p + b];
        }
        tmp[a * p + b] = static_cast<float>(acc);
      }
    }
    for (std::size_t i = 0; i < n_; ++i) x[i] = tmp[i];
  }

  /// Rows per block of mix_rows.
  static constexpr std::ptrdiff_t kMixRows = 16;

  /// mix() on rows r0 .. r0+rows-1 of x at once: xd[i][r·p + b] = x[r][i·p + b] in double, then
  /// y[r][a·p + b] = Σ_i B[i][a] xd[i][r·p + b] summed over i in order from 0.0 (as mix(); each
  /// product of two floats is exact in double, so a fused multiply-add gives the same sums).
  void mix_rows(MatrixView<float> x, std::ptrdiff_t r0, std::ptrdiff_t rows, double* xd, double* acc) const {
    const std::size_t p = n_ / m_, width = static_cast<std::size_t>(rows) * p;
    for (std::ptrdiff_t r = 0; r < rows; ++r) {
      const float* row = x.row_ptr(r0 + r);
      for (std::size_t i = 0; i < m_; ++i)
        for (std::size_t b = 0; b < p; ++b) xd[i * width + static_cast<std::size_t>(r) * p + b] = row[i * p + b];
    }
    for (std::size_t a = 0; a < m_; ++a) {
      for (std::size_t j = 0; j < width; ++j) acc[j] = 0.0;
      for (std::size_t i = 0; i < m_; ++i) {
        const double coef = base_[i * m_ + a];
        const double* xi = xd + i * width;
        for (std::size_t j = 0; j < width; ++j) acc[j] += coef * xi[j];
      }
      for (std::ptrdiff_t r = 0; r < rows; ++r) {
        float* row = x.row_ptr(r0 + r);
        for (std::size_t b = 0; b < p; ++b) row[a * p + b] = static_cast<float>(acc[static_cast<std::size_t>(r) * p + b]);
      }
    }
  }

  std::size_t n_ = 0;
  std::size_t m_ = 1;
  std::vector<float> base_;   // B, m × m row-major, orthonormal
  std::vector<float> signs_;  // D, empty for none
};

/// X <- X Q for every row of X (the runtime "online" rotation, e.g. of down_proj inputs).
inline void apply_rotation(const Rotation& q, MatrixView<float> x) { q.apply_rows(x); }

/// Linear layer reading the rotated stream (W[out][in], in = n): W <- W Q.
inline void rotate_linear_input(MatrixView<float> w, const Rotation& q) { q.apply_rows(w); }

/// Linear layer writing the rotated stream (W[out][in], out = n): W <- Qᵀ W.
inline void rotate_linear_output(MatrixView<float> w, const Rotation& q) { q.apply_transpose_left(w); }

}  // namespace sasq
