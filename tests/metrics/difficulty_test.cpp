#include <doctest/doctest.h>

#include <cmath>
#include <limits>
#include <vector>

#include "sasq/core/matrix_view.hpp"
#include "sasq/core/status.hpp"
#include "sasq/metrics/difficulty.hpp"

using sasq::MatrixView;

TEST_CASE("channel magnitudes are column L2 norms over rows") {
  const std::vector<float> x = {3.0f, 0.0f, 1.0f,  //
                                4.0f, 2.0f, -1.0f};
  const auto m = sasq::channel_magnitudes(MatrixView<const float>(x.data(), 2, 3));
  CHECK(m[0] == doctest::Approx(5.0));
  CHECK(m[1] == doctest::Approx(2.0));
  CHECK(m[2] == doctest::Approx(std::sqrt(2.0)));
  // QD = unbiased std of {5, 2, sqrt 2}.
  const double mean = (5.0 + 2.0 + std::sqrt(2.0)) / 3.0;
  const double var = ((5 - mean) * (5 - mean) + (2 - mean) * (2 - mean) +
                      (std::sqrt(2.0) - mean) * (std::sqrt(2.0) - mean)) / 2.0;
  CHECK(sasq::quant_difficulty(MatrixView<const float>(x.data(), 2, 3)) == doctest::Approx(std::sqrt(var)));
  // A strided view reads only its block.
  const auto b = sasq::channel_magnitudes(MatrixView<const float>(x.data() + 1, 2, 2, 3));
  CHECK(b[0] == doctest::Approx(2.0));
}

TEST_CASE("unbiased std, kurtosis and max/median ratio") {
  const std::vector<float> v = {1.0f, 2.0f, 3.0f, 4.0f};
  CHECK(sasq::unbiased_std(v) == doctest::Approx(std::sqrt(5.0 / 3.0)));
  // Two-point symmetric distribution: kurtosis 1; one spike among zeros: n - 2 + 1/(n-1).
  CHECK(sasq::kurtosis(std::vector<float>{-1.0f, 1.0f, -1.0f, 1.0f}) == doctest::Approx(1.0));
  std::vector<float> spike(100, 0.0f);
  spike[7] = 5.0f;
  CHECK(sasq::kurtosis(spike) == doctest::Approx(98.0 + 1.0 / 99.0));
  CHECK(sasq::kurtosis(std::vector<float>{2.0f, 2.0f}) == 0.0);
  CHECK(sasq::max_median_ratio(std::vector<float>{1.0f, 8.0f, 2.0f}) == doctest::Approx(4.0));
  CHECK(sasq::max_median_ratio(v) == doctest::Approx(4.0 / 2.5));
}

TEST_CASE("difficulty metrics reject bad input") {
  CHECK_THROWS_AS(sasq::unbiased_std(std::vector<float>{1.0f}), sasq::Error);
  CHECK_THROWS_AS(sasq::max_median_ratio(std::vector<float>{0.0f, 0.0f, 1.0f}), sasq::Error);
  const std::vector<float> x = {1.0f, std::numeric_limits<float>::quiet_NaN()};
  CHECK_THROWS_WITH_AS(sasq::channel_magnitudes(MatrixView<const float>(x.data(), 1, 2)),
                       doctest::Contains("(0, 1)"), sasq::Error);
  CHECK_THROWS_AS(sasq::channel_magnitudes(MatrixView<const float>(x.data(), 0, 2)), sasq::Error);
}
