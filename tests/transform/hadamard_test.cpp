#include <doctest/doctest.h>

#include <cstddef>
#include <cstdint>
#include <vector>

#include "sasq/core/status.hpp"
#include "sasq/transform/hadamard.hpp"

namespace {

// H Hᵀ == n I exactly, entries ±1.
bool is_hadamard(const std::vector<std::int8_t>& h, std::size_t n) {
  if (h.size() != n * n) return false;
  for (auto v : h) {
    if (v != 1 && v != -1) return false;
  }
  for (std::size_t i = 0; i < n; ++i) {
    for (std::size_t j = 0; j < n; ++j) {
      long dot = 0;
      for (std::size_t k = 0; k < n; ++k) dot += h[i * n + k] * h[j * n + k];
      if (dot != (i == j ? static_cast<long>(n) : 0)) return false;
    }
  }
  return true;
}

}  // namespace

TEST_CASE("hadamard_factors picks the largest power of two with a constructible cofactor") {
  using C = sasq::HadamardConstruction;
  CHECK(sasq::hadamard_factors(64).construction == C::kSylvester);
  CHECK(sasq::hadamard_factors(12).construction == C::kPaley1);
  CHECK(sasq::hadamard_factors(12).m == 12);
  CHECK(sasq::hadamard_factors(28).construction == C::kPaley2);  // 28 = 2 (13 + 1)
  auto f = sasq::hadamard_factors(24 * 64);                      // 12 * 128
  CHECK(f.m == 12);
  CHECK(f.pow2 == 128);
  CHECK(sasq::hadamard_factors(44).construction == C::kPaley1);  // 43 + 1
  CHECK(!sasq::has_hadamard_construction(172));                  // 4 * 43: Williamson, not built here
  CHECK(!sasq::has_hadamard_construction(11008));                // only as 2 * 5504 (5503 prime):
  CHECK(sasq::hadamard_factors(11008, 6000).m == 5504);          // above kMaxHadamardFactor
  CHECK(!sasq::has_hadamard_construction(0));
  CHECK(!sasq::has_hadamard_construction(6));
}

TEST_CASE("H Hᵀ = n I for every supported order up to 256") {
  int checked = 0;
  for (std::size_t n = 1; n <= 256; ++n) {
    if (!sasq::has_hadamard_construction(n)) continue;
    INFO("order ", n);
    CHECK(is_hadamard(sasq::hadamard_matrix(n), n));
    ++checked;
  }
  // 1, 2 and every multiple of 4 up to 256 except 52, 92, 100, 116, 156, 172, 184, 188, 232, 236
  // and 244 (52 and 100 would need Paley II over the prime powers 25 and 49).
  CHECK(checked == 2 + 64 - 11);
  CHECK_THROWS_AS(sasq::hadamard_matrix(172), sasq::Error);
}

TEST_CASE("Paley constructions directly") {
  for (std::size_t q : {3u, 7u, 11u, 19u, 23u, 31u, 43u}) CHECK(is_hadamard(sasq::paley1_hadamard(q), q + 1));
  for (std::size_t q : {5u, 13u, 17u, 29u, 37u}) CHECK(is_hadamard(sasq::paley2_hadamard(q), 2 * (q + 1)));
  CHECK_THROWS_AS(sasq::paley1_hadamard(13), sasq::Error);
  CHECK_THROWS_AS(sasq::paley2_hadamard(15), sasq::Error);
}

TEST_CASE("FWHT equals the dense normalized Sylvester product") {
  for (std::size_t n : {1u, 2u, 8u, 32u, 64u, 256u}) {
    std::vector<float> x(n);
    for (std::size_t i = 0; i < n; ++i) x[i] = static_cast<float>((i * 37 + 11) % 17) - 8.0f + 0.25f * i;
    const auto h = sasq::sylvester_hadamard(n);
    std::vector<double> ref(n, 0.0);
    for (std::size_t j = 0; j < n; ++j) {
      for (std::size_t i = 0; i < n; ++i) ref[j] += x[i] * h[i * n + j];
      ref[j] /= std::sqrt(static_cast<double>(n));
    }
    sasq::fwht(sasq::Span<float>(x));
    for (std::size_t j = 0; j < n; ++j) CHECK(x[j] == doctest::Approx(ref[j]).epsilon(1e-5));
  }
  std::vector<float> bad(12);
  CHECK_THROWS_AS(sasq::fwht(sasq::Span<float>(bad)), sasq::Error);
}
