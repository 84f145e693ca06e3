// sasq-experiment: the comparison table of sasq's main job. On stories260K (and its stress variant)
// it evaluates FP32 and, per bit width, with GPTQ weights: dynamic per-token, calibration-only static
// scales, SmoothQuant (α searched), rotation, QuaRot (rotation + dynamic clip 0.9), SmoothRot and
// SASQ-trained static scales, plus round-to-nearest rows for the weight method's effect and the
// truncation ablation, on TinyStories and WikiText-2; writes results.md, results.csv,
// results_sites.csv and results_ablation.csv into the output folder. docs/results.md explains it.
#include <unistd.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <limits>
#include <map>
#include <sstream>
#include <string>
#include <tuple>
#include <vector>

#include "common/atomic_file.hpp"
#include "common/cli.hpp"
#include "experiment/ablation.hpp"
#include "experiment/calibration.hpp"
#include "experiment/phases.hpp"
#include "experiment/variants.hpp"
#include "llama/checkpoint.hpp"
#include "llama/gptq.hpp"
#include "llama/integer.hpp"
#include "llama/load_model.hpp"
#include "llama/model.hpp"
#include "llama/perplexity.hpp"
#include "llama/quantized.hpp"
#include "llama/tokenizer.hpp"
#include "train/scales_file.hpp"
#include "train/trainer.hpp"

namespace {

using namespace sasq;
using namespace sasq::experiment;
namespace cli = sasq::cli;
using llama::ActMode;
using llama::ActQuantConfig;
using llama::ObserverKind;
using llama::WeightMethod;
using Seqs = std::vector<std::vector<int>>;
using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

// ---- options -----------------------------------------------------------------------------------

std::vector<std::string> bit_config_names();  // the names of kBitConfigs, for --bits
std::vector<std::string> method_names();      // the names of kMethods, for --methods

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
  // SASQ training choices (--lr, --lr-a4, --sasq-wquant) from the held-out search of
  // scripts/sasq_search.sh (stories 951-1000 only; results in docs/results.md, "SASQ training choices").
  double train_lr = 0.05;       ///< SASQ Adam learning rate on ln s, 8-bit activations
  double train_lr_a4 = 0.02;    ///< the same at 4-bit activations
  int train_batch = 8;          ///< SASQ stories per step
  int train_patience = 4;       ///< SASQ held-out evaluations without improvement before stopping
  bool lsq_grad_scale = false;  ///< SASQ: LSQ's gradient scale 1/sqrt(N·qmax) per site
  std::vector<std::string> bits;  ///< bit configurations run (names of kBitConfigs); empty = the default set
  std::vector<std::string> methods;  ///< methods run (names of kMethods); empty = all
  bool heldout_only = false;    ///< train the SASQ rows and print their held-out perplexity only
  bool stress = true;
  std::string wquant_name = "gptq";
  WeightMethod wquant = WeightMethod::kGptq;  ///< weights of the main rows (from wquant_name)
  std::string sasq_wquant_name = "gptq-ao";
  WeightMethod sasq_wquant = WeightMethod::kGptqActOrder;  ///< weights of the SASQ rows not marked (RTN)
};

/// The sasq-experiment command line; --quick changes the defaults of the options not given.
void build_cli(CLI::App& app, Options& o) {
  cli::init(app);
  cli::add_input_dir(app, "--data", o.data, "data folder (stories260K, tinystories, wikitext-2-raw)");
  cli::add_model(app, o.model, "<data>/stories260K/stories260K.bin");
  cli::add_tokenizer(app, o.tokenizer, "<data>/stories260K/tok512.bin");
  cli::add_output_dir(app, "--out", o.out, "output folder (created if missing): results.md, results.csv, results_sites.csv, results_ablation.csv");
  app.add_flag("--quick", o.quick,
               "stories 1-100, 8 WikiText windows, W8A8 and W4A4, plain model, 40 training steps, the main methods "
               "only (no SASQ without rotation, hence no truncation ablation)");
  cli::add_threads(app, o.threads);
  cli::add_int(app, "--wiki-windows", o.wiki_windows, 0, 1000000, "WikiText-2 test windows of 512 tokens scored (0 = all)");
  cli::add_int(app, "--eval-stories", o.eval_stories, 1, 500, "TinyStories stories 1..N evaluated");
  cli::add_int(app, "--calib", o.calib_sequences, 1, 450, "calibration stories (from 501..950)");
  cli::add_int(app, "--steps", o.train_steps, 0, 1000000, "SASQ training steps");
  cli::add_real(app, "--lr", o.train_lr, 1e-6, 10.0, "SASQ Adam learning rate on ln s at 8-bit activations");
  cli::add_real(app, "--lr-a4", o.train_lr_a4, 1e-6, 10.0, "SASQ Adam learning rate on ln s at 4-bit activations");
  cli::add_int(app, "--batch", o.train_batch, 1, 4096, "SASQ training stories per step");
  cli::add_int(app, "--patience", o.train_patience, 0, 1000000,
               "SASQ held-out evaluations (every 10 steps) without improvement before stopping (0 = never)");
  app.add_flag("--lsq-grad-scale", o.lsq_grad_scale, "SASQ: multiply each scale's gradient by 1/sqrt(N*qmax) (LSQ)");
  app.add_option("--bits", o.bits, "bit configurations to run (default: all; --quick: W8A8 W4A4)")
      ->check(cli::detail::word_member(bit_config_names()))
      ->type_name(cli::detail::join(bit_config_names()));
  app.add_option("--methods", o.methods, "methods run (default: all; FP32 always runs)")
      ->check(cli::detail::word_member(method_names()))
      ->type_name("NAME ...");
  app.add_flag("--heldout-only", o.heldout_only,
               "hyper-parameter search mode: train the selected SASQ rows of the plain model (and run its selected "
               "dynamic rows) and print their perplexity on the held-out stories 951-1000 only (no evaluation text "
               "is scored, no result files are written)");
  app.add_flag("--no-stress", "evaluate the plain model only (no stress variant)");
  cli::add_wquant(app, o.wquant_name)->description(
      "weight quantization of the main rows (default gptq; the rows marked (RTN) always round to nearest)");
  cli::add_choice(app, "--sasq-wquant", o.sasq_wquant_name, {"rtn", "mse", "gptq", "gptq-ao"},
                  "weight quantization of the SASQ rows not marked (RTN) (default gptq-ao: GPTQ in act-order)");
}

