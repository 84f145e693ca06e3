// SASQ trainer: frozen weights stay bit-identical, only scales change, runs are deterministic and
// thread-count independent, the training forward agrees with the LLaMA fake-quant forward, and a
// short run on stories260K lowers the held-out loss.
#include <doctest/doctest.h>

#include <cmath>
#include <cstring>
#include <fstream>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "llama/checkpoint.hpp"
#include "llama/forward_instances.hpp"
#include "llama/perplexity.hpp"
#include "llama/quantized.hpp"
#include "llama/tokenizer.hpp"
#include "tiny_model.hpp"
#include "train/trainer.hpp"

using namespace sasq;

namespace {

std::vector<std::vector<int>> random_sequences(int n, int len, int vocab, std::uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_int_distribution<int> tok(3, vocab - 1);
  std::vector<std::vector<int>> out;
  for (int i = 0; i < n; ++i) {
    std::vector<int> s = {llama::kBosToken};
    for (int t = 0; t < len; ++t) s.push_back(tok(rng) % 7 + 3 * (t % 3));  // some structure
    out.push_back(std::move(s));
  }
  return out;
}

/// Every byte of every tensor, in a fixed order.
std::vector<unsigned char> weight_bytes(const llama::Weights& w) {
  std::vector<unsigned char> b;
  auto add = [&](const auto& m) {
    const auto* p = reinterpret_cast<const unsigned char*>(m.data());
    b.insert(b.end(), p, p + m.size() * static_cast<Eigen::Index>(sizeof(float)));
  };
  add(w.token_embedding);
  add(w.rms_final);
  add(w.wcls);
  for (const auto& L : w.layers) {
    add(L.rms_att); add(L.wq); add(L.wk); add(L.wv); add(L.wo); add(L.rms_ffn); add(L.w1); add(L.w2); add(L.w3);
  }
  return b;
}

train::TrainOptions small_options(int threads) {
  train::TrainOptions o;
  o.steps = 12;
  o.batch = 4;
  o.max_predictions = 24;
  o.eval_every = 4;
  o.patience = 0;
  o.warmup_steps = 2;
  o.lr = 0.05;
  o.calibration_sequences = 8;
  o.threads = threads;
  return o;
}

}  // namespace

TEST_CASE("training changes only the scales: quantized weights stay bit-identical") {
  const llama::Weights fp = test::random_weights(11);
  const llama::QuantizedModel qm = llama::quantize_weights(fp, {4, 0, llama::WeightMethod::kRtn, false});
  const std::vector<unsigned char> before = weight_bytes(qm.model);
  train::TrainData data{random_sequences(24, 30, 20, 1), random_sequences(6, 30, 20, 2)};
  for (auto g : {train::Granularity::kPerTensor, train::Granularity::kPerChannel}) {
    train::QuantConfig q;
    q.bits = 4;
    q.granularity = g;
    const train::TrainResult r = train::train_scales(qm.model, q, data, small_options(2), "fnv1a64:test");
    CHECK(weight_bytes(qm.model) == before);
    REQUIRE(r.sites.size() == 8);
    int changed = 0;
    for (const auto& s : r.sites) {
      CHECK(s.initial.size() == (g == train::Granularity::kPerTensor ? 1u : static_cast<std::size_t>(train::site_channels(fp.config, s.site))));
      for (std::size_t c = 0; c < s.initial.size(); ++c) changed += s.learned[c] != s.initial[c];
    }
    CHECK(r.steps_run == 12);
    CHECK(r.history.size() == 13);
    CHECK(r.scales.model == "fnv1a64:test");
    if (r.best_step > 0) {
      CHECK(changed > 0);
      CHECK(r.best_heldout_nll < r.initial_heldout_nll);
    } else {
      CHECK(changed == 0);  // nothing improved: the initial scales are returned
    }
  }
}

