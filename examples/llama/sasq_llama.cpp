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

#include "llama/checkpoint.hpp"
#include "llama/integer.hpp"
#include "llama/model.hpp"
#include "llama/perplexity.hpp"
#include "llama/quantized.hpp"
#include "llama/tokenizer.hpp"
#include "sasq/metrics/difficulty.hpp"
#include "train/scales_file.hpp"
#include "train/trainer.hpp"

namespace {

using namespace sasq::llama;
using sasq::ErrorCode;
using sasq::fail;

const char* const kUsage = R"(usage: sasq-llama <command> [options]

commands:
  generate   greedy generation (run.c -t 0)           --prompt TEXT --steps N (256)
  ppl        perplexity of one configuration          --json prints one JSON object
  stats      per-site activation statistics and difficulty metrics as CSV   --out FILE --max-tokens N (4096)
  baselines  markdown table: FP32 and W8A8/W4A8/W8A4/W4A4 x dynamic/static min-max/static mean-abs-max,
             and tokens/s of the FP32, fake-quant and integer paths

data (defaults: <data>/stories260K/..., <data> = ../shared/data next to the source tree or the CWD):
  --model FILE  --tokenizer FILE  --data DIR
  --protocol tinystories|wikitext   (tinystories: stories 1-500 evaluated, 501-1000 calibrate;
                                     wikitext: wiki.test.raw windows of 512, wiki.valid.raw calibrates)
  --text FILE  --calib-text FILE     override the protocol's files
  --max-tokens N    score at most N predictions (0 = all)       --max-windows N   at most N sequences
  --calib-sequences N  calibration sequences (128; 0 = all)     --threads N (2)
quantization:
  --wbits 0|4|8  --wgroup 0|32|64|128 (0 = per channel)  --wclip rtn|mse  --wcls (quantize the classifier)
  --abits 0|4|8  --act dynamic|static  --observer minmax|meanabsmax|ema|percentile|mse  --kv-cache
  --exec fake|int   (int: sasq::gemm integer kernels)
  --scales FILE     (ppl, generate) static per-tensor activation scales from sasq-train instead of
                    calibration; implies --act static; the file must match the checkpoint (fingerprint),
                    its layer count, --abits and the quantized sites (no --kv-cache)
)";

struct Args {
  std::string command;
  std::map<std::string, std::string> opt;
  bool has(const std::string& k) const { return opt.count(k) != 0; }
  std::string get(const std::string& k, const std::string& def) const {
    const auto it = opt.find(k);
    return it == opt.end() ? def : it->second;
  }
  long num(const std::string& k, long def) const {
    const auto it = opt.find(k);
    if (it == opt.end()) return def;
    char* end = nullptr;
    const long v = std::strtol(it->second.c_str(), &end, 10);
    if (it->second.empty() || *end != '\0') fail(ErrorCode::kInvalidArgument, "--", k, ": '", it->second, "' is not an integer");
    return v;
  }
};

Args parse_args(int argc, char** argv) {
  static const char* const flags[] = {"json", "kv-cache", "wcls", "help"};
  Args a;
  for (int i = 1; i < argc; ++i) {
    std::string s = argv[i];
    if (s.rfind("--", 0) != 0) {
      if (!a.command.empty()) fail(ErrorCode::kInvalidArgument, "unexpected argument '", s, "'");
      a.command = s;
      continue;
    }
    s = s.substr(2);
    const bool is_flag = std::find(std::begin(flags), std::end(flags), s) != std::end(flags);
    if (is_flag) {
      a.opt[s] = "1";
    } else {
      if (i + 1 >= argc) fail(ErrorCode::kInvalidArgument, "--", s, " needs a value");
      a.opt[s] = argv[++i];
    }
  }
  return a;
}

bool exists(const std::string& p) { return std::ifstream(p).good(); }

