#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <random>
#include <type_traits>
#include <utility>
#include <vector>

#include "sasq/core/int4.hpp"
#include "sasq/quant/quantize.hpp"

using namespace sasq;

namespace {

/// A rows x cols matrix inside a buffer with ld = cols + pad (pad filled with a sentinel that
/// must never be read into results or overwritten).
struct Strided {
  std::vector<float> buf;
  std::ptrdiff_t rows, cols, ld;
  Strided(std::ptrdiff_t r, std::ptrdiff_t c, std::ptrdiff_t pad, float sentinel = 1e30f)
      : buf(static_cast<std::size_t>(r * (c + pad)), sentinel), rows(r), cols(c), ld(c + pad) {}
  MatrixView<float> view() { return {buf.data(), rows, cols, ld}; }
  MatrixView<const float> cview() const { return {buf.data(), rows, cols, ld}; }
};

Strided random_matrix(std::ptrdiff_t r, std::ptrdiff_t c, std::mt19937& rng, float scale = 3.0f) {
  Strided m(r, c, 3);
  std::normal_distribution<float> d(0.5f, scale);
  for (std::ptrdiff_t i = 0; i < r; ++i)
    for (std::ptrdiff_t j = 0; j < c; ++j) m.view()(i, j) = d(rng);
  return m;
}

template <class GridT>
void check_half_step_bound() {
  std::mt19937 rng(11);
  std::uniform_real_distribution<float> u(-1.0f, 1.0f);
  for (float absmax : {1e-3f, 0.7f, 5.0f, 3e4f}) {
    const QuantParam p = param_from_range<GridT>(-absmax, absmax);
    // Inside the representable range [(qmin - z) s, (qmax - z) s] the error is at most s/2.
    const float lo = static_cast<float>(GridT::kQmin - p.zero_point) * p.scale;
    const float hi = static_cast<float>(GridT::kQmax - p.zero_point) * p.scale;
    for (int i = 0; i < 2000; ++i) {
      const float x = u(rng) * absmax;
      if (x < lo || x > hi) continue;
      const float xh = fake_quantize_value<GridT>(x, p);
      // s/2 plus the float rounding of x * inv_scale and of s * q (a few ulps of max(|x|, s)).
      const float tol = 0.5f * p.scale * (1.0f + 1e-5f) + 4e-7f * std::fabs(x);
      CHECK(std::fabs(x - xh) <= tol);
    }
  }
}

template <class GridT>
void check_zero_exact() {
  std::mt19937 rng(5);
  std::uniform_real_distribution<float> u(0.01f, 100.0f);
  for (int i = 0; i < 500; ++i) {
    const float lo = -u(rng), hi = u(rng);
    const QuantParam p = param_from_range<GridT>(lo, hi);
    CHECK(fake_quantize_value<GridT>(0.0f, p) == 0.0f);
    CHECK(quantize_value<GridT>(0.0f, p) == p.zero_point);
  }
}

}  // namespace

TEST_CASE("|x - x^| <= s/2 inside the range on every grid") {
  check_half_step_bound<GridS8>();
  check_half_step_bound<GridS4>();
  check_half_step_bound<GridS8Full>();
  check_half_step_bound<GridS4Full>();
  check_half_step_bound<GridU8>();
  check_half_step_bound<GridU4>();
}

TEST_CASE("real zero is exactly representable in asymmetric mode") {
  check_zero_exact<GridU8>();
  check_zero_exact<GridU4>();
  check_zero_exact<GridS8>();
}

TEST_CASE("ties at +-0.5, +-1.5, +-2.5 for both rounding modes") {
  const QuantParam one = QuantParam::make(1.0f);
  const float x[] = {0.5f, 1.5f, 2.5f, -0.5f, -1.5f, -2.5f};
  const int even[] = {0, 2, 2, 0, -2, -2};
  const int away[] = {1, 2, 3, -1, -2, -3};
  for (int i = 0; i < 6; ++i) {
    CHECK(quantize_value<GridS8>(x[i], one) == even[i]);
    CHECK(quantize_value<GridS8, RoundMode::kHalfAwayFromZero>(x[i], one) == away[i]);
  }
  // Through the tensor API, with a scale whose inverse is exact (s = 0.25, x * 4 hits the ties).
  const auto p = QuantParams<GridS8>::per_tensor(QuantParam::make(0.25f));
  const std::vector<float> xs = {0.125f, 0.375f, 0.625f, -0.125f, -0.375f, -0.625f};
  std::vector<std::int8_t> qe(6), qa(6);
  quantize(Span<const float>(xs), p, Span<std::int8_t>(qe));
  quantize<RoundMode::kHalfAwayFromZero>(Span<const float>(xs), p, Span<std::int8_t>(qa));
  for (int i = 0; i < 6; ++i) {
    CHECK(qe[static_cast<std::size_t>(i)] == even[i]);
    CHECK(qa[static_cast<std::size_t>(i)] == away[i]);
  }
  // Asymmetric: ties are rounded before adding the zero point.
  const QuantParam pz = QuantParam::make(1.0f, 10);
  CHECK(quantize_value<GridU8>(2.5f, pz) == 12);
  CHECK(quantize_value<GridU8, RoundMode::kHalfAwayFromZero>(2.5f, pz) == 13);
  // -0.5 rounds to -0, which must quantize to exactly z.
  CHECK(quantize_value<GridU8>(-0.5f, pz) == 10);
}