TEST_CASE("training is deterministic and independent of the thread count") {
  const llama::Weights fp = test::random_weights(12);
  const llama::QuantizedModel qm = llama::quantize_weights(fp, {8, 0, llama::WeightMethod::kRtn, false});
  train::TrainData data{random_sequences(20, 30, 20, 3), random_sequences(5, 30, 20, 4)};
  train::QuantConfig q;
  q.bits = 4;
  const auto a = train::train_scales(qm.model, q, data, small_options(1));
  const auto b = train::train_scales(qm.model, q, data, small_options(2));
  REQUIRE(a.history.size() == b.history.size());
  for (std::size_t i = 1; i < a.history.size(); ++i) CHECK(a.history[i].train_loss == b.history[i].train_loss);
  CHECK(train::format_scales(a.scales) == train::format_scales(b.scales));
  auto o = small_options(2);
  o.seed = 99;
  const auto c = train::train_scales(qm.model, q, data, o);
  CHECK(c.history[1].train_loss != a.history[1].train_loss);  // another seed draws other batches
  // Distillation from the float model: also thread-count independent, and a different objective.
  auto k1 = small_options(1), k2 = small_options(2);
  for (auto* k : {&k1, &k2}) {
    k->teacher = &fp;
    k->kd_weight = 0.5;
  }
  const auto d1 = train::train_scales(qm.model, q, data, k1);
  const auto d2 = train::train_scales(qm.model, q, data, k2);
  CHECK(train::format_scales(d1.scales) == train::format_scales(d2.scales));
  for (std::size_t i = 1; i < d1.history.size(); ++i) CHECK(d1.history[i].train_loss == d2.history[i].train_loss);
  CHECK(d1.history[1].train_loss != a.history[1].train_loss);
}

TEST_CASE("the training forward equals the LLaMA fake-quant forward with the same static scales") {
  const llama::Weights fp = test::random_weights(13);
  const llama::QuantizedModel qm = llama::quantize_weights(fp, {8, 0, llama::WeightMethod::kRtn, false});
  const auto seqs = random_sequences(4, 40, 20, 5);
  const llama::RopeTable rope = llama::make_rope_table(fp.config.seq_len, fp.config.head_size());
  for (int bits : {8, 4}) {
    train::QuantConfig q;
    q.bits = bits;
    const train::ScalesFile f = train::calibrate_scales(qm.model, q, seqs, "m");
    // Per tensor, the initial scales are exactly llama::calibrate's (SASQ init = static baseline).
    const llama::SiteParams ref = llama::calibrate(qm.model, rope, seqs, llama::ObserverKind::kMeanAbsMax, bits);
    for (const auto& s : f.sites) CHECK(s.scale[0] == ref[static_cast<std::size_t>(s.layer)][static_cast<std::size_t>(s.site)].scale);
    const llama::SiteParams p = train::to_site_params(f);
    const llama::ActQuantConfig ac{bits, llama::ActMode::kStatic, false};
    const double theirs = llama::evaluate_ppl(qm.model, rope, seqs, 1, [&] { return llama::FakeQuantExec(ac, &p); }).ppl();
    const double ours = std::exp(train::evaluate_nll(qm.model, q, f, seqs, 1000, 2).mean_nll);
    CHECK(ours == doctest::Approx(theirs).epsilon(1e-5));
  }
}

