#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "sasq/quant/observers.hpp"

using namespace sasq;

namespace {

using Batch = std::vector<float>;

/// Batches of varying size and spread (the spread grows so histograms must rebin).
std::vector<Batch> make_batches(std::mt19937& rng, bool heavy_tailed, int count = 12) {
  std::vector<Batch> out;
  std::normal_distribution<float> normal(0.2f, 1.0f);
  std::student_t_distribution<float> t(1.5f);  // infinite variance: rare, huge outliers
  for (int b = 0; b < count; ++b) {
    Batch x(static_cast<std::size_t>(500 + 97 * b));
    const float spread = 0.05f * static_cast<float>(1 << (b / 2));
    for (float& v : x) v = spread * (heavy_tailed ? t(rng) : normal(rng));
    out.push_back(std::move(x));
  }
  return out;
}

Batch concat(const std::vector<Batch>& batches) {
  Batch all;
  for (const auto& b : batches) all.insert(all.end(), b.begin(), b.end());
  return all;
}

/// Exact nearest-rank quantile: the k-th smallest, k = max(1, ceil(q n)).
double exact_quantile(Batch v, double q) {
  std::sort(v.begin(), v.end());
  const auto n = static_cast<double>(v.size());
  auto k = static_cast<std::size_t>(std::max(1.0, std::ceil(q * n)));
  return v[std::min(k, v.size()) - 1];
}

double exact_abs_quantile(Batch v, double q) {
  for (float& x : v) x = std::fabs(x);
  return exact_quantile(std::move(v), q);
}

MatrixView<const float> as_matrix(const Batch& b, std::ptrdiff_t cols) {
  return {b.data(), static_cast<std::ptrdiff_t>(b.size()) / cols, cols};
}

}  // namespace

TEST_CASE("MinMaxObserver: streaming equals the whole-tensor min/max") {
  std::mt19937 rng(1);
  const auto batches = make_batches(rng, true);
  MinMaxObserver o;
  for (const auto& b : batches) o.observe(Span<const float>(b));
  const Batch all = concat(batches);
  const auto [lo, hi] = std::minmax_element(all.begin(), all.end());
  CHECK(o.range().min == *lo);
  CHECK(o.range().max == *hi);
  CHECK(o.absmax() == std::max(-*lo, *hi));
  const QuantParam p = o.param<GridU8>();
  const QuantParam q = param_from_range<GridU8>(*lo, *hi);
  CHECK(p.scale == q.scale);
  CHECK(p.zero_point == q.zero_point);
  CHECK(o.batches() == batches.size());
}

TEST_CASE("MeanAbsMaxObserver: mean over batches of per-batch abs-max (SASQ init)") {
  std::mt19937 rng(2);
  const auto batches = make_batches(rng, false);
  MeanAbsMaxObserver o;
  double sum = 0.0, smin = 0.0, smax = 0.0;
  for (const auto& b : batches) {
    o.observe(as_matrix(b, 1));
    float amax = 0.0f;
    for (float v : b) amax = std::max(amax, std::fabs(v));
    sum += amax;
    smin += *std::min_element(b.begin(), b.end());
    smax += *std::max_element(b.begin(), b.end());
  }
  const auto n = static_cast<double>(batches.size());
  CHECK(o.absmax() == static_cast<float>(sum / n));
  CHECK(o.range().min == static_cast<float>(smin / n));
  CHECK(o.range().max == static_cast<float>(smax / n));
  CHECK(o.param<GridS8>().scale == o.absmax() / 127.0f);
  CHECK(o.param<GridU8>().scale == param_from_range<GridU8>(o.range().min, o.range().max).scale);
  // The per-batch mean is below the global max when the batches differ.
  MinMaxObserver mm;
  for (const auto& b : batches) mm.observe(Span<const float>(b));
  CHECK(o.absmax() < mm.absmax());
}

