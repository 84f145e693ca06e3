#include <doctest/doctest.h>

#include <cmath>
#include <random>

#include "sasq/quant/ste.hpp"

using namespace sasq;

// Each STE gradient is the exact derivative of a surrogate in which the rounding is frozen:
// LSQ / LSQ+ / ClippedSte / Ste hold the residual r = rne(v) - v constant in grid units
// (x^ ~ s * clamp(v + r)), PACT holds e = x^ - y constant in real units (x^ ~ clamp(x, 0, a) + e).
// The surrogates are written here in double and differentiated by central finite differences
// at points away from rounding boundaries and clamp edges; the functors' float gradients must
// match them and the closed-form formulas.

namespace {

constexpr double kH = 1e-6;  // relative step of the central differences

double rne(double v) { return std::nearbyint(v); }  // default FP environment: ties to even
double clampd(double v, double lo, double hi) { return v < lo ? lo : (v > hi ? hi : v); }

/// Far (in grid units) from a rounding tie and from the clamp edges.
bool well_inside_or_outside(double v, int qmin, int qmax) {
  const double frac = v - std::floor(v);
  return std::fabs(frac - 0.5) > 0.02 && std::fabs(v - qmin) > 0.6 && std::fabs(v - qmax) > 0.6;
}

/// |g - ref| within the float rounding of v = x / s (three roundings, ~1.8e-7 |v|) plus the
/// finite-difference error.
bool close_in_v(float g, double ref, double v) {
  return std::fabs(static_cast<double>(g) - ref) <= 4e-7 * (std::fabs(v) + 1.0) + 1e-6;
}

template <class F>
double central(F f, double at, double h) {
  return (f(at + h) - f(at - h)) / (2.0 * h);
}

template <class GridT>
void check_lsq() {
  std::mt19937 rng(21);
  std::uniform_real_distribution<double> ux(-1.3, 1.3), us(0.3, 1.5);
  int inside = 0, outside = 0;
  for (int i = 0; i < 4000; ++i) {
    const double s = us(rng) / GridT::kQmax;
    const double x = ux(rng) + (GridT::kQmin == 0 ? 0.5 : 0.0);
    const float xf = static_cast<float>(x), sf = static_cast<float>(s);
    const double v = static_cast<double>(xf) / static_cast<double>(sf);
    if (!well_inside_or_outside(v, GridT::kQmin, GridT::kQmax)) continue;
    const double r0 = rne(v) - v;
    auto sur = [&](double xx, double ss) { return ss * clampd(xx / ss + r0, GridT::kQmin, GridT::kQmax); };
    const double fd_x = central([&](double t) { return sur(t, sf); }, xf, kH * std::fabs(xf) + 1e-9);
    const double fd_s = central([&](double t) { return sur(xf, t); }, sf, kH * sf);
    const ste::Grad g = ste::Lsq<GridT>::backward(xf, sf);
    CHECK(g.dx == doctest::Approx(fd_x).epsilon(1e-6));
    CHECK(close_in_v(g.dparam, fd_s, v));
    // Closed form (Esser et al. 2020).
    const bool in = v >= GridT::kQmin && v <= GridT::kQmax;
    const double ds = in ? rne(v) - v : (v < GridT::kQmin ? GridT::kQmin : GridT::kQmax);
    CHECK(close_in_v(g.dparam, ds, v));
    CHECK(g.dx == (in ? 1.0f : 0.0f));
    // The surrogate agrees with the true forward at the point.
    CHECK(ste::Lsq<GridT>::forward(xf, sf) == doctest::Approx(sur(xf, sf)).epsilon(1e-6).scale(s));
    (in ? inside : outside)++;
  }
  CHECK(inside > 500);
  CHECK(outside > 100);
}

}  // namespace

TEST_CASE("Ste: round forward, identity backward") {
  CHECK(ste::Ste::forward(2.5f) == 2.0f);
  CHECK(ste::Ste::forward(-1.5f) == -2.0f);
  for (double x : {-3.7, -0.2, 0.4, 12.3}) {
    const double r0 = rne(x) - x;
    const double fd = central([&](double t) { return t + r0; }, x, 1e-6);
    CHECK(ste::Ste::backward(static_cast<float>(x)).dx == doctest::Approx(fd));
    CHECK(ste::Ste::backward(static_cast<float>(x)).dparam == 0.0f);
  }
}

