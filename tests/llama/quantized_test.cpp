// Quantized model: weight quantization bounds, calibration, and fake-quant vs true-integer
// (sasq::gemm) agreement: the logits are bit-identical for every bit width and scale mode.
#include <doctest/doctest.h>

#include <cmath>
#include <vector>

#include "llama/forward_instances.hpp"
#include "llama/integer.hpp"
#include "llama/quantized.hpp"
#include "synthetic_model.hpp"

using namespace sasq::llama;

TEST_CASE("weight quantization: range, error bound, group scales, MSE clip never worse than RTN") {
  std::mt19937 rng(5);
  Matrix w = test::random_matrix(rng, 24, 100, 1.0f);
  w(3, 7) = 25.0f;  // an outlier
  for (int bits : {8, 4})
    for (int group : {0, 32}) {
      WeightQuantConfig cfg;
      cfg.bits = bits;
      cfg.group_size = group;
      const QuantizedMatrix q = quantize_matrix(w, cfg);
      const int qmax = bits == 8 ? 127 : 7;
      const Eigen::Index groups = group == 0 ? 1 : 4;  // ceil(100 / 32)
      REQUIRE(q.scale.size() == static_cast<std::size_t>(24 * groups));
      for (Eigen::Index r = 0; r < w.rows(); ++r)
        for (Eigen::Index c = 0; c < w.cols(); ++c) {
          const float s = q.scale[static_cast<std::size_t>(r * groups + (group == 0 ? 0 : c / group))];
          const int v = q.q[static_cast<std::size_t>(r * w.cols() + c)];
          CHECK(std::abs(v) <= qmax);
          CHECK(q.values(r, c) == static_cast<float>(v));
          CHECK(q.dequantized(r, c) == s * static_cast<float>(v));
          CHECK(std::fabs(w(r, c) - q.dequantized(r, c)) <= 0.5f * s * 1.0001f);
        }
      cfg.method = WeightMethod::kMse;
      const QuantizedMatrix m = quantize_matrix(w, cfg);
      CHECK((w - m.dequantized).squaredNorm() <= (w - q.dequantized).squaredNorm() * 1.0001f);
    }
  WeightQuantConfig bad;
  bad.bits = 3;
  CHECK_THROWS_AS(quantize_matrix(w, bad), sasq::Error);
}

TEST_CASE("activation quantization off reproduces the float forward") {
  const Weights w = test::random_weights(test::quant_config(), 3);
  const RopeTable rope = make_rope_table(w.config.seq_len, w.config.head_size());
  const auto seq = test::lcg_sequences(1, 10, w.config.vocab_size, 1)[0];
  FakeQuantExec off(ActQuantConfig{}, nullptr);
  CHECK(forward(w, rope, seq, 0, nullptr, off) == forward(w, rope, seq));
}

TEST_CASE("calibration gives valid static scales; mean-abs-max never exceeds min-max") {
  const Weights w = test::random_weights(test::quant_config(), 4);
  const RopeTable rope = make_rope_table(w.config.seq_len, w.config.head_size());
  const auto calib = test::lcg_sequences(6, 14, w.config.vocab_size, 2);
  const SiteParams mm = calibrate(w, rope, calib, ObserverKind::kMinMax, 8);
  const SiteParams mam = calibrate(w, rope, calib, ObserverKind::kMeanAbsMax, 8);
  REQUIRE(mm.size() == static_cast<std::size_t>(w.config.n_layers));
  for (std::size_t l = 0; l < mm.size(); ++l)
    for (int s = 0; s < kNumSites; ++s) {
      CHECK(std::isfinite(mm[l][static_cast<std::size_t>(s)].scale));
      CHECK(mm[l][static_cast<std::size_t>(s)].scale > 0.0f);
      CHECK(mam[l][static_cast<std::size_t>(s)].scale <= mm[l][static_cast<std::size_t>(s)].scale);
    }
  CHECK_THROWS_AS(calibrate(w, rope, {}, ObserverKind::kMinMax, 8), sasq::Error);
  CHECK_THROWS_AS(parse_observer("median"), sasq::Error);
}

TEST_CASE("fake-quant and integer execution give bit-identical logits") {
  const Weights w = test::random_weights(test::quant_config(), 9);
  const RopeTable rope = make_rope_table(w.config.seq_len, w.config.head_size());
  const auto calib = test::lcg_sequences(4, 16, w.config.vocab_size, 3);
  const auto eval = test::lcg_sequences(3, 16, w.config.vocab_size, 4);
  for (int wbits : {8, 4})
    for (int group : {0, 32})
      for (int abits : {8, 4})
        for (ActMode mode : {ActMode::kStatic, ActMode::kDynamicPerToken})
          for (bool kv : {false, true}) {
            const float clip = mode == ActMode::kDynamicPerToken && kv ? 0.9f : 1.0f;  // QuaRot's clip ratio
            CAPTURE(wbits);
            CAPTURE(group);
            CAPTURE(abits);
            CAPTURE(static_cast<int>(mode));
            CAPTURE(kv);
            WeightQuantConfig wc;
            wc.bits = wbits;
            wc.group_size = group;
            const QuantizedModel qm = quantize_weights(w, wc);
            const PackedModel pm = pack_model(qm);
            const SiteParams sp = calibrate(qm.model, rope, calib, ObserverKind::kMinMax, abits);
            ActQuantConfig ac;
            ac.bits = abits;
            ac.mode = mode;
            ac.kv_cache = kv;
            ac.clip_ratio = clip;
            FakeQuantExec fake(ac, &sp, &qm);
            IntegerExec integer(pm, ac, &sp);
            for (const auto& s : eval) {
              const Matrix a = forward(qm.model, rope, s, 0, nullptr, fake);
              const Matrix b = forward(qm.model, rope, s, 0, nullptr, integer);
              CHECK(a == b);
              // The factored fake-quant linear stays close to x^ W^^T computed directly.
              FakeQuantExec plain(ac, &sp);
              const Matrix c = forward(qm.model, rope, s, 0, nullptr, plain);
              CHECK((a - c).cwiseAbs().maxCoeff() < 0.05f * (1.0f + a.cwiseAbs().maxCoeff()));
            }
          }
  WeightQuantConfig none;
  CHECK_THROWS_AS(pack_model(quantize_weights(w, none)), sasq::Error);
  ActQuantConfig off;
  PackedModel empty;
  CHECK_THROWS_AS(IntegerExec(empty, off, nullptr), sasq::Error);
}
