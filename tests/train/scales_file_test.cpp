// Scales file: exact round trip, parser rejections (with the line), and consumer mismatch errors.
#include <doctest/doctest.h>

#include <string>

#include "train/scales_file.hpp"

using namespace sasq;
using train::Granularity;
using train::ScalesFile;

namespace {

llama::Config tiny_config() {
  llama::Config c;
  c.dim = 4;
  c.hidden_dim = 6;
  c.n_layers = 2;
  c.n_heads = 2;
  c.n_kv_heads = 1;
  c.vocab_size = 10;
  c.seq_len = 8;
  return c;
}

ScalesFile example(Granularity g) {
  ScalesFile f;
  f.model = "fnv1a64:0123456789abcdef";
  f.n_layers = 2;
  f.bits = 4;
  f.granularity = g;
  const llama::Config c = tiny_config();
  float v = 0.1f;
  for (int l = 0; l < 2; ++l) {
    for (int s = 0; s < llama::kNumLinearSites; ++s) {
      const auto site = static_cast<llama::Site>(s);
      const int n = g == Granularity::kPerTensor ? 1 : train::site_channels(c, site);
      train::SiteScales ss{l, site, {}};
      for (int i = 0; i < n; ++i) ss.scale.push_back(v *= 1.37f);
      f.sites.push_back(ss);
    }
  }
  f.sites[0].scale[0] = 1.17549435e-38f;  // smallest normal
  f.sites[1].scale[0] = 0.1f;             // not exactly representable in decimal
  f.weights = train::WeightRecord{4, 32, "rtn"};
  return f;
}

train::ScalesExpectation expectation(const ScalesFile& f) {
  train::ScalesExpectation e{f.model, tiny_config(), f.bits, f.full_range, {}};
  for (const auto& s : f.sites) e.sites.emplace_back(s.layer, s.site);
  return e;
}

std::string parse_error(const std::string& text) {
  ScalesFile f;
  const Status st = train::parse_scales(text, f, "x.scales");
  return st.is_ok() ? std::string("ok") : st.message();
}

std::string replace(std::string s, const std::string& from, const std::string& to) {
  const auto p = s.find(from);
  REQUIRE(p != std::string::npos);
  return s.replace(p, from.size(), to);
}

}  // namespace

TEST_CASE("scales file round trip is exact, per tensor and per channel") {
  for (Granularity g : {Granularity::kPerTensor, Granularity::kPerChannel}) {
    const ScalesFile f = example(g);
    const std::string text = train::format_scales(f);
    ScalesFile back;
    REQUIRE(train::parse_scales(text, back).is_ok());
    CHECK(back.model == f.model);
    CHECK(back.n_layers == 2);
    CHECK(back.bits == 4);
    CHECK(back.granularity == g);
    REQUIRE(back.weights.has_value());
    CHECK(*back.weights == *f.weights);
    REQUIRE(back.sites.size() == f.sites.size());
    for (std::size_t i = 0; i < f.sites.size(); ++i) {
      CHECK(back.sites[i].layer == f.sites[i].layer);
      CHECK(back.sites[i].site == f.sites[i].site);
      CHECK(back.sites[i].scale == f.sites[i].scale);  // bit-exact floats
    }
    CHECK(train::format_scales(back) == text);
    CHECK_NOTHROW(train::check_scales(back, expectation(f)));
  }
}

