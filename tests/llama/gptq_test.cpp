// GPTQ weights of the LLaMA example (llama/gptq.hpp), natural column order and act-order:
// independent of the thread count, lower layer error than the same scales with round to nearest on
// the calibration inputs, and bit-identical fake-quant and integer execution on GPTQ weights
// (dynamic with clip ratio 0.9, and static).
#include <doctest/doctest.h>

#include <string>
#include <vector>

#include "llama/forward_instances.hpp"
#include "llama/gptq.hpp"
#include "llama/integer.hpp"
#include "llama/quantized.hpp"
#include "synthetic_model.hpp"

using namespace sasq::llama;

TEST_CASE("GPTQ model weights: thread count independent, below RTN layer error, fake == integer") {
  const Weights w = test::random_weights(test::quant_config(), 21);
  const RopeTable rope = make_rope_table(w.config.seq_len, w.config.head_size());
  const auto calib = test::lcg_sequences(12, 16, w.config.vocab_size, 5);
  const auto eval = test::lcg_sequences(3, 16, w.config.vocab_size, 6);
  for (WeightMethod method : {WeightMethod::kGptq, WeightMethod::kGptqActOrder})
    for (int wbits : {4, 8})
      for (int group : {0, 32}) {
        CAPTURE(weight_method_name(method));
        CAPTURE(wbits);
        CAPTURE(group);
        const WeightQuantConfig wc{wbits, group, method, false};
        const QuantizedModel qm = quantize_weights_gptq(w, wc, rope, calib, nullptr, 1);
        const QuantizedModel qm2 = quantize_weights_gptq(w, wc, rope, calib, nullptr, 2);
        for (std::size_t l = 0; l < qm.matrices.size(); ++l)
          for (int p = 0; p < kNumProj; ++p) {
            CHECK(qm.matrices[l][static_cast<std::size_t>(p)].q == qm2.matrices[l][static_cast<std::size_t>(p)].q);
            CHECK(qm.matrices[l][static_cast<std::size_t>(p)].scale == qm2.matrices[l][static_cast<std::size_t>(p)].scale);
          }
        // Layer 0 sees the float model's inputs: GPTQ's q_proj and down_proj output errors on them are
        // below those of round to nearest with the same (MSE clip) scales.
        const auto acc = layer_hessians(w, rope, calib, 0, nullptr, 1);
        const QuantizedModel rtn = quantize_weights(w, {wbits, group, WeightMethod::kMse, false});
        for (Proj p : {Proj::kQ, Proj::kDown}) {
          const Eigen::MatrixXd h = acc[static_cast<std::size_t>(site_of(p))].hessian();
          const Eigen::MatrixXd wf = proj_weight(w.layers[0], p).cast<double>();
          const auto err = [&](const QuantizedModel& m) {
            const Eigen::MatrixXd d = wf - proj_weight(m.model.layers[0], p).cast<double>();
            return (d * h * d.transpose()).trace();  // = 2/T ||X W^T - X W^^T||^2
          };
          CAPTURE(proj_name(p));
          CHECK(err(qm) < err(rtn));
        }
        const PackedModel pm = pack_model(qm);
        const SiteParams sp = calibrate(qm.model, rope, calib, ObserverKind::kMinMax, 8);
        for (ActMode mode : {ActMode::kStatic, ActMode::kDynamicPerToken}) {
          ActQuantConfig ac;
          ac.bits = 8;
          ac.mode = mode;
          ac.clip_ratio = mode == ActMode::kDynamicPerToken ? 0.9f : 1.0f;
          FakeQuantExec fake(ac, &sp, &qm);
          IntegerExec integer(pm, ac, &sp);
          for (const auto& s : eval)
            CHECK(forward(qm.model, rope, s, 0, nullptr, fake) == forward(qm.model, rope, s, 0, nullptr, integer));
        }
      }
  CHECK_THROWS_AS(quantize_weights(w, {4, 0, WeightMethod::kGptq, false}), sasq::Error);
  CHECK_THROWS_AS(quantize_weights_gptq(w, {4, 0, WeightMethod::kRtn, false}, rope, calib, nullptr, 1), sasq::Error);
  CHECK_THROWS_AS(quantize_weights_gptq(w, {4, 0, WeightMethod::kGptq, false}, rope, {}, nullptr, 1), sasq::Error);
  CHECK_THROWS_AS(quantize_weights(w, {4, 0, WeightMethod::kGptqActOrder, false}), sasq::Error);
  CHECK(parse_weight_method("gptq") == WeightMethod::kGptq);
  CHECK(parse_weight_method("gptq-ao") == WeightMethod::kGptqActOrder);
  CHECK_THROWS_AS(parse_weight_method("awq"), sasq::Error);
  ActQuantConfig bad;
  bad.bits = 8;
  bad.mode = ActMode::kDynamicPerToken;
  bad.clip_ratio = 1.5f;
  CHECK_THROWS_AS(FakeQuantExec(bad, nullptr), sasq::Error);
}

// True-sequential order (QuaRot's gptq_fwrd): each projection's Hessian is that of its input in the
// model whose earlier layers and the earlier groups [k, v, q], [o], [up, gate] of its own layer are
// already GPTQ-quantized, so GPTQ on that Hessian reproduces its codes; o_proj of layer 0 differs
// from GPTQ on the float model's Hessian (what a one-pass collection per layer would use).
TEST_CASE("GPTQ model weights: true-sequential groups within a layer") {
  const Weights w = test::random_weights(test::quant_config(), 22);
  const RopeTable rope = make_rope_table(w.config.seq_len, w.config.head_size());
  const auto calib = test::lcg_sequences(8, 16, w.config.vocab_size, 7);
  const WeightQuantConfig wc{4, 0, WeightMethod::kGptq, false};
  const sasq::GptqConfig g = example_gptq_config(wc);
  const QuantizedModel qm = quantize_weights_gptq(w, wc, rope, calib, nullptr, 2);
  const auto gptq_codes = [&](const Weights& m, std::size_t l, Proj p) {
    const Eigen::MatrixXd h = layer_hessians(m, rope, calib, static_cast<int>(l), nullptr, 1)
                                  [static_cast<std::size_t>(site_of(p))].hessian();
    const Matrix& wp = proj_weight(w.layers[l], p);
    return sasq::gptq_quantize(sasq::MatrixView<const float>(wp.data(), wp.rows(), wp.cols()), h, g).codes;
  };
  const std::vector<std::vector<Proj>> groups = {
      {Proj::kK, Proj::kV, Proj::kQ}, {Proj::kO}, {Proj::kUp, Proj::kGate}, {Proj::kDown}};
  Weights m = w;  // float, then quantized group by group in the same order
  for (std::size_t l = 0; l < w.layers.size(); ++l)
    for (const auto& group : groups) {
      for (Proj p : group) {
        const std::string name = proj_name(p);
        CAPTURE(l);
        CAPTURE(name);
        CHECK(gptq_codes(m, l, p) == qm.matrices[l][static_cast<std::size_t>(p)].q);
      }
      for (Proj p : group) proj_weight(m.layers[l], p) = proj_weight(qm.model.layers[l], p);
    }
  CHECK(gptq_codes(w, 0, Proj::kO) != qm.matrices[0][static_cast<std::size_t>(Proj::kO)].q);
}