TEST_CASE("saturation at qmin and qmax") {
  const QuantParam p = QuantParam::make(0.1f);
  CHECK(quantize_value<GridS8>(1e9f, p) == 127);
  CHECK(quantize_value<GridS8>(-1e9f, p) == -127);
  CHECK(quantize_value<GridS8Full>(-1e9f, p) == -128);
  CHECK(quantize_value<GridS8Full>(-12.8f, p) == -128);
  CHECK(quantize_value<GridS4>(-100.0f, p) == -7);
  CHECK(quantize_value<GridS4Full>(-100.0f, p) == -8);
  CHECK(quantize_value<GridS4>(100.0f, p) == 7);
  const QuantParam pz = QuantParam::make(0.1f, 3);
  CHECK(quantize_value<GridU4>(-100.0f, pz) == 0);
  CHECK(quantize_value<GridU4>(100.0f, pz) == 15);
  CHECK(quantize_value<GridU8>(100.0f, pz) == 255);
  CHECK(fake_quantize_value<GridU8>(100.0f, pz) == 0.1f * 252.0f);
  // Largest finite inputs and huge scales stay in range.
  const QuantParam tiny = QuantParam::make(kMinScale);
  CHECK(quantize_value<GridS8>(std::numeric_limits<float>::max(), tiny) == 127);
  CHECK(quantize_value<GridS8>(-std::numeric_limits<float>::max(), tiny) == -127);
  const QuantParam huge = QuantParam::make(1e38f);
  CHECK(quantize_value<GridS8>(3e38f, huge) == 3);
}