TEST_CASE("scales parser rejects malformed files with the line and the reason") {
  const std::string good = train::format_scales(example(Granularity::kPerTensor));
  CHECK(parse_error(good) == "ok");
  CHECK(parse_error("") .find("not a scales file") != std::string::npos);
  CHECK(parse_error(replace(good, "sasq-scales 2", "sasq-scales 3")).find("unsupported scales format version '3'") != std::string::npos);
  CHECK(parse_error(replace(good, "bits 4", "bits 5")).find("x.scales:5: expected 'bits 4' or 'bits 8'") != std::string::npos);
  CHECK(parse_error(replace(good, "grid symmetric", "grid asymmetric")).find("grid") != std::string::npos);
  CHECK(parse_error(replace(good, "granularity per_tensor", "granularity per_row")).find("granularity") != std::string::npos);
  CHECK(parse_error(replace(good, "layers 2", "layers 0")).find("layers") != std::string::npos);
  CHECK(parse_error(replace(good, "sites 8", "sites 9")).find("expected") != std::string::npos);
  CHECK(parse_error(replace(good, "sites 8", "sites 13")).find("sites <m>") != std::string::npos);
  CHECK(parse_error(replace(good, "0 attn_in", "2 attn_in")).find("layer 2 outside [0, 2)") != std::string::npos);
  CHECK(parse_error(replace(good, "0 attn_in", "0 qkv_in")).find("unknown site name 'qkv_in'") != std::string::npos);
  CHECK(parse_error(replace(good, "0 oproj_in", "0 attn_in")).find("duplicate site 0 attn_in") != std::string::npos);
  CHECK(parse_error(replace(good, "0 attn_in 1 ", "0 attn_in 2 ")).find("declares 2 scales but has 1") != std::string::npos);
  CHECK(parse_error(replace(good, "0 attn_in 1 ", "0 attn_in 1 -")).find("is negative") != std::string::npos);
  CHECK(parse_error(replace(good, "0 oproj_in 1 0.1", "0 oproj_in 1 nan")).find("scale 0 = 'nan'") != std::string::npos);
  CHECK(parse_error(replace(good, "0 oproj_in 1 0.1", "0 oproj_in 1 0")).find("scale is zero") != std::string::npos);
  CHECK(parse_error(replace(good, "0 oproj_in 1 0.1", "0 oproj_in 1 1e39")).find("is not a number") != std::string::npos);
  CHECK(parse_error(replace(good, "0 oproj_in 1 0.1", "0 oproj_in 1 0.1x")).find("is not a number") != std::string::npos);
  // The library's scale rule on the file's grid (issue 10: 1e-39 and 3e38 were accepted), with file:line.
  CHECK(parse_error(replace(good, "0 oproj_in 1 0.1", "0 oproj_in 1 1e-39")).find(": site 0 oproj_in scale 0 = '1e-39' is not usable") != std::string::npos);
  CHECK(parse_error(replace(good, "0 oproj_in 1 0.1", "0 oproj_in 1 1e-39")).find("too small") != std::string::npos);
  CHECK(parse_error(replace(good, "0 oproj_in 1 0.1", "0 oproj_in 1 3e38")).find("overflows") != std::string::npos);
  CHECK(parse_error(replace(good, "0 oproj_in 1 0.1", "0 oproj_in 1 inf")).find("infinite") != std::string::npos);
  CHECK(parse_error(replace(good, "0 oproj_in 1 0.1", "0 oproj_in 1 1e-10")) == "ok");  // small but usable
  // The weight quantization line.
  CHECK(parse_error(replace(good, "weights 4 32 rtn", "weights 4 32 awq")).find("x.scales:8: unknown weight method 'awq'") != std::string::npos);
  CHECK(parse_error(replace(good, "weights 4 32 rtn", "weights 3 32 rtn")).find("weight bits '3'") != std::string::npos);
  CHECK(parse_error(replace(good, "weights 4 32 rtn", "weights 4 7 rtn")).find("weight group size '7'") != std::string::npos);
  CHECK(parse_error(replace(good, "weights 4 32 rtn", "weights 4 32")).find("expected 'weights") != std::string::npos);
  CHECK(parse_error(replace(good, "weights 4 32 rtn", "weights none")).find("expected 'weights unknown'") != std::string::npos);
  CHECK(parse_error(replace(good, "weights 4 32 rtn\n", "")).find("expected 'weights") != std::string::npos);
  CHECK(parse_error(replace(good, "end\n", "")).find("expected 'end'") != std::string::npos);
  CHECK(parse_error(good + "1 attn_in 1 2\n").find("unexpected content after 'end'") != std::string::npos);
  const std::string pc = train::format_scales(example(Granularity::kPerChannel));
  CHECK(parse_error(replace(pc, "per_channel", "per_tensor")).find("scales in a per_tensor file") != std::string::npos);
  // Comments, blank lines and CRLF line endings are accepted.
  std::string crlf;
  for (char ch : "# leading comment\n\n" + good) {
    if (ch == '\n') crlf += '\r';
    if (ch) crlf += ch;
  }
  CHECK(parse_error(crlf) == "ok");
}

