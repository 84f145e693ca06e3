// sasq-llama: generate, perplexity (FP32, fake-quant, true-integer), activation statistics and the
// baseline table of docs/evaluation.md for llama2.c checkpoints (stories260K by default); static
// activation scales come from calibration or from a sasq-train scales file (--scales).
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <map>
#include <memory>
#include <mutex>
#include <sstream>
#include <string>
#include <vector>

#include "common/atomic_file.hpp"
#include "common/cli.hpp"
#include "llama/checkpoint.hpp"
#include "llama/forward_instances.hpp"
#include "llama/gptq.hpp"
#include "llama/integer.hpp"
#include "llama/load_model.hpp"
#include "llama/model.hpp"
#include "llama/perplexity.hpp"
#include "llama/quantized.hpp"
#include "llama/tokenizer.hpp"
#include "sasq/metrics/difficulty.hpp"
#include "train/scales_file.hpp"
#include "train/trainer.hpp"

namespace {

using namespace sasq::llama;
namespace cli = sasq::cli;
using sasq::ErrorCode;
using sasq::fail;

/// Every option of the four commands (each command registers the ones it reads).
struct Options {
  std::string command;
  std::string model, tokenizer, data, protocol = "tinystories", text, calib_text;
  long max_tokens = 0, max_windows = 0, calib_sequences = 128;
  int threads = 2;
  int wbits = 0, wgroup = 0, abits = 0;
  std::string wquant = "rtn", act, observer, exec = "fake", scales;
  double act_clip = 1.0;
  bool wcls = false, kv_cache = false, ignore_weight_mismatch = false;
  bool json = false;                // ppl
  std::string prompt;               // generate
  int steps = 256;                  // generate
  std::string out;                  // stats
  long stats_tokens = 4096;         // stats --max-tokens
};

constexpr long kMaxCount = 1000000000;  ///< upper bound of the token/sequence count options

void add_model_options(CLI::App& c, Options& o) {
  cli::add_model(c, o.model, "<data>/stories260K/stories260K.bin");
  cli::add_tokenizer(c, o.tokenizer, "<data>/stories260K/tok512.bin");
  cli::add_input_dir(c, "--data", o.data, "data folder (default ../shared/data next to the source tree or the CWD)");
  cli::add_threads(c, o.threads);
}

void add_data_options(CLI::App& c, Options& o, bool max_tokens) {
  cli::add_choice(c, "--protocol", o.protocol, {"tinystories", "wikitext"},
                  "tinystories: stories 1-500 evaluated, 501-1000 calibrate; wikitext: wiki.test.raw windows of 512, "
                  "wiki.valid.raw calibrates");
  cli::add_input_file(c, "--text", o.text, "evaluation text (overrides the protocol's file)");
  cli::add_input_file(c, "--calib-text", o.calib_text, "calibration text (overrides the protocol's file)");
  if (max_tokens) cli::add_int(c, "--max-tokens", o.max_tokens, 0L, kMaxCount, "score at most N predictions (0 = all)");
  cli::add_int(c, "--max-windows", o.max_windows, 0L, kMaxCount, "evaluate at most N sequences (0 = all)");
  cli::add_int(c, "--calib-sequences", o.calib_sequences, 0L, kMaxCount, "calibration sequences (0 = all)");
}

void add_weight_options(CLI::App& c, Options& o) {
  cli::add_wgroup(c, o.wgroup);
  cli::add_wquant(c, o.wquant);
  c.add_flag("--wcls", o.wcls, "also quantize the classifier");
  c.add_flag("--kv-cache", o.kv_cache, "also quantize the KV cache");
}

void add_quant_options(CLI::App& c, Options& o) {
  cli::add_wbits(c, o.wbits);
  cli::add_abits(c, o.abits, {0, 4, 8});
  add_weight_options(c, o);
  cli::add_choice(c, "--act", o.act, {"dynamic", "static"}, "activation quantization (default dynamic; static with --scales)");
  cli::add_act_clip(c, o.act_clip);
  cli::add_observer(c, o.observer, "static-scale observer (default minmax)");
  cli::add_choice(c, "--exec", o.exec, {"fake", "int"}, "fake quantization or sasq::gemm integer kernels");
}

void add_scales_option(CLI::App& c, Options& o) {
  cli::add_input_file(c, "--scales", o.scales,
                      "static per-tensor activation scales from sasq-train instead of calibration; implies --act "
                      "static; must match the checkpoint (fingerprint), its layer count, --abits and the quantized "
                      "sites (no --kv-cache)");
  c.add_flag("--ignore-weight-mismatch", o.ignore_weight_mismatch,
             "use --scales trained with another weight quantization than --wbits/--wgroup/--wquant (a warning, "
             "not an error)");
}

/// The sasq-llama command line.
void build_cli(CLI::App& app, Options& o) {
  cli::init(app);
  app.require_subcommand(1);
  CLI::App* gen = app.add_subcommand("generate", "greedy generation (run.c -t 0)");
  add_model_options(*gen, o);
  add_data_options(*gen, o, true);
  add_quant_options(*gen, o);
  add_scales_option(*gen, o);
  gen->add_option("--prompt", o.prompt, "prompt text")->capture_default_str();
  cli::add_int(*gen, "--steps", o.steps, 1, 1 << 20, "tokens to generate (at most the model's seq_len)");

  CLI::App* ppl = app.add_subcommand("ppl", "perplexity of one configuration");
  add_model_options(*ppl, o);
  add_data_options(*ppl, o, true);
  add_quant_options(*ppl, o);
  add_scales_option(*ppl, o);
  ppl->add_flag("--json", o.json, "print one JSON object");

  CLI::App* stats = app.add_subcommand("stats", "per-site activation statistics and difficulty metrics as CSV");
  add_model_options(*stats, o);
  add_data_options(*stats, o, false);
  add_quant_options(*stats, o);
  cli::add_int(*stats, "--max-tokens", o.stats_tokens, 1L, kMaxCount, "calibration tokens collected per site");
  cli::add_output_file(*stats, "--out", o.out, "CSV file (default: standard output)");

  CLI::App* base = app.add_subcommand(
      "baselines", "markdown table: FP32 and W8A8/W4A8/W8A4/W4A4 x dynamic/static min-max/static mean-abs-max, and "
                   "tokens/s of the FP32, fake-quant and integer paths");
  add_model_options(*base, o);
  add_data_options(*base, o, true);
  add_weight_options(*base, o);
  for (CLI::App* c : {gen, ppl, stats, base})
    c->final_callback([&o, c] { o.command = c->get_name(); });
}

bool exists(const std::string& p) { return std::ifstream(p).good(); }

/// Resolves a data file: --data DIR, else the source tree's ../shared/data, else ./../shared/data
/// and ./shared/data; throws naming the file and every place looked at.
std::string data_file(const Options& o, const std::string& rel) {
  std::vector<std::string> dirs;
  if (!o.data.empty()) {
    dirs.push_back(o.data);
  } else {
#ifdef SASQ_LLAMA_DATA_DIR
    dirs.push_back(SASQ_LLAMA_DATA_DIR);
#endif
    dirs.push_back("../shared/data");
    dirs.push_back("shared/data");
  }
  std::string looked;
  for (const auto& d : dirs) {
    const std::string p = d + "/" + rel;
    if (exists(p)) return p;
    looked += (looked.empty() ? "" : ", ") + p;
  }
  fail(ErrorCode::kIoError, "missing data file ", rel, " (looked in: ", looked, "); pass --data DIR or the file option");
}

/// `given` (a file option, checked to exist when parsed) or the data file `rel`.
std::string file_opt(const Options& o, const std::string& given, const std::string& rel) {
  return given.empty() ? data_file(o, rel) : given;
}

std::string slurp(const std::string& path) {
  const std::vector<unsigned char> b = read_file_bytes(path);
  return std::string(b.begin(), b.end());
}

/// Progress on stderr, only when it is a terminal.
class Progress {
 public:
  explicit Progress(std::string label) : label_(std::move(label)), tty_(isatty(STDERR_FILENO) != 0) {}
  void operator()(std::size_t done, std::size_t total) {
    if (!tty_) return;
    std::lock_guard<std::mutex> lock(mu_);
    const int width = 40, filled = static_cast<int>(width * done / std::max<std::size_t>(total, 1));
    std::fprintf(stderr, "\r%s [%s%s] %zu/%zu", label_.c_str(), std::string(static_cast<std::size_t>(filled), '#').c_str(),
                 std::string(static_cast<std::size_t>(width - filled), ' ').c_str(), done, total);
    if (done == total) std::fprintf(stderr, "\n");
  }
  std::function<void(std::size_t, std::size_t)> fn() {
    return [this](std::size_t d, std::size_t t) { (*this)(d, t); };
  }