/// Applies --quick to the options the command line did not set.
void finish(const CLI::App& app, Options& o) {
  o.wquant = llama::parse_weight_method(o.wquant_name);
  o.sasq_wquant = llama::parse_weight_method(o.sasq_wquant_name);
  auto unset = [&](const char* name) { return app.count(name) == 0; };
  if (o.quick) {
    if (unset("--eval-stories")) o.eval_stories = 100;
    if (unset("--wiki-windows")) o.wiki_windows = 8;
    if (unset("--calib")) o.calib_sequences = 64;
    if (unset("--steps")) o.train_steps = 40;
    o.stress = false;
  }
  if (!unset("--no-stress") || o.heldout_only) o.stress = false;
  for (const auto& [name, list] : {std::pair{"--bits", &o.bits}, std::pair{"--methods", &o.methods}})
    for (std::size_t i = 0; i < list->size(); ++i)
      for (std::size_t j = 0; j < i; ++j)
        if ((*list)[i] == (*list)[j]) cli::usage_fail(name, ": '", (*list)[i], "' given twice");
}

std::string slurp(const std::string& path) {
  const std::vector<unsigned char> b = llama::read_file_bytes(path);
  return std::string(b.begin(), b.end());
}

// ---- formatting --------------------------------------------------------------------------------

std::string fmt(double v, int prec) {
  if (std::isnan(v)) return "";
  char b[64];
  std::snprintf(b, sizeof b, "%.*f", prec, v);
  return b;
}

/// Perplexity: 4 decimals, or 4 significant digits in scientific notation once it has collapsed.
std::string fmt_ppl(double v) {
  if (std::isnan(v)) return "";
  char b[64];
  std::snprintf(b, sizeof b, v < 1e4 ? "%.4f" : "%.3e", v);
  return b;
}

std::string pct(double v, double ref) {
  char b[64];
  std::snprintf(b, sizeof b, "%+.2f%%", 100.0 * (v / ref - 1.0));
  return b;
}

// ---- the grid of methods -----------------------------------------------------------------------

struct BitConfig {
  const char* name;
  int wbits, wgroup, abits;
};

const std::vector<BitConfig> kBitConfigs = {
    {"W8A8", 8, 0, 8}, {"W4A8", 4, 0, 8}, {"W4A8-g32", 4, 32, 8}, {"W8A4", 8, 0, 4}, {"W4A4", 4, 0, 4}};
std::vector<std::string> bit_config_names() {
  std::vector<std::string> n;
  for (const BitConfig& b : kBitConfigs) n.push_back(b.name);
  return n;
}

/// The stress variant runs these two only (its point: outlier channels break static scales).
const std::vector<BitConfig> kStressBitConfigs = {kBitConfigs[0], kBitConfigs[4]};

/// The bit configurations of a run: those named by --bits (the stress variant: of its two only), else
/// all (--quick and the stress variant: W8A8 and W4A4).
std::vector<BitConfig> selected_bit_configs(const std::vector<std::string>& names, bool quick, bool stress) {
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
};

/// QuaRot's activation clip ratio (its --a_clip_ratio 0.9 for W4A4 results).
constexpr float kQuaRotClip = 0.9f;

const std::vector<Method> kMethods = {
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
};

std::vector<std::string> method_names() {
  std::vector<std::string> n;
  for (const Method& m : kMethods) n.push_back(m.name);
  return n;
}

/// Whether method m runs: listed by --methods (or no list), and in the --quick / stress subsets.
bool method_selected(const Method& m, const std::vector<std::string>& names, bool quick, bool stress) {
  if ((stress && !m.stress) || (quick && !m.quick)) return false;
  return names.empty() || std::find(names.begin(), names.end(), m.name) != names.end();
}

/// The method whose learned scales the truncation ablation takes apart (plain model, W8A8).
constexpr const char* kAblatedMethod = "SASQ static";

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
constexpr std::size_t kAlphaCalibSequences = 32;

class Runner {
 public:
  Runner(const Options& o, const llama::Weights& base, const Texts& t)
      : o_(o), rope_(llama::make_rope_table(base.config)), t_(t) {}

  /// Perplexity of `seqs` under an execution policy built per thread by make_exec.
  template <class MakeExec>
  double ppl(const llama::Weights& w, const Seqs& seqs, MakeExec make_exec) const {
    return llama::evaluate_ppl(w, rope_, seqs, o_.threads, make_exec).ppl();
  }

  /// CPU and wall time per phase of the run (results.md lists them).
  const PhaseTimes& phases() const { return phases_; }