TEST_CASE("check_scales rejects a mismatched model, layer count, bit width, grid or site list") {
  const ScalesFile f = example(Granularity::kPerChannel);
  auto expect_error = [&](train::ScalesExpectation e, const char* needle) {
    try {
      train::check_scales(f, e, "x.scales");
      FAIL("no error for ", needle);
    } catch (const Error& err) {
      INFO(err.what());
      CHECK(std::string(err.what()).find(needle) != std::string::npos);
      CHECK(err.code() == ErrorCode::kInvalidArgument);
    }
  };
  auto e = expectation(f);
  e.model = "fnv1a64:ffffffffffffffff";
  expect_error(e, "trained for model fnv1a64:0123456789abcdef, but the model loaded is fnv1a64:ffffffffffffffff");
  e = expectation(f);
  e.config.n_layers = 3;
  expect_error(e, "scales are for 2 layers, the model has 3");
  e = expectation(f);
  e.bits = 8;
  expect_error(e, "scales are for 4-bit activations, requested 8 bits");
  e = expectation(f);
  e.full_range = true;
  expect_error(e, "symmetric grid, requested symmetric_full");
  e = expectation(f);
  e.sites.emplace_back(1, llama::Site::kKCache);
  expect_error(e, "no scales for site 1 k_cache");
  e = expectation(f);
  e.sites.pop_back();
  expect_error(e, "site 1 down_in is not quantized in this configuration");
  e = expectation(f);
  e.config.hidden_dim = 7;
  expect_error(e, "site 0 down_in has 6 scales, expected 7");
}

TEST_CASE("fingerprint is FNV-1a 64") {
  const unsigned char a[] = {'a'};
  CHECK(train::fingerprint_bytes(a, 0) == "fnv1a64:cbf29ce484222325");
  CHECK(train::fingerprint_bytes(a, 1) == "fnv1a64:af63dc4c8601ec8c");
}

TEST_CASE("the weight quantization a scales file records: round trip, unknown, version 1, mismatch") {
  ScalesFile f = example(Granularity::kPerTensor);
  ScalesFile back;
  CHECK(train::weight_mismatch(f, train::WeightRecord{4, 32, "rtn"}).empty());
  CHECK(train::weight_mismatch(f, train::WeightRecord{8, 32, "rtn"}) ==
        "scales were trained with W4 g32 rtn weights, this run quantizes W8 g32 rtn");
  CHECK(train::weight_mismatch(f, train::WeightRecord{4, 0, "rtn"}).find("W4 g0 rtn") != std::string::npos);
  CHECK(train::weight_mismatch(f, train::WeightRecord{4, 32, "gptq"}).find("W4 g32 gptq") != std::string::npos);
  for (const std::string& m : train::kWeightMethods) {
    f.weights->method = m;
    REQUIRE(train::parse_scales(train::format_scales(f), back).is_ok());
    CHECK(back.weights->method == m);
  }
  f.weights.reset();
  const std::string unknown = train::format_scales(f);
  CHECK(unknown.find("weights unknown\n") != std::string::npos);
  REQUIRE(train::parse_scales(unknown, back).is_ok());
  CHECK(!back.weights.has_value());
  CHECK(train::weight_mismatch(back, train::WeightRecord{}).find("does not record") != std::string::npos);
  // Version 1 (no weights line) still reads, as unknown.
  std::string v1 = replace(unknown, "sasq-scales 2", "sasq-scales 1");
  v1 = replace(v1, "weights unknown\n", "");
  REQUIRE(train::parse_scales(v1, back).is_ok());
  CHECK(!back.weights.has_value());
}