TEST_CASE("compute_params and quantize match a naive loop for every granularity") {
  std::mt19937 rng(3);
  for (const auto& shape : {std::pair<int, int>{1, 1}, {3, 7}, {5, 33}, {4, 32}, {2, 31}}) {
    const int rows = shape.first, cols = shape.second;  // not a structured binding: lambdas capture it
    const Strided x = random_matrix(rows, cols, rng);
    const auto xv = x.cview();
    auto naive = [&](auto grid_tag, int r0, int r1, int c0, int c1) {
      using G = decltype(grid_tag);
      float lo = xv(r0, c0), hi = xv(r0, c0);
      for (int r = r0; r < r1; ++r)
        for (int c = c0; c < c1; ++c) {
          lo = std::min(lo, xv(r, c));
          hi = std::max(hi, xv(r, c));
        }
      return param_from_range<G>(lo, hi);
    };
    auto same = [](QuantParam a, QuantParam b) {
      return a.scale == b.scale && a.inv_scale == b.inv_scale && a.zero_point == b.zero_point;
    };
    auto check_apply = [&](const auto& p) {
      using G = typename std::decay_t<decltype(p)>::grid;
      using Q = typename G::storage_type;
      std::vector<Q> q(static_cast<std::size_t>(rows * (cols + 1)), Q(99));
      MatrixView<Q> qv(q.data(), rows, cols, cols + 1);
      quantize(xv, p, qv);
      Strided f(rows, cols, 2, -7.0f), d(rows, cols, 1, -7.0f);
      fake_quantize(xv, p, f.view());
      dequantize(MatrixView<const Q>(qv), p, d.view());
      for (int r = 0; r < rows; ++r) {
        CHECK(q[static_cast<std::size_t>(r * (cols + 1) + cols)] == Q(99));  // padding untouched
        CHECK(f.buf[static_cast<std::size_t>(r * f.ld + cols)] == -7.0f);
        for (int c = 0; c < cols; ++c) {
          const QuantParam e = p.at(r, c);
          CHECK(qv(r, c) == quantize_value<G>(xv(r, c), e));
          CHECK(f.view()(r, c) == fake_quantize_value<G>(xv(r, c), e));
          CHECK(d.view()(r, c) == dequantize_value(quantize_value<G>(xv(r, c), e), e));
        }
      }
    };

    const auto pt = compute_params(xv, Scheme<GridU8>{});
    CHECK(pt.layout() == ParamLayout::kPerTensor);
    CHECK(same(pt[0], naive(GridU8{}, 0, rows, 0, cols)));
    check_apply(pt);

    const auto pr = compute_params(xv, Scheme<GridS8, PerToken>{});
    const auto pr0 = compute_params(xv, Scheme<GridS8, PerChannel>{PerChannel{0}});
    CHECK(pr.layout() == ParamLayout::kPerRow);
    CHECK(pr.size() == static_cast<std::size_t>(rows));
    for (int r = 0; r < rows; ++r) {
      CHECK(same(pr[static_cast<std::size_t>(r)], naive(GridS8{}, r, r + 1, 0, cols)));
      CHECK(same(pr0[static_cast<std::size_t>(r)], pr[static_cast<std::size_t>(r)]));
    }
    check_apply(pr);

    const auto pc = compute_params(xv, Scheme<GridU4, PerChannel>{PerChannel{1}});
    CHECK(pc.layout() == ParamLayout::kPerColumn);
    CHECK(pc.size() == static_cast<std::size_t>(cols));
    for (int c = 0; c < cols; ++c) CHECK(same(pc[static_cast<std::size_t>(c)], naive(GridU4{}, 0, rows, c, c + 1)));
    check_apply(pc);

    for (int g : {1, 4, 8, 32}) {
      const auto pg = compute_params(xv, Scheme<GridS4, PerGroup<>>{PerGroup<>{g}});
      const int groups = (cols + g - 1) / g;
      CHECK(pg.layout() == ParamLayout::kPerGroup);
      CHECK(pg.groups_per_row() == groups);
      CHECK(pg.size() == static_cast<std::size_t>(rows * groups));
      for (int r = 0; r < rows; ++r)
        for (int k = 0; k < groups; ++k)
          CHECK(same(pg[static_cast<std::size_t>(r * groups + k)],
                     naive(GridS4{}, r, r + 1, k * g, std::min(cols, (k + 1) * g))));
      check_apply(pg);
    }
    const auto pg8 = compute_params(xv, Scheme<GridU8, PerGroup<8>>{});
    CHECK(pg8.group_size() == 8);
    check_apply(pg8);
  }
}

TEST_CASE("packed int4 rows equal quantize + pack_int4, and unpack back") {
  std::mt19937 rng(9);
  for (int cols : {1, 7, 32, 33}) {
    const int rows = 3;
    const Strided x = random_matrix(rows, cols, rng);
    const auto ps = compute_params(x.cview(), Scheme<GridS4, PerToken>{});
    const auto pu = compute_params(x.cview(), Scheme<GridU4, PerGroup<>>{PerGroup<>{4}});
    const auto bytes = static_cast<std::ptrdiff_t>(packed_int4_bytes(static_cast<std::size_t>(cols)));
    std::vector<std::uint8_t> packed(static_cast<std::size_t>(rows * (bytes + 2)), 0xEE);
    MatrixView<std::uint8_t> pv(packed.data(), rows, bytes, bytes + 2);

    std::vector<std::int8_t> q(static_cast<std::size_t>(rows * cols));
    quantize(x.cview(), ps, MatrixView<std::int8_t>(q.data(), rows, cols));
    quantize_packed_int4(x.cview(), ps, pv);
    for (int r = 0; r < rows; ++r) {
      std::vector<std::uint8_t> expect(static_cast<std::size_t>(bytes));
      pack_int4<Int4>(Span<const std::int8_t>(q.data() + r * cols, static_cast<std::size_t>(cols)),
                      Span<std::uint8_t>(expect));
      for (int b = 0; b < bytes; ++b) CHECK(pv(r, b) == expect[static_cast<std::size_t>(b)]);
      CHECK(packed[static_cast<std::size_t>(r * (bytes + 2) + bytes)] == 0xEE);
    }
    Strided back(rows, cols, 0), ref(rows, cols, 0);
    dequantize_packed_int4(MatrixView<const std::uint8_t>(pv), ps, back.view());
    fake_quantize(x.cview(), ps, ref.view());
    CHECK(back.buf == ref.buf);

    quantize_packed_int4(x.cview(), pu, pv);
    dequantize_packed_int4(MatrixView<const std::uint8_t>(pv), pu, back.view());
    fake_quantize(x.cview(), pu, ref.view());
    CHECK(back.buf == ref.buf);
  }
  std::vector<float> x(5, 1.0f);
  std::vector<std::uint8_t> small(2);
  CHECK_THROWS_WITH_AS(quantize_packed_int4(MatrixView<const float>(x.data(), 1, 5),
                                            QuantParams<GridS4>::per_tensor(QuantParam::make(1.0f)),
                                            MatrixView<std::uint8_t>(small.data(), 1, 2)),
                       doctest::Contains("need 1 x 3"), Error);
  // A nibble of 8 (= -8) is outside the restricted symmetric grid [-7, 7].
  std::vector<std::uint8_t> bad = {0x08};
  std::vector<float> out(1);
  CHECK_THROWS_WITH_AS(dequantize_packed_int4(MatrixView<const std::uint8_t>(bad.data(), 1, 1),
                                              QuantParams<GridS4>::per_tensor(QuantParam::make(1.0f)),
                                              MatrixView<float>(out.data(), 1, 1)),
                       doctest::Contains("value -8 at (0, 0)"), Error);
}

