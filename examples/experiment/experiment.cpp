// sasq-experiment: the comparison table of sasq's main job. On stories260K (and its stress variant)
// it evaluates FP32 and, per bit width, dynamic per-token, calibration-only static scales, SmoothQuant,
// rotation, SmoothRot and SASQ-trained static scales, on TinyStories and WikiText-2, and writes
// results.md, results.csv and results_sites.csv into the output folder. docs/results.md explains it.
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <map>
#include <sstream>
#include <string>
#include <tuple>
#include <vector>

#include "common/atomic_file.hpp"
#include "common/cli.hpp"
#include "experiment/variants.hpp"
#include "llama/checkpoint.hpp"
#include "llama/integer.hpp"
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
using Seqs = std::vector<std::vector<int>>;
using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

// ---- options -----------------------------------------------------------------------------------

struct Options {
  std::string data = "../shared/data";
  std::string out = "results";
  bool quick = false;
  int threads = 2;
  int wiki_windows = 64;      ///< WikiText-2 test windows of 512 tokens scored (0 = all)
  int eval_stories = 500;     ///< TinyStories stories 1..N evaluated
  int calib_sequences = 128;  ///< calibration stories (from 501..950)
  int int_stories = 16;       ///< stories timed on the true-integer path
  int train_steps = 120;
  bool stress = true;
};

/// The sasq-experiment command line; --quick changes the defaults of the options not given.
void build_cli(CLI::App& app, Options& o) {
  cli::init(app);
  cli::add_input_dir(app, "--data", o.data, "data folder (stories260K, tinystories, wikitext-2-raw)");
  cli::add_output_dir(app, "--out", o.out, "output folder (created if missing): results.md, results.csv, results_sites.csv");
  app.add_flag("--quick", o.quick, "stories 1-100, 8 WikiText windows, W8A8 and W4A4, plain model, 40 training steps");
  cli::add_threads(app, o.threads);
  cli::add_int(app, "--wiki-windows", o.wiki_windows, 0, 1000000, "WikiText-2 test windows of 512 tokens scored (0 = all)");
  cli::add_int(app, "--eval-stories", o.eval_stories, 1, 500, "TinyStories stories 1..N evaluated");
  cli::add_int(app, "--calib", o.calib_sequences, 1, 450, "calibration stories (from 501..950)");
  cli::add_int(app, "--steps", o.train_steps, 0, 1000000, "SASQ training steps");
  app.add_flag("--no-stress", "evaluate the plain model only (no stress variant)");
}

/// Applies --quick to the options the command line did not set.
void finish(const CLI::App& app, Options& o) {
  auto unset = [&](const char* name) { return app.count(name) == 0; };
  if (o.quick) {
    if (unset("--eval-stories")) o.eval_stories = 100;
    if (unset("--wiki-windows")) o.wiki_windows = 8;
    if (unset("--calib")) o.calib_sequences = 64;
    if (unset("--steps")) o.train_steps = 40;
    o.stress = false;
  }
  if (!unset("--no-stress")) o.stress = false;
}

std::string slurp(const std::string& path) {
  const std::vector<unsigned char> b = llama::read_file_bytes(path);
  return std::string(b.begin(), b.end());
}

// ---- the grid of methods -----------------------------------------------------------------------

struct BitConfig {
  const char* name;
  int wbits, wgroup, abits;
};

const std::vector<BitConfig> kBitConfigs = {
    {"W8A8", 8, 0, 8}, {"W4A8", 4, 0, 8}, {"W4A8-g32", 4, 32, 8}, {"W8A4", 8, 0, 4}, {"W4A4", 4, 0, 4}};

enum class Act { kDynamic, kStatic, kSasq };

struct Method {
  const char* name;
  Transform transform;
  Act act;
  ObserverKind observer;  ///< static calibration (and SASQ initialisation: mean-abs-max)
};

const std::vector<Method> kMethods = {
    {"dynamic per-token", Transform::kNone, Act::kDynamic, ObserverKind::kMinMax},
    {"static min-max", Transform::kNone, Act::kStatic, ObserverKind::kMinMax},
    {"static mean-abs-max", Transform::kNone, Act::kStatic, ObserverKind::kMeanAbsMax},
    {"static percentile", Transform::kNone, Act::kStatic, ObserverKind::kPercentile},
    {"static MSE-clip", Transform::kNone, Act::kStatic, ObserverKind::kMse},
    {"SmoothQuant + static", Transform::kSmoothQuant, Act::kStatic, ObserverKind::kMeanAbsMax},
    {"rotation + static", Transform::kRotation, Act::kStatic, ObserverKind::kMeanAbsMax},
    {"rotation + dynamic", Transform::kRotation, Act::kDynamic, ObserverKind::kMinMax},
    {"SmoothRot + static", Transform::kSmoothRot, Act::kStatic, ObserverKind::kMeanAbsMax},
    {"SASQ static", Transform::kNone, Act::kSasq, ObserverKind::kMeanAbsMax},
    {"SASQ + rotation static", Transform::kRotation, Act::kSasq, ObserverKind::kMeanAbsMax},
};

