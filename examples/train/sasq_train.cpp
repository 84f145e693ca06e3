// sasq-train: learns static activation-quantizer scales of a weight-quantized LLaMA (SASQ) on
// TinyStories stories 501–1000 (the last --heldout of them for early stopping), writes the scales
// file and, with --eval, the perplexity of stories 1–500 at the initial and the learned scales.
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstddef>
#include <fstream>
#include <iostream>
#include <sstream>
#include <string>
#include <vector>

#include "common/cli.hpp"
#include "llama/forward_instances.hpp"
#include "llama/gptq.hpp"
#include "llama/load_model.hpp"
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

struct Args {
  std::string data = SASQ_DEFAULT_DATA_DIR;
  std::string model, tokenizer, text, out = "sasq.scales";
  llama::WeightQuantConfig wq{8, 0, llama::WeightMethod::kRtn, false};
  train::QuantConfig q;
  train::TrainOptions o;
  cli::StoryRange stories{501, 1000};
  int heldout = 50;
  bool eval = false, quiet = false;
  std::string observer_name = "meanabsmax", granularity = "per_tensor", schedule = "cosine", wquant = "rtn";
};

constexpr int kMaxCount = 1000000000;

/// The sasq-train command line.
void build_cli(CLI::App& app, Args& a) {
  cli::init(app);
  cli::add_input_dir(app, "--data", a.data, "data folder of the default files (default ../shared/data)");
  cli::add_model(app, a.model, "<data>/stories260K/stories260K.bin");
  cli::add_tokenizer(app, a.tokenizer, "<data>/stories260K/tok512.bin");
  cli::add_input_file(app, "--text", a.text, "TinyStories text (default <data>/tinystories/tinystories_valid_first1000.txt)");
  cli::add_output_file(app, "--out", a.out, "scales file to write");
  cli::add_wbits(app, a.wq.bits)->description("weight bits, quantized once before training (0 = float weights)");
  cli::add_wgroup(app, a.wq.group_size);
  cli::add_wquant(app, a.wquant)->description(
      "weight quantization: round to nearest, MSE-optimal clip, or GPTQ (Hessians from the --calibration stories)");
  cli::add_abits(app, a.q.bits, {4, 8});
  cli::add_choice(app, "--granularity", a.granularity, {"per_tensor", "per_channel"}, "one scale per tensor or per channel");
  cli::add_observer(app, a.observer_name, "initialisation of the scales");
  cli::add_int(app, "--steps", a.o.steps, 0, kMaxCount, "training steps");
  cli::add_int(app, "--batch", a.o.batch, 1, kMaxCount, "sequences per step");
  cli::add_real(app, "--lr", a.o.lr, 1e-12, 1e3, "Adam learning rate on ln s");
  cli::add_int(app, "--warmup", a.o.warmup_steps, 0, kMaxCount, "warm-up steps");
  cli::add_real(app, "--min-lr-ratio", a.o.min_lr_ratio, 0.0, 1.0, "final learning rate / peak learning rate");
  cli::add_real(app, "--clip", a.o.clip_norm, 0.0, 1e30, "gradient norm clip (0 = none)");
  cli::add_int(app, "--eval-every", a.o.eval_every, 1, kMaxCount, "held-out evaluation period (steps)");
  cli::add_int(app, "--patience", a.o.patience, 0, kMaxCount, "evaluations without improvement before stopping (0 = never)");
  cli::add_choice(app, "--schedule", a.schedule, {"cosine", "linear", "constant"}, "learning-rate schedule");
  app.add_flag("--lsq-grad-scale", a.o.lsq_grad_scale, "multiply the scale gradient by 1/sqrt(N*qmax)");
  cli::add_real(app, "--kd", a.o.kd_weight, 0.0, 1.0,
                "weight of distillation from the float model's next-token distribution in the loss (0 = next-token NLL)");
  cli::add_int(app, "--max-predictions", a.o.max_predictions, 1, kMaxCount, "predictions per training sequence");
  cli::add_story_range(app, "--train", a.stories, 501, 1000,
                       "training stories (501-1000 at most: 1-500 are evaluated); the last --heldout are held out");
  cli::add_int(app, "--heldout", a.heldout, 1, 499, "held-out stories for early stopping");
  cli::add_int(app, "--calibration", a.o.calibration_sequences, 1, kMaxCount, "calibration stories for the initial scales");
  cli::add_int(app, "--seed", a.o.seed, std::uint64_t{0}, std::uint64_t{1} << 62, "random seed");
  cli::add_threads(app, a.o.threads);
  app.add_flag("--eval", a.eval, "perplexity of stories 1-500 with the initial and the learned scales");
  app.add_flag("--quiet", a.quiet, "no progress bar");
}

