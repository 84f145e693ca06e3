// tokenizer.json (ranked-merge BPE): a small LLaMA-style vocabulary checks normalization, merges by
// rank (not position), byte fallback, unk fusing, added tokens, BOS/EOS and decoding; random texts
// match a quadratic reference encoder; unsupported or malformed files are refused naming the field.
#include <doctest/doctest.h>

#include <initializer_list>
#include <random>
#include <string>
#include <vector>

#include "llama/tokenizer_json.hpp"
#include "expect_error.hpp"

using namespace sasq::llama;
using sasq::llama::test::expect_error;
using nlohmann::json;

namespace {

const std::string kSp = "\xE2\x96\x81";  // U+2581, SentencePiece's space

/// Vocabulary: <unk> <s> </s>, 256 byte pieces, then characters and merges.
json small_tokenizer(bool byte_fallback = true) {
  json vocab = json::object();
  vocab["<unk>"] = 0;
  vocab["<s>"] = 1;
  vocab["</s>"] = 2;
  char name[8];
  for (int b = 0; b < 256; ++b) {
    std::snprintf(name, sizeof name, "<0x%02X>", b);
    vocab[name] = 3 + b;
  }
  int id = 259;
  for (const std::string& p : {kSp, std::string("a"), std::string("b"), std::string("c"), std::string("\xC3\xA9"),
                              kSp + "a", std::string("bc"), std::string("ab"), kSp + "ab", std::string("abc"),
                              kSp + kSp, std::string("ca")})
    vocab[p] = id++;
  // Ranks: "b c" before "a b" so "abc" = a + bc, not ab + c.
  const json merges = {"b c", kSp + " a", "a b", kSp + "a b", kSp + " " + kSp, "c a", "a bc"};
  return {{"version", "1.0"},
          {"added_tokens",
           {{{"id", 0}, {"content", "<unk>"}, {"special", true}, {"normalized", false}},
            {{"id", 1}, {"content", "<s>"}, {"special", true}, {"normalized", false}},
            {{"id", 2}, {"content", "</s>"}, {"special", true}, {"normalized", false}}}},
          {"normalizer",
           {{"type", "Sequence"},
            {"normalizers",
             {{{"type", "Prepend"}, {"prepend", kSp}},
              {{"type", "Replace"}, {"pattern", {{"String", " "}}}, {"content", kSp}}}}}},
          {"pre_tokenizer", nullptr},
          {"post_processor",
           {{"type", "TemplateProcessing"},
            {"single", {{{"SpecialToken", {{"id", "<s>"}, {"type_id", 0}}}}, {{"Sequence", {{"id", "A"}, {"type_id", 0}}}}}},
            {"special_tokens", {{"<s>", {{"id", "<s>"}, {"ids", {1}}, {"tokens", {"<s>"}}}}}}}},
          {"decoder",
           {{"type", "Sequence"},
            {"decoders",
             {{{"type", "Replace"}, {"pattern", {{"String", kSp}}}, {"content", " "}},
              {{"type", "ByteFallback"}},
              {{"type", "Fuse"}},
              {{"type", "Strip"}, {"content", " "}, {"start", 1}, {"stop", 0}}}}}},
          {"model",
           {{"type", "BPE"}, {"dropout", nullptr}, {"unk_token", "<unk>"}, {"fuse_unk", true},
            {"byte_fallback", byte_fallback}, {"vocab", vocab}, {"merges", merges}}}};
}

Tokenizer parse(const json& j) { return parse_tokenizer_json(j.dump(), "tokenizer.json"); }

int id(const Tokenizer& t, const std::string& p) {
  const int i = t.find(p);
  REQUIRE_MESSAGE(i >= 0, p);
  return i;
}

/// Reference: per segment, ids of code points (byte fallback), then repeatedly merge the
/// leftmost occurrence of the lowest-rank pair present (quadratic, from the definition).
std::vector<int> reference_segment(const Tokenizer& t, const json& merges, std::string s) {
  s = kSp + s;
  for (std::size_t i; (i = s.find(' ')) != std::string::npos;) s.replace(i, 1, kSp);
  std::vector<std::string> sym;
  for (std::size_t i = 0; i < s.size();) {
    std::size_t len = 1;
    const auto c = static_cast<unsigned char>(s[i]);
    const std::size_t want = c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : c >= 0xC0 ? 2 : 1;
    while (len < want && i + len < s.size() && (static_cast<unsigned char>(s[i + len]) & 0xC0) == 0x80) ++len;
    const std::string ch = s.substr(i, len);
    if (t.find(ch) >= 0) {
      sym.push_back(ch);
    } else {
      char name[8];
      for (const char b : ch) {
        std::snprintf(name, sizeof name, "<0x%02X>", static_cast<unsigned char>(b));
        sym.push_back(name);
      }
    }
    i += len;
  }
  for (;;) {
    std::size_t best_rank = merges.size(), best_pos = 0;
    for (std::size_t p = 0; p + 1 < sym.size(); ++p)
      for (std::size_t r = 0; r < best_rank; ++r)
        if (merges[r].get<std::string>() == sym[p] + " " + sym[p + 1]) {
          best_rank = r;
          best_pos = p;
          break;
        }
    if (best_rank == merges.size()) break;
    sym[best_pos] += sym[best_pos + 1];
    sym.erase(sym.begin() + static_cast<std::ptrdiff_t>(best_pos) + 1);
  }
  std::vector<int> ids;
  for (const auto& x : sym) ids.push_back(t.find(x));
  return ids;
}

}  // namespace

