#include <doctest/doctest.h>

#include <cmath>
#include <limits>
#include <vector>

#include "sasq/core/matrix_view.hpp"
#include "sasq/core/status.hpp"
#include "sasq/transform/smoothing.hpp"

using sasq::MatrixView;

TEST_CASE("smooth_scales: alpha limits, shared-input max and epsilon clamps") {
  const std::vector<float> act = {4.0f, 0.25f, 9.0f, 0.0f};
  std::vector<float> w1 = {1.0f, -2.0f, 0.5f, 0.0f,  //
                           -0.5f, 1.0f, 0.25f, 0.0f};
  std::vector<float> w2 = {3.0f, 0.5f, -1.0f, 0.0f};
  const MatrixView<const float> a(w1.data(), 2, 4), b(w2.data(), 1, 4);
  const auto s1 = sasq::smooth_scales(act, {a}, 1.0f);
  for (std::size_t j = 0; j < 3; ++j) CHECK(s1[j] == doctest::Approx(act[j]));
  CHECK(s1[3] == sasq::kSmoothEpsilon);  // zero activation -> clamped factor
  const auto s0 = sasq::smooth_scales(act, {a}, 0.0f);
  CHECK(s0[0] == doctest::Approx(1.0f));
  CHECK(s0[1] == doctest::Approx(0.5f));
  CHECK(s0[2] == doctest::Approx(2.0f));
  CHECK(s0[3] == doctest::Approx(1.0f / sasq::kSmoothEpsilon));  // zero weight column -> epsilon
  const auto sh = sasq::smooth_scales(act, {a, b}, 0.5f);          // max over both weights
  CHECK(sh[0] == doctest::Approx(std::sqrt(4.0) / std::sqrt(3.0)));
  CHECK(sh[1] == doctest::Approx(std::sqrt(0.25) / std::sqrt(2.0)));
  CHECK(sh[2] == doctest::Approx(std::sqrt(9.0) / std::sqrt(1.0)));
}

TEST_CASE("smoothing is function preserving: (X diag(s)^-1)(W diag(s))ᵀ = X Wᵀ") {
  std::vector<float> x = {1.0f, 40.0f, -0.5f, 2.0f, -35.0f, 0.25f};
  std::vector<float> w = {0.1f, 0.01f, 0.3f, -0.2f, 0.02f, 0.5f, 0.3f, -0.01f, -0.4f};
  MatrixView<float> xv(x.data(), 2, 3), wv(w.data(), 3, 3);
  std::vector<double> y(6);
  for (int t = 0; t < 2; ++t)
    for (int o = 0; o < 3; ++o)
      for (int c = 0; c < 3; ++c) y[static_cast<std::size_t>(t * 3 + o)] += double{xv(t, c)} * wv(o, c);
  const auto s = sasq::smooth_scales(sasq::column_absmax(xv), {wv}, 0.5f);
  sasq::divide_columns(xv, s);
  sasq::scale_columns(wv, s);
  const auto xs = sasq::column_absmax(xv);
  CHECK(xs[1] < 10.0f);  // the outlier channel shrank
  for (int t = 0; t < 2; ++t)
    for (int o = 0; o < 3; ++o) {
      double acc = 0.0;
      for (int c = 0; c < 3; ++c) acc += double{xv(t, c)} * wv(o, c);
      CHECK(acc == doctest::Approx(y[static_cast<std::size_t>(t * 3 + o)]).epsilon(1e-6));
    }
}

TEST_CASE("folds into a norm weight and into producing rows") {
  std::vector<float> g = {2.0f, 3.0f};
  const std::vector<float> s = {4.0f, 0.5f};
  sasq::fold_into_norm(g, s);
  CHECK(g[0] == 0.5f);
  CHECK(g[1] == 6.0f);
  std::vector<float> up = {4.0f, 8.0f, 1.0f, -1.0f};
  sasq::fold_into_rows(MatrixView<float>(up.data(), 2, 2), s);
  CHECK(up == std::vector<float>{1.0f, 2.0f, 2.0f, -2.0f});
}

TEST_CASE("bad smoothing inputs throw sasq::Error naming the problem") {
  std::vector<float> w = {1.0f, 2.0f};
  const MatrixView<const float> wv(w.data(), 1, 2);
  const std::vector<float> nan_act = {1.0f, std::numeric_limits<float>::quiet_NaN()};
  CHECK_THROWS_WITH_AS(sasq::smooth_scales(nan_act, {wv}, 0.5f), doctest::Contains("channel 1"), sasq::Error);
  const std::vector<float> act = {1.0f, 1.0f};
  CHECK_THROWS_WITH_AS(sasq::smooth_scales(act, {wv}, 1.5f), doctest::Contains("alpha"), sasq::Error);
  const std::vector<float> act3 = {1.0f, 1.0f, 1.0f};
  CHECK_THROWS_WITH_AS(sasq::smooth_scales(act3, {wv}, 0.5f), doctest::Contains("columns"), sasq::Error);
  std::vector<float> g = {1.0f, 1.0f};
  const std::vector<float> bad_s = {1.0f, 0.0f};
  CHECK_THROWS_WITH_AS(sasq::fold_into_norm(g, bad_s), doctest::Contains("positive"), sasq::Error);
  std::vector<float> winf = {1.0f, std::numeric_limits<float>::infinity()};
  CHECK_THROWS_AS(sasq::column_absmax(MatrixView<const float>(winf.data(), 1, 2)), sasq::Error);
}
