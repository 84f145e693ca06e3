// sasq-experiment's grid: its options, the bit configurations and methods it compares, a result
// row and the tokenised texts (shared by the translation units of the program).
#pragma once

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstddef>
#include <string>
#include <vector>

#include "experiment/variants.hpp"
#include "llama/quantized.hpp"

namespace sasq::experiment {

using llama::ActMode;
using llama::ActQuantConfig;
using llama::ObserverKind;
using llama::WeightMethod;
using Seqs = std::vector<std::vector<int>>;
using Clock = std::chrono::steady_clock;

inline double seconds_since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

struct Options {
  std::string data = "../shared/data";
  std::string out = "results";
  std::string model, tokenizer;  ///< default <data>/stories260K/{stories260K.bin, tok512.bin}
  bool quick = false;
  int threads = 2;
  int wiki_windows = 64;      ///< WikiText-2 test windows of 512 tokens scored (0 = all)
  int eval_stories = 500;     ///< TinyStories stories 1..N evaluated
  int calib_sequences = 128;  ///< calibration stories (from 501..950)
  int int_stories = 16;       ///< stories timed on the true-integer path
  int train_steps = 120;
  // SASQ training choices (--lr, --lr-a4, --patience-a4, --sasq-wquant) from the held-out search of
  // scripts/sasq_search.sh (stories 951-1000 only; results in docs/results.md, "SASQ training choices").
  double train_lr = 0.05;       ///< SASQ Adam learning rate on ln s, 8-bit activations
  double train_lr_a4 = 0.02;    ///< the same at 4-bit activations
  int train_batch = 8;          ///< SASQ stories per step
  int train_patience = 4;       ///< SASQ held-out evaluations without improvement before stopping, A8
  int train_patience_a4 = 0;    ///< the same at 4-bit activations (0 = all steps, best held-out kept)
  bool lsq_grad_scale = false;  ///< SASQ: LSQ's gradient scale 1/sqrt(N·qmax) per site
  double train_kd = 0.0;        ///< SASQ: distillation weight α from the float model (0 = next-token NLL)
  std::vector<std::string> bits;     ///< bit configurations run (names of kBitConfigs); empty = the default set
  std::vector<std::string> methods;  ///< methods run (names of kMethods); empty = all
  double chan_alpha = 0.0;       ///< --heldout-only prototype: per-channel factors after rotation (0 = off)
  bool sasq_per_channel = false;  ///< --heldout-only prototype: per-channel SASQ scales (fake quant only)
  bool heldout_only = false;    ///< train the SASQ rows and print their held-out perplexity only
  bool stress = true;
  std::string wquant_name = "gptq";
  WeightMethod wquant = WeightMethod::kGptq;  ///< weights of the main rows (from wquant_name)
  std::string sasq_wquant_name = "gptq-ao";
  WeightMethod sasq_wquant = WeightMethod::kGptqActOrder;  ///< weights of the SASQ rows not marked (RTN)
};

struct BitConfig {
  const char* name;
  int wbits, wgroup, abits;
};

inline const std::vector<BitConfig> kBitConfigs = {
    {"W8A8", 8, 0, 8}, {"W4A8", 4, 0, 8}, {"W4A8-g32", 4, 32, 8}, {"W8A4", 8, 0, 4}, {"W4A4", 4, 0, 4}};
/// The stress variant runs these two only (its point: outlier channels break static scales).
inline const std::vector<BitConfig> kStressBitConfigs = {kBitConfigs[0], kBitConfigs[4]};

inline std::vector<std::string> bit_config_names() {
  std::vector<std::string> n;
  for (const BitConfig& b : kBitConfigs) n.push_back(b.name);
  return n;
}

/// The bit configurations of a run: those named by --bits (the stress variant: of its two only), else
/// all (--quick and the stress variant: W8A8 and W4A4).
inline std::vector<BitConfig> selected_bit_configs(const std::vector<std::string>& names, bool quick, bool stress) {
  if (names.empty()) return quick || stress ? kStressBitConfigs : kBitConfigs;
  std::vector<BitConfig> out;
  for (const BitConfig& b : stress ? kStressBitConfigs : kBitConfigs)
    if (std::find(names.begin(), names.end(), b.name) != names.end()) out.push_back(b);
  return out;
}

enum class Act { kDynamic, kStatic, kSasq };

struct Method {
  const char* name;
  Transform transform;
  Act act;
  ObserverKind observer;  ///< static calibration (and SASQ initialisation: mean-abs-max)
  bool rtn;               ///< weights by round to nearest (else the main rows' --wquant method, default GPTQ)
  float clip_ratio;       ///< dynamic rows: s = clip_ratio · absmax / qmax
  bool stress;            ///< also run on the stress variant
  bool quick;             ///< also run with --quick
  /// SASQ after per-channel factors learned by per-channel SASQ and folded into the rotated weights
  /// (channel_factors.hpp); W4A4 only, and only when --methods names it (not in the default grid:
  /// docs/results.md, third round of the held-out search)
  bool channel_factors = false;
};

/// QuaRot's activation clip ratio (its --a_clip_ratio 0.9 for W4A4 results).
inline constexpr float kQuaRotClip = 0.9f;

inline const std::vector<Method> kMethods = {
    {"dynamic per-token (RTN)", Transform::kNone, Act::kDynamic, ObserverKind::kMinMax, true, 1.0f, false, true},
    {"rotation + dynamic (RTN)", Transform::kRotation, Act::kDynamic, ObserverKind::kMinMax, true, 1.0f, false, false},
    {"SASQ + rotation static (RTN)", Transform::kRotation, Act::kSasq, ObserverKind::kMeanAbsMax, true, 1.0f, false, false},
    {"dynamic per-token", Transform::kNone, Act::kDynamic, ObserverKind::kMinMax, false, 1.0f, true, true},
    {"static mean-abs-max", Transform::kNone, Act::kStatic, ObserverKind::kMeanAbsMax, false, 1.0f, false, false},
    {"static percentile", Transform::kNone, Act::kStatic, ObserverKind::kPercentile, false, 1.0f, false, false},
    {"static MSE-clip", Transform::kNone, Act::kStatic, ObserverKind::kMse, false, 1.0f, true, true},
    {"SmoothQuant + static", Transform::kSmoothQuant, Act::kStatic, ObserverKind::kMeanAbsMax, false, 1.0f, true, true},
    {"rotation + static", Transform::kRotation, Act::kStatic, ObserverKind::kMeanAbsMax, false, 1.0f, true, false},
    {"QuaRot (rotation + dynamic clip 0.9)", Transform::kRotation, Act::kDynamic, ObserverKind::kMinMax, false,
     kQuaRotClip, true, true},
    {"SmoothRot + static", Transform::kSmoothRot, Act::kStatic, ObserverKind::kMeanAbsMax, false, 1.0f, false, false},
    {"SASQ static", Transform::kNone, Act::kSasq, ObserverKind::kMeanAbsMax, false, 1.0f, true, false},
    {"SASQ + rotation static", Transform::kRotation, Act::kSasq, ObserverKind::kMeanAbsMax, false, 1.0f, true, true},
    {"SASQ + rotation + channel factors static", Transform::kRotation, Act::kSasq, ObserverKind::kMeanAbsMax, false,
     1.0f, false, false, true},
};

inline std::vector<std::string> method_names() {
  std::vector<std::string> n;
  for (const Method& m : kMethods) n.push_back(m.name);
  return n;
}

/// Whether method m runs at bit configuration b: listed by --methods (or no list), and in the
/// --quick / stress subsets; the channel-factor row at W4A4 only and only when named.
inline bool method_selected(const Method& m, const BitConfig& b, const std::vector<std::string>& names, bool quick,
                            bool stress) {
  if ((stress && !m.stress) || (quick && !m.quick)) return false;
  if (m.channel_factors && (b.wbits != 4 || b.abits != 4 || b.wgroup != 0 || names.empty())) return false;
  return names.empty() || std::find(names.begin(), names.end(), m.name) != names.end();
}

/// The method whose learned scales the truncation ablation takes apart (plain model, W8A8).
inline constexpr const char* kAblatedMethod = "SASQ static";

// ---- results -----------------------------------------------------------------------------------

struct Row {
  std::string variant, method, bits;
  std::string weights = "";  ///< weight method (rtn / gptq), empty for FP32 and ablation rows
  std::string note = "";     ///< shown after the method in results.md (SmoothQuant's α)
  int wbits = 0, wgroup = 0, abits = 0;
  bool is_static = false;
  double ppl_ts = 0, ppl_wiki = 0;
  double int_tokens_per_s = std::nan("");  ///< true-integer path (static rows)
  double train_s = std::nan("");
};

struct Texts {
  Seqs ts_eval, ts_calib, ts_train, ts_heldout, wiki_eval, int_eval;
};

/// Sequences of the SmoothQuant α search: calibration (static scales) and scoring (held-out slice).
inline constexpr std::size_t kAlphaCalibSequences = 32;

}  // namespace sasq::experiment