TEST_CASE("EmaMinMaxObserver follows its recurrence") {
  std::mt19937 rng(3);
  const auto batches = make_batches(rng, false, 6);
  EmaMinMaxObserver o(0.8f), first(1.0f), last(0.0f);
  float lo = 0.0f, hi = 0.0f;
  for (std::size_t i = 0; i < batches.size(); ++i) {
    const auto& b = batches[i];
    for (auto* obs : {&o, &first, &last}) obs->observe(Span<const float>(b));
    const float bl = *std::min_element(b.begin(), b.end()), bh = *std::max_element(b.begin(), b.end());
    lo = i == 0 ? bl : 0.8f * lo + (1.0f - 0.8f) * bl;
    hi = i == 0 ? bh : 0.8f * hi + (1.0f - 0.8f) * bh;
    CHECK(o.range().min == lo);
    CHECK(o.range().max == hi);
    CHECK(last.range().min == bl);
  }
  CHECK(first.range().min == *std::min_element(batches[0].begin(), batches[0].end()));
  CHECK_THROWS_WITH_AS(EmaMinMaxObserver(1.5f), doctest::Contains("momentum 1.5"), Error);
}

TEST_CASE("StreamingHistogram: rebinning on growth equals building at the final range") {
  std::mt19937 rng(4);
  const auto batches = make_batches(rng, true);
  StreamingHistogram streamed(256), once(256);
  for (const auto& b : batches) streamed.add(Span<const float>(b));
  once.add(Span<const float>(concat(batches)));
  CHECK(streamed.range_radius() == once.range_radius());
  CHECK(streamed.counts() == once.counts());
  CHECK(streamed.total() == concat(batches).size());
  CHECK(streamed.range_radius() >= streamed.absmax());
  CHECK(streamed.range_radius() < 2.0 * streamed.absmax());
  // Zeros seen before any nonzero value stay in the middle bin.
  StreamingHistogram z(8);
  z.add(Span<const float>(Batch{0.0f, 0.0f}));
  CHECK(z.range_radius() == 0.0);
  z.add(Span<const float>(Batch{3.0f, -0.5f}));
  CHECK(z.range_radius() == 4.0);
  CHECK(z.counts() == std::vector<std::uint64_t>{0, 0, 0, 1, 2, 0, 0, 1});
  z.add(Span<const float>(Batch{-9.0f}));
  CHECK(z.range_radius() == 16.0);
  CHECK(z.counts() == std::vector<std::uint64_t>{0, 1, 0, 1, 3, 0, 0, 0});  // [0, 4) holds 0, 0, 3
  CHECK_THROWS_WITH_AS(StreamingHistogram(100), doctest::Contains("power of two"), Error);
}

TEST_CASE("PercentileObserver is within one bin width of the exact percentile") {
  for (bool heavy : {false, true}) {
    for (int bins : {256, 2048}) {
      std::mt19937 rng(heavy ? 5 : 6);
      const auto batches = make_batches(rng, heavy);
      const Batch all = concat(batches);
      StreamingHistogram h(bins);
      for (const auto& b : batches) h.add(as_matrix(b, 1));
      const double w = h.bin_width();
      CHECK(w <= 4.0 * h.absmax() / bins);  // documented: w = 2R / bins < 4 absmax / bins
      double worst = 0.0;
      for (double q : {0.0, 0.001, 0.1, 0.5, 0.9, 0.99, 0.999, 0.9999, 1.0}) {
        const double e1 = std::fabs(h.quantile(q) - exact_quantile(all, q));
        const double e2 = std::fabs(h.abs_quantile(q) - exact_abs_quantile(all, q));
        CHECK(e1 <= w * (1.0 + 1e-9));
        CHECK(e2 <= w * (1.0 + 1e-9));
        worst = std::max({worst, e1 / w, e2 / w});
      }
      MESSAGE(std::string(heavy ? "heavy-tailed" : "normal"), " bins=", bins, " absmax=", h.absmax(),
              " bin width=", w, " worst error/bin width=", worst);
      // quantile(1) and abs_quantile(1) are exact (clamped to the tracked max).
      CHECK(h.quantile(1.0) == *std::max_element(all.begin(), all.end()));
      CHECK(h.abs_quantile(1.0) == h.absmax());
    }
  }
  std::mt19937 rng(7);
  const auto batches = make_batches(rng, true);
  PercentileObserver o(0.999, 1024);
  for (const auto& b : batches) o.observe(Span<const float>(b));
  CHECK(o.absmax() == static_cast<float>(o.histogram().abs_quantile(0.999)));
  CHECK(o.param<GridS8>().scale == param_from_absmax<GridS8>(o.absmax()).scale);
  CHECK(o.range().min == static_cast<float>(o.histogram().quantile(0.001)));
  CHECK(o.param<GridU8>().zero_point == param_from_range<GridU8>(o.range().min, o.range().max).zero_point);
  CHECK_THROWS_WITH_AS(PercentileObserver(0.0), doctest::Contains("percentile 0"), Error);
}

