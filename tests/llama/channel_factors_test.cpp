// sasq-experiment's per-channel activation factors (examples/experiment/channel_factors.hpp): every
// fold is function-preserving on a rotated GQA model, so only the quantizer sees x_c / m_c.
#include <doctest/doctest.h>

#include <cmath>
#include <random>
#include <vector>

#include "experiment/channel_factors.hpp"
#include "llama/integer.hpp"
#include "llama/model.hpp"
#include "llama/online_rotation.hpp"
#include "llama/quantized.hpp"
#include "synthetic_model.hpp"

namespace {

using namespace sasq;
using namespace sasq::experiment;

llama::Matrix logits(const TransformedModel& tm, const llama::RopeTable& rope, const std::vector<int>& toks) {
  auto ex = llama::with_online_rotation(llama::Fp32Exec{}, tm.down ? &*tm.down : nullptr);
  return llama::forward(tm.weights, rope, Span<const int>(toks), 0, nullptr, ex);
}

double max_rel_diff(const llama::Matrix& a, const llama::Matrix& b) {
  return static_cast<double>((a - b).cwiseAbs().maxCoeff() / b.cwiseAbs().maxCoeff());
}

}  // namespace

TEST_CASE("per-channel factors folded after the rotation preserve the float model") {
  const llama::Config c = llama::test::quant_config();  // GQA: 4 query heads on 2 kv heads
  const llama::Weights base = llama::test::random_weights(c, 7);
  const llama::RopeTable rope = llama::make_rope_table(c);
  const auto calib = llama::test::lcg_sequences(6, c.seq_len, c.vocab_size, 3);
  const TransformedModel rot = apply_transform(base, Transform::kRotation, AbsMaxExec{});
  const llama::Matrix ref = logits(rot, rope, calib[0]);

  SUBCASE("abs-max^alpha factors, every foldable site") {
    TransformedModel f = rot;
    fold_channel_factors(f, rope, calib, 1, 0.5f, "aof");
    CHECK(max_rel_diff(logits(f, rope, calib[0]), ref) < 1e-4);
    // The factors did change the inputs: the attention-input norm is no longer all ones.
    CHECK((f.weights.layers[0].rms_att.array() - 1.0f).abs().maxCoeff() > 0.01f);
    // The activations the quantizers see are x_c / m_c: their per-channel abs-max spread shrinks.
    const AbsMaxExec a = collect_absmax(rot.weights, rope, calib, 1, rot.down ? &*rot.down : nullptr),
                     b = collect_absmax(f.weights, rope, calib, 1, f.down ? &*f.down : nullptr);
    for (int s : {0, 2}) {  // attention and FFN inputs (o_proj: one factor per kv head group)
      const auto& x = a.site[s][1];
      const auto& y = b.site[s][1];
      auto spread = [](const std::vector<float>& v) {
        double lo = 1e30, hi = 0;
        for (float e : v) lo = std::min(lo, static_cast<double>(e)), hi = std::max(hi, static_cast<double>(e));
        return hi / lo;
      };
      CHECK(spread(y) < spread(x));
    }
  }
  SUBCASE("learned per-channel steps, kv heads shared by query heads") {
    train::ScalesFile sf;
    sf.n_layers = c.n_layers;
    sf.granularity = train::Granularity::kPerChannel;
    std::mt19937 rng(5);
    std::uniform_real_distribution<float> u(0.2f, 3.0f);
    for (int l = 0; l < c.n_layers; ++l)
      for (llama::Site s : {llama::Site::kAttnIn, llama::Site::kOprojIn, llama::Site::kFfnIn}) {
        train::SiteScales ss{l, s, std::vector<float>(static_cast<std::size_t>(c.dim))};
        for (float& v : ss.scale) v = u(rng);
        sf.sites.push_back(ss);
      }
    TransformedModel f = rot;
    fold_learned_factors(f, sf, "aof");
    CHECK(max_rel_diff(logits(f, rope, calib[0]), ref) < 1e-4);
    // Attention input: m_c = s_c / geometric mean, so rms_att = 1 / m.
    const std::vector<float>& s0 = sf.sites[0].scale;
    double lg = 0;
    for (float v : s0) lg += std::log(static_cast<double>(v));
    const double g = std::exp(lg / static_cast<double>(s0.size()));
    for (std::size_t j = 0; j < s0.size(); ++j)
      CHECK(f.weights.layers[0].rms_att[static_cast<Eigen::Index>(j)] == doctest::Approx(g / s0[j]).epsilon(1e-5));
    // The folded model is an ordinary rotated model: at W4A4 with static per-tensor scales its
    // fake-quant and integer (sasq::gemm) logits stay bit-identical behind the online rotation.
    llama::WeightQuantConfig wc;
    wc.bits = 4;
    const llama::QuantizedModel qm = llama::quantize_weights(f.weights, wc);
    const llama::PackedModel pm = llama::pack_model(qm);
    const llama::SiteParams sp = llama::calibrate(qm.model, rope, calib, llama::ObserverKind::kMeanAbsMax, 4, &*f.down);
    llama::ActQuantConfig ac;
    ac.bits = 4;
    ac.mode = llama::ActMode::kStatic;
    auto fake = llama::with_online_rotation(llama::FakeQuantExec(ac, &sp, &qm), &*f.down);
    auto integer = llama::with_online_rotation(llama::IntegerExec(pm, ac, &sp), &*f.down);
    for (const auto& toks : calib) {
      const llama::Matrix a = llama::forward(qm.model, rope, Span<const int>(toks), 0, nullptr, fake);
      const llama::Matrix b = llama::forward(qm.model, rope, Span<const int>(toks), 0, nullptr, integer);
      CHECK(a == b);
    }
    train::ScalesFile bad = sf;
    bad.granularity = train::Granularity::kPerTensor;
    CHECK_THROWS(fold_learned_factors(f, bad, "a"));
  }
}