TEST_CASE("ClippedSte: gradient 1 on [(qmin - z) s, (qmax - z) s], bounds included") {
  const QuantParam p = QuantParam::make(0.5f);
  CHECK(ste::ClippedSte<GridS8>::forward(1.3f, p) == fake_quantize_value<GridS8>(1.3f, p));
  CHECK(ste::ClippedSte<GridS8>::backward(63.5f, p).dx == 1.0f);
  CHECK(ste::ClippedSte<GridS8>::backward(-63.5f, p).dx == 1.0f);
  CHECK(ste::ClippedSte<GridS8>::backward(63.6f, p).dx == 0.0f);
  CHECK(ste::ClippedSte<GridS8>::backward(-63.6f, p).dx == 0.0f);
  CHECK(ste::ClippedSte<GridS8Full>::backward(-64.0f, p).dx == 1.0f);
  const QuantParam pz = QuantParam::make(0.5f, 10);  // U4 covers [-5, 2.5]
  CHECK(ste::ClippedSte<GridU4>::backward(-5.0f, pz).dx == 1.0f);
  CHECK(ste::ClippedSte<GridU4>::backward(-5.1f, pz).dx == 0.0f);
  CHECK(ste::ClippedSte<GridU4>::backward(2.5f, pz).dx == 1.0f);
  CHECK(ste::ClippedSte<GridU4>::backward(2.6f, pz).dx == 0.0f);
  std::mt19937 rng(2);
  std::uniform_real_distribution<double> u(-8.0, 5.0);
  for (int i = 0; i < 500; ++i) {
    const float x = static_cast<float>(u(rng));
    const double v = static_cast<double>(x) / 0.5 + 10.0;
    if (!well_inside_or_outside(v, 0, 15)) continue;
    const double r0 = rne(v) - v;
    auto sur = [&](double t) { return 0.5 * (clampd(t / 0.5 + 10.0 + r0, 0, 15) - 10.0); };
    const ste::Grad g = ste::ClippedSte<GridU4>::backward(x, pz);
    CHECK(g.dx == doctest::Approx(central(sur, x, 1e-6)));
    CHECK(g.dparam == 0.0f);
  }
}

TEST_CASE("Lsq forward equals fake_quantize_value bit for bit") {
  std::mt19937 rng(4);
  std::uniform_real_distribution<float> ux(-50.0f, 50.0f), us(0.001f, 1.0f);
  for (int i = 0; i < 5000; ++i) {
    const float x = ux(rng), s = us(rng);
    CHECK(ste::Lsq<GridS8>::forward(x, s) == fake_quantize_value<GridS8>(x, QuantParam::make(s)));
    CHECK(ste::Lsq<GridS4Full>::forward(x, s) == fake_quantize_value<GridS4Full>(x, QuantParam::make(s)));
    CHECK(ste::Lsq<GridU8>::forward(x, s) == fake_quantize_value<GridU8>(x, QuantParam::make(s)));
  }
  // Ties follow the normative half-to-even rounding.
  CHECK(ste::Lsq<GridS8>::forward(2.5f, 1.0f) == 2.0f);
  CHECK(ste::Lsq<GridS8>::forward(-0.5f, 1.0f) == 0.0f);
}

TEST_CASE("Lsq gradients vs finite differences and the closed form") {
  check_lsq<GridS8>();
  check_lsq<GridS4>();
  check_lsq<GridS4Full>();
  check_lsq<GridU8>();
  // Exact values at simple points: x/s = 2.3 -> ds = 2 - 2.3; clamp -> qmin / qmax.
  CHECK(ste::Lsq<GridS4>::backward(2.3f, 1.0f).dparam == doctest::Approx(-0.3));
  CHECK(ste::Lsq<GridS4>::backward(9.0f, 1.0f).dparam == 7.0f);
  CHECK(ste::Lsq<GridS4>::backward(-9.0f, 1.0f).dparam == -7.0f);
  CHECK(ste::Lsq<GridS4Full>::backward(-9.0f, 1.0f).dparam == -8.0f);
  CHECK(ste::Lsq<GridS4>::backward(7.0f, 1.0f).dx == 1.0f);  // bound is inside
}

