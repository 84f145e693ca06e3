#include <doctest/doctest.h>

#include <cmath>
#include <cstddef>
#include <cstring>
#include <random>
#include <vector>

#include "sasq/core/matrix_view.hpp"
#include "sasq/core/status.hpp"
#include "sasq/transform/orthogonal.hpp"
#include "sasq/transform/rotation.hpp"

namespace {

double max_orthogonality_defect(const std::vector<float>& q, std::size_t n) {
  double worst = 0.0;
  for (std::size_t i = 0; i < n; ++i) {
    for (std::size_t j = 0; j < n; ++j) {
      double dot = 0.0;
      for (std::size_t k = 0; k < n; ++k) dot += static_cast<double>(q[i * n + k]) * q[j * n + k];
      worst = std::max(worst, std::fabs(dot - (i == j ? 1.0 : 0.0)));
    }
  }
  return worst;
}

std::vector<float> ramp(std::size_t n) {
  std::vector<float> x(n);
  for (std::size_t i = 0; i < n; ++i) x[i] = std::sin(0.37f * static_cast<float>(i)) + (i % 7 == 0 ? 3.0f : 0.0f);
  return x;
}

}  // namespace

TEST_CASE("random_orthogonal is orthogonal and reproducible from its seed") {
  for (std::size_t n : {1u, 3u, 43u, 172u}) {
    const auto q = sasq::random_orthogonal(n, 7);
    INFO("n = ", n);
    CHECK(max_orthogonality_defect(q, n) < 1e-5);
    CHECK(q == sasq::random_orthogonal(n, 7));
    if (n > 1) CHECK(q != sasq::random_orthogonal(n, 8));
  }
}

TEST_CASE("Rotation: the dense matrix is orthogonal for every kind and model size") {
  for (std::size_t n : {8u, 32u, 64u, 172u, 12u * 16u}) {
    INFO("n = ", n);
    const auto r = sasq::Rotation::hadamard_or_orthogonal(n, 3, /*randomize=*/true);
    CHECK(max_orthogonality_defect(r.dense(), n) < 2e-5);
  }
  const auto h = sasq::Rotation::hadamard(64);
  CHECK(max_orthogonality_defect(h.dense(), 64) < 1e-6);
  const auto rh = sasq::Rotation::randomized_hadamard(24, 5);
  CHECK(rh.randomized());
  CHECK(max_orthogonality_defect(rh.dense(), 24) < 1e-6);
  CHECK(max_orthogonality_defect(sasq::Rotation::random_orthogonal(40, 1).dense(), 40) < 1e-5);
  CHECK_THROWS_AS(sasq::Rotation::hadamard(172), sasq::Error);
  CHECK(sasq::Rotation::hadamard_or_orthogonal(172, 1).dense_order() == 43);
  CHECK(sasq::Rotation::hadamard_or_orthogonal(11008, 1).dense_order() == 43);
}

TEST_CASE("Rotation::hadamard equals hadamard_matrix / sqrt(n), including Kronecker orders") {
  for (std::size_t n : {8u, 12u, 40u, 96u}) {  // 96 = 12 * 8 (Paley I x Sylvester)
    const auto dense = sasq::Rotation::hadamard(n).dense();
    const auto h = sasq::hadamard_matrix(n);
    const float norm = 1.0f / std::sqrt(static_cast<float>(n));
    for (std::size_t i = 0; i < n * n; ++i) CHECK(dense[i] == doctest::Approx(h[i] * norm).epsilon(1e-5));
  }
}

