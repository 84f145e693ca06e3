// Model variants and function-preserving transforms of the LLaMA example for the experiment:
// the stress variant (outlier channels injected through RMSNorm), SmoothQuant, QuaRot-style rotation
// and SmoothRot, all applied to float weights before weight quantization.
#pragma once

#include <algorithm>
#include <array>
#include <cstdint>
#include <optional>
#include <utility>
#include <vector>

#include "llama/model.hpp"
#include "llama/online_rotation.hpp"
#include "llama/parallel.hpp"
#include "llama/transform_views.hpp"
#include "llama/weights.hpp"
#include "sasq/core/matrix_view.hpp"
#include "sasq/core/span.hpp"
#include "sasq/transform/llama_block.hpp"
#include "sasq/transform/rotation.hpp"
#include "sasq/transform/smoothing.hpp"

namespace sasq::experiment {

using llama::Matrix;
using llama::Site;
using llama::Weights;

/// One injected outlier channel: RMSNorm weight × factor, matching weight columns ÷ factor.
struct OutlierChannel {
  int channel;
  float factor;
};

/// The stress variant's channels (same in every layer, both norms): three channels scaled by 30,
/// 60 and 100, as the few massive outlier channels of large LLMs' residual stream.
inline const std::array<OutlierChannel, 3> kStressChannels = {{{5, 30.0f}, {23, 60.0f}, {47, 100.0f}}};

/// Function-preserving stress transform: for every layer, rms_att[c] and rms_ffn[c] *= f and the
/// columns c of wq/wk/wv (resp. w1/w3) /= f. The normed activations feeding q/k/v and gate/up get
/// outlier channels while the float model computes the same function (up to float rounding).
inline Weights make_stress_variant(const Weights& base) {
  Weights w = base;
  for (auto& l : w.layers)
    for (const OutlierChannel& oc : kStressChannels) {
      SASQ_REQUIRE(oc.channel < w.config.dim, "stress channel ", oc.channel, " >= dim ", w.config.dim);
      l.rms_att[oc.channel] *= oc.factor;
      l.rms_ffn[oc.channel] *= oc.factor;
      for (Matrix* m : {&l.wq, &l.wk, &l.wv}) m->col(oc.channel) /= oc.factor;
      for (Matrix* m : {&l.w1, &l.w3}) m->col(oc.channel) /= oc.factor;
    }
  return w;
}

/// Per-channel abs-max of the four linear inputs (float model, no quantization): site[s][layer][channel].
struct AbsMaxExec {
  std::vector<std::vector<float>> site[llama::kNumLinearSites];
  const std::vector<float>& at(Site s, std::size_t layer) const { return site[static_cast<int>(s)][layer]; }
  void on_site(int layer, Site s, Matrix& x) {
    if (static_cast<int>(s) >= llama::kNumLinearSites) return;
    auto& st = site[static_cast<int>(s)];
    const auto l = static_cast<std::size_t>(layer);
    if (st.size() <= l) st.resize(l + 1);
    auto& v = st[l];
    if (v.empty()) v.assign(static_cast<std::size_t>(x.cols()), 0.0f);
    accumulate_column_absmax(MatrixView<const float>(x.data(), x.rows(), x.cols()), Span<float>(v));
  }
  void linear(int, llama::Proj, const Matrix& x, const Matrix& w, Matrix& y) { llama::linear(x, w, y); }
};

/// The abs-maxima over `calib` on `threads` threads (a maximum does not depend on the order); with
/// `down`, the down_proj input is taken behind that online rotation.
inline AbsMaxExec collect_absmax(const Weights& w, const llama::RopeTable& rope,
                                 const std::vector<std::vector<int>>& calib, int threads,
                                 const Rotation* down = nullptr) {
  using Ex = llama::OnlineRotationExec<AbsMaxExec>;
  std::vector<Ex> ex(static_cast<std::size_t>(llama::parallel_workers(calib.size(), threads)), Ex{{}, down});
  llama::parallel_for(calib.size(), threads, [&](std::size_t i, int worker) {
    llama::forward(w, rope, Span<const int>(calib[i]).subspan(0, calib[i].size() - 1), 0, nullptr,
                   ex[static_cast<std::size_t>(worker)]);
  });
  AbsMaxExec out = std::move(ex[0].inner);
  for (std::size_t k = 1; k < ex.size(); ++k)
    for (int s = 0; s < llama::kNumLinearSites; ++s) {
      auto& dst = out.site[s];
      const auto& src = ex[k].inner.site[s];
      if (dst.size() < src.size()) dst.resize(src.size());
      for (std::size_t l = 0; l < src.size(); ++l) {
        auto& d = dst[l];
        const auto& v = src[l];
        if (d.empty()) d.assign(v.size(), 0.0f);
        for (std::size_t c = 0; c < v.size(); ++c) d[c] = std::max(d[c], v[c]);
      }
    }
  return out;
}

/// Which equivalent transform a method applies before quantization.
enum class Transform { kNone, kSmoothQuant, kRotation, kSmoothRot };

inline const char* transform_name(Transform t) {
  switch (t) {
    case Transform::kNone: return "none";
    case Transform::kSmoothQuant: return "smoothquant";
    case Transform::kRotation: return "rotation";
    case Transform::kSmoothRot: return "smoothrot";
  }
  return "?";
}

/// SmoothRot's down_proj smoothing strength (its paper's default); SmoothQuant's α is searched per
/// bit configuration over kSmoothQuantAlphas (experiment.cpp) on calibration-side text.
inline constexpr float kSmoothAlpha = 0.5f;
/// The α grid of the SmoothQuant baseline (SmoothQuant's per-model choices lie in 0.4-0.85).
inline constexpr std::array<float, 6> kSmoothQuantAlphas = {0.3f, 0.4f, 0.5f, 0.6f, 0.7f, 0.8f};
/// Seed of the randomized Hadamard rotations.
inline constexpr std::uint64_t kRotationSeed = 1;

/// A transformed float model and, for rotations, the online rotation of down_proj inputs (R4)
/// that the runtime must apply before quantizing them.
struct TransformedModel {
  Weights weights;
  std::optional<Rotation> down;
};

/// Applies `t` to a copy of `base`; smoothing factors come from `stats` (collect_absmax of `base` on
/// calibration text); `alpha` is SmoothQuant's migration strength.
inline TransformedModel apply_transform(const Weights& base, Transform t, const AbsMaxExec& stats,
                                        float alpha = kSmoothAlpha) {
  TransformedModel out{base, std::nullopt};
  if (t == Transform::kNone) return out;
  LlamaModelViews views = llama::transform_views(out.weights);
  const auto n_layers = views.layers.size();
  if (t == Transform::kSmoothQuant) {
    for (std::size_t l = 0; l < n_layers; ++l) {
      smooth_attn_input(views.layers[l], Span<const float>(stats.at(Site::kAttnIn, l)), alpha);
      smooth_ffn_input(views.layers[l], Span<const float>(stats.at(Site::kFfnIn, l)), alpha);
    }
    return out;
  }
  if (t == Transform::kSmoothRot)
    for (std::size_t l = 0; l < n_layers; ++l)
      smooth_down_input(views.layers[l], Span<const float>(stats.at(Site::kDownIn, l)), kSmoothAlpha);
  const llama::Config& c = base.config;
  QuaRotPlan plan = make_quarot_plan(static_cast<std::size_t>(c.dim), static_cast<std::size_t>(c.hidden_dim),
                                     static_cast<std::size_t>(c.head_size()), kRotationSeed);
  apply_quarot(views, plan);
  out.down = std::move(plan.down);
  return out;
}

}  // namespace sasq::experiment