// ---- results -----------------------------------------------------------------------------------

struct Row {
  std::string variant, method, bits;
  int wbits = 0, wgroup = 0, abits = 0;
  bool is_static = false;
  double ppl_ts = 0, ppl_wiki = 0;
  double int_tokens_per_s = std::nan("");  ///< true-integer path (static rows)
  double int_ppl_rel_diff = std::nan("");  ///< |ppl_int - ppl_fake| / ppl_fake on the timed stories
  double train_s = std::nan("");
};

struct Texts {
  Seqs ts_eval, ts_calib, ts_train, ts_heldout, wiki_eval, int_eval;
};

class Runner {
 public:
  Runner(const Options& o, const llama::Weights& base, const Texts& t)
      : o_(o), rope_(llama::make_rope_table(base.config.seq_len, base.config.head_size())), t_(t) {}

  /// Perplexity of `seqs` under an execution policy built per thread by make_exec.
  template <class MakeExec>
  double ppl(const llama::Weights& w, const Seqs& seqs, MakeExec make_exec) const {
    return llama::evaluate_ppl(w, rope_, seqs, o_.threads, make_exec).ppl();
  }

  void run_variant(const std::string& variant, const llama::Weights& w, std::vector<Row>& rows,
                   std::vector<train::TrainResult>& trainings, std::vector<std::string>& training_names) {
    // FP32 reference.
    {
      Row r{variant, "FP32", "FP32"};
      r.ppl_ts = ppl(w, t_.ts_eval, [] { return llama::Fp32Exec{}; });
      r.ppl_wiki = ppl(w, t_.wiki_eval, [] { return llama::Fp32Exec{}; });
      report(r);
      rows.push_back(r);
    }
    calibrations_.clear();  // keyed by the address of this variant's transformed models
    std::map<Transform, TransformedModel> transformed;
    for (const Method& m : kMethods)
      if (!transformed.count(m.transform))
        transformed.emplace(m.transform, apply_transform(w, m.transform, rope_, t_.ts_calib));

    const auto bit_configs = o_.quick ? std::vector<BitConfig>{kBitConfigs[0], kBitConfigs[4]} : kBitConfigs;
    for (const BitConfig& b : bit_configs) {
      std::map<Transform, llama::QuantizedModel> qms;
      std::map<Transform, llama::PackedModel> packed;
      for (auto& [t, tm] : transformed) {
        qms.emplace(t, llama::quantize_weights(tm.weights, {b.wbits, b.wgroup, llama::WeightMethod::kRtn, false}));
        packed.emplace(t, llama::pack_model(qms.at(t)));
      }
      for (const Method& m : kMethods) {
        const TransformedModel& tm = transformed.at(m.transform);
        const llama::QuantizedModel& qm = qms.at(m.transform);
        Row r{variant, m.name, b.name, b.wbits, b.wgroup, b.abits, m.act != Act::kDynamic};
        ActQuantConfig ac{b.abits, m.act == Act::kDynamic ? ActMode::kDynamicPerToken : ActMode::kStatic, false};
        llama::SiteParams params;
        if (m.act == Act::kStatic) {
          params = calibrate(qm.model, tm, m.observer, b);
        } else if (m.act == Act::kSasq) {
          const auto t0 = Clock::now();
          train::TrainResult tr = train(qm.model, tm, b.abits, variant + " " + b.name + " " + m.name);
          r.train_s = seconds_since(t0);
          params = train::to_site_params(tr.scales);
          trainings.push_back(std::move(tr));
          training_names.push_back(variant + " / " + b.name + " / " + m.name);
        }
        const llama::SiteParams* sp = ac.mode == ActMode::kStatic ? &params : nullptr;
        const Rotation* down = tm.down ? &*tm.down : nullptr;
        auto fake = [&] { return llama::with_online_rotation(llama::FakeQuantExec(ac, sp, &qm), down); };
        r.ppl_ts = ppl(qm.model, t_.ts_eval, fake);
        r.ppl_wiki = ppl(qm.model, t_.wiki_eval, fake);
        if (r.is_static) {
          // True-integer path (sasq::gemm) on the first stories: speed, and agreement with fake quant.
          const llama::PackedModel& pm = packed.at(m.transform);
          auto integer = [&] { return llama::with_online_rotation(llama::IntegerExec(pm, ac, sp), down); };
          const llama::PplResult ri = llama::evaluate_ppl(qm.model, rope_, t_.int_eval, o_.threads, integer);
          const double pf = ppl(qm.model, t_.int_eval, fake);
          r.int_tokens_per_s = static_cast<double>(ri.tokens) / ri.seconds;
          r.int_ppl_rel_diff = std::fabs(ri.ppl() - pf) / pf;
        }
        report(r);
        rows.push_back(r);
      }
    }
  }