 private:
  std::string label_;
  bool tty_;
  std::mutex mu_;
};

/// Evaluation and calibration sequences of a protocol.
struct Data {
  std::string protocol;
  std::vector<std::vector<int>> eval;
  std::vector<std::vector<int>> calib;
  std::string eval_file, calib_file;  ///< where eval and calib came from, for messages
  int window = 0;                     ///< wikitext window length
};

Data load_data(const Options& o, const Tokenizer& tok, const Config& c) {
  Data d;
  d.protocol = o.protocol;
  const long calib_n = o.calib_sequences;
  if (d.protocol == "tinystories") {
    d.eval_file = file_opt(o, o.text, "tinystories/tinystories_valid_first1000.txt");
    const auto stories = split_stories(slurp(d.eval_file));
    if (stories.size() < 1000)
      fail(ErrorCode::kCorruptData, "TinyStories text has ", stories.size(), " stories, the protocol needs 1000");
    d.eval = story_sequences(tok, stories, 1, 500, c.seq_len);
    const int last = calib_n > 0 ? static_cast<int>(std::min<long>(1000, 500 + calib_n)) : 1000;
    const bool own_calib = !o.calib_text.empty();
    d.calib_file = own_calib ? o.calib_text : d.eval_file;
    const auto calib_stories = own_calib ? split_stories(slurp(o.calib_text)) : stories;
    d.calib = own_calib ? story_sequences(tok, calib_stories, 1,
                                                    static_cast<int>(calib_n > 0 ? std::min<long>(calib_n, static_cast<long>(calib_stories.size())) : static_cast<long>(calib_stories.size())), c.seq_len)
                                  : story_sequences(tok, calib_stories, 501, last, c.seq_len);
  } else if (d.protocol == "wikitext") {
    const int window = std::min(kWikiWindow, c.seq_len);
    d.window = window;
    d.eval_file = file_opt(o, o.text, "wikitext-2-raw/wiki.test.raw");
    d.eval = stream_windows(tok, slurp(d.eval_file), window);
    d.calib_file = file_opt(o, o.calib_text, "wikitext-2-raw/wiki.valid.raw");
    d.calib = stream_windows(tok, slurp(d.calib_file), window);
    if (calib_n > 0 && static_cast<long>(d.calib.size()) > calib_n) d.calib.resize(static_cast<std::size_t>(calib_n));
  }
  const long max_windows = o.max_windows;
  if (max_windows > 0 && static_cast<long>(d.eval.size()) > max_windows) d.eval.resize(static_cast<std::size_t>(max_windows));
  d.eval = limit_predictions(std::move(d.eval), o.max_tokens);
  if (d.eval.empty())
    fail(ErrorCode::kInvalidArgument, "no evaluation sequence in ", d.eval_file, d.protocol == "wikitext" ? " (shorter than one window of " + std::to_string(d.window) + " tokens?)" : "");
  return d;
}

/// One quantization configuration.
struct QuantSpec {
  WeightQuantConfig w;
  ActQuantConfig act;
  ObserverKind observer = ObserverKind::kMinMax;
  std::string observer_name = "minmax";
  bool integer = false;
  int threads = 2;          ///< GPTQ's Hessian passes
  std::string scales_file;  ///< --scales: static parameters from this file instead of calibration
  SiteParams scales;        ///< its parameters, once load_scales_params() has checked it
};

/// The quantization of `o`; options that cannot work together are usage errors.
QuantSpec parse_quant(const Options& o) {
  QuantSpec q;
  const bool file = !o.scales.empty();
  q.w.bits = o.wbits;
  q.w.group_size = o.wgroup;
  q.w.method = parse_weight_method(o.wquant);
  q.threads = o.threads;
  q.w.classifier = o.wcls;
  q.act.bits = o.abits;
  q.scales_file = o.scales;
  if (file && q.act.bits == 0) cli::usage_fail("--scales needs --abits 4|8");
  const std::string mode = o.act.empty() ? (file ? "static" : "dynamic") : o.act;
  if (file && mode != "static") cli::usage_fail("--scales needs --act static, got --act ", mode);
  if (file && !o.observer.empty()) cli::usage_fail("--observer has no effect with --scales (the scales come from the file)");
  q.act.mode = q.act.bits == 0 ? ActMode::kNone : mode == "static" ? ActMode::kStatic : ActMode::kDynamicPerToken;
  q.act.kv_cache = o.kv_cache;
  q.act.clip_ratio = static_cast<float>(o.act_clip);
  if (o.act_clip != 1.0 && q.act.mode != ActMode::kDynamicPerToken) cli::usage_fail("--act-clip needs --act dynamic");
  q.observer_name = file ? "file" : o.observer.empty() ? "minmax" : o.observer;
  if (!file) q.observer = parse_observer(q.observer_name);
  if (file && q.act.kv_cache)
    cli::usage_fail("--scales with --kv-cache: scales files hold the linear-layer inputs only "
                    "(sasq-train does not train KV-cache scales)");
  q.integer = o.exec == "int";
  if (q.integer && (q.w.bits == 0 || !q.act.enabled())) cli::usage_fail("--exec int needs --wbits 4|8 and --abits 4|8");
  return q;
}

/// A model prepared for one QuantSpec: quantized weights, static parameters, packed weights.
struct Prepared {
  QuantizedModel qm;
  SiteParams params;
  PackedModel packed;
  double calib_seconds = 0.0;
};

/// Refuses an empty calibration set, naming its source.
void require_calibration(const Data& d) {
  if (d.calib.empty())
    fail(ErrorCode::kInvalidArgument, "no calibration sequence in ", d.calib_file,
         d.protocol == "wikitext" ? " (shorter than one window of " + std::to_string(d.window) + " tokens)" : "");
}

std::unique_ptr<Prepared> prepare(const Weights& w, const RopeTable& rope, const QuantSpec& q,
                                  const std::vector<std::vector<int>>& calib) {
  auto p = std::make_unique<Prepared>();
  p->qm = quantize_model_weights(w, q.w, rope, calib, nullptr, q.threads);
  if (q.act.mode == ActMode::kStatic && !q.scales_file.empty()) {
    p->params = q.scales;
  } else if (q.act.mode == ActMode::kStatic) {
    SASQ_REQUIRE(!calib.empty(), "static activation scales need calibration sequences; there are none");
    const auto t0 = std::chrono::steady_clock::now();
    p->params = calibrate(p->qm.model, rope, calib, q.observer, q.act.bits);
    p->calib_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  }
  if (q.integer) p->packed = pack_model(p->qm);
  return p;
}

PplResult run_ppl(const Prepared& p, const RopeTable& rope, const QuantSpec& q, const std::vector<std::vector<int>>& seqs,
                  int threads, const std::function<void(std::size_t, std::size_t)>& progress) {
  const SiteParams* sp = q.act.mode == ActMode::kStatic ? &p.params : nullptr;
  if (q.integer) return evaluate_ppl(p.qm.model, rope, seqs, threads, [&] { return IntegerExec(p.packed, q.act, sp); }, progress);
  if (!q.act.enabled()) return evaluate_ppl(p.qm.model, rope, seqs, threads, [] { return Fp32Exec{}; }, progress);
  return evaluate_ppl(p.qm.model, rope, seqs, threads, [&] { return FakeQuantExec(q.act, sp, &p.qm); }, progress);
}

struct Loaded {
  std::string model_path;
  Weights weights;
  Tokenizer tok;
  RopeTable rope;
};

Loaded load(const Options& o) {
  Loaded l;
  l.model_path = o.model.empty() ? data_file(o, "stories260K/stories260K.bin") : o.model;
  l.weights = load_model(l.model_path);
  const bool own = o.tokenizer.empty() && has_own_tokenizer(l.model_path);
  l.tok = load_tokenizer_for(l.model_path, l.weights, o.tokenizer,
                             o.tokenizer.empty() && !own ? data_file(o, "stories260K/tok512.bin") : "");
  l.rope = make_rope_table(l.weights.config);
  return l;
}

/// Static parameters from the scales file of q.scales_file (written by sasq-train), checked with
/// train::check_scales against what this run needs: the fingerprint of the model's weights, its
/// layer count, q.act.bits and its grid, and every quantized (layer, site), and the weight
/// quantization it was trained with (a warning with ignore_weight_mismatch). Throws naming the file
/// and the first mismatch; per-channel files are refused (llama::FakeQuantExec and IntegerExec take
/// one scale per site).
void load_scales_params(const Loaded& l, QuantSpec& q, bool ignore_weight_mismatch) {
  namespace train = sasq::train;
  const train::ScalesFile f = train::load_scales(q.scales_file);
  train::ScalesExpectation e;
  e.model = weights_fingerprint(l.weights);
  e.config = l.weights.config;
  e.bits = q.act.bits;
  e.full_range = with_act_grid(q.act.bits, [](auto g) { return decltype(g)::kQmin == -decltype(g)::kQmax - 1; });
  for (int layer = 0; layer < e.config.n_layers; ++layer)
    for (int s = 0; s < kNumSites; ++s)
      if (q.act.quantizes(static_cast<Site>(s))) e.sites.emplace_back(layer, static_cast<Site>(s));
  train::check_scales(f, e, q.scales_file);
  const std::string weights = train::weight_mismatch(
      f, train::WeightRecord{q.w.bits, q.w.group_size, weight_method_name(q.w.method)});
  if (!weights.empty() && !ignore_weight_mismatch)
    fail(ErrorCode::kInvalidArgument, q.scales_file, ": ", weights, " (--ignore-weight-mismatch uses them anyway)");
  if (!weights.empty()) std::fprintf(stderr, "sasq-llama: warning: %s: %s\n", q.scales_file.c_str(), weights.c_str());
  if (f.granularity != train::Granularity::kPerTensor)
    fail(ErrorCode::kInvalidArgument, q.scales_file, ": ", train::granularity_name(f.granularity),
         " scales are not supported by sasq-llama (static quantization here is per tensor); train with "
         "sasq-train --granularity per_tensor");
  q.scales = train::to_site_params(f);
}

int cmd_generate(const Options& o) {
  QuantSpec q = parse_quant(o);
  Loaded l = load(o);
  if (!q.scales_file.empty()) load_scales_params(l, q, o.ignore_weight_mismatch);
  const long steps = std::min<long>(o.steps, l.weights.config.seq_len);
  const std::vector<int> prompt = l.tok.encode(o.prompt, true);
  std::vector<std::vector<int>> calib;
  if ((q.act.mode == ActMode::kStatic && q.scales_file.empty()) || (is_gptq(q.w.method) && q.w.bits != 0)) {
    Data d = load_data(o, l.tok, l.weights.config);
    require_calibration(d);
    calib = std::move(d.calib);
  }
  const auto p = prepare(l.weights, l.rope, q, calib);
  const SiteParams* sp = q.act.mode == ActMode::kStatic ? &p->params : nullptr;
  std::vector<int> out;
  if (q.integer) {
    IntegerExec e(p->packed, q.act, sp);
    out = generate_greedy(p->qm.model, l.rope, prompt, static_cast<int>(steps), e);
  } else {
    FakeQuantExec e(q.act, sp, &p->qm);
    out = generate_greedy(p->qm.model, l.rope, prompt, static_cast<int>(steps), e);
  }
  std::cout << l.tok.decode(out, prompt[0]) << "\n";
  return 0;
}

std::string json_escape(const std::string& s) {
  std::string out;
  for (const char c : s) {
    if (c == '"' || c == '\\') out += '\\';
    if (static_cast<unsigned char>(c) >= 0x20) out += c;
  }
  return out;
}

std::string json_result(const Options& o, const QuantSpec& q, const Data& d, const PplResult& r, const Prepared& p) {
  std::ostringstream os;
  os.precision(12);
  os << "{\"ppl\": " << r.ppl() << ", \"nll_sum\": " << r.nll_sum << ", \"tokens\": " << r.tokens
     << ", \"sequences\": " << r.sequences << ", \"seconds\": " << r.seconds
     << ", \"tokens_per_second\": " << r.tokens_per_second() << ", \"protocol\": \"" << d.protocol << "\""
     << ", \"wbits\": " << q.w.bits << ", \"wgroup\": " << q.w.group_size << ", \"wquant\": \""
     << weight_method_name(q.w.method) << "\", \"abits\": " << q.act.bits << ", \"act_clip\": " << q.act.clip_ratio << ", \"act\": \""
     << (q.act.mode == ActMode::kStatic ? "static" : q.act.mode == ActMode::kDynamicPerToken ? "dynamic" : "none")
     << "\", \"observer\": \"" << q.observer_name << "\", \"kv_cache\": " << (q.act.kv_cache ? "true" : "false")
     << ", \"exec\": \"" << (q.integer ? "int" : q.act.enabled() ? "fake" : "fp32") << "\"";
  if (!q.scales_file.empty()) os << ", \"scales\": \"" << json_escape(q.scales_file) << "\"";
  os << ", \"calib_sequences\": "
     << (q.act.mode == ActMode::kStatic && q.scales_file.empty() ? d.calib.size() : 0) << ", \"calib_seconds\": " << p.calib_seconds
     << ", \"threads\": " << o.threads << "}";
  return os.str();
}

int cmd_ppl(const Options& o) {
  QuantSpec q = parse_quant(o);
  Loaded l = load(o);
  if (!q.scales_file.empty()) load_scales_params(l, q, o.ignore_weight_mismatch);
  const Data d = load_data(o, l.tok, l.weights.config);
  if (q.act.mode == ActMode::kStatic && q.scales_file.empty()) require_calibration(d);
  const auto p = prepare(l.weights, l.rope, q, d.calib);
  Progress bar("ppl");
  const PplResult r = run_ppl(*p, l.rope, q, d.eval, o.threads, bar.fn());
  finite_ppl(r, "this configuration on " + d.eval_file);
  if (o.json) {
    std::cout << json_result(o, q, d, r, *p) << "\n";
  } else {
    std::printf("ppl %.6f  nll_sum %.4f  tokens %ld  sequences %ld  %.2f s  %.0f tokens/s\n", r.ppl(), r.nll_sum, r.tokens,
                r.sequences, r.seconds, r.tokens_per_second());
  }
  return 0;
}

/// Collects up to max_tokens rows of every (layer, site) activation.
class StatsExec {
 public:
  StatsExec(const Config& c, long max_tokens) : max_(max_tokens), rows_(static_cast<std::size_t>(c.n_layers) * kNumSites) {}
  void on_site(int layer, Site s, Matrix& x) {
    std::vector<float>& r = rows_[static_cast<std::size_t>(layer) * kNumSites + static_cast<std::size_t>(s)].data;
    cols_[static_cast<std::size_t>(s)] = x.cols();
    const long have = static_cast<long>(r.size()) / static_cast<long>(x.cols());
    const long take = std::min<long>(x.rows(), max_ - have);
    if (take > 0) r.insert(r.end(), x.data(), x.data() + take * x.cols());
  }
  void linear(int, Proj, const Matrix& x, const Matrix& w, Matrix& y) { sasq::llama::linear(x, w, y); }
  sasq::MatrixView<const float> view(int layer, Site s) const {
    const auto& r = rows_[static_cast<std::size_t>(layer) * kNumSites + static_cast<std::size_t>(s)].data;
    const auto c = cols_[static_cast<std::size_t>(s)];
    return {r.data(), static_cast<std::ptrdiff_t>(r.size()) / c, c};
  }
  bool full() const { return static_cast<long>(rows_[0].data.size()) / std::max<Eigen::Index>(cols_[0], 1) >= max_; }