  /// Runs every method of the grid on one model variant. `ablation` (plain variant): receives the
  /// truncation ablation of kAblatedMethod's W8A8 scales.
  void run_variant(const std::string& variant, const llama::Weights& w, std::vector<Row>& rows,
                   std::vector<train::TrainResult>& trainings, std::vector<std::string>& training_names,
                   std::vector<Row>* ablation) {
    // FP32 reference.
    {
      const PhaseTimes::Scope ph(phases_, "evaluation (fake quant)");
      Row r{variant, "FP32", "FP32"};
      r.ppl_ts = ppl(w, t_.ts_eval, [] { return llama::Fp32Exec{}; });
      r.ppl_wiki = ppl(w, t_.wiki_eval, [] { return llama::Fp32Exec{}; });
      report(r);
      rows.push_back(r);
    }
    // Caches keyed by the addresses of this variant's transformed models.
    calibrations_.clear();
    weights_.clear();
    packed_.clear();
    smoothquant_.clear();
    transformed_.clear();
    alpha_models_.clear();
    {
      const PhaseTimes::Scope ph(phases_, "transforms");
      stats_ = collect_absmax(w, rope_, t_.ts_calib, o_.threads);
      for (Transform t : {Transform::kNone, Transform::kRotation, Transform::kSmoothRot})
        transformed_.emplace(t, apply_transform(w, t, stats_));
    }

    const bool stress = variant == "stress";
    for (const BitConfig& b : selected_bit_configs(o_.bits, o_.quick, stress)) {
      const float alpha = search_alpha(w, b);
      for (const Method& m : kMethods) {
        if (!method_selected(m, o_.methods, o_.quick, stress)) continue;
        const TransformedModel& tm = m.transform == Transform::kSmoothQuant ? smoothquant(w, alpha) : transformed_.at(m.transform);
        const WeightMethod wm = weight_method(m);
        const llama::QuantizedModel& qm = weights(tm, b, wm);
        Row r{variant, m.name, b.name};
        r.weights = llama::weight_method_name(wm);
        r.wbits = b.wbits;
        r.wgroup = b.wgroup;
        r.abits = b.abits;
        r.is_static = m.act != Act::kDynamic;
        if (m.transform == Transform::kSmoothQuant) r.note = "α " + fmt(alpha, 1);
        ActQuantConfig ac{b.abits, m.act == Act::kDynamic ? ActMode::kDynamicPerToken : ActMode::kStatic, false,
                          m.clip_ratio};
        llama::SiteParams params;
        if (m.act == Act::kStatic) {
          params = calibrate(qm.model, tm, m.observer, b, wm);
        } else if (m.act == Act::kSasq) {
          const auto t0 = Clock::now();
          const ObserverKind init = pick_init(qm, tm, b, wm);
          r.note = std::string("init ") + (init == ObserverKind::kMse ? "MSE-clip" : "mean-abs-max");
          train::TrainResult tr = [&] {
            const PhaseTimes::Scope ph(phases_, "SASQ training");
            return train(qm.model, tm, b.abits, init, variant + " " + b.name + " " + m.name);
          }();
          r.train_s = seconds_since(t0);
          std::fprintf(stderr, "  SASQ training %s %s: best held-out step %d of %d run (%s), held-out ppl %.4f -> %.4f\n",
                       b.name, m.name, tr.best_step, tr.steps_run, tr.stopped_early ? "stopped early" : "all steps",
                       std::exp(tr.initial_heldout_nll), std::exp(tr.best_heldout_nll));
          params = train::to_site_params(tr.scales);
          trainings.push_back(std::move(tr));
          training_names.push_back(variant + " / " + b.name + " / " + m.name);
          if (ablation && std::string(m.name) == kAblatedMethod && b.wbits == 8 && b.abits == 8)
            run_ablation(variant, w, params, b.abits, *ablation);
        }
        const llama::SiteParams* sp = ac.mode == ActMode::kStatic ? &params : nullptr;
        const Rotation* down = tm.down ? &*tm.down : nullptr;
        auto fake = [&] { return llama::with_online_rotation(llama::FakeQuantExec(ac, sp, &qm), down); };
        {
          const PhaseTimes::Scope ph(phases_, "evaluation (fake quant)");
          r.ppl_ts = ppl(qm.model, t_.ts_eval, fake);
          r.ppl_wiki = ppl(qm.model, t_.wiki_eval, fake);
        }
        if (r.is_static) {
          // True-integer path (sasq::gemm) on the first stories: a sign that it runs, and its speed
          // (its logits equal the fake-quant ones: llama_test).
          const PhaseTimes::Scope ph(phases_, "integer path (tok/s)");
          const llama::PackedModel& pm = packed(qm);
          auto integer = [&] { return llama::with_online_rotation(llama::IntegerExec(pm, ac, sp), down); };
          const llama::PplResult ri = llama::evaluate_ppl(qm.model, rope_, t_.int_eval, o_.threads, integer);
          r.int_tokens_per_s = static_cast<double>(ri.tokens) / ri.seconds;
        }
        report(r);
        rows.push_back(r);
      }
    }
  }

