// The truncation ablation's execution policy (examples/experiment/ablation.hpp): clip only, round only
// and both, at the selected linear-input sites only.
#include <doctest/doctest.h>

#include <cmath>
#include <random>

#include "experiment/ablation.hpp"
#include "sasq/quant/params.hpp"

using namespace sasq;
using experiment::Truncation;
using experiment::TruncationExec;

namespace {

llama::Matrix random_activations(int rows, int cols, float spread) {
  std::mt19937 rng(11);
  std::normal_distribution<float> d(0.0f, spread);
  llama::Matrix x(rows, cols);
  for (Eigen::Index i = 0; i < x.size(); ++i) x.data()[i] = d(rng);
  x(0, 0) = 40.0f;  // outliers beyond the grid on both sides
  x(1, 1) = -40.0f;
  return x;
}

}  // namespace

TEST_CASE("TruncationExec: clip only clamps to [s·qmin, s·qmax], round only never clamps, both is the fake quantizer") {
  const QuantParam p = param_from_absmax<GridS4Full>(3.0f);  // s = 3/7 on [-8, 7]
  llama::SiteParams params(2);
  for (auto& layer : params) layer.fill(p);
  const llama::Matrix x = random_activations(8, 33, 2.0f);
  const float lo = p.scale * -8.0f, hi = p.scale * 7.0f;
  for (const Truncation mode : {Truncation::kClipOnly, Truncation::kRoundOnly, Truncation::kBoth}) {
    TruncationExec exec{&params, 4, mode, {true, false, true, false}};
    llama::Matrix y = x;
    exec.on_site(1, llama::Site::kAttnIn, y);
    for (Eigen::Index i = 0; i < x.size(); ++i) {
      const float v = x.data()[i], got = y.data()[i];
      if (mode == Truncation::kClipOnly) {
        CHECK(got == std::fmin(std::fmax(v, lo), hi));
      } else if (mode == Truncation::kRoundOnly) {
        CHECK(got == p.scale * round_half_even(v * p.inv_scale));
        CHECK(std::fabs(got - v) <= 0.5f * p.scale * (1.0f + 1e-6f));  // no clamp: 40 stays ~40
      } else {
        CHECK(got == fake_quantize_value<GridS4Full>(v, p));
      }
    }
    // Unselected linear sites and the KV-cache sites are left alone.
    for (const llama::Site s : {llama::Site::kOprojIn, llama::Site::kDownIn, llama::Site::kKCache, llama::Site::kVCache}) {
      llama::Matrix z = x;
      exec.on_site(0, s, z);
      CHECK(z == x);
    }
  }
  // Clipping alone removes the outliers' excess; rounding alone keeps them.
  llama::Matrix c = x, r = x;
  TruncationExec{&params, 4, Truncation::kClipOnly, {true, true, true, true}}.on_site(0, llama::Site::kFfnIn, c);
  TruncationExec{&params, 4, Truncation::kRoundOnly, {true, true, true, true}}.on_site(0, llama::Site::kFfnIn, r);
  CHECK(c(0, 0) == hi);
  CHECK(c(1, 1) == lo);
  CHECK(r(0, 0) > 39.0f);
  CHECK(r(1, 1) < -39.0f);
}

TEST_CASE("TruncationExec rejects an unsupported activation width") {
  llama::SiteParams params(1);
  params[0].fill(param_from_absmax<GridS8Full>(1.0f));
  llama::Matrix x = random_activations(2, 4, 1.0f);
  TruncationExec exec{&params, 6, Truncation::kBoth, {true, true, true, true}};
  CHECK_THROWS_AS(exec.on_site(0, llama::Site::kAttnIn, x), Error);
}
