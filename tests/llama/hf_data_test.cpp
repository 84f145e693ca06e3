// Hugging Face fixtures in SASQ_DATA_DIR (hf/stories260K-f32, hf/stories260K-bf16): they load to the
// weights of stories260K.bin (F32: bit-identical; BF16 through the index: the .bin weights rounded to
// BF16, nearest even), so they compute the same function. llama2-tokenizer/tokenizer.json encodes
// TinyStories and WikiText-2 to the ids of the llama2.c encoder on tokenizer.bin and round-trips.
#include <doctest/doctest.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <map>
#include <fstream>
#include <string>

#include "llama/checkpoint.hpp"
#include "llama/hf_model.hpp"
#include "llama/load_model.hpp"
#include "llama/model.hpp"
#include "llama/perplexity.hpp"
#include "llama/tokenizer_json.hpp"
#include "safetensors_writer.hpp"

using namespace sasq::llama;

namespace {

const std::string kData = SASQ_DATA_DIR;
const std::string kModel = kData + "/stories260K/stories260K.bin";
const std::string kHfF32 = kData + "/hf/stories260K-f32";
const std::string kHfBf16 = kData + "/hf/stories260K-bf16";

bool have(std::initializer_list<std::string> files) {
  for (const auto& f : files)
    if (!std::ifstream(f).good()) {
      MESSAGE("skipped: ", f, " is absent (SASQ_DATA_DIR = ", kData, ")");
      return false;
    }
  return true;
}

/// Every float of every tensor, in a fixed order, rounded to BF16 when asked.
std::vector<float> flat(const Weights& w, bool bf16) {
  std::vector<float> out;
  auto add = [&](const float* p, Eigen::Index n) {
    for (Eigen::Index i = 0; i < n; ++i)
      out.push_back(bf16 ? sasq::llama::detail::bf16_to_float(test::float_to_bf16(p[i])) : p[i]);
  };
  add(w.token_embedding.data(), w.token_embedding.size());
  add(w.classifier().data(), w.classifier().size());
  add(w.rms_final.data(), w.rms_final.size());
  for (const auto& L : w.layers) {
    add(L.rms_att.data(), L.rms_att.size());
    add(L.rms_ffn.data(), L.rms_ffn.size());
    for (int p = 0; p < kNumProj; ++p) add(proj_weight(L, static_cast<Proj>(p)).data(), proj_weight(L, static_cast<Proj>(p)).size());
  }
  return out;
}

bool same_config(const Config& a, const Config& b) {
  return a.dim == b.dim && a.hidden_dim == b.hidden_dim && a.n_layers == b.n_layers && a.n_heads == b.n_heads &&
         a.n_kv_heads == b.n_kv_heads && a.vocab_size == b.vocab_size && a.seq_len == b.seq_len &&
         a.rms_norm_eps == b.rms_norm_eps && a.rope_theta == b.rope_theta;
}

}  // namespace

TEST_CASE("hf/stories260K-f32 holds exactly the weights of stories260K.bin") {
  if (!have({kModel, kHfF32 + "/model.safetensors"})) return;
  const Weights bin = load_checkpoint(kModel), hf = load_hf_model(kHfF32);
  CHECK(same_config(bin.config, hf.config));
  CHECK(hf.config.shared_classifier);
  const auto a = flat(bin, false), b = flat(hf, false);
  REQUIRE(a.size() == b.size());
  CHECK(std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0);
  // Same logits to the bit on a prompt (same function, same arithmetic).
  const int tokens[] = {1, 403, 407, 261, 378, 300};
  const RopeTable rope = make_rope_table(bin.config);
  const Matrix za = forward(bin, rope, sasq::Span<const int>(tokens, 6)), zb = forward(hf, rope, sasq::Span<const int>(tokens, 6));
  CHECK(std::memcmp(za.data(), zb.data(), sizeof(float) * za.size()) == 0);
}