  /// --heldout-only: trains every selected SASQ row of the selected bit configurations on the plain
  /// model `w` and prints (stdout) its perplexity on the held-out stories 951-1000, with the initial
  /// scales and with the learned ones; selected dynamic rows (references) print their held-out
  /// perplexity. Nothing else is evaluated: this is the hyper-parameter search's measure.
  void run_heldout(const llama::Weights& w) {
    {
      const PhaseTimes::Scope ph(phases_, "transforms");
      stats_ = collect_absmax(w, rope_, t_.ts_calib, o_.threads);
      for (Transform t : {Transform::kNone, Transform::kRotation})
        transformed_.emplace(t, apply_transform(w, t, stats_));
    }
    std::printf("bits\tweights\tmethod\tlr\tsteps\tbatch\tpatience\tlsq\tinit\tbest_step\tsteps_run\t"
                "heldout_ppl_init\theldout_ppl\n");
    for (const BitConfig& b : selected_bit_configs(o_.bits, o_.quick, false))
      for (const Method& m : kMethods) {
        if (m.transform == Transform::kSmoothQuant || m.transform == Transform::kSmoothRot || m.act == Act::kStatic ||
            !method_selected(m, o_.methods, o_.quick, false))
          continue;
        const TransformedModel& tm = transformed_.at(m.transform);
        const WeightMethod wm = weight_method(m);
        const llama::QuantizedModel& qm = weights(tm, b, wm);
        const Rotation* down = tm.down ? &*tm.down : nullptr;
        if (m.act == Act::kDynamic) {  // a reference: no training, held-out perplexity in the last column
          const ActQuantConfig ac{b.abits, ActMode::kDynamicPerToken, false, m.clip_ratio};
          const double p = ppl(qm.model, t_.ts_heldout,
                               [&] { return llama::with_online_rotation(llama::FakeQuantExec(ac, nullptr, &qm), down); });
          std::printf("%s\t%s\t%s\t\t\t\t\t\t\t\t\t\t%.4f\n", b.name, llama::weight_method_name(wm), m.name, p);
          std::fflush(stdout);
          continue;
        }
        const ObserverKind init = pick_init(qm, tm, b, wm);
        const train::TrainResult tr = train(qm.model, tm, b.abits, init, std::string(b.name) + " " + m.name);
        const ActQuantConfig ac{b.abits, ActMode::kStatic, false, 1.0f};
        auto heldout_ppl = [&](const llama::SiteParams& sp) {
          return ppl(qm.model, t_.ts_heldout,
                     [&] { return llama::with_online_rotation(llama::FakeQuantExec(ac, &sp, &qm), down); });
        };
        std::printf("%s\t%s\t%s\t%g\t%d\t%d\t%d\t%d\t%s\t%d\t%d\t%.4f\t%.4f\n", b.name,
                    llama::weight_method_name(wm), m.name, b.abits == 4 ? o_.train_lr_a4 : o_.train_lr,
                    o_.train_steps, o_.train_batch, o_.train_patience, o_.lsq_grad_scale ? 1 : 0, init == ObserverKind::kMse ? "mse" : "mean-abs-max",
                    tr.best_step, tr.steps_run, heldout_ppl(train::to_site_params(tr.initial_scales)),
                    heldout_ppl(train::to_site_params(tr.scales)));
        std::fflush(stdout);
      }
  }

  /// The weight quantization of method m's rows.
  WeightMethod weight_method(const Method& m) const {
    return m.rtn ? WeightMethod::kRtn : m.act == Act::kSasq ? o_.sasq_wquant : o_.wquant;
  }

  /// Seconds spent in GPTQ (Hessians and solves) and the number of models it quantized.
  double gptq_seconds() const { return gptq_s_; }
  int gptq_models() const { return gptq_models_; }

 private:
  /// Weight-quantized `tm` for bit configuration b (GPTQ on the calibration stories, through the
  /// model's online rotation), built once per variant.
  const llama::QuantizedModel& weights(const TransformedModel& tm, const BitConfig& b, WeightMethod wm) {
    const auto key = std::make_tuple(&tm, b.wbits, b.wgroup, wm);
    auto it = weights_.find(key);
    if (it != weights_.end()) return it->second;
    const PhaseTimes::Scope ph(phases_, llama::is_gptq(wm) ? "GPTQ weights" : "RTN weights");
    const auto t0 = Clock::now();
    llama::QuantizedModel qm = llama::quantize_model_weights(tm.weights, {b.wbits, b.wgroup, wm, false}, rope_,
                                                             t_.ts_calib, tm.down ? &*tm.down : nullptr, o_.threads);
    if (llama::is_gptq(wm)) {
      gptq_s_ += seconds_since(t0);
      ++gptq_models_;
    }
    return weights_.emplace(key, std::move(qm)).first->second;
  }

  const llama::PackedModel& packed(const llama::QuantizedModel& qm) {
    auto it = packed_.find(&qm);
    if (it == packed_.end()) it = packed_.emplace(&qm, llama::pack_model(qm)).first;
    return it->second;
  }

  /// The SmoothQuant model with migration strength alpha (stable address for the caches).
  const TransformedModel& smoothquant(const llama::Weights& w, float alpha) {
    auto it = smoothquant_.find(alpha);
    if (it == smoothquant_.end()) it = smoothquant_.emplace(alpha, apply_transform(w, Transform::kSmoothQuant, stats_, alpha)).first;
    return it->second;
  }

  /// SmoothQuant's α for bit configuration b: the grid value with the lowest held-out perplexity
  /// (stories 951-1000) of SmoothQuant + static mean-abs-max scales (from the first
  /// kAlphaCalibSequences calibration stories) on RTN weights. No evaluation text is involved.
  float search_alpha(const llama::Weights& w, const BitConfig& b) {
    const PhaseTimes::Scope ph(phases_, "SmoothQuant alpha search");
    double best = std::numeric_limits<double>::infinity();
    float best_alpha = kSmoothQuantAlphas[0];
    std::string log;
    for (const float a : kSmoothQuantAlphas) {
      const AlphaModel& am = alpha_model(w, a, b);
      const llama::QuantizedModel& qm = am.weights;
      const llama::SiteParams sp = am.calibration.params(b.abits);
      const ActQuantConfig ac{b.abits, ActMode::kStatic, false, 1.0f};
      const double p = ppl(qm.model, t_.ts_heldout, [&] { return llama::FakeQuantExec(ac, &sp, &qm); });
      log += " " + fmt(a, 1) + ":" + fmt(p, 3);
      if (p < best) {
        best = p;
        best_alpha = a;
      }
    }
    std::fprintf(stderr, "  SmoothQuant alpha search %s (held-out ppl):%s -> %.1f\n", b.name, log.c_str(), best_alpha);
    return best_alpha;
  }

