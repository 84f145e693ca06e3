// sasq-train: learns static activation-quantizer scales of a weight-quantized LLaMA (SASQ) on
// TinyStories stories 501–1000 (the last --heldout of them for early stopping), writes the scales
// file and, with --eval, the perplexity of stories 1–500 at the initial and the learned scales.
#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <sstream>
#include <string>
#include <vector>

#include "llama/checkpoint.hpp"
#include "llama/perplexity.hpp"
#include "llama/quantized.hpp"
#include "llama/tokenizer.hpp"
#include "train/scales_file.hpp"
#include "train/trainer.hpp"

#ifndef SASQ_DEFAULT_DATA_DIR
#define SASQ_DEFAULT_DATA_DIR "../shared/data"
#endif

namespace {

using namespace sasq;

const char* kUsage = R"(usage: sasq-train [options]
  --model PATH            llama2.c checkpoint (default <data>/stories260K/stories260K.bin)
  --tokenizer PATH        tokenizer (default <data>/stories260K/tok512.bin)
  --text PATH             TinyStories text (default <data>/tinystories/tinystories_valid_first1000.txt)
  --out PATH              scales file to write (default sasq.scales)
  --wbits 0|4|8           weight bits, quantized once before training (default 8)
  --wgroup N              weight group size along K (default 0 = per output channel)
  --abits 4|8             activation bits (default 8)
  --granularity G         per_tensor (default) | per_channel
  --observer K            initialisation: meanabsmax (default) | minmax | ema | percentile | mse
  --steps N --batch N --lr X --warmup N --min-lr-ratio X --clip X --eval-every N --patience N
  --schedule S            cosine (default) | linear | constant
  --lsq-grad-scale        multiply the scale gradient by 1/sqrt(N*qmax)
  --max-predictions N     predictions per training sequence (default 256)
  --train FIRST-LAST      training stories (default 501-1000); the last --heldout are held out
  --heldout N             held-out stories for early stopping (default 50)
  --calibration N         calibration stories for the initial scales (default 64)
  --seed N --threads N    (defaults 1 and 2)
  --eval                  perplexity of stories 1-500 with the initial and the learned scales
  --quiet                 no progress bar
)";

[[noreturn]] void usage_error(const std::string& msg) {
  std::cerr << "sasq-train: " << msg << "\n" << kUsage;
  std::exit(2);
}

struct Args {
  std::string data = SASQ_DEFAULT_DATA_DIR;
  std::string model, tokenizer, text, out = "sasq.scales";
  llama::WeightQuantConfig wq{8, 0, llama::WeightMethod::kRtn, false};
  train::QuantConfig q;
  train::TrainOptions o;
  int first = 501, last = 1000, heldout = 50;
  bool eval = false, quiet = false;
  std::string observer_name = "meanabsmax";
};

Args parse(int argc, char** argv) {
  Args a;
  auto need = [&](int& i) -> std::string {
    if (i + 1 >= argc) usage_error(std::string("missing value after ") + argv[i]);
    return argv[++i];
  };
  auto num = [&](int& i) {
    const std::string s = need(i);
    char* end = nullptr;
    const double v = std::strtod(s.c_str(), &end);
    if (s.empty() || *end) usage_error("not a number: " + s);
    return v;
  };
  for (int i = 1; i < argc; ++i) {
    const std::string k = argv[i];
    if (k == "--model") a.model = need(i);
    else if (k == "--tokenizer") a.tokenizer = need(i);
    else if (k == "--text") a.text = need(i);
    else if (k == "--out") a.out = need(i);
    else if (k == "--wbits") a.wq.bits = static_cast<int>(num(i));
    else if (k == "--wgroup") a.wq.group_size = static_cast<int>(num(i));
    else if (k == "--abits") a.q.bits = static_cast<int>(num(i));
    else if (k == "--granularity") {
      const std::string g = need(i);
      if (g == "per_tensor") a.q.granularity = train::Granularity::kPerTensor;
      else if (g == "per_channel") a.q.granularity = train::Granularity::kPerChannel;
      else usage_error("unknown granularity " + g);
    } else if (k == "--observer") {
      a.observer_name = need(i);
      a.q.observer = llama::parse_observer(a.observer_name);
    }
    else if (k == "--steps") a.o.steps = static_cast<int>(num(i));
    else if (k == "--batch") a.o.batch = static_cast<int>(num(i));
    else if (k == "--lr") a.o.lr = num(i);
    else if (k == "--warmup") a.o.warmup_steps = static_cast<int>(num(i));
    else if (k == "--min-lr-ratio") a.o.min_lr_ratio = num(i);
    else if (k == "--clip") a.o.clip_norm = num(i);
    else if (k == "--eval-every") a.o.eval_every = static_cast<int>(num(i));
    else if (k == "--patience") a.o.patience = static_cast<int>(num(i));
    else if (k == "--schedule") {
      const std::string s = need(i);
      if (s == "cosine") a.o.schedule = train::LrSchedule::kCosine;
      else if (s == "linear") a.o.schedule = train::LrSchedule::kLinear;
      else if (s == "constant") a.o.schedule = train::LrSchedule::kConstant;
      else usage_error("unknown schedule " + s);
    } else if (k == "--lsq-grad-scale") a.o.lsq_grad_scale = true;
    else if (k == "--max-predictions") a.o.max_predictions = static_cast<int>(num(i));
    else if (k == "--train") {
      const std::string r = need(i);
      if (std::sscanf(r.c_str(), "%d-%d", &a.first, &a.last) != 2) usage_error("--train wants FIRST-LAST, got " + r);
    } else if (k == "--heldout") a.heldout = static_cast<int>(num(i));
    else if (k == "--calibration") a.o.calibration_sequences = static_cast<int>(num(i));
    else if (k == "--seed") a.o.seed = static_cast<std::uint64_t>(num(i));
    else if (k == "--threads") a.o.threads = static_cast<int>(num(i));
    else if (k == "--eval") a.eval = true;
    else if (k == "--quiet") a.quiet = true;
    else if (k == "--help" || k == "-h") {
      std::cout << kUsage;
      std::exit(0);
    } else usage_error("unknown option " + k);
  }
  if (a.model.empty()) a.model = a.data + "/stories260K/stories260K.bin";
  if (a.tokenizer.empty()) a.tokenizer = a.data + "/stories260K/tok512.bin";
  if (a.text.empty()) a.text = a.data + "/tinystories/tinystories_valid_first1000.txt";
  if (a.first < 501) usage_error("training stories must not overlap the evaluation stories 1-500");
  if (a.heldout < 1 || a.heldout >= a.last - a.first + 1) usage_error("--heldout must leave training stories");
  return a;
}

