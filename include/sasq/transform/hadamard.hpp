// Hadamard matrices (Sylvester, Paley I, Paley II, Kronecker products) and the normalized fast
// Walsh–Hadamard transform:  H Hᵀ = n I,   fwht(x) = x H_n / √n  for n = 2^k (H_n Sylvester).
#pragma once

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <vector>

#include "sasq/core/span.hpp"
#include "sasq/core/status.hpp"

namespace sasq {

/// True for n = 2^k, k >= 0.
constexpr bool is_power_of_two(std::size_t n) { return n != 0 && (n & (n - 1)) == 0; }

/// Trial-division primality test (orders here are small).
constexpr bool is_prime(std::size_t q) {
  if (q < 2) return false;
  for (std::size_t d = 2; d * d <= q; ++d) {
    if (q % d == 0) return false;
  }
  return true;
}

/// Which construction builds the order-m factor of a Hadamard matrix of order n = m · 2^k.
enum class HadamardConstruction {
  kSylvester,  ///< m = 1: H_{2^k} = H_2 ⊗ ... ⊗ H_2, H_2 = [[1, 1], [1, -1]] (Sylvester 1867)
  kPaley1,     ///< m = q + 1, q ≡ 3 (mod 4) prime (Paley 1933, construction I)
  kPaley2,     ///< m = 2(q + 1), q ≡ 1 (mod 4) prime (Paley 1933, construction II)
  kNone,       ///< no construction implemented for this order
};

/// Largest order of the non-Sylvester factor that hadamard_factors accepts: the factor is applied
/// as a dense m × m product, so larger m would make the transform O(n m) instead of O(n log n)
/// (e.g. 11008 = 2 · 5504 with 5503 ≡ 3 mod 4 prime is deliberately not used).
inline constexpr std::size_t kMaxHadamardFactor = 256;

/// Factorization n = m · 2^k chosen for a Hadamard matrix of order n: the largest 2^k such that
/// the remaining factor m <= max_factor has a construction (m = 1, Paley I or Paley II).
/// construction == kNone when no such split exists (e.g. n = 172 = 4 · 43: a Hadamard matrix of
/// that order exists, by Williamson's method, but is not built here; likewise 11008 = 172 · 64).
struct HadamardFactors {
  HadamardConstruction construction = HadamardConstruction::kNone;
  std::size_t m = 0;      ///< order of the non-Sylvester factor (1 for pure Sylvester)
  std::size_t pow2 = 0;   ///< 2^k
};

/// Finds the split n = m · 2^k (largest 2^k) with a constructible order-m factor, m <= max_factor.
inline HadamardFactors hadamard_factors(std::size_t n, std::size_t max_factor = kMaxHadamardFactor) {
  if (n == 0) return {};
  std::size_t p = 1;
  while (n % (2 * p) == 0) p *= 2;
  for (; p >= 1; p /= 2) {
    const std::size_t m = n / p;
    if (m > max_factor) break;
    if (m == 1) return {HadamardConstruction::kSylvester, 1, p};
    if (m % 4 == 0 && is_prime(m - 1) && (m - 1) % 4 == 3) return {HadamardConstruction::kPaley1, m, p};
    if (m % 4 == 0 && is_prime(m / 2 - 1) && (m / 2 - 1) % 4 == 1) {
      return {HadamardConstruction::kPaley2, m, p};
    }
  }
  return {};
}

/// True when hadamard_matrix(n) can build a Hadamard matrix of order n.
inline bool has_hadamard_construction(std::size_t n) {
  return hadamard_factors(n).construction != HadamardConstruction::kNone;
}

namespace detail {

/// Quadratic character χ(a) mod prime q: 0 for a ≡ 0, +1 for a nonzero square, −1 otherwise.
inline int legendre(std::size_t a, std::size_t q) {
  a %= q;
  if (a == 0) return 0;
  std::size_t r = 1, base = a, e = (q - 1) / 2;  // Euler's criterion a^((q-1)/2) mod q
  while (e) {
    if (e & 1) r = r * base % q;
    base = base * base % q;
    e >>= 1;
  }
  return r == 1 ? 1 : -1;
}

/// Jacobsthal matrix Q[i][j] = χ(j − i) of order q, row-major.
inline std::vector<int> jacobsthal(std::size_t q) {
  std::vector<int> jq(q * q);
  for (std::size_t i = 0; i < q; ++i) {
    for (std::size_t j = 0; j < q; ++j) jq[i * q + j] = legendre(j + q - i, q);
  }
  return jq;
}

/// Conference-type core C of order q + 1: C[0][0] = 0, C[0][j] = 1, C[i][0] = sign, C[i][j] = Q.
inline std::vector<int> paley_core(std::size_t q, int first_column_sign) {
  const std::size_t m = q + 1;
  const std::vector<int> jq = jacobsthal(q);
  std::vector<int> c(m * m, 0);
  for (std::size_t j = 1; j < m; ++j) {
    c[j] = 1;
    c[j * m] = first_column_sign;
  }
  for (std::size_t i = 0; i < q; ++i) {
    for (std::size_t j = 0; j < q; ++j) c[(i + 1) * m + j + 1] = jq[i * q + j];
  }
  return c;
}

}  // namespace detail

/// Sylvester Hadamard matrix of order n = 2^k, entries ±1, row-major: H[i][j] = (−1)^popcount(i & j).
inline std::vector<std::int8_t> sylvester_hadamard(std::size_t n) {
  SASQ_REQUIRE(is_power_of_two(n), "Sylvester order ", n, " is not a power of two");
  std::vector<std::int8_t> h(n * n);
  for (std::size_t i = 0; i < n; ++i) {
    for (std::size_t j = 0; j < n; ++j) {
      std::size_t b = i & j, parity = 0;
      while (b) {
        parity ^= 1;
        b &= b - 1;
      }
      h[i * n + j] = parity ? -1 : 1;
    }
  }
  return h;
}

/// Paley construction I: order q + 1 for a prime q ≡ 3 (mod 4). With the skew core
/// S = [[0, 1ᵀ], [−1, Q]] (Q the Jacobsthal matrix, skew-symmetric for this q), H = I + S.
inline std::vector<std::int8_t> paley1_hadamard(std::size_t q) {
  SASQ_REQUIRE(is_prime(q) && q % 4 == 3, "Paley I needs a prime q = 3 (mod 4), got ", q);
  const std::size_t m = q + 1;
  const std::vector<int> s = detail::paley_core(q, -1);
  std::vector<std::int8_t> h(m * m);
  for (std::size_t i = 0; i < m; ++i) {
    for (std::size_t j = 0; j < m; ++j) h[i * m + j] = static_cast<std::int8_t>(s[i * m + j] + (i == j));
  }
  return h;
}

/// Paley construction II: order 2(q + 1) for a prime q ≡ 1 (mod 4). With the symmetric conference
/// matrix C = [[0, 1ᵀ], [1, Q]], every C entry c expands to a 2 × 2 block:
/// 0 -> [[1, −1], [−1, −1]], ±1 -> ±[[1, 1], [1, −1]].
inline std::vector<std::int8_t> paley2_hadamard(std::size_t q) {
  SASQ_REQUIRE(is_prime(q) && q % 4 == 1, "Paley II needs a prime q = 1 (mod 4), got ", q);
  const std::size_t c_order = q + 1, m = 2 * c_order;
  const std::vector<int> c = detail::paley_core(q, 1);
  static constexpr int kZero[2][2] = {{1, -1}, {-1, -1}};
  static constexpr int kOne[2][2] = {{1, 1}, {1, -1}};
  std::vector<std::int8_t> h(m * m);
  for (std::size_t i = 0; i < c_order; ++i) {
    for (std::size_t j = 0; j < c_order; ++j) {
      const int v = c[i * c_order + j];
      for (int a = 0; a < 2; ++a) {
        for (int b = 0; b < 2; ++b) {
          h[(2 * i + a) * m + 2 * j + b] = static_cast<std::int8_t>(v == 0 ? kZero[a][b] : v * kOne[a][b]);
        }
      }
    }
  }
  return h;
}

/// Kronecker product A ⊗ B of two ±1 matrices of orders na and nb: (A ⊗ B)[i·nb + k][j·nb + l] = A[i][j] B[k][l].
inline std::vector<std::int8_t> kronecker(const std::vector<std::int8_t>& a, std::size_t na,
                                          const std::vector<std::int8_t>& b, std::size_t nb) {
  SASQ_REQUIRE(a.size() == na * na && b.size() == nb * nb, "matrix sizes ", a.size(), " and ", b.size(),
               " do not match orders ", na, " and ", nb);
  const std::size_t n = na * nb;
  std::vector<std::int8_t> out(n * n);
  for (std::size_t i = 0; i < na; ++i) {
    for (std::size_t j = 0; j < na; ++j) {
      for (std::size_t k = 0; k < nb; ++k) {
        for (std::size_t l = 0; l < nb; ++l) {
          out[(i * nb + k) * n + j * nb + l] = static_cast<std::int8_t>(a[i * na + j] * b[k * nb + l]);
        }
      }
    }
  }
  return out;
}

/// The order-m factor of hadamard_factors(n) (±1 entries, row-major, m × m).
inline std::vector<std::int8_t> hadamard_factor_matrix(const HadamardFactors& f) {
  switch (f.construction) {
    case HadamardConstruction::kSylvester: return {1};
    case HadamardConstruction::kPaley1: return paley1_hadamard(f.m - 1);
    case HadamardConstruction::kPaley2: return paley2_hadamard(f.m / 2 - 1);
    case HadamardConstruction::kNone: break;
  }
  fail(ErrorCode::kUnsupported, "hadamard_factor_matrix: no construction for this factorization");
}

/// Unnormalized Hadamard matrix of order n (entries ±1, H Hᵀ = n I), built as
/// H_m ⊗ H_{2^k} with the split of hadamard_factors(n). Throws kUnsupported when none exists.
/// Dense n × n: meant for tests and small orders.
inline std::vector<std::int8_t> hadamard_matrix(std::size_t n) {
  const HadamardFactors f = hadamard_factors(n);
  if (f.construction == HadamardConstruction::kNone) {
    fail(ErrorCode::kUnsupported, "hadamard_matrix: no construction for order ", n,
         " (supported: m * 2^k with m = 1, q + 1 for prime q = 3 mod 4, 2(q + 1) for prime q = 1 mod 4)");
  }
  return kronecker(hadamard_factor_matrix(f), f.m, sylvester_hadamard(f.pow2), f.pow2);
}

/// In-place normalized fast Walsh–Hadamard transform, O(n log n): x <- x H_n / √n with H_n the
/// Sylvester matrix (symmetric, so also H_n x / √n). n = x.size() must be a power of two.
inline void fwht(Span<float> x) {
  const std::size_t n = x.size();
  SASQ_REQUIRE(is_power_of_two(n), "length ", n, " is not a power of two");
  for (std::size_t h = 1; h < n; h *= 2) {
    for (std::size_t i = 0; i < n; i += 2 * h) {
      for (std::size_t j = i; j < i + h; ++j) {
        const float a = x[j], b = x[j + h];
        x[j] = a + b;
        x[j + h] = a - b;
      }
    }
  }
  const float norm = static_cast<float>(1.0 / std::sqrt(static_cast<double>(n)));
  for (float& v : x) v *= norm;
}

}  // namespace sasq