  /// A candidate of the α search: SmoothQuant(α) with RTN weights and its mean-abs-max calibration
  /// (first kAlphaCalibSequences calibration stories), shared by the bit configurations with the
  /// same weights (the activations they see do not depend on the activation width).
  struct AlphaModel {
    llama::QuantizedModel weights;
    llama::CalibrationExec calibration;
  };

  const AlphaModel& alpha_model(const llama::Weights& w, float alpha, const BitConfig& b) {
    const auto key = std::make_tuple(alpha, b.wbits, b.wgroup);
    auto it = alpha_models_.find(key);
    if (it != alpha_models_.end()) return it->second;
    const Seqs calib(t_.ts_calib.begin(),
                     t_.ts_calib.begin() + static_cast<std::ptrdiff_t>(std::min(kAlphaCalibSequences, t_.ts_calib.size())));
    llama::QuantizedModel qm =
        llama::quantize_weights(smoothquant(w, alpha).weights, {b.wbits, b.wgroup, WeightMethod::kRtn, false});
    llama::CalibrationExec ce = observe_calibration_parallel(qm.model, rope_, calib, ObserverKind::kMeanAbsMax, nullptr, o_.threads);
    return alpha_models_.emplace(key, AlphaModel{std::move(qm), std::move(ce)}).first->second;
  }

  /// The truncation ablation on the FP32 weights of the variant with the learned scales `params`.
  void run_ablation(const std::string& variant, const llama::Weights& w, const llama::SiteParams& params, int bits,
                    std::vector<Row>& out) {
    const std::array<bool, llama::kNumLinearSites> all{true, true, true, true};
    std::vector<std::pair<Truncation, std::array<bool, llama::kNumLinearSites>>> cases = {
        {Truncation::kClipOnly, all}, {Truncation::kRoundOnly, all}, {Truncation::kBoth, all}};
    for (int s = 0; s < llama::kNumLinearSites; ++s) {
      std::array<bool, llama::kNumLinearSites> one{};
      one[static_cast<std::size_t>(s)] = true;
      cases.emplace_back(Truncation::kClipOnly, one);
    }
    const PhaseTimes::Scope ph(phases_, "truncation ablation");
    for (const auto& [mode, sites] : cases) {
      std::string where;
      for (int s = 0; s < llama::kNumLinearSites; ++s)
        if (sites[static_cast<std::size_t>(s)]) where += std::string(where.empty() ? "" : ", ") + llama::site_name(static_cast<llama::Site>(s));
      Row r{variant, std::string(truncation_name(mode)) + " @ " + (sites == all ? std::string("all sites") : where),
            "FP32 weights, A" + std::to_string(bits)};
      r.abits = bits;
      const TruncationExec exec{&params, bits, mode, sites};
      r.ppl_ts = ppl(w, t_.ts_eval, [&] { return exec; });
      r.ppl_wiki = ppl(w, t_.wiki_eval, [&] { return exec; });
      report(r);
      out.push_back(r);
    }
  }

  /// Static parameters from a calibration pass, shared by the bit configurations that quantize the
  /// weights the same way (W8A8 and W8A4 see the same activations; so do W4A8 and W4A4).
  llama::SiteParams calibrate(const llama::Weights& w, const TransformedModel& tm, ObserverKind kind,
                              const BitConfig& b, WeightMethod wm) {
    const auto key = std::make_tuple(&tm, kind, b.wbits, b.wgroup, wm);
    auto it = calibrations_.find(key);
    const PhaseTimes::Scope ph(phases_, "static calibration");
    if (it == calibrations_.end())
      it = calibrations_
               .emplace(key, observe_calibration_parallel(w, rope_, t_.ts_calib, kind, tm.down ? &*tm.down : nullptr,
                                                          o_.threads))
               .first;
    return it->second.params(b.abits);
  }

  /// SASQ's initial scales: static mean-abs-max (the paper's) or MSE-clip calibration, whichever gives
  /// the lower held-out perplexity (stories 951-1000) on these weights.
  ObserverKind pick_init(const llama::QuantizedModel& qm, const TransformedModel& tm, const BitConfig& b, WeightMethod wm) {
    const PhaseTimes::Scope ph(phases_, "SASQ init choice");
    double best = std::numeric_limits<double>::infinity();
    ObserverKind pick = ObserverKind::kMeanAbsMax;
    for (const ObserverKind k : {ObserverKind::kMeanAbsMax, ObserverKind::kMse}) {
      const llama::SiteParams sp = calibrate(qm.model, tm, k, b, wm);
      const ActQuantConfig ac{b.abits, ActMode::kStatic, false, 1.0f};
      const Rotation* down = tm.down ? &*tm.down : nullptr;
      const double p = ppl(qm.model, t_.ts_heldout,
                           [&] { return llama::with_online_rotation(llama::FakeQuantExec(ac, &sp, &qm), down); });
      if (p < best) {
        best = p;
        pick = k;
      }
    }
    return pick;
  }

