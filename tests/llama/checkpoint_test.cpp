// Loader of llama2.c checkpoints: v0/v1/v2 round trips on a synthetic model and a clear error for
// every corruption (truncated, oversized, bad dimensions, head divisibility, NaN/Inf, bad v2 fields).
#include <doctest/doctest.h>

#include <cstring>
#include <limits>
#include <string>

#include "llama/checkpoint.hpp"
#include "synthetic_model.hpp"

using namespace sasq::llama;
using sasq::llama::test::random_weights;
using sasq::llama::test::tiny_config;

namespace {

Weights parse(const std::vector<unsigned char>& b) { return parse_checkpoint(b.data(), b.size(), "model.bin"); }

/// Expects a kCorruptData error whose message holds the file name and every fragment.
void expect_corrupt(const std::vector<unsigned char>& b, std::initializer_list<const char*> fragments) {
  try {
    parse(b);
    FAIL("no error for a corrupt checkpoint");
  } catch (const sasq::Error& e) {
    const std::string msg = e.what();
    CHECK(e.code() == sasq::ErrorCode::kCorruptData);
    CHECK_MESSAGE(msg.find("model.bin") != std::string::npos, msg);
    for (const char* f : fragments) CHECK_MESSAGE(msg.find(f) != std::string::npos, msg, " lacks ", f);
  }
}

void set_i32(std::vector<unsigned char>& b, std::size_t offset, std::int32_t v) { std::memcpy(b.data() + offset, &v, 4); }

void check_same(const Weights& a, const Weights& b, float tol) {
  CHECK(a.config.dim == b.config.dim);
  CHECK(a.config.n_kv_heads == b.config.n_kv_heads);
  CHECK(a.config.vocab_size == b.config.vocab_size);
  CHECK(a.config.shared_classifier == b.config.shared_classifier);
  CHECK((a.token_embedding - b.token_embedding).cwiseAbs().maxCoeff() <= tol);
  CHECK((a.classifier() - b.classifier()).cwiseAbs().maxCoeff() <= tol);
  CHECK(a.rms_final == b.rms_final);
  for (std::size_t l = 0; l < a.layers.size(); ++l) {
    CHECK(a.layers[l].rms_att == b.layers[l].rms_att);
    CHECK(a.layers[l].rms_ffn == b.layers[l].rms_ffn);
    for (int p = 0; p < kNumProj; ++p)
      CHECK((proj_weight(a.layers[l], static_cast<Proj>(p)) - proj_weight(b.layers[l], static_cast<Proj>(p))).cwiseAbs().maxCoeff() <= tol);
  }
}

}  // namespace

TEST_CASE("legacy v0 checkpoints load with and without freq_cis, shared and separate classifier") {
  for (bool shared : {true, false})
    for (bool freq : {true, false}) {
      const Weights w = random_weights(tiny_config(shared));
      const Weights r = parse(test::write_v0(w, freq));
      CHECK(r.format_version == 0);
      check_same(w, r, 0.0f);
    }
}

TEST_CASE("ak42 v1 (float32) and v2 (Q8_0 groups) load") {
  for (bool shared : {true, false}) {
    const Weights w = random_weights(tiny_config(shared));
    const Weights r1 = parse(test::write_v1(w));
    CHECK(r1.format_version == 1);
    check_same(w, r1, 0.0f);
    for (int gs : {16, 8}) {
      const Weights r2 = parse(test::write_v2(w, gs));
      CHECK(r2.format_version == 2);
      // |w - s q| <= s / 2 = absmax / 254 per group; the weights here are N(0, 1) at most ~5.
      check_same(w, r2, 5.0f / 254.0f);
      REQUIRE(r2.q8.size() == test::export_matrices(w).size());
      CHECK(r2.q8[0].name == "token_embedding");
      CHECK(r2.q8[0].group_size == gs);
      CHECK(r2.q8[1].name == "layers.0.wq");
      const Q8Tensor& t = r2.q8[1];
      CHECK(r2.layers[0].wq(0, 3) == t.scale[3 / static_cast<std::size_t>(gs)] * static_cast<float>(t.q[3]));
    }
  }
}

