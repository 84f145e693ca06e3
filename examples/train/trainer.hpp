// SASQ scale trainer (arXiv 2512.14481): learns static activation-quantizer scales with every
// weight frozen (weights are quantized once by the caller and only read here).
//   parameter θ = ln s per scale, so s = exp(θ) > 0 always;  dL/dθ = s · dL/ds
//   dL/ds from the LSQ/STE backward (llama/backward.hpp), optionally × 1/sqrt(N · qmax) (LSQ)
//   Adam (β1 0.9, β2 0.999, ε 1e-8) on θ only; lr: linear warmup, then cosine or linear decay to
//   lr · min_lr_ratio; gradients clipped to a global L2 norm; loss = mean next-token NLL of a batch
//   (optionally mixed with distillation from a float teacher: TrainOptions::kd_weight)
//   init: s0 = observer over calibration sequences (default mean over sequences of per-sequence
//   abs-max / qmax = SASQ's "average of the per-batch factors"); early stopping on held-out NLL.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "llama/model.hpp"
#include "llama/perplexity.hpp"
#include "llama/quantized.hpp"
#include "llama/tokenizer.hpp"
#include "llama/weights.hpp"
#include "sasq/core/status.hpp"
#include "sasq/transform/rotation.hpp"
#include "train/scales_file.hpp"