  train::TrainResult train(const llama::Weights& w, const TransformedModel& tm, int bits, ObserverKind init,
                           const std::string& label) const {
    train::QuantConfig q;
    q.bits = bits;
    q.observer = init;
    q.down_rotation = tm.down ? &*tm.down : nullptr;
    train::TrainOptions to;
    to.steps = o_.train_steps;
    to.lr = bits == 4 ? o_.train_lr_a4 : o_.train_lr;
    to.batch = o_.train_batch;
    to.patience = o_.train_patience;
    to.lsq_grad_scale = o_.lsq_grad_scale;
    to.threads = o_.threads;
    to.calibration_sequences = o_.calib_sequences;
    const bool tty = isatty(STDERR_FILENO) != 0;
    if (tty)
      to.on_progress = [&label](const train::Progress& p) {
        std::fprintf(stderr, "\r  training %s: step %d/%d loss %.4f held-out ppl %.4f ETA %.0fs   ", label.c_str(),
                     p.step, p.steps, p.train_loss, std::exp(p.heldout_nll), p.eta_s);
      };
    train::TrainData data{t_.ts_train, t_.ts_heldout};
    train::TrainResult r = train::train_scales(w, q, data, to, "");
    if (tty) std::fprintf(stderr, "\r%100s\r", "");
    return r;
  }

  void report(const Row& r) const {
    std::fprintf(stderr, "%-8s %-9s %-4s %-36s ts %8.4f  wiki %9.3f", r.variant.c_str(), r.bits.c_str(),
                 r.weights.c_str(), (r.method + (r.note.empty() ? "" : " (" + r.note + ")")).c_str(), r.ppl_ts, r.ppl_wiki);
    if (!std::isnan(r.int_tokens_per_s)) std::fprintf(stderr, "  int %7.0f tok/s", r.int_tokens_per_s);
    if (!std::isnan(r.train_s)) std::fprintf(stderr, "  train %.1fs", r.train_s);
    std::fprintf(stderr, "  [%.0fs]\n", seconds_since(start_));
  }

  const Options& o_;
  llama::RopeTable rope_;
  const Texts& t_;
  Clock::time_point start_ = Clock::now();
  std::map<std::tuple<const TransformedModel*, ObserverKind, int, int, WeightMethod>, llama::CalibrationExec> calibrations_;
  std::map<std::tuple<const TransformedModel*, int, int, WeightMethod>, llama::QuantizedModel> weights_;
  std::map<const llama::QuantizedModel*, llama::PackedModel> packed_;
  std::map<float, TransformedModel> smoothquant_;
  std::map<Transform, TransformedModel> transformed_;
  std::map<std::tuple<float, int, int>, AlphaModel> alpha_models_;
  AbsMaxExec stats_;
  PhaseTimes phases_;
  double gptq_s_ = 0.0;
  int gptq_models_ = 0;
};

// ---- output ------------------------------------------------------------------------------------

/// Markers around each generated block of results.md (scripts/results_doc.py copies the blocks into
/// docs/results.md between the same markers).
std::string begin_block(const std::string& name) { return "<!-- sasq-experiment:" + name + " -->\n"; }
std::string end_block(const std::string& name) { return "<!-- /sasq-experiment:" + name + " -->\n"; }

/// The plain-model row of `method` (weights `weights`) at bit configuration `bits`, or null.
const Row* find_row(const std::vector<Row>& rows, const std::string& bits, const std::string& method,
                    const std::string& weights) {
  for (const Row& r : rows)
    if (r.variant == "plain" && r.bits == bits && r.method == method && r.weights == weights) return &r;
  return nullptr;
}

/// The plain-model row at `bits` with the lowest perplexity on `text` (0 TinyStories, 1 WikiText)
/// among those `pick` accepts, or null.
template <class Pick>
const Row* best_row(const std::vector<Row>& rows, const std::string& bits, int text, Pick pick) {
  const Row* best = nullptr;
  for (const Row& r : rows)
    if (r.variant == "plain" && r.bits == bits && pick(r) &&
        (!best || (text == 0 ? r.ppl_ts < best->ppl_ts : r.ppl_wiki < best->ppl_wiki)))
      best = &r;
  return best;
}

std::string row_label(const Row& r) {
  if (r.weights == "gptq-ao") return r.method + " (GPTQ act-order)";
  return r.method + (r.weights == "rtn" && r.method.find("(RTN)") == std::string::npos ? " (RTN)" : "");
}