TEST_CASE("truncated and oversized checkpoints name the tensor and the sizes") {
  const Weights w = random_weights(tiny_config(false));
  auto b = test::write_v0(w);
  auto cut = b;
  cut.resize(b.size() - 1);
  expect_corrupt(cut, {"truncated", "wcls"});
  cut.resize(100);
  expect_corrupt(cut, {"truncated", "token_embedding"});
  cut.resize(10);
  expect_corrupt(cut, {"truncated", "28-byte header"});
  auto big = b;
  big.resize(b.size() + 4);
  expect_corrupt(big, {"oversized", "4 trailing bytes"});
  auto v1 = test::write_v1(w);
  v1.resize(v1.size() - 8);
  expect_corrupt(v1, {"truncated", "v1", "wcls"});
  v1.resize(200);
  expect_corrupt(v1, {"truncated ak42 header"});
  auto v2 = test::write_v2(w, 16);
  v2.resize(v2.size() + 1);
  expect_corrupt(v2, {"oversized", "v2"});
}

TEST_CASE("bad header dimensions are rejected with the field name") {
  const Weights w = random_weights(tiny_config());
  const auto b = test::write_v0(w);
  const struct {
    std::size_t offset;
    std::int32_t value;
    const char* field;
  } cases[] = {{0, 0, "dim"},           {0, -16, "dim"},          {0, 1 << 30, "dim"},
               {4, 0, "hidden_dim"},    {8, -1, "n_layers"},      {8, 100000, "n_layers"},
               {12, 0, "n_heads"},      {12, 3, "n_heads"},       {16, 0, "n_kv_heads"},
               {16, 3, "n_kv_heads"},   {20, 0, "vocab_size"},    {20, std::numeric_limits<std::int32_t>::min(), "vocab_size"},
               {24, 0, "seq_len"},      {24, -7, "seq_len"},      {12, 16, "odd"}};
  for (const auto& c : cases) {
    CAPTURE(c.field);
    CAPTURE(c.value);
    auto bad = b;
    set_i32(bad, c.offset, c.value);
    expect_corrupt(bad, {c.field});
  }
  // n_heads = 8 divides dim 16 but n_kv_heads = 2 ... 3 does not divide 8 -> covered above; also
  // n_kv_heads > n_heads.
  auto bad = b;
  set_i32(bad, 16, 8);
  expect_corrupt(bad, {"n_kv_heads = 8 does not divide n_heads = 4"});
}

TEST_CASE("NaN and Inf weights are rejected naming the tensor") {
  const Weights w = random_weights(tiny_config());
  for (float v : {std::numeric_limits<float>::quiet_NaN(), std::numeric_limits<float>::infinity()}) {
    auto b = test::write_v0(w);
    std::memcpy(b.data() + 28 + 4 * 5, &v, 4);  // token_embedding element 5
    expect_corrupt(b, {"token_embedding", "non-finite", "element 5"});
    auto b1 = test::write_v1(w);
    std::memcpy(b1.data() + b1.size() - 4, &v, 4);  // last element of layers.1.w3
    expect_corrupt(b1, {"layers.1.w3", "non-finite"});
    auto b2 = test::write_v2(w, 16);
    std::memcpy(b2.data() + b2.size() - 4, &v, 4);  // last scale
    expect_corrupt(b2, {"layers.1.w3.scale", "non-finite"});
  }
}

TEST_CASE("bad v1/v2 header fields") {
  const Weights w = random_weights(tiny_config());
  auto b = test::write_v1(w);
  set_i32(b, 4, 3);
  expect_corrupt(b, {"version = 3"});
  b = test::write_v1(w);
  b[36] = 7;
  expect_corrupt(b, {"shared_classifier = 7"});
  for (std::int32_t gs : {0, -4, 5, 32}) {
    auto b2 = test::write_v2(w, 16);
    set_i32(b2, 37, gs);
    expect_corrupt(b2, {"group_size"});
  }
  auto b2 = test::write_v2(w, 16);
  const float neg = -1.0f;
  std::memcpy(b2.data() + b2.size() - 4, &neg, 4);
  expect_corrupt(b2, {"negative scale"});
}

TEST_CASE("missing files are I/O errors naming the path") {
  try {
    load_checkpoint("/nonexistent/dir/model.bin");
    FAIL("no error");
  } catch (const sasq::Error& e) {
    CHECK(e.code() == sasq::ErrorCode::kIoError);
    CHECK(std::string(e.what()).find("/nonexistent/dir/model.bin") != std::string::npos);
  }
}