TEST_CASE("mse_optimal_absmax searches the documented grid exactly") {
  std::mt19937 rng(8);
  std::normal_distribution<float> d(0.0f, 1.0f);
  Batch x(4000);
  for (float& v : x) v = d(rng);
  const float absmax = std::fabs(*std::max_element(x.begin(), x.end(), [](float a, float b) { return std::fabs(a) < std::fabs(b); }));
  auto mse = [&](float clip, auto grid_tag) {
    using G = decltype(grid_tag);
    const QuantParam p = param_from_absmax<G>(clip);
    double e = 0.0;
    for (float v : x) e += std::pow(static_cast<double>(v) - fake_quantize_value<G>(v, p), 2.0);
    return e;
  };
  const float c4 = mse_optimal_absmax<GridS4>(Span<const float>(x));
  double best = std::numeric_limits<double>::infinity();
  for (int i = 0; i <= 100; ++i) best = std::min(best, mse(absmax * (0.2f + 0.8f * static_cast<float>(i) / 100.0f), GridS4{}));
  CHECK(mse(c4, GridS4{}) == best);
  // 4-bit Gaussian data: clipping well below the max pays off; 8-bit clips much less.
  CHECK(c4 < 0.75f * absmax);
  CHECK(mse(c4, GridS4{}) < 0.7 * mse(absmax, GridS4{}));
  const float c8 = mse_optimal_absmax<GridS8>(Span<const float>(x));
  CHECK(c8 > c4);
  MESSAGE("N(0,1) n=4000: absmax=", absmax, " int4 clip ratio=", c4 / absmax, " int8 clip ratio=", c8 / absmax);
  // All-zero input: clip 0, a valid parameter through param_from_absmax.
  CHECK(mse_optimal_absmax<GridS8>(Span<const float>(Batch(5, 0.0f))) == 0.0f);
  CHECK_THROWS_AS(mse_optimal_absmax<GridS8>(Span<const float>(x), 0), Error);
  CHECK_THROWS_AS(mse_optimal_absmax<GridS8>(Span<const float>(x), 10, 0.0f), Error);
  CHECK_THROWS_AS(mse_optimal_absmax<GridS8>(Span<const float>(x), 10, 0.5f, 0.0f), Error);
  CHECK_THROWS_AS(mse_optimal_absmax<GridS8>(Span<const float>(x), 10, 0.5f, NAN), Error);
}

TEST_CASE("mse_optimal_absmax with GPTQ/QuaRot's w_clip search: shrink 1.00 .. 0.21, error norm 2.4") {
  std::mt19937 rng(9);
  std::student_t_distribution<float> d(3.0f);  // heavy tails: the norm changes the chosen clip
  Batch x(257);
  for (float& v : x) v = d(rng);
  const float absmax = std::fabs(*std::max_element(x.begin(), x.end(), [](float a, float b) { return std::fabs(a) < std::fabs(b); }));
  auto err = [&](float clip, double norm) {
    const QuantParam p = param_from_absmax<GridS4>(clip);
    double e = 0.0;
    for (float v : x) e += std::pow(std::fabs(static_cast<double>(v) - fake_quantize_value<GridS4>(v, p)), norm);
    return e;
  };
  // QuaRot: for i in 0..79: p = 1 - i/100, keep strictly better (ties keep the larger clip).
  float want = 0.0f;
  double best = std::numeric_limits<double>::infinity();
  for (int i = 0; i < 80; ++i) {
    const float c = (1.0f - static_cast<float>(i) / 100.0f) * absmax;
    const double e = err(c, 2.4);
    if (e < best) best = e, want = c;
  }
  const ClipSearch cs;
  const float got = mse_optimal_absmax<GridS4>(Span<const float>(x), cs.grid, cs.min_ratio, cs.norm);
  CHECK(err(got, 2.4) == doctest::Approx(best).epsilon(1e-6));
  CHECK(got == doctest::Approx(want).epsilon(1e-6));  // ratios 0.21 + i/100 in float vs 1 - i/100
  for (int i = 0; i <= cs.grid; ++i)
    CHECK(detail::mse_ratio(i, cs.grid, cs.min_ratio) == doctest::Approx(0.21 + 0.01 * i).epsilon(1e-6));
  const float sq = mse_optimal_absmax<GridS4>(Span<const float>(x), cs.grid, cs.min_ratio, 2.0f);
  MESSAGE("t(3) n=257: clip ratio norm 2.4 = ", got / absmax, ", norm 2 = ", sq / absmax);
}

