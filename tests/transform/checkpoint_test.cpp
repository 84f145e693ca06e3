// The transforms on the real stories260K checkpoint, run through the LLaMA example's forward
// (RoPE, GQA, llama2.c semantics): every transformed model computes the same logits.
#include <doctest/doctest.h>

#include <fstream>
#include <string>
#include <vector>

#include "llama/checkpoint.hpp"
#include "llama/model.hpp"
#include "llama/transform_views.hpp"
#include "sasq/transform/llama_block.hpp"
#include "sasq/transform/rotation.hpp"
#include "sasq/transform/smoothing.hpp"

namespace {

using sasq::llama::Matrix;
using sasq::llama::Proj;
using sasq::llama::Site;

/// Float forward that records per-channel abs-max at every linear site and optionally applies the
/// online down_proj rotation (what a runtime does after apply_quarot).
struct Exec {
  const sasq::Rotation* down = nullptr;
  std::vector<std::vector<float>> down_absmax, attn_absmax, ffn_absmax;
  void on_site(int layer, Site s, Matrix& x) {
    const auto l = static_cast<std::size_t>(layer);
    auto record = [&](std::vector<std::vector<float>>& stat) {
      if (stat.size() <= l) stat.resize(l + 1);
      stat[l] = sasq::column_absmax(sasq::MatrixView<const float>(x.data(), x.rows(), x.cols()));
    };
    if (s == Site::kAttnIn) record(attn_absmax);
    if (s == Site::kFfnIn) record(ffn_absmax);
    if (s == Site::kDownIn) {
      record(down_absmax);
      if (down) sasq::apply_rotation(*down, sasq::MatrixView<float>(x.data(), x.rows(), x.cols()));
    }
  }
  void linear(int, Proj, const Matrix& x, const Matrix& w, Matrix& y) { sasq::llama::linear(x, w, y); }
};

double relative_max_error(const Matrix& a, const Matrix& b) {
  return (a - b).cwiseAbs().maxCoeff() / std::max(1.0f, b.cwiseAbs().maxCoeff());
}

}  // namespace

TEST_CASE("stories260K: SmoothQuant, QuaRot and SmoothRot + QuaRot keep the logits") {
  const std::string path = std::string(SASQ_DATA_DIR) + "/stories260K/stories260K.bin";
  if (!std::ifstream(path).good()) {
    MESSAGE("skipped: " << path << " not found");
    return;
  }
  const sasq::llama::Weights original = sasq::llama::load_checkpoint(path);
  const auto& c = original.config;
  const auto rope = sasq::llama::make_rope_table(c.seq_len, c.head_size());
  const std::vector<int> tokens = {1, 403, 407, 261, 378, 11, 297, 269, 1, 30, 47, 5, 300, 400, 500, 7};
  const sasq::Span<const int> toks(tokens);
  Exec calib;
  const Matrix ref = sasq::llama::forward(original, rope, toks, 0, nullptr, calib);
  constexpr double kTolerance = 1e-4;

  SUBCASE("SmoothQuant at q/k/v and gate/up inputs") {
    sasq::llama::Weights w = original;
    auto m = sasq::llama::transform_views(w);
    for (std::size_t l = 0; l < m.layers.size(); ++l) {
      sasq::smooth_attn_input(m.layers[l], calib.attn_absmax[l], 0.5f);
      sasq::smooth_ffn_input(m.layers[l], calib.ffn_absmax[l], 0.5f);
    }
    Exec e;
    CHECK(relative_max_error(sasq::llama::forward(w, rope, toks, 0, nullptr, e), ref) < kTolerance);
  }
  SUBCASE("QuaRot (172 uses the seeded orthogonal fallback) and SmoothRot + QuaRot") {
    for (bool smooth_down : {false, true}) {
      sasq::llama::Weights w = original;
      auto m = sasq::llama::transform_views(w);
      if (smooth_down) {
        for (std::size_t l = 0; l < m.layers.size(); ++l) {
          sasq::smooth_down_input(m.layers[l], calib.down_absmax[l], 0.5f);
        }
      }
      const auto plan = sasq::make_quarot_plan(static_cast<std::size_t>(c.dim), static_cast<std::size_t>(c.hidden_dim),
                                               static_cast<std::size_t>(c.head_size()), 1);
      sasq::apply_quarot(m, plan);
      Exec e;
      e.down = &plan.down;
      INFO("smooth_down = ", smooth_down);
      CHECK(relative_max_error(sasq::llama::forward(w, rope, toks, 0, nullptr, e), ref) < kTolerance);
      // The rotation really moved the weights.
      CHECK((w.layers[0].wq - original.layers[0].wq).cwiseAbs().maxCoeff() > 1e-2f);
    }
  }
}