TEST_CASE("ranked BPE: normalizer, merges by rank, byte fallback, added tokens, BOS and decoding") {
  const Tokenizer t = parse(small_tokenizer());
  CHECK(t.ranked());
  CHECK(t.vocab_size() == 271);
  // "▁abc": rank 0 "b c" fires before "▁ a" (rank 1) although it is further right; "▁a bc" is no merge.
  CHECK(t.encode("abc", false) == std::vector<int>{id(t, kSp + "a"), id(t, "bc")});
  // "ab": ▁ a (rank 1) before a b (rank 2): ▁a + b -> ▁ab (rank 3).
  CHECK(t.encode("ab", true) == std::vector<int>{1, id(t, kSp + "ab")});
  // Spaces become ▁: "▁▁a" merges "▁ a" (rank 1) before "▁ ▁" (rank 4); "d" falls back to its byte.
  CHECK(t.encode(" a", false) == std::vector<int>{id(t, kSp), id(t, kSp + "a")});
  CHECK(t.encode("  ", false) == std::vector<int>{id(t, kSp + kSp), id(t, kSp)});
  CHECK(t.encode("d\xC3\xA9", false) == std::vector<int>{id(t, kSp), 'd' + 3, id(t, "\xC3\xA9")});
  // Added tokens split the text; each segment is normalized (prepended) on its own.
  CHECK(t.encode("a</s>b", true) == std::vector<int>{1, id(t, kSp + "a"), 2, id(t, kSp), id(t, "b")});
  CHECK(t.encode("<s>", false) == std::vector<int>{1});
  CHECK(t.encode("", true) == std::vector<int>{1});
  CHECK(t.encode("a", true, true) == std::vector<int>{1, id(t, kSp + "a"), 2});  // EOS: the "</s>" token
  // Decoding: specials vanish, ▁ -> space, bytes -> raw, one leading space stripped at the start.
  CHECK(t.decode(std::vector<int>{1, id(t, kSp + "ab"), id(t, kSp), 'd' + 3, 2}, -1) == "ab d");
  CHECK(t.decode(id(t, kSp + "a"), id(t, "b")) == "b");
  CHECK(t.decode(kBosToken, id(t, kSp + "a")) == "a");
  CHECK(t.decode(id(t, "b"), id(t, kSp + "a")) == " a");
  // Without byte fallback, unknown code points give <unk>, fused when consecutive.
  const Tokenizer u = parse(small_tokenizer(false));
  CHECK(u.encode("xyb", false) == std::vector<int>{id(u, kSp), 0, id(u, "b")});
}