TEST_CASE("lsq_grad_scale is 1/sqrt(n qmax)") {
  CHECK(ste::lsq_grad_scale(4096, 127) == doctest::Approx(1.0 / std::sqrt(4096.0 * 127.0)).epsilon(1e-7));
  CHECK(ste::lsq_grad_scale(1, 1) == 1.0f);
  CHECK_THROWS_WITH_AS(ste::lsq_grad_scale(0, 127), doctest::Contains("n = 0"), Error);
  CHECK_THROWS_AS(ste::lsq_grad_scale(10, 0), Error);
}

TEST_CASE("LsqPlus gradients w.r.t. x, scale and offset") {
  std::mt19937 rng(8);
  std::uniform_real_distribution<double> ux(-3.0, 3.0), us(0.005, 0.03), ub(-1.0, 1.0);
  using G = GridU8;
  int in_count = 0, out_count = 0;
  for (int i = 0; i < 4000; ++i) {
    const float x = static_cast<float>(ux(rng)), s = static_cast<float>(us(rng)), b = static_cast<float>(ub(rng));
    const int q = quantize_value<G>(x - b, QuantParam::make(s));
    CHECK(ste::LsqPlus<G>::forward(x, s, b) == std::fma(s, static_cast<float>(q), b));
    const double v = (static_cast<double>(x) - b) / s;
    if (!well_inside_or_outside(v, G::kQmin, G::kQmax)) continue;
    const double r0 = rne(v) - v;
    auto sur = [&](double xx, double ss, double bb) { return ss * clampd((xx - bb) / ss + r0, G::kQmin, G::kQmax) + bb; };
    const ste::Grad2 g = ste::LsqPlus<G>::backward(x, s, b);
    CHECK(g.dx == doctest::Approx(central([&](double t) { return sur(t, s, b); }, x, 1e-6)).epsilon(1e-6));
    CHECK(close_in_v(g.ds, central([&](double t) { return sur(x, t, b); }, s, kH * s), v));
    CHECK(g.doffset == doctest::Approx(central([&](double t) { return sur(x, s, t); }, b, 1e-6)).epsilon(1e-6).scale(1.0));
    const bool in = v >= G::kQmin && v <= G::kQmax;
    CHECK(close_in_v(g.ds, in ? rne(v) - v : (v < 0 ? 0.0 : 255.0), v));
    CHECK(g.doffset == (in ? 0.0f : 1.0f));
    (in ? in_count : out_count)++;
  }
  CHECK(in_count > 500);
  CHECK(out_count > 500);
}

TEST_CASE("Pact: clip to [0, alpha], quantize with s = alpha / (2^b - 1), PACT gradient") {
  CHECK(ste::Pact<4>::forward(-1.0f, 3.0f) == 0.0f);
  CHECK(ste::Pact<4>::forward(7.0f, 3.0f) == 3.0f);
  CHECK(ste::Pact<4>::forward(1.25f, 3.0f) == 6.0f * (3.0f / 15.0f));  // 1.25 / 0.2 = 6.25 -> 6
  CHECK(ste::Pact<8>::forward(0.7f, 2.0f) ==
        fake_quantize_value<GridU8>(0.7f, QuantParam::make(2.0f / 255.0f)));
  CHECK(ste::Pact<4>::backward(3.0f, 3.0f).dparam == 1.0f);  // x >= alpha
  CHECK(ste::Pact<4>::backward(3.0f, 3.0f).dx == 0.0f);
  CHECK(ste::Pact<4>::backward(0.0f, 3.0f).dx == 1.0f);
  CHECK(ste::Pact<4>::backward(-0.1f, 3.0f).dx == 0.0f);
  std::mt19937 rng(6);
  std::uniform_real_distribution<double> ux(-2.0, 8.0), ua(1.0, 5.0);
  for (int i = 0; i < 3000; ++i) {
    const float x = static_cast<float>(ux(rng)), a = static_cast<float>(ua(rng));
    if (std::fabs(x) < 1e-3 || std::fabs(x - a) < 1e-3) continue;
    const double e0 = static_cast<double>(ste::Pact<4>::forward(x, a)) - clampd(x, 0.0, a);
    auto sur = [&](double xx, double aa) { return clampd(xx, 0.0, aa) + e0; };
    const ste::Grad g = ste::Pact<4>::backward(x, a);
    CHECK(g.dx == doctest::Approx(central([&](double t) { return sur(t, a); }, x, 1e-6)));
    CHECK(g.dparam == doctest::Approx(central([&](double t) { return sur(x, t); }, a, 1e-6)).scale(1.0));
    CHECK(g.dparam == (x >= a ? 1.0f : 0.0f));
  }
}