std::string read_text(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) fail(ErrorCode::kIoError, path, ": cannot open file");
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

void progress_bar(const train::Progress& p) {
  const int width = 30;
  const int fill = p.steps ? width * p.step / p.steps : width;
  std::fprintf(stderr, "\r[%.*s%*s] step %d/%d  loss %.4f  held-out ppl %.4f  ETA %.0fs ", fill,
               "##############################", width - fill, "", p.step, p.steps, p.train_loss,
               std::exp(p.heldout_nll), p.eta_s);
  if (p.step == p.steps) std::fputc('\n', stderr);
  std::fflush(stderr);
}

int run(int argc, char** argv) {
  const Args a = parse(argc, argv);
  const llama::Weights fp = llama::load_checkpoint(a.model);
  const llama::Tokenizer tok = llama::Tokenizer::load(a.tokenizer, fp.config.vocab_size);
  const std::string text = read_text(a.text);
  const int seq_len = fp.config.seq_len;
  const train::TrainData data = train::make_train_data(tok, text, seq_len, a.first, a.last, a.heldout);

  const llama::QuantizedModel qm = llama::quantize_weights(fp, a.wq);
  train::TrainOptions o = a.o;
  if (!a.quiet && isatty(2)) o.on_progress = progress_bar;
  const std::string fingerprint = train::fingerprint_file(a.model);
  const train::TrainResult r = train::train_scales(qm.model, a.q, data, o, fingerprint);
  train::save_scales(a.out, r.scales);

  std::printf("# sasq-train: W%dA%d %s, %zu training / %zu held-out stories, %d steps run (best %d%s) in %.1f s\n",
              a.wq.bits, a.q.bits, train::granularity_name(a.q.granularity), data.train.size(),
              data.heldout.size(), r.steps_run, r.best_step, r.stopped_early ? ", stopped early" : "", r.seconds);
  std::printf("held-out NLL: initial %.5f (ppl %.4f)  learned %.5f (ppl %.4f)\n", r.initial_heldout_nll,
              std::exp(r.initial_heldout_nll), r.best_heldout_nll, std::exp(r.best_heldout_nll));
  std::printf("held-out curve (step: NLL):");
  for (const auto& h : r.history)
    if (!std::isnan(h.heldout_nll)) std::printf(" %d: %.5f", h.step, h.heldout_nll);
  std::printf("\n%-6s %-9s %12s %12s %9s %11s %11s\n", "layer", "site", "clip0", "clip", "drift", "clipped0", "clipped");
  for (const auto& s : r.sites)
    std::printf("%-6d %-9s %12.5g %12.5g %+8.2f%% %10.4f%% %10.4f%%\n", s.layer, llama::site_name(s.site),
                s.initial_clip_threshold, s.clip_threshold, 100 * s.drift, 100 * s.initial_clip_fraction,
                100 * s.clip_fraction);
  std::printf("scales written to %s\n", a.out.c_str());

  if (a.eval) {
    const auto eval = llama::story_sequences(tok, llama::split_stories(text), 1, 500, seq_len);
    const llama::RopeTable rope = llama::make_rope_table(seq_len, fp.config.head_size());
    auto ppl = [&](const train::ScalesFile& f) {
      if (f.granularity == train::Granularity::kPerChannel)
        return std::exp(train::evaluate_nll(qm.model, a.q, f, eval, seq_len, a.o.threads).mean_nll);
      const llama::SiteParams p = train::to_site_params(f);
      const llama::ActQuantConfig ac{a.q.bits, llama::ActMode::kStatic, false};
      return llama::evaluate_ppl(qm.model, rope, eval, a.o.threads, [&] { return llama::FakeQuantExec(ac, &p); }).ppl();
    };
    const double fp32 = llama::evaluate_ppl(fp, rope, eval, a.o.threads, [] { return llama::Fp32Exec(); }).ppl();
    const llama::ActQuantConfig dyn{a.q.bits, llama::ActMode::kDynamicPerToken, false};
    const double dynamic =
        llama::evaluate_ppl(qm.model, rope, eval, a.o.threads, [&] { return llama::FakeQuantExec(dyn, nullptr); }).ppl();
    const double wonly = llama::evaluate_ppl(qm.model, rope, eval, a.o.threads, [] { return llama::Fp32Exec(); }).ppl();
    std::printf("eval stories 1-500 perplexity: FP32 %.4f  W%d weights only %.4f  dynamic per-token %.4f  "
                "static init (%s) %.4f  SASQ static %.4f\n",
                fp32, a.wq.bits, wonly, dynamic, a.observer_name.c_str(), ppl(r.initial_scales), ppl(r.scales));
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    return run(argc, argv);
  } catch (const std::exception& e) {
    std::cerr << "sasq-train: error: " << e.what() << "\n";
    return 1;
  }
}
