// The minimal LLaMA on the real stories260K checkpoint, tok512.bin, the 32k tokenizer and the
// TinyStories text in SASQ_DATA_DIR: known token ids, round trips, the llama2.c greedy sample,
// perplexity against the scalar run.c oracle, fake-quant vs integer agreement, and sasq-llama ppl
// --scales with a scales file written from calibration (equal to static mean-abs-max; mismatches refused).
#include <doctest/doctest.h>

#include <cstdio>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "llama/checkpoint.hpp"
#include "llama/forward_instances.hpp"
#include "llama/integer.hpp"
#include "llama/load_model.hpp"
#include "llama/perplexity.hpp"
#include "llama/quantized.hpp"
#include "llama/tokenizer.hpp"
#include "reference_forward.hpp"
#include "train/scales_file.hpp"
#include "train/trainer.hpp"

using namespace sasq::llama;

namespace {

const std::string kData = SASQ_DATA_DIR;
const std::string kModel = kData + "/stories260K/stories260K.bin";
const std::string kTok = kData + "/stories260K/tok512.bin";
const std::string kTok32k = kData + "/llama2-tokenizer/tokenizer.bin";
const std::string kStories = kData + "/tinystories/tinystories_valid_first1000.txt";

bool have(std::initializer_list<std::string> files) {
  for (const auto& f : files)
    if (!std::ifstream(f).good()) {
      MESSAGE("skipped: ", f, " is absent (SASQ_DATA_DIR = ", kData, ")");
      return false;
    }
  return true;
}

std::string slurp(const std::string& p) {
  std::ifstream f(p, std::ios::binary);
  std::stringstream s;
  s << f.rdbuf();
  return s.str();
}

}  // namespace

TEST_CASE("stories260K loads with the documented header") {
  if (!have({kModel})) return;
  const Weights w = load_checkpoint(kModel);
  CHECK(w.format_version == 0);
  CHECK(w.config.dim == 64);
  CHECK(w.config.hidden_dim == 172);
  CHECK(w.config.n_layers == 5);
  CHECK(w.config.n_heads == 8);
  CHECK(w.config.n_kv_heads == 4);
  CHECK(w.config.vocab_size == 512);
  CHECK(w.config.seq_len == 512);
  CHECK(w.config.shared_classifier);
}

TEST_CASE("tok512: known ids and exact round trips of TinyStories text") {
  if (!have({kTok, kStories})) return;
  const Tokenizer tok = Tokenizer::load(kTok, 512);
  CHECK(tok.encode("Once upon a time", true) == std::vector<int>{1, 403, 407, 261, 378});
  CHECK(tok.find(" ") == 410);
  const auto stories = split_stories(slurp(kStories));
  REQUIRE(stories.size() == 1000);
  CHECK(stories[0].rfind("Spot. Spot saw the shiny car", 0) == 0);
  for (std::size_t i = 0; i < 30; ++i) {
    std::vector<int> ids = tok.encode(stories[i], true);
    ids.erase(ids.begin());
    CHECK(tok.decode(ids, kBosToken) == stories[i]);
  }
}

TEST_CASE("32k LLaMA tokenizer: loads, known ids, round trip with UTF-8 and byte fallback") {
  if (!have({kTok32k})) return;
  const Tokenizer tok = Tokenizer::load(kTok32k);
  CHECK(tok.vocab_size() == 32000);
  CHECK(tok.max_token_length() == 27);
  CHECK(tok.encode("Hello world", true) == std::vector<int>{1, 15043, 3186});
  const std::string text = "Once upon a time, caf\xC3\xA9 \xE2\x82\xAC 42 \xF0\x9F\x98\x80 \x01 tabs\tand\nnewlines";
  std::vector<int> ids = tok.encode(text, true);
  ids.erase(ids.begin());
  CHECK(tok.decode(ids, kBosToken) == text);
}