// The functions are defined in trainer.cpp (library sasq_llama_model).
namespace sasq::train {

/// Learning-rate decay after the warmup.
enum class LrSchedule { kCosine, kLinear, kConstant };

/// Activation quantization being trained: symmetric static grid at the given sites.
struct QuantConfig {
  int bits = 8;             ///< 4 or 8
  Granularity granularity = Granularity::kPerTensor;
  llama::ObserverKind observer = llama::ObserverKind::kMeanAbsMax;  ///< initialisation (sasq observers)
  /// Quantized sites in every layer (linear-input sites only: the KV-cache sites are not trained).
  std::vector<llama::Site> sites = {llama::Site::kAttnIn, llama::Site::kOprojIn, llama::Site::kFfnIn,
                                    llama::Site::kDownIn};
  /// Online rotation of down_proj inputs of a rotated model (QuaRot R4), applied before the
  /// kDownIn quantizer in calibration, training and evaluation; null = none. Must outlive its use.
  const Rotation* down_rotation = nullptr;
  /// The activation grid of llama::FakeQuantExec (llama::with_act_grid), so that trained scales
  /// mean the same thing at evaluation.
  int qmax() const { return llama::with_act_grid(bits, [](auto g) { return decltype(g)::kQmax; }); }
  int qmin() const { return llama::with_act_grid(bits, [](auto g) { return decltype(g)::kQmin; }); }
  bool full_range() const { return qmin() == -qmax() - 1; }
};

/// Progress reported to TrainOptions::on_progress after every step.
struct Progress {
  int step = 0;
  int steps = 0;
  double train_loss = 0;   ///< mean NLL of this step's batch
  double heldout_nll = 0;  ///< latest held-out mean NLL (ppl = exp of it)
  double elapsed_s = 0;
  double eta_s = 0;
};

/// Optimisation settings. Defaults: see docs/trainer.md for how they were chosen.
struct TrainOptions {
  int steps = 100;
  int batch = 8;                ///< sequences per step
  int max_predictions = 256;    ///< predictions per sequence (longer sequences are cut)
  double lr = 0.05;             ///< Adam step on ln s (about the relative change of s per step)
  LrSchedule schedule = LrSchedule::kCosine;
  int warmup_steps = 10;
  double min_lr_ratio = 0.1;
  double clip_norm = 1.0;       ///< global L2 norm of dL/dθ; 0 disables clipping
  bool lsq_grad_scale = false;  ///< multiply dL/ds by 1/sqrt(N·qmax), N = elements per token per scale
  /// Distillation (docs/trainer.md): the loss's target becomes (1 − kd_weight)·onehot(next token)
  /// + kd_weight·p_teacher, p_teacher from an unquantized forward of `teacher` (the float weights
  /// of the same, possibly transformed, model; it runs behind q.down_rotation like the student).
  /// kd_weight 0 = plain next-token NLL (teacher unused); > 0 needs a teacher with the same shape.
  const llama::Weights* teacher = nullptr;
  double kd_weight = 0.0;
  int eval_every = 10;          ///< held-out evaluation period (steps)
  int patience = 4;             ///< stop after this many evaluations without improvement; 0 = never
  int calibration_sequences = 64;
  std::uint64_t seed = 1;
  int threads = 2;
  std::function<void(const Progress&)> on_progress;
};

/// Tokenised text: each sequence is BOS + tokens of one story (or window).
struct TrainData {
  std::vector<std::vector<int>> train;    ///< batches and calibration come from here
  std::vector<std::vector<int>> heldout;  ///< early stopping only
};

/// TinyStories training data from raw text (llama::split_stories / story_sequences protocol):
/// stories first..last (1-based) of which the last `heldout` are held out. Refuses any overlap with
/// the evaluation stories 1–500.
inline TrainData make_train_data(const llama::Tokenizer& tok, const std::string& text, int seq_len,
                                 int first = 501, int last = 1000, int heldout = 50) {
  SASQ_REQUIRE(first > 500, "training stories start at ", first, ": they must not overlap the evaluation stories 1-500");
  SASQ_REQUIRE(heldout >= 1 && heldout < last - first + 1, "held-out count ", heldout, " must leave training stories in ",
               first, "..", last);
  const std::vector<std::string> stories = llama::split_stories(text);
  return {llama::story_sequences(tok, stories, first, last - heldout, seq_len),
          llama::story_sequences(tok, stories, last - heldout + 1, last, seq_len)};
}

/// What happened to one site: the learned scale is the adaptive outlier truncation.
struct SiteReport {
  int layer = 0;
  llama::Site site = llama::Site::kAttnIn;
  std::vector<float> initial, learned;
  double initial_clip_threshold = 0;  ///< mean over channels of s0 · qmax
  double clip_threshold = 0;          ///< mean over channels of s · qmax
  double initial_clip_fraction = 0;   ///< fraction of held-out values outside the grid at s0
  double clip_fraction = 0;           ///< same at the learned scales
  double drift = 0;                   ///< mean over channels of s / s0 − 1
};

struct HistoryPoint {
  int step = 0;
  double train_loss = 0;   ///< NaN at step 0
  double heldout_nll = 0;  ///< NaN when not evaluated at this step
};

struct TrainResult {
  ScalesFile scales;  ///< the best scales by held-out NLL (the initial ones if nothing improved)
  ScalesFile initial_scales;
  std::vector<SiteReport> sites;
  std::vector<HistoryPoint> history;
  double initial_heldout_nll = 0;
  double best_heldout_nll = 0;
  int best_step = 0;
  int steps_run = 0;
  bool stopped_early = false;
  double seconds = 0;
};

/// Held-out statistics of one evaluation.
struct EvalStats {
  double mean_nll = 0;
  std::int64_t tokens = 0;
  std::vector<std::int64_t> clipped, count;  ///< per site index (layer · 4 + site)
};

/// Initial scales: the configured observer over `sequences` (one batch per sequence and site) of
/// the model `w` with activations unquantized — per tensor exactly llama::calibrate (mean-abs-max
/// = SASQ's initialisation), per channel the same observer on every input channel.
ScalesFile calibrate_scales(const llama::Weights& w, const QuantConfig& q,
                            const std::vector<std::vector<int>>& sequences,
                            const std::string& model_fingerprint);

/// Static per-tensor site parameters for llama::FakeQuantExec from a per-tensor scales file
/// (sites absent from the file keep scale 1 and must not be quantized by the caller).
llama::SiteParams to_site_params(const ScalesFile& f);

/// Mean next-token NLL of `sequences` under the fake-quant model with static `scales` (training
/// forward, float), plus per-site clipping counts.
EvalStats evaluate_nll(const llama::Weights& w, const QuantConfig& q, const ScalesFile& scales,
                       const std::vector<std::vector<int>>& sequences, int max_predictions, int threads);

/// Trains the activation scales of the (already weight-quantized, frozen) model `w` on
/// data.train, early-stopping on data.heldout. Deterministic for a given seed and independent of
/// the thread count (per-sequence gradients are summed in sequence order). `w` is only read.
TrainResult train_scales(const llama::Weights& w, const QuantConfig& q, const TrainData& data,
                         const TrainOptions& o, const std::string& model_fingerprint = "");

}  // namespace sasq::train