 private:
  /// Static parameters from a calibration pass, shared by the bit configurations that quantize the
  /// weights the same way (W8A8 and W8A4 see the same activations; so do W4A8 and W4A4).
  llama::SiteParams calibrate(const llama::Weights& w, const TransformedModel& tm, ObserverKind kind,
                              const BitConfig& b) {
    const auto key = std::make_tuple(&tm, kind, b.wbits, b.wgroup);
    auto it = calibrations_.find(key);
    if (it == calibrations_.end())
      it = calibrations_.emplace(key, llama::observe_calibration(w, rope_, t_.ts_calib, kind, tm.down ? &*tm.down : nullptr))
               .first;
    return it->second.params(b.abits);
  }

  train::TrainResult train(const llama::Weights& w, const TransformedModel& tm, int bits, const std::string& label) const {
    train::QuantConfig q;
    q.bits = bits;
    q.down_rotation = tm.down ? &*tm.down : nullptr;
    train::TrainOptions to;
    to.steps = o_.train_steps;
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
    std::fprintf(stderr, "%-8s %-9s %-24s ts %8.4f  wiki %9.3f", r.variant.c_str(), r.bits.c_str(), r.method.c_str(),
                 r.ppl_ts, r.ppl_wiki);
    if (!std::isnan(r.int_tokens_per_s)) std::fprintf(stderr, "  int %7.0f tok/s", r.int_tokens_per_s);
    if (!std::isnan(r.train_s)) std::fprintf(stderr, "  train %.1fs", r.train_s);
    std::fprintf(stderr, "  [%.0fs]\n", seconds_since(start_));
  }

  const Options& o_;
  llama::RopeTable rope_;
  const Texts& t_;
  Clock::time_point start_ = Clock::now();
  std::map<std::tuple<const TransformedModel*, ObserverKind, int, int>, llama::CalibrationExec> calibrations_;
};

// ---- output ------------------------------------------------------------------------------------

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

void write_outputs(const Options& o, const std::vector<Row>& rows, const std::vector<train::TrainResult>& trainings,
                   const std::vector<std::string>& names, double total_s) {
  std::map<std::string, const Row*> fp32;
  for (const Row& r : rows)
    if (r.method == "FP32") fp32[r.variant] = &r;

  std::ostringstream csv;
  csv << "variant,text,method,weight_bits,weight_group,act_bits,ppl,rel_change_vs_fp32,int_tokens_per_s,train_s\n";
  for (const Row& r : rows)
    for (int text = 0; text < 2; ++text) {
      const double p = text == 0 ? r.ppl_ts : r.ppl_wiki;
      const double ref = text == 0 ? fp32[r.variant]->ppl_ts : fp32[r.variant]->ppl_wiki;
      csv << r.variant << ',' << (text == 0 ? "tinystories" : "wikitext2") << ",\"" << r.method << "\","
          << r.wbits << ',' << r.wgroup << ',' << r.abits << ',' << fmt(p, 6) << ',' << fmt(p / ref - 1.0, 6) << ','
          << fmt(r.int_tokens_per_s, 0) << ',' << fmt(r.train_s, 2) << '\n';
    }

  std::ostringstream md;
  md << "| model | bits | method | TinyStories ppl | Δ vs FP32 | WikiText-2 ppl | Δ vs FP32 | int tok/s | train s |\n"
     << "|---|---|---|---:|---:|---:|---:|---:|---:|\n";
  for (const Row& r : rows) {
    const Row& f = *fp32[r.variant];
    const bool sasq = r.method.rfind("SASQ", 0) == 0;
    const std::string b = sasq ? "**" : "";
    md << "| " << r.variant << " | " << r.bits << " | " << b << r.method << b << " | " << b << fmt_ppl(r.ppl_ts) << b
       << " | " << pct(r.ppl_ts, f.ppl_ts) << " | " << b << fmt_ppl(r.ppl_wiki) << b << " | "
       << pct(r.ppl_wiki, f.ppl_wiki) << " | " << fmt(r.int_tokens_per_s, 0) << " | " << fmt(r.train_s, 1) << " |\n";
  }
  md << "\nTotal wall time " << fmt(total_s, 0) << " s, " << o.threads << " threads"
     << (o.quick ? " (--quick)" : "") << ".\n";

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

    const std::string model_path = o.data + "/stories260K/stories260K.bin";
    const llama::Weights base = llama::load_checkpoint(model_path);
    const llama::Tokenizer tok = llama::Tokenizer::load(o.data + "/stories260K/tok512.bin", base.config.vocab_size);
    const Texts texts = load_texts(o, tok, base.config.seq_len);
    std::fprintf(stderr, "sasq-experiment: %zu TinyStories eval sequences, %zu WikiText windows, %zu train, %zu held-out\n",
                 texts.ts_eval.size(), texts.wiki_eval.size(), texts.ts_train.size(), texts.ts_heldout.size());

    Runner runner(o, base, texts);
    std::vector<Row> rows;
    std::vector<train::TrainResult> trainings;
    std::vector<std::string> names;
    runner.run_variant("plain", base, rows, trainings, names);
    if (o.stress) runner.run_variant("stress", make_stress_variant(base), rows, trainings, names);
    write_outputs(o, rows, trainings, names, seconds_since(t0));
    return 0;
  });
}
