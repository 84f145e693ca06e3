// Tests of include/sasq/quant/truncation.hpp (kept with the metrics suite: tests/quant is not ours).
#include <doctest/doctest.h>

#include <cmath>
#include <limits>
#include <vector>

#include "sasq/core/matrix_view.hpp"
#include "sasq/core/status.hpp"
#include "sasq/quant/observer_histogram.hpp"
#include "sasq/quant/truncation.hpp"
#include "sasq/transform/orthogonal.hpp"

namespace {
std::vector<float> gaussian_with_outliers(std::size_t n, std::uint64_t seed) {
  sasq::SeededRandom rng(seed);
  std::vector<float> x(n);
  for (float& v : x) v = static_cast<float>(rng.normal());
  x[3] = 60.0f;  // two outliers
  x[n / 2] = -45.0f;
  return x;
}
}  // namespace

TEST_CASE("clip policies: absmax, percentile, MSE and learned thresholds") {
  using G = sasq::GridS4;
  const auto x = gaussian_with_outliers(40000, 1);
  CHECK(sasq::clip_threshold<G>(x, sasq::AbsMaxClip{}) == 60.0f);
  const float p = sasq::clip_threshold<G>(x, sasq::PercentileClip{0.99, 4096});
  CHECK(p > 2.0f);  // the 99th percentile of |N(0,1)| is 2.58
  CHECK(p < 3.2f);
  const float m = sasq::clip_threshold<G>(x, sasq::MseClip{});
  CHECK(m == sasq::mse_optimal_absmax<G>(x, 100, 0.2f));
  CHECK(m < 60.0f);
  CHECK(sasq::clip_threshold<G>(x, sasq::LearnedClip{0.5f}) == 3.5f);  // 0.5 * qmax 7
  CHECK_THROWS_WITH_AS(sasq::clip_threshold<G>(x, sasq::LearnedClip{0.0f}), doctest::Contains("zero"), sasq::Error);
  CHECK_THROWS_AS(sasq::clip_threshold<G>(x, sasq::PercentileClip{1.5, 16}), sasq::Error);
}

TEST_CASE("truncation statistics: fraction clipped, max/threshold, SQNR before and after") {
  using G = sasq::GridS4;
  const auto x = gaussian_with_outliers(40000, 2);
  const float a = sasq::clip_threshold<G>(x, sasq::MseClip{});
  const auto s = sasq::truncation_stats<G>(x, a);
  CHECK(s.count == 40000);
  CHECK(s.fraction_clipped > 0.0);
  CHECK(s.fraction_clipped < 0.05);
  CHECK(s.max_over_threshold == doctest::Approx(60.0 / a));
  CHECK(s.sqnr_after_db > s.sqnr_before_db);  // truncating the two outliers helps 4-bit resolution
  const auto none = sasq::truncation_stats<G>(x, 60.0f);
  CHECK(none.fraction_clipped == 0.0);
  CHECK(none.max_over_threshold == doctest::Approx(1.0));
  CHECK(none.sqnr_after_db == doctest::Approx(none.sqnr_before_db));
  // Exact counts on a small input: |x| > 2 for two of five values.
  const std::vector<float> small = {0.5f, -3.0f, 2.0f, 4.0f, -1.0f};
  const auto t = sasq::truncation_stats<G>(small, 2.0f);
  CHECK(t.fraction_clipped == doctest::Approx(0.4));
  CHECK(t.max_over_threshold == doctest::Approx(2.0));
  CHECK_THROWS_AS(sasq::truncation_stats<G>(small, -1.0f), sasq::Error);
  const std::vector<float> bad = {1.0f, std::numeric_limits<float>::quiet_NaN()};
  CHECK_THROWS_AS(sasq::truncation_stats<G>(bad, 1.0f), sasq::Error);
}

TEST_CASE("per-channel thresholds and statistics (axis 1 = columns, axis 0 = rows)") {
  using G = sasq::GridS8;
  // 3 tokens x 2 channels; channel 1 carries the outlier.
  const std::vector<float> x = {1.0f, 10.0f, -2.0f, 100.0f, 0.5f, -20.0f};
  const sasq::MatrixView<const float> xv(x.data(), 3, 2);
  const auto cols = sasq::clip_thresholds_per_channel<G>(xv, sasq::AbsMaxClip{}, 1);
  CHECK(cols == std::vector<float>{2.0f, 100.0f});
  const auto rows = sasq::clip_thresholds_per_channel<G>(xv, sasq::AbsMaxClip{}, 0);
  CHECK(rows == std::vector<float>{10.0f, 100.0f, 20.0f});
  const std::vector<float> learned_scales = {1.0f / 127.0f, 0.25f};
  const auto learned = sasq::learned_thresholds<G>(learned_scales);
  CHECK(learned[0] == doctest::Approx(1.0f));
  CHECK(learned[1] == doctest::Approx(31.75f));
  const auto st = sasq::truncation_stats<G>(xv, learned, 1);
  CHECK(st.count == 6);
  CHECK(st.fraction_clipped == doctest::Approx(2.0 / 6.0));  // -2 in channel 0, 100 in channel 1
  CHECK(st.max_over_threshold == doctest::Approx(100.0 / 31.75));
  CHECK(st.sqnr_after_db < st.sqnr_before_db);
  const auto mse = sasq::clip_thresholds_per_channel<G>(xv, sasq::MseClip{}, 1);
  CHECK(mse.size() == 2);
  CHECK_THROWS_AS(sasq::truncation_stats<G>(xv, learned, 0), sasq::Error);  // 3 rows, 2 thresholds
  CHECK_THROWS_AS(sasq::clip_thresholds_per_channel<G>(xv, sasq::AbsMaxClip{}, 2), sasq::Error);
}
