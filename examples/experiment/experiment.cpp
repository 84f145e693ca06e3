// sasq-experiment: the comparison table of sasq's main job. On stories260K (and its stress variant)
// it evaluates FP32 and, per bit width, with GPTQ weights: dynamic per-token, calibration-only static
// scales, SmoothQuant (α searched), rotation, QuaRot (rotation + dynamic clip 0.9), SmoothRot and
// SASQ-trained static scales, plus round-to-nearest rows for the weight method's effect and the
// truncation ablation, on TinyStories and WikiText-2; writes results.md, results.csv,
// results_sites.csv and results_ablation.csv into the output folder. docs/results.md explains it.
// The program is split over several files (runner.hpp says how) so that two cores compile it in
// parallel; the model code it shares with sasq-llama and sasq-train is in sasq_llama_model.
#include <cstdio>
#include <filesystem>
#include <string>
#include <system_error>
#include <utility>
#include <vector>

#include "common/cli.hpp"
#include "experiment/grid.hpp"
#include "experiment/report.hpp"
#include "experiment/runner.hpp"
#include "experiment/variants.hpp"
#include "llama/checkpoint.hpp"
#include "llama/load_model.hpp"
#include "llama/perplexity.hpp"
#include "llama/tokenizer.hpp"
#include "train/trainer.hpp"

namespace {

using namespace sasq;
using namespace sasq::experiment;
namespace cli = sasq::cli;

// ---- options -----------------------------------------------------------------------------------

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
               "SASQ held-out evaluations (every 10 steps) without improvement before stopping at 8-bit activations "
               "(0 = never)");
  cli::add_int(app, "--patience-a4", o.train_patience_a4, 0, 1000000,
               "the same at 4-bit activations (0 = never: all steps run, the best held-out scales are kept)");
  cli::add_real(app, "--sasq-kd", o.train_kd, 0.0, 1.0,
                "SASQ loss: weight of distillation from the float model's next-token distribution (0 = plain "
                "next-token NLL, 1 = distillation only)");
  app.add_flag("--lsq-grad-scale", o.lsq_grad_scale, "SASQ: multiply each scale's gradient by 1/sqrt(N*qmax) (LSQ)");
  app.add_option("--bits", o.bits, "bit configurations to run (default: all; --quick: W8A8 W4A4)")
      ->check(cli::detail::word_member(bit_config_names()))
      ->type_name(cli::detail::join(bit_config_names()));
  app.add_option("--methods", o.methods, "methods run (default: all; FP32 always runs)")
      ->check(cli::detail::word_member(method_names()))
      ->type_name("NAME ...");
  cli::add_real(app, "--chan-alpha", o.chan_alpha, 0.0, 1.0,
                "--heldout-only: the SASQ + rotation rows on a model with fixed per-channel factors absmax^alpha "
                "folded after the rotation (attention, o_proj and FFN inputs; 0 = off)");
  app.add_flag("--sasq-per-channel", o.sasq_per_channel,
               "--heldout-only: train one scale per input channel for the SASQ rows (fake quant only: no integer path)");
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
  for (const char* name : {"--chan-alpha", "--sasq-per-channel"})
    if (!unset(name) && !o.heldout_only) cli::usage_fail(name, " needs --heldout-only");
  for (const auto& [name, list] : {std::pair{"--bits", &o.bits}, std::pair{"--methods", &o.methods}})
    for (std::size_t i = 0; i < list->size(); ++i)
      for (std::size_t j = 0; j < i; ++j)
        if ((*list)[i] == (*list)[j]) cli::usage_fail(name, ": '", (*list)[i], "' given twice");
}

std::string slurp(const std::string& path) {
  const std::vector<unsigned char> b = llama::read_file_bytes(path);
  return std::string(b.begin(), b.end());
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