TEST_CASE("all-zero tensors get valid parameters and quantize to the zero point") {
  std::vector<float> z(12, 0.0f);
  const MatrixView<const float> zv(z.data(), 3, 4);
  const auto ps = compute_params(zv, Scheme<GridS8>{});
  const auto pu = compute_params(zv, Scheme<GridU4, PerToken>{});
  const auto pg = compute_params(zv, Scheme<GridU8, PerGroup<3>>{});
  CHECK(ps[0].scale == 1.0f);
  for (std::size_t i = 0; i < pu.size(); ++i) CHECK(is_valid_param<GridU4>(pu[i]));
  std::vector<float> f(12, 5.0f);
  fake_quantize(zv, pg, MatrixView<float>(f.data(), 3, 4));
  for (float v : f) CHECK(v == 0.0f);
  std::vector<std::uint8_t> q(12, 99);
  quantize(zv, pu, MatrixView<std::uint8_t>(q.data(), 3, 4));
  for (std::size_t i = 0; i < q.size(); ++i) CHECK(q[i] == pu[i / 4].zero_point);
}

TEST_CASE("fake_quantize works in place and rejects partial overlap") {
  std::vector<float> x = {0.3f, -1.7f, 2.2f, 0.01f, 5.0f, -5.0f};
  std::vector<float> ref(6);
  const auto p = compute_params(MatrixView<const float>(x.data(), 2, 3), Scheme<GridS4>{});
  fake_quantize(MatrixView<const float>(x.data(), 2, 3), p, MatrixView<float>(ref.data(), 2, 3));
  fake_quantize(MatrixView<const float>(x.data(), 2, 3), p, MatrixView<float>(x.data(), 2, 3));
  CHECK(x == ref);
  CHECK_THROWS_WITH_AS(
      fake_quantize(MatrixView<const float>(x.data(), 1, 4), p, MatrixView<float>(x.data() + 1, 1, 4)),
      doctest::Contains("partially overlaps"), Error);
}