/// The targets of issue 11, each met or missed, from this run's rows (plain model).
std::string targets_md(const std::vector<Row>& rows, bool quick, double total_s, double cpu_s) {
  std::ostringstream t;
  t << "| target | result | verdict |\n|---|---|---|\n";
  const Row* fp32 = find_row(rows, "FP32", "FP32", "");
  auto verdict = [](bool met) { return met ? std::string("**met**") : std::string("**missed**"); };
  auto is_sasq = [](const Row& r) { return r.method.rfind("SASQ", 0) == 0; };
  if (const Row* d = find_row(rows, "W4A8", "dynamic per-token", "gptq"); d && fp32)
    t << "| W4A8 dynamic per-token, GPTQ per-channel weights ≤ FP32 + 10 % | " << fmt_ppl(d->ppl_ts) << " = FP32 "
      << pct(d->ppl_ts, fp32->ppl_ts) << " | " << verdict(d->ppl_ts <= 1.10 * fp32->ppl_ts) << " |\n";
  const Row* quarot = find_row(rows, "W4A4", "QuaRot (rotation + dynamic clip 0.9)", "gptq");
  for (int text = 0; text < 2 && quarot; ++text) {
    const Row* s = best_row(rows, "W4A4", text, is_sasq);
    if (!s) continue;
    const double ps = text == 0 ? s->ppl_ts : s->ppl_wiki, pq = text == 0 ? quarot->ppl_ts : quarot->ppl_wiki;
    t << "| W4A4 " << (text == 0 ? "TinyStories" : "WikiText-2") << ": best SASQ static ≤ QuaRot (stretch −5 %) | "
      << row_label(*s) << " " << fmt_ppl(ps) << " vs QuaRot " << fmt_ppl(pq) << " (" << pct(ps, pq) << ") | "
      << verdict(ps <= pq) << "; stretch " << (ps <= 0.95 * pq ? "met" : "missed") << " |\n";
  }
  if (const Row* s = best_row(rows, "W8A8", 0, is_sasq); s && fp32) {
    t << "| W8A8 TinyStories: best SASQ static ≤ FP32 + 0.1 % | " << row_label(*s) << " " << fmt_ppl(s->ppl_ts)
      << " = FP32 " << pct(s->ppl_ts, fp32->ppl_ts) << " | " << verdict(s->ppl_ts <= 1.001 * fp32->ppl_ts) << " |\n";
    if (const Row* d = best_row(rows, "W8A8", 0, [](const Row& r) { return !r.is_static; }))
      t << "| W8A8 TinyStories: best SASQ static ≤ best dynamic row | " << fmt_ppl(s->ppl_ts) << " vs "
        << row_label(*d) << " " << fmt_ppl(d->ppl_ts) << " (" << pct(s->ppl_ts, d->ppl_ts) << ") | "
        << verdict(s->ppl_ts <= d->ppl_ts) << " |\n";
  }
  t << "| " << (quick ? "`--quick` ≤ 2 min" : "full run ≤ 15 min") << " (wall time; meaningful on an idle 2-core machine) | "
    << fmt(total_s, 0) << " s wall, " << fmt(cpu_s, 0) << " s CPU | " << verdict(total_s <= (quick ? 120.0 : 900.0))
    << " |\n";
  return t.str();
}

void write_outputs(const Options& o, const std::vector<Row>& rows, const std::vector<Row>& ablation,
                   const std::vector<train::TrainResult>& trainings, const std::vector<std::string>& names,
                   double total_s, double gptq_s, int gptq_models, const PhaseTimes& phases) {
  std::map<std::string, const Row*> fp32;
  for (const Row& r : rows)
    if (r.method == "FP32") fp32[r.variant] = &r;

  std::ostringstream csv;
  csv << "variant,text,method,weights,note,weight_bits,weight_group,act_bits,ppl,rel_change_vs_fp32,int_tokens_per_s,"
         "train_s\n";
  for (const Row& r : rows)
    for (int text = 0; text < 2; ++text) {
      const double p = text == 0 ? r.ppl_ts : r.ppl_wiki;
      const double ref = text == 0 ? fp32[r.variant]->ppl_ts : fp32[r.variant]->ppl_wiki;
      csv << r.variant << ',' << (text == 0 ? "tinystories" : "wikitext2") << ",\"" << r.method << "\"," << r.weights
          << ",\"" << r.note << "\"," << r.wbits << ',' << r.wgroup << ',' << r.abits << ',' << fmt(p, 6) << ','
          << fmt(p / ref - 1.0, 6) << ',' << fmt(r.int_tokens_per_s, 0) << ',' << fmt(r.train_s, 2) << '\n';
    }

  std::ostringstream md;
  md << begin_block("table")
     << "| model | bits | weights | method | TinyStories ppl | Δ vs FP32 | WikiText-2 ppl | Δ vs FP32 | int tok/s | train s |\n"
     << "|---|---|---|---|---:|---:|---:|---:|---:|---:|\n";
  for (const Row& r : rows) {
    const Row& f = *fp32[r.variant];
    const bool sasq = r.method.rfind("SASQ", 0) == 0;
    const std::string b = sasq ? "**" : "";
    md << "| " << r.variant << " | " << r.bits << " | " << r.weights << " | " << b << r.method
       << (r.note.empty() ? "" : " (" + r.note + ")") << b << " | " << b << fmt_ppl(r.ppl_ts) << b << " | "
       << pct(r.ppl_ts, f.ppl_ts) << " | " << b << fmt_ppl(r.ppl_wiki) << b << " | " << pct(r.ppl_wiki, f.ppl_wiki)
       << " | " << fmt(r.int_tokens_per_s, 0) << " | " << fmt(r.train_s, 1) << " |\n";
  }
  md << end_block("table");
  std::ostringstream abl;
  if (!ablation.empty()) {
    const Row& f = *fp32[ablation.front().variant];
    md << "\nTruncation ablation (" << kAblatedMethod << " W8A8 scales on the FP32 weights):\n\n"
       << begin_block("ablation") << "| activations | TinyStories ppl | Δ vs FP32 | WikiText-2 ppl | Δ vs FP32 |\n|---|---:|---:|---:|---:|\n";
    for (const Row& r : ablation)
      md << "| " << r.method << " | " << fmt_ppl(r.ppl_ts) << " | " << pct(r.ppl_ts, f.ppl_ts) << " | "
         << fmt_ppl(r.ppl_wiki) << " | " << pct(r.ppl_wiki, f.ppl_wiki) << " |\n";
    md << end_block("ablation");
    abl << "variant,activations,act_bits,ppl_tinystories,ppl_wikitext2,rel_change_tinystories,rel_change_wikitext2\n";
    for (const Row& r : ablation)
      abl << r.variant << ",\"" << r.method << "\"," << r.abits << ',' << fmt(r.ppl_ts, 6) << ',' << fmt(r.ppl_wiki, 6)
          << ',' << fmt(r.ppl_ts / f.ppl_ts - 1.0, 6) << ',' << fmt(r.ppl_wiki / f.ppl_wiki - 1.0, 6) << '\n';
  }
  const double cpu_s = process_cpu_seconds();
  md << "\n" << begin_block("targets") << targets_md(rows, o.quick, total_s, cpu_s) << end_block("targets");
  md << "\n" << begin_block("timing") << "Total wall time " << fmt(total_s, 0) << " s, " << fmt(cpu_s, 0)
     << " s of CPU time (all threads), " << o.threads << " threads" << (o.quick ? " (--quick)" : "") << "; GPTQ "
     << fmt(gptq_s, 1) << " s wall for " << gptq_models << " models.\n\n"
     << "| phase | CPU s | wall s |\n|---|---:|---:|\n";
  for (const auto& [name, t] : phases.totals())
    md << "| " << name << " | " << fmt(t.cpu_s, 1) << " | " << fmt(t.wall_s, 1) << " |\n";
  md << end_block("timing");

  std::ostringstream sites;
  sites << "training,layer,site,initial_scale,learned_scale,initial_clip_threshold,clip_threshold,"
           "initial_clip_fraction,clip_fraction,drift\n";
  for (std::size_t i = 0; i < trainings.size(); ++i)
    for (const train::SiteReport& s : trainings[i].sites)
      sites << '"' << names[i] << "\"," << s.layer << ',' << llama::site_name(s.site) << ',' << s.initial[0] << ','
            << s.learned[0] << ',' << s.initial_clip_threshold << ',' << s.clip_threshold << ','
            << s.initial_clip_fraction << ',' << s.clip_fraction << ',' << s.drift << '\n';
  // Each file whole or not at all; the folder was checked writable before the run.
  examples::write_file_atomic(o.out + "/results.csv", csv.str());
  examples::write_file_atomic(o.out + "/results.md", md.str());
  examples::write_file_atomic(o.out + "/results_sites.csv", sites.str());
  if (!ablation.empty()) examples::write_file_atomic(o.out + "/results_ablation.csv", abl.str());
  std::cout << md.str();
}