/// Fills the defaults that depend on other options and checks the combinations.
void finish(Args& a) {
  if (a.model.empty()) a.model = a.data + "/stories260K/stories260K.bin";
  if (a.text.empty()) a.text = a.data + "/tinystories/tinystories_valid_first1000.txt";
  a.q.granularity = a.granularity == "per_channel" ? train::Granularity::kPerChannel : train::Granularity::kPerTensor;
  a.q.observer = llama::parse_observer(a.observer_name);
  a.wq.method = llama::parse_weight_method(a.wquant);
  a.o.schedule = a.schedule == "linear"   ? train::LrSchedule::kLinear
                 : a.schedule == "constant" ? train::LrSchedule::kConstant
                                            : train::LrSchedule::kCosine;
  if (a.heldout >= a.stories.last - a.stories.first + 1)
    cli::usage_fail("--heldout ", a.heldout, " leaves no training stories in --train ", a.stories.first, "-", a.stories.last);
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

int run(const Args& a) {
  const llama::Weights fp = llama::load_model(a.model);
  const llama::Tokenizer tok = llama::load_tokenizer_for(a.model, fp, a.tokenizer, a.data + "/stories260K/tok512.bin");
  const std::string text = read_text(a.text);
  const std::size_t n_stories = llama::split_stories(text).size();
  if (n_stories < static_cast<std::size_t>(a.stories.last))
    fail(ErrorCode::kInvalidArgument, a.text, ": has ", n_stories, " stories, --train ", a.stories.first, "-",
         a.stories.last, " needs ", a.stories.last);
  const int seq_len = fp.config.seq_len;
  const train::TrainData data = train::make_train_data(tok, text, seq_len, a.stories.first, a.stories.last, a.heldout);

  // GPTQ's Hessians come from the calibration stories the trainer initialises the scales on.
  const std::vector<std::vector<int>> calib(
      data.train.begin(),
      data.train.begin() + std::min<std::ptrdiff_t>(a.o.calibration_sequences, static_cast<std::ptrdiff_t>(data.train.size())));
  const llama::RopeTable rope = llama::make_rope_table(seq_len, fp.config.head_size(), fp.config.rope_theta);
  const llama::QuantizedModel qm = llama::quantize_model_weights(fp, a.wq, rope, calib, nullptr, a.o.threads);
  train::TrainOptions o = a.o;
  o.teacher = &fp;
  if (!a.quiet && isatty(2)) o.on_progress = progress_bar;
  const std::string fingerprint = llama::weights_fingerprint(fp);
  train::TrainResult r = train::train_scales(qm.model, a.q, data, o, fingerprint);
  r.scales.weights = train::WeightRecord{a.wq.bits, a.wq.group_size, llama::weight_method_name(a.wq.method)};
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
    const llama::RopeTable rope = llama::make_rope_table(seq_len, fp.config.head_size(), fp.config.rope_theta);
    auto ppl = [&](const train::ScalesFile& f) {
      if (f.granularity == train::Granularity::kPerChannel) {
        const double p = std::exp(train::evaluate_nll(qm.model, a.q, f, eval, seq_len, a.o.threads).mean_nll);
        if (!std::isfinite(p)) fail(ErrorCode::kCorruptData, "the per-channel static perplexity is ", p);
        return p;
      }
      const llama::SiteParams p = train::to_site_params(f);
      const llama::ActQuantConfig ac{a.q.bits, llama::ActMode::kStatic, false};
      return llama::finite_ppl(
          llama::evaluate_ppl(qm.model, rope, eval, a.o.threads, [&] { return llama::FakeQuantExec(ac, &p); }), "static scales");
    };
    const double fp32 =
        llama::finite_ppl(llama::evaluate_ppl(fp, rope, eval, a.o.threads, [] { return llama::Fp32Exec(); }), "FP32");
    const llama::ActQuantConfig dyn{a.q.bits, llama::ActMode::kDynamicPerToken, false};
    const double dynamic = llama::finite_ppl(
        llama::evaluate_ppl(qm.model, rope, eval, a.o.threads, [&] { return llama::FakeQuantExec(dyn, nullptr); }),
        "dynamic per-token");
    const double wonly = llama::finite_ppl(
        llama::evaluate_ppl(qm.model, rope, eval, a.o.threads, [] { return llama::Fp32Exec(); }), "weights only");
    std::printf("eval stories 1-500 perplexity: FP32 %.4f  W%d weights only %.4f  dynamic per-token %.4f  "
                "static init (%s) %.4f  SASQ static %.4f\n",
                fp32, a.wq.bits, wonly, dynamic, a.observer_name.c_str(), ppl(r.initial_scales), ppl(r.scales));
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  Args a;
  CLI::App app("sasq-train: learns static activation-quantizer scales (SASQ) of a weight-quantized LLaMA", "sasq-train");
  build_cli(app, a);
  return sasq::cli::run(app, argc, argv, [&] {
    finish(a);
    return run(a);
  });
}
