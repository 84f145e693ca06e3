#include <doctest/doctest.h>

#include <cstddef>
#include <vector>

#include "llama_reference.hpp"
#include "sasq/core/status.hpp"
#include "sasq/transform/llama_block.hpp"
#include "sasq/transform/smoothing.hpp"

namespace {

using sasq::test::LlamaShape;
using sasq::test::TinyLlama;

// Shapes from the brief: stories260K (64, 172, head 8, GQA 8/4), a 256-wide block, and one
// 4096-wide layer kept cheap with 2 heads of 32, a 172 FFN and 3 tokens.
const LlamaShape kShapes[] = {
    {64, 172, 8, 4, 8, 32, 2},
    {256, 172, 4, 2, 64, 16, 1},
    {4096, 172, 2, 1, 32, 8, 1},
};
constexpr double kTolerance = 2e-4;  // max |Δlogit| / max(1, max |logit|), FP32 weights

std::vector<int> tokens_for(const LlamaShape& s) {
  std::vector<int> t;
  const int n = s.dim >= 4096 ? 3 : 7;
  for (int i = 0; i < n; ++i) t.push_back(static_cast<int>((5 * i) % s.vocab));
  return t;
}

std::vector<float> absmax_of(const std::vector<float>& act, std::ptrdiff_t cols) {
  const auto rows = static_cast<std::ptrdiff_t>(act.size()) / cols;
  return sasq::column_absmax(sasq::MatrixView<const float>(act.data(), rows, cols));
}

}  // namespace

TEST_CASE("SmoothQuant folds (attention and FFN inputs) preserve the model output") {
  for (const auto& s : kShapes) {
    INFO("dim ", s.dim);
    TinyLlama ref(s, 1), smoothed(s, 1);
    std::vector<sasq::test::LayerTrace> traces;
    const auto tokens = tokens_for(s);
    const auto y = ref.forward(tokens, nullptr, &traces);
    auto m = smoothed.views();
    for (std::size_t i = 0; i < m.layers.size(); ++i) {
      const auto sa = sasq::smooth_attn_input(m.layers[i], absmax_of(traces[i].attn_in, s.dim), 0.5f);
      sasq::smooth_ffn_input(m.layers[i], absmax_of(traces[i].ffn_in, s.dim), 0.85f);
      CHECK(sa.size() == static_cast<std::size_t>(s.dim));
    }
    CHECK(sasq::test::relative_max_error(smoothed.forward(tokens, nullptr), y) < kTolerance);
  }
}

TEST_CASE("QuaRot rotation (folded norms, R1, per-head R2, online R4) preserves the model output") {
  for (const auto& s : kShapes) {
    INFO("dim ", s.dim);
    TinyLlama ref(s, 2), rotated(s, 2);
    const auto tokens = tokens_for(s);
    const auto y = ref.forward(tokens, nullptr);
    auto m = rotated.views();
    const auto plan = sasq::make_quarot_plan(static_cast<std::size_t>(s.dim), static_cast<std::size_t>(s.hidden),
                                             static_cast<std::size_t>(s.head_dim), 42);
    sasq::apply_quarot(m, plan);
    for (float g : m.final_norm) CHECK(g == 1.0f);
    const auto yr = rotated.forward(tokens, &plan.down);
    CHECK(sasq::test::relative_max_error(yr, y) < kTolerance);
    // Without the online rotation of down_proj's input the function changes.
    CHECK(sasq::test::relative_max_error(rotated.forward(tokens, nullptr), y) > 1e-2);
  }
}

TEST_CASE("SmoothRot (down_proj smoothing into up rows, then QuaRot) preserves the model output") {
  for (const auto& s : kShapes) {
    INFO("dim ", s.dim);
    TinyLlama ref(s, 3), model(s, 3);
    std::vector<sasq::test::LayerTrace> traces;
    const auto tokens = tokens_for(s);
    const auto y = ref.forward(tokens, nullptr, &traces);
    auto m = model.views();
    for (std::size_t i = 0; i < m.layers.size(); ++i) {
      sasq::smooth_down_input(m.layers[i], absmax_of(traces[i].down_in, s.hidden), 0.5f);
    }
    CHECK(sasq::test::relative_max_error(model.forward(tokens, nullptr), y) < kTolerance);
    const auto plan = sasq::make_quarot_plan(static_cast<std::size_t>(s.dim), static_cast<std::size_t>(s.hidden),
                                             static_cast<std::size_t>(s.head_dim), 7);
    sasq::apply_quarot(m, plan);
    CHECK(sasq::test::relative_max_error(model.forward(tokens, &plan.down), y) < kTolerance);
  }
}

TEST_CASE("per-head value/output rotation alone preserves the output") {
  const LlamaShape s = kShapes[0];
  TinyLlama ref(s, 4), model(s, 4);
  const auto tokens = tokens_for(s);
  auto m = model.views();
  const auto h = sasq::Rotation::hadamard(static_cast<std::size_t>(s.head_dim));
  for (auto& l : m.layers) sasq::rotate_value_output_per_head(l, h);
  CHECK(sasq::test::relative_max_error(model.forward(tokens, nullptr), ref.forward(tokens, nullptr)) < kTolerance);
}

TEST_CASE("misuse is reported with a clear error") {
  const LlamaShape s = kShapes[0];
  TinyLlama model(s, 5);
  auto m = model.views();
  const auto q = sasq::Rotation::hadamard(64);
  CHECK_THROWS_WITH_AS(sasq::rotate_residual(m, q), doctest::Contains("fold_final_norm"), sasq::Error);
  sasq::fold_final_norm(m);
  CHECK_THROWS_WITH_AS(sasq::rotate_residual(m, q), doctest::Contains("fold_rmsnorm"), sasq::Error);
  CHECK_THROWS_AS(sasq::rotate_residual(m, sasq::Rotation::hadamard(32)), sasq::Error);
  auto bad = m.layers[0];
  bad.w2 = sasq::MatrixView<float>(bad.w2.data(), 63, 172);
  CHECK_THROWS_WITH_AS(sasq::fold_rmsnorm(bad), doctest::Contains("w2 is 63x172"), sasq::Error);
  std::vector<float> short_stat(10, 1.0f);
  CHECK_THROWS_AS(sasq::smooth_attn_input(m.layers[0], short_stat, 0.5f), sasq::Error);
  CHECK_THROWS_AS(sasq::rotate_down_input(m.layers[0], sasq::Rotation::hadamard(64)), sasq::Error);
}