Texts load_texts(const Options& o, const llama::Tokenizer& tok, int seq_len) {
  Texts t;
  const auto stories = llama::split_stories(slurp(o.data + "/tinystories/tinystories_valid_first1000.txt"));
  if (stories.size() != 1000)
    fail(ErrorCode::kCorruptData, "TinyStories file has ", stories.size(), " stories, expected 1000");
  // Evaluation: stories 1..eval_stories. Training/calibration: 501..950, held-out: 951..1000.
  t.ts_eval = llama::story_sequences(tok, stories, 1, o.eval_stories, seq_len);
  t.ts_train = llama::story_sequences(tok, stories, 501, 950, seq_len);
  t.ts_heldout = llama::story_sequences(tok, stories, 951, 1000, seq_len);
  t.ts_calib.assign(t.ts_train.begin(), t.ts_train.begin() + o.calib_sequences);
  t.int_eval.assign(t.ts_eval.begin(), t.ts_eval.begin() + std::min<std::size_t>(t.ts_eval.size(), o.int_stories));
  t.wiki_eval = llama::stream_windows(tok, slurp(o.data + "/wikitext-2-raw/wiki.test.raw"), llama::kWikiWindow);
  if (o.wiki_windows > 0 && t.wiki_eval.size() > static_cast<std::size_t>(o.wiki_windows))
    t.wiki_eval.resize(static_cast<std::size_t>(o.wiki_windows));
  return t;
}

}  // namespace

int main(int argc, char** argv) {
  Options o;
  CLI::App app("sasq-experiment: the SASQ comparison on stories260K (docs/results.md)", "sasq-experiment");
  build_cli(app, o);
  return cli::run(app, argc, argv, [&] {
    finish(app, o);
    const auto t0 = Clock::now();
    std::error_code ec;
    std::filesystem::create_directories(o.out, ec);
    if (ec) fail(ErrorCode::kIoError, o.out, ": cannot create the output folder: ", ec.message());

    const std::string model_path = o.model.empty() ? o.data + "/stories260K/stories260K.bin" : o.model;
    const llama::Weights base = llama::load_model(model_path);
    const llama::Tokenizer tok = llama::load_tokenizer_for(model_path, base, o.tokenizer, o.data + "/stories260K/tok512.bin");
    const Texts texts = load_texts(o, tok, base.config.seq_len);
    std::fprintf(stderr, "sasq-experiment: %zu TinyStories eval sequences, %zu WikiText windows, %zu train, %zu held-out\n",
                 texts.ts_eval.size(), texts.wiki_eval.size(), texts.ts_train.size(), texts.ts_heldout.size());

    Runner runner(o, base, texts);
    if (o.heldout_only) {
      runner.run_heldout(base);
      return 0;
    }
    std::vector<Row> rows, ablation;
    std::vector<train::TrainResult> trainings;
    std::vector<std::string> names;
    runner.run_variant("plain", base, rows, trainings, names, &ablation);
    if (o.stress) runner.run_variant("stress", make_stress_variant(base), rows, trainings, names, nullptr);
    write_outputs(o, rows, ablation, trainings, names, seconds_since(t0), runner.gptq_seconds(), runner.gptq_models(),
                  runner.phases());
    // Written first (nothing is lost), then a non-finite perplexity fails the run.
    for (const Row& r : rows)
      if (!std::isfinite(r.ppl_ts) || !std::isfinite(r.ppl_wiki))
        fail(ErrorCode::kCorruptData, r.variant, " ", r.bits, " ", r.method, ": non-finite perplexity (TinyStories ",
             r.ppl_ts, ", WikiText-2 ", r.ppl_wiki, "); see ", o.out, "/results.csv");
    return 0;
  });
}