TEST_CASE("bad parameters, shapes and inputs are rejected with clear messages") {
  const float nan = std::numeric_limits<float>::quiet_NaN();
  const float inf = std::numeric_limits<float>::infinity();
  CHECK_THROWS_WITH_AS(QuantParams<GridS8>::per_row({QuantParam::make(1.0f), QuantParam::make(0.0f)}),
                       "QuantParams: parameter 1 of 2: scale is zero", Error);
  CHECK_THROWS_WITH_AS(QuantParams<GridS8>::per_column({QuantParam::make(-1.0f)}),
                       doctest::Contains("parameter 0 of 1: scale -1 is negative"), Error);
  CHECK_THROWS_WITH_AS(QuantParams<GridS8>::per_tensor(QuantParam::make(nan)),
                       doctest::Contains("scale is NaN"), Error);
  CHECK_THROWS_WITH_AS(QuantParams<GridS8>::per_tensor(QuantParam::make(inf)),
                       doctest::Contains("infinite"), Error);
  CHECK_THROWS_WITH_AS(QuantParams<GridU8>::per_tensor(QuantParam::make(1.0f, 300)),
                       doctest::Contains("zero point 300"), Error);
  CHECK_THROWS_WITH_AS(QuantParams<GridS8>::per_group(2, 5, 2, {QuantParam::make(1.0f)}),
                       doctest::Contains("needs 6 parameters, got 1"), Error);
  CHECK_THROWS_AS(QuantParams<GridS8>::per_row({}), Error);

  std::vector<float> x = {1.0f, 2.0f, nan, 4.0f, inf, 6.0f};
  const MatrixView<const float> xv(x.data(), 2, 3);
  std::vector<std::int8_t> q(6);
  std::vector<float> f(6);
  const auto p = QuantParams<GridS8>::per_tensor(QuantParam::make(0.1f));
  CHECK_THROWS_WITH_AS(quantize(xv, p, MatrixView<std::int8_t>(q.data(), 2, 3)),
                       "quantize: input element (0, 2) is NaN", Error);
  x[2] = 3.0f;
  CHECK_THROWS_WITH_AS(fake_quantize(xv, p, MatrixView<float>(f.data(), 2, 3)),
                       "fake_quantize: input element (1, 1) is infinite", Error);
  CHECK_THROWS_WITH_AS(compute_params(xv, Scheme<GridS8>{}), doctest::Contains("(1, 1) is infinite"), Error);
  x[4] = 5.0f;
  CHECK_THROWS_WITH_AS(quantize(xv, p, MatrixView<std::int8_t>(q.data(), 3, 2)),
                       "quantize: input is 2 x 3 but output is 3 x 2", Error);
  const auto prow = QuantParams<GridS8>::per_row({QuantParam::make(1.0f)});
  CHECK_THROWS_WITH_AS(fake_quantize(xv, prow, MatrixView<float>(f.data(), 2, 3)),
                       doctest::Contains("per-row parameters for a 1 x any tensor applied to a 2 x 3"), Error);
  CHECK_THROWS_WITH_AS(compute_params(xv, Scheme<GridS8, PerChannel>{PerChannel{2}}),
                       doctest::Contains("axis 2"), Error);
  CHECK_THROWS_WITH_AS(compute_params(xv, Scheme<GridS8, PerGroup<>>{}), doctest::Contains("group size 0"), Error);
  CHECK_THROWS_WITH_AS(compute_params(MatrixView<const float>(x.data(), 0, 3), Scheme<GridS8>{}),
                       doctest::Contains("empty"), Error);
  const std::vector<std::int8_t> out_of_grid = {-128};
  std::vector<float> d(1);
  CHECK_THROWS_WITH_AS(dequantize(MatrixView<const std::int8_t>(out_of_grid.data(), 1, 1), p,
                                  MatrixView<float>(d.data(), 1, 1)),
                       doctest::Contains("value -128 at (0, 0) is outside the grid [-127, 127]"), Error);
}

TEST_CASE("invalid views (negative extents, ld < cols) are sasq::Error, not std::length_error or UB") {
  std::vector<float> x(12, 1.0f), out(12);
  std::vector<std::int8_t> q(12);
  const auto p = QuantParams<GridS8>::per_tensor(QuantParam::make(0.1f));
  CHECK_THROWS_WITH_AS(compute_params(MatrixView<const float>(x.data(), -1, 4), Scheme<GridS8, PerToken>{}),
                       doctest::Contains("input view is invalid: -1 x 4"), Error);
  CHECK_THROWS_WITH_AS(compute_params(MatrixView<const float>(x.data(), 3, -4), Scheme<GridS8>{}),
                       doctest::Contains("input view is invalid"), Error);
  CHECK_THROWS_WITH_AS(quantize(MatrixView<const float>(x.data(), 3, 4), p, MatrixView<std::int8_t>(q.data(), 3, 4, 2)),
                       doctest::Contains("quantize: output view is invalid: 3 x 4, ld 2"), Error);
  CHECK_THROWS_WITH_AS(quantize(MatrixView<const float>(x.data(), 3, 4, 3), p, MatrixView<std::int8_t>(q.data(), 3, 4)),
                       doctest::Contains("input view is invalid"), Error);
  CHECK_THROWS_WITH_AS(fake_quantize(MatrixView<const float>(x.data(), 3, 4), p, MatrixView<float>(out.data(), 3, 4, 1)),
                       doctest::Contains("fake_quantize: output view is invalid"), Error);
  CHECK_THROWS_WITH_AS(dequantize(MatrixView<const std::int8_t>(q.data(), -2, 4), p, MatrixView<float>(out.data(), -2, 4)),
                       doctest::Contains("dequantize: input view is invalid"), Error);
  CHECK_THROWS_WITH_AS(quantize(MatrixView<const float>(nullptr, 3, 4), p, MatrixView<std::int8_t>(q.data(), 3, 4)),
                       doctest::Contains("null data"), Error);
}
