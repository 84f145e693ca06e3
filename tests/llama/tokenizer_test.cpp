// Tokenizer: the O(n log n) merge equals run.c's O(n^2) encode loop on random text, byte fallback,
// decode rules, and a clear error for every malformed tokenizer file.
#include <doctest/doctest.h>

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "llama/tokenizer.hpp"

using namespace sasq::llama;

namespace {

struct Entry {
  float score;
  std::string piece;
};

std::vector<Entry> small_vocab() {
  std::vector<Entry> v{{0.0f, "<unk>"}, {0.0f, "\n<s>\n"}, {0.0f, "\n</s>\n"}};
  for (int b = 0; b < 256; ++b) {
    char buf[8];
    std::snprintf(buf, sizeof buf, "<0x%02X>", b);
    v.push_back({0.0f, buf});
  }
  // Merges and characters; equal scores on purpose to exercise leftmost tie-breaking.
  const Entry extra[] = {{0.0f, " "},   {-1.0f, "a"},   {-2.0f, "b"},   {-3.0f, "c"},  {-4.0f, "ab"},
                         {-4.0f, "bc"}, {-5.0f, "abc"}, {-6.0f, " a"},  {-7.0f, "\xC3\xA9"},
                         {-4.0f, "ca"}, {-8.0f, " ab"}, {-9.0f, "aa"}, {-2e10f, "cc"}};
  for (const auto& e : extra) v.push_back(e);
  return v;
}

std::vector<unsigned char> serialize(const std::vector<Entry>& v, std::int32_t max_len) {
  std::vector<unsigned char> b(4);
  std::memcpy(b.data(), &max_len, 4);
  for (const auto& e : v) {
    const auto len = static_cast<std::int32_t>(e.piece.size());
    unsigned char h[8];
    std::memcpy(h, &e.score, 4);
    std::memcpy(h + 4, &len, 4);
    b.insert(b.end(), h, h + 8);
    b.insert(b.end(), e.piece.begin(), e.piece.end());
  }
  return b;
}

/// run.c encode() with its quadratic merge loop (the oracle).
std::vector<int> run_c_encode(const std::vector<Entry>& v, const std::string& text, bool bos) {
  auto lookup = [&](const std::string& s) {
    for (std::size_t i = 0; i < v.size(); ++i)
      if (v[i].piece == s) return static_cast<int>(i);
    return -1;
  };
  std::vector<int> t;
  if (bos) t.push_back(1);
  if (!text.empty()) t.push_back(lookup(" "));
  std::string buf;
  for (std::size_t i = 0; i < text.size(); ++i) {
    if ((static_cast<unsigned char>(text[i]) & 0xC0) != 0x80) buf.clear();
    buf += text[i];
    if (i + 1 < text.size() && (static_cast<unsigned char>(text[i + 1]) & 0xC0) == 0x80 && buf.size() < 4) continue;
    const int id = lookup(buf);
    if (id != -1) {
      t.push_back(id);
    } else {
      for (char ch : buf) t.push_back(static_cast<unsigned char>(ch) + 3);
    }
    buf.clear();
  }
  for (;;) {
    float best = -1e10f;
    int best_id = -1, best_idx = -1;
    for (std::size_t i = 0; i + 1 < t.size(); ++i) {
      const int id = lookup(v[static_cast<std::size_t>(t[i])].piece + v[static_cast<std::size_t>(t[i + 1])].piece);
      if (id != -1 && v[static_cast<std::size_t>(id)].score > best) {
        best = v[static_cast<std::size_t>(id)].score;
        best_id = id;
        best_idx = static_cast<int>(i);
      }
    }
    if (best_idx == -1) break;
    t[static_cast<std::size_t>(best_idx)] = best_id;
    t.erase(t.begin() + best_idx + 1);
  }
  return t;
}

void expect_corrupt(const std::vector<unsigned char>& b, const char* fragment, int vocab = 0) {
  try {
    Tokenizer::parse(b.data(), b.size(), "tok.bin", vocab);
    FAIL("no error");
  } catch (const sasq::Error& e) {
    const std::string msg = e.what();
    CHECK(msg.find("tok.bin") != std::string::npos);
    CHECK_MESSAGE(msg.find(fragment) != std::string::npos, msg, " lacks ", fragment);
  }
}

}  // namespace