TEST_CASE("apply, apply_transpose and apply_transpose_left agree with the dense matrix") {
  const std::size_t n = 172;  // fallback: 43 x 43 random orthogonal ⊗ H_4
  const auto r = sasq::Rotation::hadamard_or_orthogonal(n, 11, true);
  const auto q = r.dense();
  auto x = ramp(n);
  const auto x0 = x;
  r.apply(sasq::Span<float>(x));
  for (std::size_t j = 0; j < n; ++j) {
    double ref = 0.0;
    for (std::size_t i = 0; i < n; ++i) ref += static_cast<double>(x0[i]) * q[i * n + j];
    CHECK(x[j] == doctest::Approx(ref).epsilon(1e-4).scale(1.0));
  }
  r.apply_transpose(sasq::Span<float>(x));  // back to x0
  for (std::size_t i = 0; i < n; ++i) CHECK(x[i] == doctest::Approx(x0[i]).epsilon(1e-4).scale(1.0));

  // W (n x 3) <- Qᵀ W.
  std::vector<float> w(n * 3);
  for (std::size_t i = 0; i < w.size(); ++i) w[i] = static_cast<float>(i % 13) - 6.0f;
  const auto w0 = w;
  sasq::rotate_linear_output(sasq::MatrixView<float>(w.data(), static_cast<std::ptrdiff_t>(n), 3), r);
  for (std::size_t a = 0; a < n; ++a) {
    for (std::size_t c = 0; c < 3; ++c) {
      double ref = 0.0;
      for (std::size_t i = 0; i < n; ++i) ref += static_cast<double>(q[i * n + a]) * w0[i * 3 + c];
      CHECK(w[a * 3 + c] == doctest::Approx(ref).epsilon(1e-4).scale(1.0));
    }
  }
  std::vector<float> bad(n + 1);
  CHECK_THROWS_AS(r.apply(sasq::Span<float>(bad)), sasq::Error);
}

TEST_CASE("a rotated pair keeps the product: (X Q)(W Q)ᵀ = X Wᵀ") {
  const std::size_t n = 64, t = 5, o = 3;
  const auto r = sasq::Rotation::randomized_hadamard(n, 2);
  std::vector<float> x(t * n), w(o * n);
  for (std::size_t i = 0; i < x.size(); ++i) x[i] = std::cos(0.1f * static_cast<float>(i));
  for (std::size_t i = 0; i < w.size(); ++i) w[i] = std::sin(0.3f * static_cast<float>(i));
  auto xr = x, wr = w;
  sasq::apply_rotation(r, sasq::MatrixView<float>(xr.data(), t, n));
  sasq::rotate_linear_input(sasq::MatrixView<float>(wr.data(), o, n), r);
  for (std::size_t i = 0; i < t; ++i) {
    for (std::size_t j = 0; j < o; ++j) {
      double y = 0.0, yr = 0.0;
      for (std::size_t k = 0; k < n; ++k) {
        y += static_cast<double>(x[i * n + k]) * w[j * n + k];
        yr += static_cast<double>(xr[i * n + k]) * wr[j * n + k];
      }
      CHECK(yr == doctest::Approx(y).epsilon(1e-5).scale(1.0));
    }
  }
}

TEST_CASE("apply_rows (blocked mix) is bit-identical to apply on every row") {
  std::mt19937 rng(7);
  std::uniform_real_distribution<float> u(-4.0f, 4.0f);
  struct Case {
    sasq::Rotation r;
    std::size_t n;
  };
  const std::vector<Case> cases = {{sasq::Rotation::hadamard_or_orthogonal(172, 3, true), 172},
                                   {sasq::Rotation::hadamard_or_orthogonal(172, 5, false), 172},
                                   {sasq::Rotation::random_orthogonal(40, 2), 40},
                                   {sasq::Rotation::hadamard_or_orthogonal(12 * 16, 4, true), 12 * 16},
                                   {sasq::Rotation::randomized_hadamard(64, 9), 64}};
  for (const Case& c : cases) {
    for (const std::ptrdiff_t rows : {1, 15, 16, 17, 37}) {
      std::vector<float> x(static_cast<std::size_t>(rows) * c.n);
      for (float& v : x) v = u(rng);
      x[3] = 1e30f;  // a huge value must not disturb the other rows of its block
      auto ref = x;
      for (std::ptrdiff_t r = 0; r < rows; ++r)
        c.r.apply(sasq::Span<float>(ref.data() + static_cast<std::size_t>(r) * c.n, c.n));
      c.r.apply_rows(sasq::MatrixView<float>(x.data(), rows, static_cast<std::ptrdiff_t>(c.n)));
      std::size_t same = 0;
      for (std::size_t i = 0; i < x.size(); ++i) same += std::memcmp(&x[i], &ref[i], sizeof(float)) == 0;
      CHECK(same == x.size());
    }
  }
}