TEST_CASE("hf/stories260K-bf16 loads through the index to the BF16-rounded weights of stories260K.bin") {
  if (!have({kModel, kHfBf16 + "/model.safetensors.index.json"})) return;
  const SafetensorsFolder f(kHfBf16);
  CHECK(f.file_of("model.embed_tokens.weight").find("model-00001-of-00002") != std::string::npos);
  CHECK(f.file_of("lm_head.weight").find("model-00002-of-00002") != std::string::npos);
  CHECK(f.info("lm_head.weight").dtype == Dtype::kBF16);
  const Weights bin = load_checkpoint(kModel), hf = load_hf_model(kHfBf16);
  CHECK(same_config(bin.config, hf.config));
  CHECK_FALSE(hf.config.shared_classifier);  // explicit lm_head.weight (= the embedding, rounded)
  const auto a = flat(bin, true), b = flat(hf, false);
  REQUIRE(a.size() == b.size());
  CHECK(std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0);
  CHECK(flat(bin, false) != b);  // rounding changed the weights
}

// ---- tokenizer.json -------------------------------------------------------------------------

namespace {

const std::string kTokJson = kData + "/llama2-tokenizer/tokenizer.json";
const std::string kTokBin = kData + "/llama2-tokenizer/tokenizer.bin";
const std::string kStories = kData + "/tinystories/tinystories_valid_first1000.txt";
const std::string kWiki = kData + "/wikitext-2-raw/wiki.test.raw";
const std::string kSp = "\xE2\x96\x81";  // U+2581

/// Every text in optimized builds; every 8th in debug/sanitizer builds (the CI's ASan workflow),
/// which are ~10x slower.
#ifdef NDEBUG
constexpr std::size_t kStride = 1;
#else
constexpr std::size_t kStride = 8;
#endif

std::vector<std::string> every(const std::vector<std::string>& texts, std::size_t stride) {
  std::vector<std::string> out;
  for (std::size_t i = 0; i < texts.size(); i += stride) out.push_back(texts[i]);
  return out;
}

std::string slurp(const std::string& p) {
  std::ifstream f(p, std::ios::binary);
  return std::string((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
}

std::vector<std::string> wiki_lines() {
  std::vector<std::string> lines;
  const std::string wiki = slurp(kWiki);
  for (std::size_t i = 0, j; i < wiki.size(); i = j + 1) {
    j = wiki.find('\n', i);
    if (j == std::string::npos) j = wiki.size();
    if (j > i) lines.push_back(wiki.substr(i, j - i));
  }
  return lines;
}

std::string to_sp(std::string s) {
  for (std::size_t i; (i = s.find(' ')) != std::string::npos;) s.replace(i, 1, kSp);
  return s;
}

/// tokenizer.bin as the tokenizer.json that transformers' LlamaConverter writes for a SentencePiece
/// BPE model: pieces with U+2581 for spaces, <unk> <s> </s> as added specials, merges of every split
/// (left, right) of a piece into two pieces, ordered by the merged piece's score (descending, ties
/// by id), then by (left id, right id); LLaMA-2's normalizer, template and decoder.
BpeSpec spec_of_llama2c(const Tokenizer& bin) {
  BpeSpec s;
  const int n = bin.vocab_size();
  s.pieces = {"<unk>", "<s>", "</s>"};
  for (int id = 3; id < n; ++id) s.pieces.push_back(to_sp(bin.piece(id)));
  std::map<std::string, int> id_of;
  for (int id = 0; id < n; ++id) id_of[s.pieces[static_cast<std::size_t>(id)]] = id;
  std::vector<int> order;
  for (int id = 3 + 256; id < n; ++id) order.push_back(id);
  std::stable_sort(order.begin(), order.end(), [&](int a, int b) { return bin.score(a) > bin.score(b); });
  for (const int id : order) {
    const std::string& p = s.pieces[static_cast<std::size_t>(id)];
    std::vector<std::pair<int, int>> local;
    for (std::size_t cut = 1; cut < p.size(); ++cut) {
      const auto l = id_of.find(p.substr(0, cut)), r = id_of.find(p.substr(cut));
      if (l != id_of.end() && r != id_of.end() && l->second > 2 && r->second > 2) local.emplace_back(l->second, r->second);
    }
    std::sort(local.begin(), local.end());
    s.merges.insert(s.merges.end(), local.begin(), local.end());
  }
  s.added = {0, 1, 2};
  s.special = {0, 1, 2};
  s.prepend = kSp;
  s.replace = {{" ", kSp}};
  s.decode_replace = {{kSp, " "}};
  s.byte_fallback = s.fuse_unk = s.decode_bytes = s.decode_strip_space = true;
  s.unk_id = 0;
  s.bos = {1};
  s.eos = {2};
  return s;
}

/// Ids of one text by the definition of ranked BPE (quadratic; an oracle for encode): code points
/// with byte fallback, then merge the leftmost lowest-rank adjacent pair until none is left.
std::vector<int> reference_encode(const Tokenizer& t, const std::map<std::pair<int, int>, int>& rank, const std::string& text) {
  const std::string s = kSp + to_sp(text);
  std::vector<int> ids = {kBosToken};
  for (std::size_t i = 0; i < s.size();) {
    std::size_t len = 1;
    const auto c = static_cast<unsigned char>(s[i]);
    const std::size_t want = c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : c >= 0xC0 ? 2 : 1;
    while (len < want && i + len < s.size() && (static_cast<unsigned char>(s[i + len]) & 0xC0) == 0x80) ++len;
    const int id = t.find(s.substr(i, len));
    if (id >= 0) {
      ids.push_back(id);
    } else {
      char name[8];
      for (std::size_t k = i; k < i + len; ++k) {
        std::snprintf(name, sizeof name, "<0x%02X>", static_cast<unsigned char>(s[k]));
        ids.push_back(t.find(name));
      }
    }
    i += len;
  }
  for (;;) {
    std::size_t best = 0;
    int best_rank = -1;
    for (std::size_t p = 1; p + 1 < ids.size(); ++p) {
      const auto it = rank.find({ids[p], ids[p + 1]});
      if (it != rank.end() && (best_rank < 0 || it->second < best_rank)) {
        best_rank = it->second;
        best = p;
      }
    }
    if (best_rank < 0) break;
    ids[best] = t.find(t.piece(ids[best]) + t.piece(ids[best + 1]));
    ids.erase(ids.begin() + static_cast<std::ptrdiff_t>(best) + 1);
  }
  return ids;
}

/// Counts texts whose ids differ between two encoders (printing the first few) and checks that the
/// first one round-trips every text.
template <class A, class B>
std::size_t compare(const Tokenizer& tok, const std::vector<std::string>& texts, const std::string& what, A&& a, B&& b) {
  std::size_t differ = 0, tokens = 0, round_trip_failures = 0;
  for (const auto& t : texts) {
    const std::vector<int> x = a(t), y = b(t);
    tokens += x.size();
    if (x != y && differ++ < 3) MESSAGE(what, ": ids differ for '", t.substr(0, 60), "'");
    if (tok.decode(x, -1) != t && round_trip_failures++ < 3) MESSAGE(what, ": round trip fails for '", t.substr(0, 60), "'");
  }
  MESSAGE(what, ": ", texts.size(), " texts, ", tokens, " tokens, ", differ, " with different ids");
  CHECK(round_trip_failures == 0);
  return differ;
}

}  // namespace

TEST_CASE("ranked BPE on tokenizer.bin's vocabulary gives the llama2.c encoder's ids on TinyStories and WikiText-2") {
  if (!have({kTokBin, kStories, kWiki})) return;
  const Tokenizer bin = Tokenizer::load(kTokBin);
  const Tokenizer ranked = Tokenizer::from_bpe(spec_of_llama2c(bin), "tokenizer.bin as tokenizer.json");
  CHECK(ranked.encode("Hello world", true) == std::vector<int>{1, 15043, 3186});
  auto r = [&](const std::string& t) { return ranked.encode(t, true); };
  auto b = [&](const std::string& t) { return bin.encode(t, true); };
  CHECK(compare(ranked, every(split_stories(slurp(kStories)), kStride), "TinyStories (1000 stories / stride)", r, b) == 0);
  CHECK(compare(ranked, every(wiki_lines(), kStride), "WikiText-2 test (4358 lines / stride)", r, b) == 0);
}

TEST_CASE("llama2-tokenizer/tokenizer.json: a different 32k vocabulary than tokenizer.bin; BPE equals the reference and round-trips") {
  if (!have({kTokJson, kTokBin, kStories, kWiki})) return;
  const Tokenizer json = load_tokenizer_json(kTokJson), bin = Tokenizer::load(kTokBin);
  REQUIRE(json.vocab_size() == 32000);
  CHECK(json.ranked());
  // The fixture is not LLaMA-2's vocabulary (data README section 6 says it is): the specials and
  // byte pieces agree, most other ids do not.
  int same_id = 0, shared = 0;
  for (int id = 3; id < 32000; ++id) {
    const int j = json.find(to_sp(bin.piece(id)));
    shared += j >= 0;
    same_id += j == id;
  }
  MESSAGE("tokenizer.bin pieces also in tokenizer.json: ", shared, " of 31997; at the same id: ", same_id);
  CHECK(json.find(kSp + "Hello") == 22557);
  CHECK(bin.find(" Hello") == 15043);
  CHECK(same_id < 1000);
  CHECK(json.encode("Hello world", true) == std::vector<int>{1, 22557, 1526});
  CHECK(json.encode("Hi", false, true).back() == 2);
  CHECK(json.decode(std::vector<int>{1, 22557, 1526, 2}, -1) == "Hello world");
  // Ids against the quadratic reference on a sample (every 10th story, every 20th line), round trip on all.
  std::map<std::pair<int, int>, int> rank;
  const nlohmann::json merges = nlohmann::json::parse(slurp(kTokJson))["model"]["merges"];
  for (std::size_t r = 0; r < merges.size(); ++r) {
    const std::string m = merges[r].get<std::string>();
    rank.emplace(std::make_pair(json.find(m.substr(0, m.find(' '))), json.find(m.substr(m.find(' ') + 1))), static_cast<int>(r));
  }
  auto enc = [&](const std::string& t) { return json.encode(t, true); };
  auto ref = [&](const std::string& t) { return reference_encode(json, rank, t); };
  const auto stories = split_stories(slurp(kStories));
  const auto lines = wiki_lines();
  std::vector<std::string> sample = every(stories, 10 * kStride);
  for (const auto& l : every(lines, 20 * kStride)) sample.push_back(l);
  CHECK(compare(json, sample, "tokenizer.json vs reference (sample)", enc, ref) == 0);
  compare(json, every(stories, kStride), "tokenizer.json round trip, TinyStories", enc, enc);
  compare(json, every(lines, kStride), "tokenizer.json round trip, WikiText-2 lines", enc, enc);
}

// ---- perplexity, generation and scales through the command line -------------------------------

namespace {

const std::string kTok512 = kData + "/stories260K/tok512.bin";

/// Weights of the .bin rounded to BF16 (nearest even): the reference of hf/stories260K-bf16.
Weights bf16_reference(Weights w) {
  auto round = [](float* p, Eigen::Index n) {
    for (Eigen::Index i = 0; i < n; ++i) p[i] = sasq::llama::detail::bf16_to_float(test::float_to_bf16(p[i]));
  };
  round(w.token_embedding.data(), w.token_embedding.size());
  round(w.rms_final.data(), w.rms_final.size());
  for (auto& L : w.layers) {
    round(L.rms_att.data(), L.rms_att.size());
    round(L.rms_ffn.data(), L.rms_ffn.size());
    for (int p = 0; p < kNumProj; ++p) round(proj_weight(L, static_cast<Proj>(p)).data(), proj_weight(L, static_cast<Proj>(p)).size());
  }
  return w;
}

/// Evaluation stories 1..n of the TinyStories protocol.
std::vector<std::vector<int>> eval_stories(const Tokenizer& tok, int n) {
  return story_sequences(tok, split_stories(slurp(kStories)), 1, n, 512);
}

#ifdef SASQ_LLAMA_EXE
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
#endif

}  // namespace

TEST_CASE("perplexity: hf f32 == stories260K.bin, hf bf16 == the BF16-rounded .bin (stories 1-16, exact sums)") {
  if (!have({kModel, kTok512, kStories, kHfF32 + "/config.json", kHfBf16 + "/config.json"})) return;
  const Weights bin = load_checkpoint(kModel);
  const Tokenizer tok = Tokenizer::load(kTok512, 512);
  const auto seqs = eval_stories(tok, 16);
  const RopeTable rope = make_rope_table(bin.config);
  auto ppl = [&](const Weights& w) { return evaluate_ppl(w, rope, seqs, 2, [] { return Fp32Exec{}; }); };
  const PplResult a = ppl(bin), b = ppl(load_hf_model(kHfF32));
  CHECK(a.tokens == b.tokens);
  CHECK(a.nll_sum == b.nll_sum);  // bit-identical weights, same arithmetic: the same double sum
  const PplResult c = ppl(bf16_reference(bin)), d = ppl(load_hf_model(kHfBf16));
  CHECK(c.nll_sum == d.nll_sum);
  CHECK(c.nll_sum != a.nll_sum);
  MESSAGE("stories 1-16 (", a.tokens, " tokens): ppl .bin = hf-f32 = ", a.ppl(), ", BF16-rounded .bin = hf-bf16 = ", c.ppl());
}

TEST_CASE("sasq-llama on Hugging Face folders: ppl and greedy sample equal the .bin's, scales fingerprint shared") {
  if (!have({kModel, kTok512, kStories, kHfF32 + "/config.json"})) return;
#ifndef SASQ_LLAMA_EXE
  MESSAGE("skipped: the sasq-llama executable is not built");
#else
  const std::string exe = SASQ_LLAMA_EXE;
  const std::string common = "\"" + exe + "\" ppl --json --text \"" + kStories + "\" --max-windows 10";
  const Run bin = run_command(common + " --model \"" + kModel + "\"");
  const Run hf = run_command(common + " --model \"" + kHfF32 + "\"");  // tokenizer: the default tok512.bin
  REQUIRE(bin.status == 0);
  REQUIRE(hf.status == 0);
  for (const char* key : {"ppl", "nll_sum", "tokens", "sequences"})  // every printed digit (not the timings)
    CHECK_MESSAGE(json_field(hf.output, key) == json_field(bin.output, key), key, ": ", hf.output, " vs ", bin.output);
  const std::string gen = " generate --steps 64 --prompt \"Once upon a time\"";
  const Run gb = run_command("\"" + exe + "\"" + gen + " --model \"" + kModel + "\"");
  const Run gh = run_command("\"" + exe + "\"" + gen + " --model \"" + kHfF32 + "\" --tokenizer \"" + kTok512 + "\"");
  REQUIRE(gb.status == 0);
  CHECK(gh.output == gb.output);
  CHECK(gb.output.find("Once upon a time, there was a little girl named Lily.") != std::string::npos);
  // One fingerprint for both formats of the same weights; the BF16 folder is another model.
  const Weights w = load_checkpoint(kModel);
  CHECK(weights_fingerprint(w) == weights_fingerprint(load_hf_model(kHfF32)));
  CHECK(weights_fingerprint(w) != weights_fingerprint(load_hf_model(kHfBf16)));
  const Run folder_without_config = run_command("\"" + exe + "\" ppl --model \"" + kData + "/hf\"");
  CHECK(folder_without_config.status != 0);
  CHECK(folder_without_config.output.find("without config.json") != std::string::npos);
#endif
}