TEST_CASE("encode equals run.c's quadratic merge loop on random text") {
  const auto vocab = small_vocab();
  const auto bytes = serialize(vocab, 8);
  const Tokenizer tok = Tokenizer::parse(bytes.data(), bytes.size(), "tok.bin");
  CHECK(tok.vocab_size() == static_cast<int>(vocab.size()));
  std::mt19937 rng(3);
  const std::string alphabet[] = {"a", "b", "c", " ", "\xC3\xA9", "\x01", "\xE2\x82\xAC", "\x80", "\n"};
  for (int trial = 0; trial < 400; ++trial) {
    std::string text;
    const int n = static_cast<int>(rng() % 40);
    for (int i = 0; i < n; ++i) text += alphabet[rng() % 9];
    CAPTURE(text);
    const bool bos = trial % 2 == 0;
    CHECK(tok.encode(text, bos) == run_c_encode(vocab, text, bos));
  }
  CHECK(tok.encode("", true) == std::vector<int>{1});
  CHECK(tok.encode("", false).empty());
  CHECK(tok.encode("ab", true, true).back() == kEosToken);
}

TEST_CASE("decode: leading space after BOS, byte pieces become raw bytes") {
  const auto bytes = serialize(small_vocab(), 8);
  const Tokenizer tok = Tokenizer::parse(bytes.data(), bytes.size(), "tok.bin");
  const int space_a = tok.find(" a");
  REQUIRE(space_a > 0);
  CHECK(tok.decode(kBosToken, space_a) == "a");
  CHECK(tok.decode(5, space_a) == " a");
  CHECK(tok.decode(5, 0x41 + 3) == "A");
  CHECK(tok.decode(5, 3) == std::string(1, '\0'));
  const std::string text = "abc ca\xC3\xA9 b\x01";
  std::vector<int> ids = tok.encode(text, true);
  ids.erase(ids.begin());
  CHECK(tok.decode(ids, kBosToken) == text);
}

TEST_CASE("malformed tokenizer files are rejected naming the entry") {
  const auto vocab = small_vocab();
  const auto good = serialize(vocab, 8);
  auto b = good;
  b.resize(2);
  expect_corrupt(b, "no max_token_length");
  b = good;
  b.resize(good.size() - 1);
  expect_corrupt(b, "truncated tokenizer: entry 271");
  b = good;
  b.resize(46);  // entries 0-2 end at byte 44; entry 3's 8-byte header is cut
  expect_corrupt(b, "entry 3 header");
  b = good;
  std::int32_t v = 0;
  std::memcpy(b.data(), &v, 4);
  expect_corrupt(b, "max_token_length = 0");
  b = good;
  v = -5;
  std::memcpy(b.data() + 8, &v, 4);  // entry 0 length
  expect_corrupt(b, "entry 0 has length -5");
  b = good;
  v = 9;
  std::memcpy(b.data() + 8, &v, 4);
  expect_corrupt(b, "entry 0 has length 9");
  b = good;
  const float nan = std::numeric_limits<float>::quiet_NaN();
  std::memcpy(b.data() + 4, &nan, 4);
  expect_corrupt(b, "entry 0 has a non-finite score");
  // A tokenizer of another model: its vocabulary size, not "trailing bytes" (issue 10).
  expect_corrupt(good, "the tokenizer has 272 entries but the model's vocabulary has 100 tokens", 100);
  expect_corrupt(good, "the tokenizer has 272 entries but the model's vocabulary has 300 tokens", 300);
  b = good;
  b.insert(b.end(), {1, 2, 3});
  expect_corrupt(b, "3 trailing bytes after 272 entries", 272);
  b = good;
  b.push_back(0);
  expect_corrupt(b, "truncated tokenizer: entry 272");
  auto no_space = vocab;
  no_space[259].piece = "x";
  b = serialize(no_space, 8);
  expect_corrupt(b, "no \" \" piece");
  b = serialize(std::vector<Entry>(vocab.begin(), vocab.begin() + 100), 8);
  expect_corrupt(b, "fewer than the 259");
}