/// Resolves a data file: --data DIR, else the source tree's ../shared/data, else ./../shared/data
/// and ./shared/data; throws naming the file and every place looked at.
std::string data_file(const Args& a, const std::string& rel) {
  std::vector<std::string> dirs;
  if (a.has("data")) {
    dirs.push_back(a.get("data", ""));
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

std::string file_opt(const Args& a, const std::string& key, const std::string& rel) {
  if (a.has(key)) {
    const std::string p = a.get(key, "");
    if (!exists(p)) fail(ErrorCode::kIoError, "--", key, ": cannot open ", p);
    return p;
  }
  return data_file(a, rel);
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
};

Data load_data(const Args& a, const Tokenizer& tok, const Config& c) {
  Data d;
  d.protocol = a.get("protocol", "tinystories");
  const long calib_n = a.num("calib-sequences", 128);
  if (d.protocol == "tinystories") {
    const auto stories = split_stories(slurp(file_opt(a, "text", "tinystories/tinystories_valid_first1000.txt")));
    if (stories.size() < 1000)
      fail(ErrorCode::kCorruptData, "TinyStories text has ", stories.size(), " stories, the protocol needs 1000");
    d.eval = story_sequences(tok, stories, 1, 500, c.seq_len);
    const int last = calib_n > 0 ? static_cast<int>(std::min<long>(1000, 500 + calib_n)) : 1000;
    const auto calib_stories = a.has("calib-text") ? split_stories(slurp(file_opt(a, "calib-text", ""))) : stories;
    d.calib = a.has("calib-text") ? story_sequences(tok, calib_stories, 1,
                                                    static_cast<int>(calib_n > 0 ? std::min<long>(calib_n, static_cast<long>(calib_stories.size())) : static_cast<long>(calib_stories.size())), c.seq_len)
                                  : story_sequences(tok, calib_stories, 501, last, c.seq_len);
  } else if (d.protocol == "wikitext") {
    const int window = std::min(kWikiWindow, c.seq_len);
    d.eval = stream_windows(tok, slurp(file_opt(a, "text", "wikitext-2-raw/wiki.test.raw")), window);
    d.calib = stream_windows(tok, slurp(file_opt(a, "calib-text", "wikitext-2-raw/wiki.valid.raw")), window);
    if (calib_n > 0 && static_cast<long>(d.calib.size()) > calib_n) d.calib.resize(static_cast<std::size_t>(calib_n));
  } else {
    fail(ErrorCode::kInvalidArgument, "--protocol '", d.protocol, "' is not tinystories or wikitext");
  }
  const long max_windows = a.num("max-windows", 0);
  if (max_windows > 0 && static_cast<long>(d.eval.size()) > max_windows) d.eval.resize(static_cast<std::size_t>(max_windows));
  d.eval = limit_predictions(std::move(d.eval), a.num("max-tokens", 0));
  if (d.eval.empty()) fail(ErrorCode::kInvalidArgument, "no evaluation sequences (check --max-tokens / --max-windows)");
  return d;
}

/// One quantization configuration.
struct QuantSpec {
  WeightQuantConfig w;
  ActQuantConfig act;
  ObserverKind observer = ObserverKind::kMinMax;
  std::string observer_name = "minmax";
  bool integer = false;
  std::string scales_file;  ///< --scales: static parameters from this file instead of calibration
  SiteParams scales;        ///< its parameters, once load_scales_params() has checked it
};

QuantSpec parse_quant(const Args& a) {
  QuantSpec q;
  q.w.bits = static_cast<int>(a.num("wbits", 0));
  q.w.group_size = static_cast<int>(a.num("wgroup", 0));
  const std::string clip = a.get("wclip", "rtn");
  if (clip != "rtn" && clip != "mse") fail(ErrorCode::kInvalidArgument, "--wclip '", clip, "' is not rtn or mse");
  q.w.method = parse_weight_method(clip);
  q.w.classifier = a.has("wcls");
  if (q.w.bits != 0 && q.w.bits != 4 && q.w.bits != 8) fail(ErrorCode::kInvalidArgument, "--wbits ", q.w.bits, " is not 0, 4 or 8");
  if (q.w.group_size != 0 && q.w.group_size != 32 && q.w.group_size != 64 && q.w.group_size != 128)
    fail(ErrorCode::kInvalidArgument, "--wgroup ", q.w.group_size, " is not 0, 32, 64 or 128");
  q.act.bits = static_cast<int>(a.num("abits", 0));
  if (q.act.bits != 0 && q.act.bits != 4 && q.act.bits != 8) fail(ErrorCode::kInvalidArgument, "--abits ", q.act.bits, " is not 0, 4 or 8");
  q.scales_file = a.get("scales", "");
  if (a.has("scales") && q.act.bits == 0) fail(ErrorCode::kInvalidArgument, "--scales needs --abits 4|8");
  const std::string mode = a.get("act", a.has("scales") ? "static" : "dynamic");
  if (mode != "dynamic" && mode != "static") fail(ErrorCode::kInvalidArgument, "--act '", mode, "' is not dynamic or static");
  if (a.has("scales") && mode != "static") fail(ErrorCode::kInvalidArgument, "--scales needs --act static, got --act ", mode);
  q.act.mode = q.act.bits == 0 ? ActMode::kNone : mode == "static" ? ActMode::kStatic : ActMode::kDynamicPerToken;
  q.act.kv_cache = a.has("kv-cache");
  q.observer_name = a.has("scales") ? "file" : a.get("observer", "minmax");
  if (!a.has("scales")) q.observer = parse_observer(q.observer_name);
  if (a.has("scales") && q.act.kv_cache)
    fail(ErrorCode::kInvalidArgument, "--scales with --kv-cache: scales files hold the linear-layer inputs only "
         "(sasq-train does not train KV-cache scales)");
  const std::string exec = a.get("exec", "fake");
  if (exec != "fake" && exec != "int") fail(ErrorCode::kInvalidArgument, "--exec '", exec, "' is not fake or int");
  q.integer = exec == "int";
  if (q.integer && (q.w.bits == 0 || !q.act.enabled()))
    fail(ErrorCode::kInvalidArgument, "--exec int needs --wbits 4|8 and --abits 4|8");
  return q;
}

/// A model prepared for one QuantSpec: quantized weights, static parameters, packed weights.
struct Prepared {
  QuantizedModel qm;
  SiteParams params;
  PackedModel packed;
  double calib_seconds = 0.0;
};

std::unique_ptr<Prepared> prepare(const Weights& w, const RopeTable& rope, const QuantSpec& q,
                                  const std::vector<std::vector<int>>& calib) {
  auto p = std::make_unique<Prepared>();
  p->qm = quantize_weights(w, q.w);
  if (q.act.mode == ActMode::kStatic && !q.scales_file.empty()) {
    p->params = q.scales;
  } else if (q.act.mode == ActMode::kStatic) {
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

Loaded load(const Args& a) {
  Loaded l;
  l.model_path = file_opt(a, "model", "stories260K/stories260K.bin");
  l.weights = load_checkpoint(l.model_path);
  l.tok = Tokenizer::load(file_opt(a, "tokenizer", "stories260K/tok512.bin"), l.weights.config.vocab_size);
  l.rope = make_rope_table(l.weights.config.seq_len, l.weights.config.head_size());
  return l;
}

/// Static parameters from the scales file of q.scales_file (written by sasq-train), checked with
/// train::check_scales against what this run needs: the fingerprint of the checkpoint file, its
/// layer count, q.act.bits and its grid, and every quantized (layer, site). Throws naming the file
/// and the first mismatch; per-channel files are refused (llama::FakeQuantExec and IntegerExec take
/// one scale per site).
void load_scales_params(const Loaded& l, QuantSpec& q) {
  namespace train = sasq::train;
  const train::ScalesFile f = train::load_scales(q.scales_file);
  train::ScalesExpectation e;
  e.model = train::fingerprint_file(l.model_path);
  e.config = l.weights.config;
  e.bits = q.act.bits;
  e.full_range = with_act_grid(q.act.bits, [](auto g) { return decltype(g)::kQmin == -decltype(g)::kQmax - 1; });
  for (int layer = 0; layer < e.config.n_layers; ++layer)
    for (int s = 0; s < kNumSites; ++s)
      if (q.act.quantizes(static_cast<Site>(s))) e.sites.emplace_back(layer, static_cast<Site>(s));
  train::check_scales(f, e, q.scales_file);
  if (f.granularity != train::Granularity::kPerTensor)
    fail(ErrorCode::kInvalidArgument, q.scales_file, ": ", train::granularity_name(f.granularity),
         " scales are not supported by sasq-llama (static quantization here is per tensor); train with "
         "sasq-train --granularity per_tensor");
  q.scales = train::to_site_params(f);
}

int threads_of(const Args& a) {
  const long t = a.num("threads", 2);
  if (t < 1 || t > 256) fail(ErrorCode::kInvalidArgument, "--threads ", t, " outside [1, 256]");
  return static_cast<int>(t);
}

int cmd_generate(const Args& a) {
  Loaded l = load(a);
  QuantSpec q = parse_quant(a);
  if (!q.scales_file.empty()) load_scales_params(l, q);
  const long steps = std::min<long>(a.num("steps", 256), l.weights.config.seq_len);
  if (steps < 1) fail(ErrorCode::kInvalidArgument, "--steps ", steps, " < 1");
  const std::vector<int> prompt = l.tok.encode(a.get("prompt", ""), true);
  std::vector<std::vector<int>> calib;
  if (q.act.mode == ActMode::kStatic && q.scales_file.empty()) calib = load_data(a, l.tok, l.weights.config).calib;
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

std::string json_result(const Args& a, const QuantSpec& q, const Data& d, const PplResult& r, const Prepared& p) {
  std::ostringstream os;
  os.precision(12);
  os << "{\"ppl\": " << r.ppl() << ", \"nll_sum\": " << r.nll_sum << ", \"tokens\": " << r.tokens
     << ", \"sequences\": " << r.sequences << ", \"seconds\": " << r.seconds
     << ", \"tokens_per_second\": " << r.tokens_per_second() << ", \"protocol\": \"" << d.protocol << "\""
     << ", \"wbits\": " << q.w.bits << ", \"wgroup\": " << q.w.group_size << ", \"wclip\": \""
     << weight_method_name(q.w.method) << "\", \"abits\": " << q.act.bits << ", \"act\": \""
     << (q.act.mode == ActMode::kStatic ? "static" : q.act.mode == ActMode::kDynamicPerToken ? "dynamic" : "none")
     << "\", \"observer\": \"" << q.observer_name << "\", \"kv_cache\": " << (q.act.kv_cache ? "true" : "false")
     << ", \"exec\": \"" << (q.integer ? "int" : q.act.enabled() ? "fake" : "fp32") << "\"";
  if (!q.scales_file.empty()) os << ", \"scales\": \"" << json_escape(q.scales_file) << "\"";
  os << ", \"calib_sequences\": "
     << (q.act.mode == ActMode::kStatic && q.scales_file.empty() ? d.calib.size() : 0) << ", \"calib_seconds\": " << p.calib_seconds
     << ", \"threads\": " << threads_of(a) << "}";
  return os.str();
}

int cmd_ppl(const Args& a) {
  Loaded l = load(a);
  QuantSpec q = parse_quant(a);
  if (!q.scales_file.empty()) load_scales_params(l, q);
  const Data d = load_data(a, l.tok, l.weights.config);
  const auto p = prepare(l.weights, l.rope, q, d.calib);
  Progress bar("ppl");
  const PplResult r = run_ppl(*p, l.rope, q, d.eval, threads_of(a), bar.fn());
  if (a.has("json")) {
    std::cout << json_result(a, q, d, r, *p) << "\n";
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

int cmd_stats(const Args& a) {
  Loaded l = load(a);
  const QuantSpec q = parse_quant(a);
  const Data d = load_data(a, l.tok, l.weights.config);
  const auto p = prepare(l.weights, l.rope, q, d.calib);
  const long max_tokens = a.num("max-tokens", 4096);
  StatsExec exec(l.weights.config, max_tokens > 0 ? max_tokens : 4096);
  long tokens = 0;
  for (const auto& s : d.calib) {
    if (exec.full()) break;
    forward(p->qm.model, l.rope, sasq::Span<const int>(s).subspan(0, s.size() - 1), 0, nullptr, exec);
    tokens += static_cast<long>(s.size()) - 1;
  }
  std::ofstream file;
  if (a.has("out")) {
    file.open(a.get("out", ""));
    if (!file) fail(ErrorCode::kIoError, "--out: cannot write ", a.get("out", ""));
  }
  std::ostream& os = a.has("out") ? file : std::cout;
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
  std::fprintf(stderr, "stats over %ld calibration tokens (protocol %s)\n", tokens, d.protocol.c_str());
  return 0;
}

int cmd_baselines(const Args& a) {
  Loaded l = load(a);
  const Data d = load_data(a, l.tok, l.weights.config);
  const int threads = threads_of(a);
  auto run = [&](int wbits, int abits, const std::string& act, const std::string& observer, bool integer) {
    Args b = a;
    b.opt["wbits"] = std::to_string(wbits);
    b.opt["abits"] = std::to_string(abits);
    b.opt["act"] = act;
    b.opt["observer"] = observer;
    b.opt["exec"] = integer ? "int" : "fake";
    const QuantSpec q = parse_quant(b);
    const auto p = prepare(l.weights, l.rope, q, d.calib);
    Progress bar("W" + std::to_string(wbits) + "A" + std::to_string(abits) + " " + act + " " + observer);
    return run_ppl(*p, l.rope, q, d.eval, threads, bar.fn());
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
  try {
    const Args a = parse_args(argc, argv);
    if (a.command.empty() || a.has("help")) {
      std::fputs(kUsage, a.command.empty() && !a.has("help") ? stderr : stdout);
      return a.has("help") ? 0 : 2;
    }
    if (a.command == "generate") return cmd_generate(a);
    if (a.command == "ppl") return cmd_ppl(a);
    if ((a.command == "stats" || a.command == "baselines") && a.has("scales"))
      fail(ErrorCode::kInvalidArgument, "--scales applies to ppl and generate only");
    if (a.command == "stats") return cmd_stats(a);
    if (a.command == "baselines") return cmd_baselines(a);
    std::fprintf(stderr, "sasq-llama: unknown command '%s'\n%s", a.command.c_str(), kUsage);
    return 2;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "sasq-llama: error: %s\n", e.what());
    return 1;
  }
}