TEST_CASE("greedy generation reproduces llama2.c run.c -t 0") {
  if (!have({kModel, kTok})) return;
  const Weights w = load_checkpoint(kModel);
  const Tokenizer tok = Tokenizer::load(kTok, 512);
  const RopeTable rope = make_rope_table(w.config.seq_len, w.config.head_size());
  const std::vector<int> prompt = tok.encode("Once upon a time", true);
  Fp32Exec exec;
  const std::string text = tok.decode(generate_greedy(w, rope, prompt, 256, exec), prompt[0]);
  const std::string expected =
      "Once upon a time, there was a little girl named Lily. She loved to play outside in the park. One day, she "
      "saw a big, red ball. She wanted to play with it, but it was too high.";
  CHECK(text.substr(0, expected.size()) == expected);
}

TEST_CASE("batched perplexity equals the scalar run.c oracle; fake-quant equals integer") {
  if (!have({kModel, kTok, kStories})) return;
  const Weights w = load_checkpoint(kModel);
  const Tokenizer tok = Tokenizer::load(kTok, 512);
  const RopeTable rope = make_rope_table(w.config.seq_len, w.config.head_size());
  const auto stories = split_stories(slurp(kStories));
  const auto eval = story_sequences(tok, stories, 1, 4, w.config.seq_len);
  const PplResult r = evaluate_ppl(w, rope, eval, 2, [] { return Fp32Exec{}; });
  double ref = 0.0;
  long n = 0;
  for (const auto& s : eval) {
    test::ReferenceModel m(w);
    ref += m.nll(s);
    n += static_cast<long>(s.size()) - 1;
  }
  CHECK(r.tokens == n);
  CHECK(r.nll_sum == doctest::Approx(ref).epsilon(1e-5));

  const auto calib = story_sequences(tok, stories, 501, 506, w.config.seq_len);
  WeightQuantConfig wc;
  wc.bits = 8;
  const QuantizedModel qm = quantize_weights(w, wc);
  const PackedModel pm = pack_model(qm);
  ActQuantConfig ac;
  ac.bits = 8;
  ac.mode = ActMode::kStatic;
  const SiteParams sp = calibrate(qm.model, rope, calib, ObserverKind::kMinMax, 8);
  const PplResult fake = evaluate_ppl(qm.model, rope, eval, 2, [&] { return FakeQuantExec(ac, &sp, &qm); });
  const PplResult integer = evaluate_ppl(qm.model, rope, eval, 2, [&] { return IntegerExec(pm, ac, &sp); });
  CHECK(fake.nll_sum == integer.nll_sum);
  CHECK(fake.ppl() > r.ppl());
  CHECK(fake.ppl() < 1.1 * r.ppl());
}

#ifdef SASQ_LLAMA_EXE
namespace {

struct Run {
  int status = -1;
  std::string output;  ///< stdout and stderr
};

Run run_command(const std::string& cmd) {
  Run r;
  FILE* p = popen((cmd + " 2>&1").c_str(), "r");
  REQUIRE(p != nullptr);
  char buf[4096];
  std::size_t n = 0;
  while ((n = std::fread(buf, 1, sizeof buf, p)) > 0) r.output.append(buf, n);
  r.status = pclose(p);
  return r;
}

/// The value text of "key" in sasq-llama's one-line JSON.
std::string json_field(const std::string& json, const std::string& key) {
  const std::string k = "\"" + key + "\": ";
  const std::size_t b = json.find(k);
  if (b == std::string::npos) return "<missing " + key + ">";
  const std::size_t e = json.find_first_of(",}", b + k.size());
  return json.substr(b + k.size(), e - b - k.size());
}

}  // namespace
#endif

