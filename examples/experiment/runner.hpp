// sasq-experiment's runner: every method of the grid on one model variant, with the caches of
// weights, calibrations and transformed models it shares between methods. Its member functions are
// split over runner.cpp, static_scales.cpp, evaluate.cpp and evaluate_fake.cpp so that they
// compile in parallel; the forward passes with examples/llama's executors come compiled from
// sasq_llama_model (llama/forward_instances.hpp).
#pragma once

#include <map>
#include <string>
#include <tuple>
#include <vector>

#include "experiment/ablation.hpp"
#include "experiment/grid.hpp"
#include "experiment/phases.hpp"
#include "experiment/variants.hpp"
#include "llama/integer.hpp"
#include "llama/model.hpp"
#include "llama/ops.hpp"
#include "llama/perplexity.hpp"
#include "llama/quantized.hpp"
#include "sasq/transform/rotation.hpp"
#include "train/trainer.hpp"

namespace sasq::experiment {

class Runner {
 public:
  Runner(const Options& o, const llama::Weights& base, const Texts& t)
      : o_(o), rope_(llama::make_rope_table(base.config)), t_(t) {}

  /// CPU and wall time per phase of the run (results.md lists them).
  const PhaseTimes& phases() const { return phases_; }

  /// Runs every method of the grid on one model variant. `ablation` (plain variant): receives the
  /// truncation ablation of kAblatedMethod's W8A8 scales.
  void run_variant(const std::string& variant, const llama::Weights& w, std::vector<Row>& rows,
                   std::vector<train::TrainResult>& trainings, std::vector<std::string>& training_names,
                   std::vector<Row>* ablation);

  /// --heldout-only: trains every selected SASQ row of the selected bit configurations on the plain
  /// model `w` and prints (stdout) its perplexity on the held-out stories 951-1000, with the initial
  /// scales and with the learned ones; selected dynamic rows (references) print their held-out
  /// perplexity. Nothing else is evaluated: this is the hyper-parameter search's measure.
  void run_heldout(const llama::Weights& w);

  /// Seconds spent in GPTQ (Hessians and solves) and the number of models it quantized.
  double gptq_seconds() const { return gptq_s_; }
  int gptq_models() const { return gptq_models_; }

 private:
  /// A candidate of the α search: SmoothQuant(α) with RTN weights and its mean-abs-max calibration
  /// (first kAlphaCalibSequences calibration stories), shared by the bit configurations with the
  /// same weights (the activations they see do not depend on the activation width).
  struct AlphaModel {
    llama::QuantizedModel weights;
    llama::CalibrationExec calibration;
  };

  // Perplexities (llama::evaluate_ppl on o_.threads threads); evaluate.cpp, evaluate_fake.cpp.
  /// FP32 model `w`.
  double ppl_fp32(const llama::Weights& w, const Seqs& seqs) const;
  /// Fake-quant model `qm` (activations `ac`, static parameters `sp` or null) behind the online
  /// down_proj rotation `down` (null: none).
  double ppl_fake(const llama::QuantizedModel& qm, const Seqs& seqs, const ActQuantConfig& ac,
                  const llama::SiteParams* sp, const Rotation* down) const;
  /// Fake-quant model `qm` without the online-rotation wrapper (the SmoothQuant α search).
  double ppl_fake_unrotated(const llama::QuantizedModel& qm, const Seqs& seqs, const ActQuantConfig& ac,
                            const llama::SiteParams* sp) const;
  /// FP32 weights `w` with the truncation ablation's activation quantizers `exec`.
  double ppl_truncation(const llama::Weights& w, const Seqs& seqs, const TruncationExec& exec) const;
  /// True-integer path (sasq::gemm) of `qm` packed as `pm` (its logits equal the fake-quant ones).
  llama::PplResult run_integer(const llama::QuantizedModel& qm, const llama::PackedModel& pm, const Seqs& seqs,
                               const ActQuantConfig& ac, const llama::SiteParams* sp, const Rotation* down) const;

  /// The weight quantization of method m's rows.
  WeightMethod weight_method(const Method& m) const;

  /// Weight-quantized `tm` for bit configuration b (GPTQ on the calibration stories, through the
  /// model's online rotation), built once per variant.
  const llama::QuantizedModel& weights(const TransformedModel& tm, const BitConfig& b, WeightMethod wm);

  const llama::PackedModel& packed(const llama::QuantizedModel& qm);

  /// The rotated model with per-channel factors folded in (channel_factors.hpp): per-channel SASQ
  /// on its weight-quantized form for bit configuration b learns steps s_c, m_c = s_c / geometric mean
  /// is folded into the float weights at the attention, o_proj and FFN inputs (the down_proj input,
  /// behind the online rotation, keeps per-tensor steps). Adds the training's seconds to `seconds`.
  const TransformedModel& channel_folded(const BitConfig& b, WeightMethod wm, const std::string& label, double& seconds);

  /// The SmoothQuant model with migration strength alpha (stable address for the caches).
  const TransformedModel& smoothquant(const llama::Weights& w, float alpha);

  /// SmoothQuant's α for bit configuration b: the grid value with the lowest held-out perplexity
  /// (stories 951-1000) of SmoothQuant + static mean-abs-max scales (from the first
  /// kAlphaCalibSequences calibration stories) on RTN weights. No evaluation text is involved.
  float search_alpha(const llama::Weights& w, const BitConfig& b);

  const AlphaModel& alpha_model(const llama::Weights& w, float alpha, const BitConfig& b);

  /// The truncation ablation on the FP32 weights of the variant with the learned scales `params`.
  void run_ablation(const std::string& variant, const llama::Weights& w, const llama::SiteParams& params, int bits,
                    std::vector<Row>& out);

  /// Static parameters from a calibration pass, shared by the bit configurations that quantize the
  /// weights the same way (W8A8 and W8A4 see the same activations; so do W4A8 and W4A4).
  llama::SiteParams calibrate(const llama::Weights& w, const TransformedModel& tm, ObserverKind kind,
                              const BitConfig& b, WeightMethod wm);

  /// SASQ's initial scales: static mean-abs-max (the paper's) or MSE-clip calibration, whichever gives
  /// the lower held-out perplexity (stories 951-1000) on these weights.
  ObserverKind pick_init(const llama::QuantizedModel& qm, const TransformedModel& tm, const BitConfig& b, WeightMethod wm);

  train::TrainResult train(const llama::Weights& w, const TransformedModel& tm, int bits, ObserverKind init,
                           const std::string& label, bool per_channel = false) const;

  void report(const Row& r) const;

  const Options& o_;
  llama::RopeTable rope_;
  const Texts& t_;
  Clock::time_point start_ = Clock::now();
  std::map<std::tuple<const TransformedModel*, ObserverKind, int, int, WeightMethod>, llama::CalibrationExec> calibrations_;
  std::map<std::tuple<const TransformedModel*, int, int, WeightMethod>, llama::QuantizedModel> weights_;
  std::map<const llama::QuantizedModel*, llama::PackedModel> packed_;
  std::map<float, TransformedModel> smoothquant_;
  std::map<Transform, TransformedModel> transformed_;
  std::map<std::string, TransformedModel> folded_;  ///< channel_folded models by bit configuration
  std::map<std::tuple<float, int, int>, AlphaModel> alpha_models_;
  AbsMaxExec stats_;
  PhaseTimes phases_;
  double gptq_s_ = 0.0;
  int gptq_models_ = 0;
};

}  // namespace sasq::experiment