TEST_CASE("MseObserver (histogram) picks a clip whose exact MSE is near the exact optimum") {
  for (bool heavy : {false, true}) {
    std::mt19937 rng(9);
    const auto batches = make_batches(rng, heavy);
    const Batch all = concat(batches);
    MseObserver o;
    for (const auto& b : batches) o.observe(Span<const float>(b));
    auto exact_mse = [&](QuantParam p) {
      double e = 0.0;
      for (float v : all) e += std::pow(static_cast<double>(v) - fake_quantize_value<GridS4>(v, p), 2.0);
      return e;
    };
    const double chosen = exact_mse(o.param<GridS4>());
    const double optimum = exact_mse(param_from_absmax<GridS4>(mse_optimal_absmax<GridS4>(Span<const float>(all))));
    const double no_clip = exact_mse(param_from_absmax<GridS4>(o.histogram().absmax()));
    MESSAGE(std::string(heavy ? "heavy-tailed" : "normal"), ": histogram ratio ", o.ratio<GridS4>(), " exact MSE ", chosen,
            " optimum ", optimum, " no clip ", no_clip);
    CHECK(chosen <= 1.05 * optimum);
    CHECK(chosen < no_clip);
    const QuantParam pu = o.param<GridU8>();
    CHECK(is_valid_param<GridU8>(pu));
  }
}

TEST_CASE("per-channel observers equal per-column whole-tensor statistics") {
  std::mt19937 rng(10);
  const std::ptrdiff_t cols = 5;
  std::vector<Batch> batches;
  std::normal_distribution<float> d(0.0f, 1.0f);
  for (int b = 0; b < 4; ++b) {
    Batch x(static_cast<std::size_t>((3 + b) * cols));
    for (std::size_t i = 0; i < x.size(); ++i) x[i] = d(rng) * static_cast<float>(1 + i % cols);
    batches.push_back(x);
  }
  PerChannelMinMaxObserver mm;
  PerChannelMeanAbsMaxObserver mam;
  PerChannelEmaMinMaxObserver ema(EmaMinMaxObserver(0.5f));
  PerChannelPercentileObserver pct(PercentileObserver(1.0, 64));
  PerChannelMseObserver mse(MseObserver(20, 0.5f, 64));
  for (const auto& b : batches) {
    mm.observe(as_matrix(b, cols));
    mam.observe(as_matrix(b, cols));
    ema.observe(as_matrix(b, cols));
    pct.observe(as_matrix(b, cols));
    mse.observe(as_matrix(b, cols));
  }
  CHECK(mm.channels() == static_cast<std::size_t>(cols));
  const auto ranges = mm.range();
  const auto means = mam.absmax();
  const auto pabs = pct.absmax();
  for (std::ptrdiff_t c = 0; c < cols; ++c) {
    float lo = std::numeric_limits<float>::infinity(), hi = -lo;
    double sum = 0.0;
    for (const auto& b : batches) {
      float amax = 0.0f;
      for (std::size_t i = static_cast<std::size_t>(c); i < b.size(); i += static_cast<std::size_t>(cols)) {
        lo = std::min(lo, b[i]);
        hi = std::max(hi, b[i]);
        amax = std::max(amax, std::fabs(b[i]));
      }
      sum += amax;
    }
    const auto i = static_cast<std::size_t>(c);
    CHECK(ranges[i].min == lo);
    CHECK(ranges[i].max == hi);
    CHECK(means[i] == static_cast<float>(sum / 4.0));
    CHECK(pabs[i] == std::max(-lo, hi));  // percentile 1.0 is the exact max
  }
  const auto p = mm.params<GridS8>();
  CHECK(p.layout() == ParamLayout::kPerColumn);
  CHECK(p.cols() == cols);
  CHECK(p[2].scale == mm.channel(2).param<GridS8>().scale);
  CHECK(mse.params<GridS4>().size() == static_cast<std::size_t>(cols));
  CHECK(ema.params<GridU8>().size() == static_cast<std::size_t>(cols));
  CHECK_THROWS_WITH_AS(mm.observe(as_matrix(batches[0], 3)), doctest::Contains("batch has 3 channels, earlier batches had 5"), Error);
}