TEST_CASE("sasq-llama ppl --scales: a calibrated scales file equals static mean-abs-max; mismatches are refused") {
  if (!have({kModel, kTok, kStories})) return;
#ifndef SASQ_LLAMA_EXE
  MESSAGE("skipped: sasq-llama is not built (SASQ_BUILD_EXAMPLES=OFF)");
#else
  const std::string exe = SASQ_LLAMA_EXE;
  if (!have({exe})) return;
  const Weights w = load_checkpoint(kModel);
  const Tokenizer tok = Tokenizer::load(kTok, 512);
  const RopeTable rope = make_rope_table(w.config.seq_len, w.config.head_size());
  const auto stories = split_stories(slurp(kStories));
  constexpr int kCalib = 8;  // sasq-llama --calib-sequences 8: stories 501-508
  const auto calib = story_sequences(tok, stories, 501, 500 + kCalib, w.config.seq_len);
  WeightQuantConfig wc;
  wc.bits = 8;
  const QuantizedModel qm = quantize_weights(w, wc);

  // No training: the initial scales of sasq-train are the mean-abs-max calibration.
  sasq::train::QuantConfig q;
  q.bits = 8;
  const std::string fingerprint = weights_fingerprint(w);
  sasq::train::ScalesFile f = sasq::train::calibrate_scales(qm.model, q, calib, fingerprint);
  f.weights = sasq::train::WeightRecord{8, 0, "rtn"};
  const SiteParams from_file = sasq::train::to_site_params(f);
  const SiteParams mam = calibrate(qm.model, rope, calib, ObserverKind::kMeanAbsMax, 8);
  for (int l = 0; l < w.config.n_layers; ++l)
    for (int s = 0; s < kNumLinearSites; ++s) CHECK(from_file[l][s].scale == mam[l][s].scale);

  const std::string dir = std::string(SASQ_TEST_TMP_DIR);
  const std::string good = dir + "/llama_data_test_w8a8.scales";
  sasq::train::save_scales(good, f);
  sasq::train::ScalesFile bits4 = f;
  bits4.bits = 4;
  const std::string bad_bits = dir + "/llama_data_test_bits4.scales";
  sasq::train::save_scales(bad_bits, bits4);
  sasq::train::ScalesFile other = f;
  other.model = "fnv1a64:0123456789abcdef";
  const std::string bad_model = dir + "/llama_data_test_other_model.scales";
  sasq::train::save_scales(bad_model, other);
  sasq::train::ScalesFile channels = f;
  channels.granularity = sasq::train::Granularity::kPerChannel;
  for (auto& s : channels.sites) s.scale.assign(sasq::train::site_channels(w.config, s.site), s.scale[0]);
  const std::string per_channel = dir + "/llama_data_test_per_channel.scales";
  sasq::train::save_scales(per_channel, channels);

  const std::string common = "\"" + exe + "\" ppl --json --model \"" + kModel + "\" --tokenizer \"" + kTok +
                             "\" --text \"" + kStories + "\" --max-tokens 3000 --calib-sequences " +
                             std::to_string(kCalib) + " --wbits 8 --act static";
  const std::string base = common + " --abits 8";
  for (const char* exec : {"fake", "int"}) {
    CAPTURE(exec);
    const Run calibrated = run_command(base + " --observer meanabsmax --exec " + exec);
    const Run from_scales = run_command(base + " --scales \"" + good + "\" --exec " + exec);
    REQUIRE(calibrated.status == 0);
    REQUIRE(from_scales.status == 0);
    CAPTURE(calibrated.output);
    CAPTURE(from_scales.output);
    CHECK(json_field(from_scales.output, "nll_sum") == json_field(calibrated.output, "nll_sum"));
    CHECK(json_field(from_scales.output, "ppl") == json_field(calibrated.output, "ppl"));
    CHECK(json_field(from_scales.output, "tokens") == "3000");
    CHECK(json_field(from_scales.output, "observer") == "\"file\"");
  }

  const Run wrong_abits = run_command(common + " --scales \"" + good + "\" --abits 4");
  CHECK(wrong_abits.status != 0);
  CHECK(wrong_abits.output.find("scales are for 8-bit activations, requested 4 bits") != std::string::npos);
  const Run wrong_bits = run_command(base + " --scales \"" + bad_bits + "\"");
  CHECK(wrong_bits.status != 0);
  CHECK(wrong_bits.output.find("scales are for 4-bit activations, requested 8 bits") != std::string::npos);
  const Run wrong_model = run_command(base + " --scales \"" + bad_model + "\" --exec int");
  CHECK(wrong_model.status != 0);
  CHECK(wrong_model.output.find("scales were trained for model fnv1a64:0123456789abcdef, but the model loaded is " +
                                fingerprint) != std::string::npos);
  const Run kv = run_command(base + " --scales \"" + good + "\" --kv-cache");
  CHECK(kv.status != 0);
  CHECK(kv.output.find("--kv-cache") != std::string::npos);
  const Run channel = run_command(base + " --scales \"" + per_channel + "\"");
  CHECK(channel.status != 0);
  CHECK(channel.output.find("per_channel scales are not supported") != std::string::npos);
#endif
}