TEST_CASE("ranked BPE equals the quadratic reference on random texts and round-trips") {
  const json j = small_tokenizer();
  const Tokenizer t = parse(j);
  const char* alphabet[] = {"a", "b", "c", " ", "\xC3\xA9", "d", "\xE2\x82\xAC", "ab", "ca"};
  std::mt19937 rng(7);
  for (int trial = 0; trial < 400; ++trial) {
    std::string text;
    const int n = static_cast<int>(rng() % 24);
    for (int i = 0; i < n; ++i) text += alphabet[rng() % 9];
    std::vector<int> want = {1};
    if (!text.empty())
      for (const int i : reference_segment(t, j["model"]["merges"], text)) want.push_back(i);
    const std::vector<int> got = t.encode(text, true);
    CHECK_MESSAGE(got == want, "text '", text, "'");
    CHECK(t.decode(got, -1) == text);
  }
}

TEST_CASE("unsupported or malformed tokenizer.json files are refused naming the field") {
  auto expect = [](const json& j, sasq::ErrorCode code, std::initializer_list<std::string> fragments) {
    expect_error([&] { parse(j); }, code, fragments);
  };
  expect_error([] { parse_tokenizer_json("{", "tokenizer.json"); }, sasq::ErrorCode::kCorruptData, {"tokenizer.json", "JSON"});
  json j = small_tokenizer();
  j["model"]["type"] = "Unigram";
  expect(j, sasq::ErrorCode::kUnsupported, {"tokenizer.json", "Unigram"});
  j = small_tokenizer();
  j["pre_tokenizer"] = {{"type", "ByteLevel"}};
  expect(j, sasq::ErrorCode::kUnsupported, {"pre_tokenizer ByteLevel"});
  j = small_tokenizer();
  j["normalizer"] = {{"type", "NFKC"}};
  expect(j, sasq::ErrorCode::kUnsupported, {"normalizer", "NFKC"});
  j = small_tokenizer();
  j["decoder"] = {{"type", "Metaspace"}};
  expect(j, sasq::ErrorCode::kUnsupported, {"decoder", "Metaspace"});
  j = small_tokenizer();
  j["model"]["merges"].push_back("a");
  expect(j, sasq::ErrorCode::kCorruptData, {"merge 7", "'a'"});
  j = small_tokenizer();
  j["model"]["merges"].push_back("c c");
  expect(j, sasq::ErrorCode::kCorruptData, {"merge 7", "not in the vocabulary"});
  j = small_tokenizer();
  j["model"]["merges"].push_back({"a", "zz"});
  expect(j, sasq::ErrorCode::kCorruptData, {"merge 7", "'zz'"});
  j = small_tokenizer();
  j["model"]["vocab"].erase("<0x41>");
  expect(j, sasq::ErrorCode::kCorruptData, {"tokenizer.json", "id 68"});
  j = small_tokenizer();
  j["model"]["vocab"]["zz"] = 5;
  expect(j, sasq::ErrorCode::kCorruptData, {"id 5", "'zz'"});
  j = small_tokenizer();
  j["model"]["vocab"]["<0x41>"] = 400;
  expect(j, sasq::ErrorCode::kCorruptData, {"ids must be dense"});
  j = small_tokenizer();
  j["added_tokens"][1]["lstrip"] = true;
  expect(j, sasq::ErrorCode::kUnsupported, {"'<s>'", "lstrip"});
  j = small_tokenizer();
  j["post_processor"]["single"][0]["SpecialToken"]["id"] = "<bos>";
  expect(j, sasq::ErrorCode::kCorruptData, {"'<bos>'"});
  j = small_tokenizer();
  j["model"]["unk_token"] = "<oov>";
  expect(j, sasq::ErrorCode::kCorruptData, {"unk_token", "'<oov>'"});
  // Merges may be pairs of strings (newer tokenizers files) with the same result.
  j = small_tokenizer();
  json pairs = json::array();
  for (const auto& m : j["model"]["merges"]) {
    const std::string s = m.get<std::string>();
    pairs.push_back({s.substr(0, s.find(' ')), s.substr(s.find(' ') + 1)});
  }
  j["model"]["merges"] = pairs;
  CHECK(parse(j).encode("abc ab", true) == parse(small_tokenizer()).encode("abc ab", true));
}