TEST_CASE("observers reject bad batches and premature queries") {
  MinMaxObserver o;
  CHECK_THROWS_WITH_AS(o.range(), doctest::Contains("no batch observed"), Error);
  Batch bad = {1.0f, std::numeric_limits<float>::quiet_NaN()};
  CHECK_THROWS_WITH_AS(o.observe(Span<const float>(bad)), "MinMaxObserver::observe: input element (0, 1) is NaN", Error);
  CHECK_THROWS_WITH_AS(o.observe(Span<const float>(Batch{})), doctest::Contains("empty"), Error);
  PercentileObserver p;
  CHECK_THROWS_WITH_AS(p.absmax(), doctest::Contains("no data"), Error);
  CHECK_THROWS_AS(p.observe(Span<const float>(bad)), Error);
  PerChannelMinMaxObserver pc;
  CHECK_THROWS_WITH_AS(pc.params<GridS8>(), doctest::Contains("no batch observed"), Error);
  CHECK_THROWS_WITH_AS(pc.observe(MatrixView<const float>(bad.data(), 1, 2)), doctest::Contains("(0, 1) is NaN"), Error);
  // All-zero data gives valid parameters from every observer.
  const Batch zeros(8, 0.0f);
  MinMaxObserver a;
  MeanAbsMaxObserver b;
  PercentileObserver c;
  MseObserver d;
  a.observe(Span<const float>(zeros));
  b.observe(Span<const float>(zeros));
  c.observe(Span<const float>(zeros));
  d.observe(Span<const float>(zeros));
  CHECK(a.param<GridS8>().scale == 1.0f);
  CHECK(b.param<GridU8>().scale == 1.0f);
  CHECK(c.param<GridS4>().scale == 1.0f);
  CHECK(d.param<GridS8>().scale == 1.0f);
}

TEST_CASE("per-channel observers on batches larger than the transpose tile, with ld > cols") {
  std::mt19937 rng(12);
  std::uniform_real_distribution<float> u(-4.0f, 4.0f);
  const std::ptrdiff_t rows = 70, cols = 45, ld = 50;
  Batch x(static_cast<std::size_t>(rows * ld), 1e30f);  // padding must never be observed
  for (std::ptrdiff_t r = 0; r < rows; ++r)
    for (std::ptrdiff_t c = 0; c < cols; ++c) x[static_cast<std::size_t>(r * ld + c)] = u(rng) * static_cast<float>(c + 1);
  PerChannelMinMaxObserver o;
  o.observe(MatrixView<const float>(x.data(), rows, cols, ld));
  const auto ranges = o.range();
  for (std::ptrdiff_t c = 0; c < cols; ++c) {
    float lo = std::numeric_limits<float>::infinity(), hi = -lo;
    for (std::ptrdiff_t r = 0; r < rows; ++r) {
      lo = std::min(lo, x[static_cast<std::size_t>(r * ld + c)]);
      hi = std::max(hi, x[static_cast<std::size_t>(r * ld + c)]);
    }
    CHECK(ranges[static_cast<std::size_t>(c)].min == lo);
    CHECK(ranges[static_cast<std::size_t>(c)].max == hi);
  }
}
