// Seeded random orthogonal matrices and ±1 sign vectors, reproducible on every platform:
//   Q = Householder-QR(G).Q · diag(sign(diag R)),  G[i][j] ~ N(0, 1) (Haar-distributed Q; Mezzadri 2007).
#pragma once

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <random>
#include <vector>

#include "sasq/core/status.hpp"

namespace sasq {

/// Deterministic generator: std::mt19937_64 (fully specified by the standard) with our own
/// uniform and Box–Muller mappings, so a seed gives the same numbers with every standard library.
class SeededRandom {
 public:
  explicit SeededRandom(std::uint64_t seed) : engine_(seed) {}
  /// Uniform in [0, 1) with 53 random bits.
  double uniform() { return static_cast<double>(engine_() >> 11) * (1.0 / 9007199254740992.0); }
  /// Standard normal (Box–Muller, one value per call).
  double normal() {
    const double u1 = 1.0 - uniform();  // (0, 1]
    const double u2 = uniform();
    return std::sqrt(-2.0 * std::log(u1)) * std::cos(6.283185307179586 * u2);
  }
  /// +1 or −1 with probability 1/2 each (top bit).
  int sign() { return (engine_() >> 63) ? -1 : 1; }

 private:
  std::mt19937_64 engine_;
};

/// n random signs ±1 from `seed` (the diagonal D of a randomized Hadamard D·H / √n).
inline std::vector<float> random_signs(std::size_t n, std::uint64_t seed) {
  SeededRandom rng(seed);
  std::vector<float> d(n);
  for (float& v : d) v = static_cast<float>(rng.sign());
  return d;
}

/// Seeded random orthogonal matrix of order n (row-major n × n, Q Qᵀ = I to float rounding):
/// Householder QR of a Gaussian matrix in double, with the sign fix Q <- Q diag(sign(R_ii)) that
/// makes the distribution Haar. O(n³): meant for the small factors that have no Hadamard
/// construction (e.g. 172), not for n in the thousands.
inline std::vector<float> random_orthogonal(std::size_t n, std::uint64_t seed) {
  SASQ_REQUIRE(n > 0, "order must be positive");
  SeededRandom rng(seed);
  std::vector<double> a(n * n);  // column j of G is a[j * n + i] (column-major for the reflectors)
  for (double& v : a) v = rng.normal();
  std::vector<double> vs(n * n, 0.0);  // Householder vectors, v_k in vs[k * n + k .. n)
  std::vector<double> rdiag(n);
  for (std::size_t k = 0; k < n; ++k) {
    double* col = &a[k * n];
    double norm = 0.0;
    for (std::size_t i = k; i < n; ++i) norm += col[i] * col[i];
    norm = std::sqrt(norm);
    const double alpha = col[k] >= 0.0 ? -norm : norm;  // R_kk = alpha
    rdiag[k] = alpha;
    double* v = &vs[k * n];
    for (std::size_t i = k; i < n; ++i) v[i] = col[i];
    v[k] -= alpha;
    double vnorm2 = 0.0;
    for (std::size_t i = k; i < n; ++i) vnorm2 += v[i] * v[i];
    if (vnorm2 == 0.0) continue;  // column already reduced: reflector is the identity
    for (std::size_t j = k; j < n; ++j) {  // apply (I − 2 v vᵀ / vᵀv) to the remaining columns
      double* cj = &a[j * n];
      double dot = 0.0;
      for (std::size_t i = k; i < n; ++i) dot += v[i] * cj[i];
      const double f = 2.0 * dot / vnorm2;
      for (std::size_t i = k; i < n; ++i) cj[i] -= f * v[i];
    }
  }
  // Q = P_0 P_1 ... P_{n-1}; accumulate by applying reflectors in reverse to the identity.
  std::vector<double> q(n * n, 0.0);  // column-major
  for (std::size_t i = 0; i < n; ++i) q[i * n + i] = 1.0;
  for (std::size_t kk = n; kk-- > 0;) {
    const double* v = &vs[kk * n];
    double vnorm2 = 0.0;
    for (std::size_t i = kk; i < n; ++i) vnorm2 += v[i] * v[i];
    if (vnorm2 == 0.0) continue;
    for (std::size_t j = 0; j < n; ++j) {
      double* cj = &q[j * n];
      double dot = 0.0;
      for (std::size_t i = kk; i < n; ++i) dot += v[i] * cj[i];
      const double f = 2.0 * dot / vnorm2;
      for (std::size_t i = kk; i < n; ++i) cj[i] -= f * v[i];
    }
  }
  std::vector<float> out(n * n);
  for (std::size_t i = 0; i < n; ++i) {
    for (std::size_t j = 0; j < n; ++j) {
      const double sign = rdiag[j] < 0.0 ? -1.0 : 1.0;
      out[i * n + j] = static_cast<float>(q[j * n + i] * sign);
    }
  }
  return out;
}

}  // namespace sasq