 private:
  struct Rows {
    std::vector<float> data;
  };
  long max_;
  std::vector<Rows> rows_;
  std::array<Eigen::Index, kNumSites> cols_{};
};

int cmd_stats(const Options& o) {
  const QuantSpec q = parse_quant(o);
  Loaded l = load(o);
  const Data d = load_data(o, l.tok, l.weights.config);
  require_calibration(d);
  const auto p = prepare(l.weights, l.rope, q, d.calib);
  StatsExec exec(l.weights.config, o.stats_tokens);
  long tokens = 0;
  for (const auto& s : d.calib) {
    if (exec.full()) break;
    forward(p->qm.model, l.rope, sasq::Span<const int>(s).subspan(0, s.size() - 1), 0, nullptr, exec);
    tokens += static_cast<long>(s.size()) - 1;
  }
  std::ostringstream os;  // written whole (--out) or to stdout at the end
  os << "layer,site,tokens,channels,min,max,absmax,mean,std,kurtosis,quant_difficulty,max_median_ratio\n";
  os.precision(8);
  for (int layer = 0; layer < l.weights.config.n_layers; ++layer)
    for (int s = 0; s < kNumSites; ++s) {
      const auto v = exec.view(layer, static_cast<Site>(s));
      const Eigen::Map<const Eigen::ArrayXf> all(v.data(), v.size());
      const double mean = all.cast<double>().mean();
      const double sd = std::sqrt((all.cast<double>() - mean).square().sum() / static_cast<double>(std::max<std::ptrdiff_t>(v.size() - 1, 1)));
      os << layer << "," << site_name(static_cast<Site>(s)) << "," << v.rows() << "," << v.cols() << "," << all.minCoeff() << ","
         << all.maxCoeff() << "," << all.abs().maxCoeff() << "," << mean << "," << sd << "," << sasq::kurtosis(v) << ","
         << sasq::quant_difficulty(v) << "," << sasq::max_median_ratio(sasq::channel_magnitudes(v)) << "\n";
    }
  if (o.out.empty()) {
    std::cout << os.str();
  } else {
    sasq::examples::write_file_atomic(o.out, os.str());
  }
  std::fprintf(stderr, "stats over %ld calibration tokens (protocol %s)\n", tokens, d.protocol.c_str());
  return 0;
}

int cmd_baselines(const Options& o) {
  Loaded l = load(o);
  const Data d = load_data(o, l.tok, l.weights.config);
  require_calibration(d);
  const int threads = o.threads;
  auto run = [&](int wbits, int abits, const std::string& act, const std::string& observer, bool integer) {
    Options b = o;
    b.wbits = wbits;
    b.abits = abits;
    b.act = act;
    b.observer = observer;
    b.exec = integer ? "int" : "fake";
    const QuantSpec q = parse_quant(b);
    const auto p = prepare(l.weights, l.rope, q, d.calib);
    const std::string name = "W" + std::to_string(wbits) + "A" + std::to_string(abits) + " " + act + " " + observer;
    Progress bar(name);
    const PplResult r = run_ppl(*p, l.rope, q, d.eval, threads, bar.fn());
    finite_ppl(r, name);
    return r;
  };
  const PplResult fp = run(0, 0, "dynamic", "minmax", false);
  std::printf("protocol %s: %ld scored tokens in %ld sequences; calibration %zu sequences; %d threads\n\n",
              d.protocol.c_str(), fp.tokens, fp.sequences, d.calib.size(), threads);
  std::printf("| config | dynamic per-token | static min-max | static mean-abs-max |\n|---|---:|---:|---:|\n");
  std::printf("| FP32 | %.4f | | |\n", fp.ppl());
  const int cfgs[4][2] = {{8, 8}, {4, 8}, {8, 4}, {4, 4}};
  for (const auto& c : cfgs) {
    const PplResult dyn = run(c[0], c[1], "dynamic", "minmax", false);
    const PplResult mm = run(c[0], c[1], "static", "minmax", false);
    const PplResult mam = run(c[0], c[1], "static", "meanabsmax", false);
    std::printf("| W%dA%d | %.4f | %.4f | %.4f |\n", c[0], c[1], dyn.ppl(), mm.ppl(), mam.ppl());
    std::fflush(stdout);
  }
  const PplResult fake = run(8, 8, "static", "minmax", false);
  const PplResult integer = run(8, 8, "static", "minmax", true);
  std::printf("\n| path (W8A8 static min-max for the quantized ones) | ppl | seconds | tokens/s |\n|---|---:|---:|---:|\n");
  std::printf("| FP32 (Eigen) | %.4f | %.2f | %.0f |\n", fp.ppl(), fp.seconds, fp.tokens_per_second());
  std::printf("| fake-quant | %.4f | %.2f | %.0f |\n", fake.ppl(), fake.seconds, fake.tokens_per_second());
  std::printf("| integer (sasq::gemm) | %.4f | %.2f | %.0f |\n", integer.ppl(), integer.seconds, integer.tokens_per_second());
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  Options o;
  CLI::App app("sasq-llama: generation, perplexity, activation statistics and baselines for llama2.c checkpoints",
               "sasq-llama");
  build_cli(app, o);
  return cli::run(app, argc, argv, [&] {
    if (o.command == "generate") return cmd_generate(o);
    if (o.command == "ppl") return cmd_ppl(o);
    if (o.command == "stats") return cmd_stats(o);
    return cmd_baselines(o);
  });
}