TEST_CASE("trainer rejects bad options and data with clear errors") {
  const llama::Weights fp = test::random_weights(14);
  train::TrainData data{random_sequences(4, 10, 20, 6), random_sequences(2, 10, 20, 7)};
  train::QuantConfig q;
  auto o = small_options(1);
  o.batch = 0;
  CHECK_THROWS_WITH_AS(train::train_scales(fp, q, data, o), doctest::Contains("must be positive"), Error);
  o = small_options(1);
  o.lr = -1;
  CHECK_THROWS_WITH_AS(train::train_scales(fp, q, data, o), doctest::Contains("learning rate"), Error);
  CHECK_THROWS_WITH_AS(train::train_scales(fp, q, {data.train, {}}, small_options(1)), doctest::Contains("held-out"), Error);
  o = small_options(1);
  o.kd_weight = 0.5;
  CHECK_THROWS_WITH_AS(train::train_scales(fp, q, data, o), doctest::Contains("needs a teacher"), Error);
  o.teacher = &fp;
  o.kd_weight = 1.5;
  CHECK_THROWS_WITH_AS(train::train_scales(fp, q, data, o), doctest::Contains("not in [0, 1]"), Error);
  llama::Weights other = fp;
  other.config.n_layers = 1;
  o.teacher = &other;
  o.kd_weight = 0.5;
  CHECK_THROWS_WITH_AS(train::train_scales(fp, q, data, o), doctest::Contains("teacher's shape differs"), Error);
  q.bits = 6;
  CHECK_THROWS_WITH_AS(train::train_scales(fp, q, data, small_options(1)), doctest::Contains("bits must be 4 or 8"), Error);
  q.bits = 8;
  q.sites = {llama::Site::kKCache};
  CHECK_THROWS_WITH_AS(train::train_scales(fp, q, data, small_options(1)), doctest::Contains("cannot be trained"), Error);
  q.sites = {llama::Site::kAttnIn, llama::Site::kAttnIn};
  CHECK_THROWS_WITH_AS(train::train_scales(fp, q, data, small_options(1)), doctest::Contains("listed twice"), Error);
  q = train::QuantConfig();
  data.train[0][3] = 20;  // outside the vocabulary
  CHECK_THROWS_WITH_AS(train::train_scales(fp, q, data, small_options(1)), doctest::Contains("outside the vocabulary"), Error);
}

TEST_CASE("stories260K: a short SASQ run lowers the held-out loss at W8A4") {
  const std::string dir = std::string(SASQ_DATA_DIR);
  const std::string model = dir + "/stories260K/stories260K.bin";
  const std::string text = dir + "/tinystories/tinystories_valid_first1000.txt";
  if (!std::ifstream(model).good() || !std::ifstream(text).good()) {
    MESSAGE("skipped: " << dir << " lacks stories260K or the TinyStories text");
    return;
  }
  const llama::Weights fp = llama::load_checkpoint(model);
  const llama::Tokenizer tok = llama::Tokenizer::load(dir + "/stories260K/tok512.bin", fp.config.vocab_size);
  std::stringstream ss;
  ss << std::ifstream(text).rdbuf();
  const train::TrainData data = train::make_train_data(tok, ss.str(), fp.config.seq_len, 501, 1000, 20);
  CHECK(data.train.size() == 480);
  CHECK(data.heldout.size() == 20);
  CHECK_THROWS_WITH_AS(train::make_train_data(tok, ss.str(), fp.config.seq_len, 400, 1000, 20),
                       doctest::Contains("must not overlap the evaluation stories"), Error);
  const llama::QuantizedModel qm = llama::quantize_weights(fp, {8, 0, llama::WeightMethod::kRtn, false});
  const std::vector<unsigned char> before = weight_bytes(qm.model);
  train::QuantConfig q;
  q.bits = 4;
  train::TrainOptions o;
  o.steps = 16;
  o.batch = 4;
  o.max_predictions = 96;
  o.eval_every = 8;
  o.warmup_steps = 2;
  o.calibration_sequences = 32;
  const train::TrainResult r = train::train_scales(qm.model, q, data, o, train::fingerprint_file(model));
  MESSAGE("held-out NLL " << r.initial_heldout_nll << " -> " << r.best_heldout_nll << " (step " << r.best_step
                          << ", " << r.seconds << " s)");
  CHECK(r.best_step > 0);
  CHECK(r.best_heldout_nll < r.initial_heldout_nll - 0.01);
  CHECK(weight_bytes(qm.model) == before);
  CHECK(r.scales.model == "fnv1a64:dc04c7aeb45e4651");  // FNV-1a 64 of the file (checked with Python)
}
