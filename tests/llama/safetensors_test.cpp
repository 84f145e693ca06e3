// safetensors reader: F32/F16/BF16 conversion, single files and sharded folders, and a clear error
// naming the file and tensor for every malformed input.
#include <doctest/doctest.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <initializer_list>
#include <limits>
#include <string>
#include <vector>

#include "llama/safetensors.hpp"
#include "safetensors_writer.hpp"
#include "expect_error.hpp"

using namespace sasq::llama;
using namespace sasq::llama::test;
using nlohmann::json;

namespace {

SafetensorsView parse(const std::vector<unsigned char>& b) { return SafetensorsView::parse(b.data(), b.size(), "w.safetensors"); }


void expect_corrupt(const std::vector<unsigned char>& b, std::initializer_list<std::string> fragments) {
  expect_error([&] { parse(b); }, sasq::ErrorCode::kCorruptData, fragments);
}

/// A file whose header is exactly `header` (padded), followed by `payload` bytes.
std::vector<unsigned char> raw_file(const std::string& header, std::size_t payload) {
  const std::uint64_t n = header.size();
  std::string s(reinterpret_cast<const char*>(&n), 8);
  s += header;
  s.append(payload, '\0');
  return std::vector<unsigned char>(s.begin(), s.end());
}

RawTensor u16_tensor(const std::string& name, const char* dtype, std::vector<std::uint16_t> v) {
  RawTensor t{name, dtype, {static_cast<std::int64_t>(v.size())}, std::vector<unsigned char>(v.size() * 2)};
  std::memcpy(t.bytes.data(), v.data(), t.bytes.size());
  return t;
}

struct TempDir {
  std::filesystem::path path;
  TempDir() {
    path = std::filesystem::temp_directory_path() /
           ("sasq_st_" + std::to_string(::getpid()) + "_" + std::to_string(counter()++));
    std::filesystem::remove_all(path);
    std::filesystem::create_directories(path);
  }
  ~TempDir() { std::filesystem::remove_all(path); }
  std::string str() const { return path.string(); }
  static int& counter() {
    static int c = 0;
    return c;
  }
};

}  // namespace

TEST_CASE("F32, F16 and BF16 tensors convert exactly to float32") {
  const float f[] = {1.5f, -0.0f, 3.0e-39f, std::numeric_limits<float>::max()};
  // F16: 1, -2, 65504 (largest), 2^-24 (smallest subnormal), 2^-14 (smallest normal), -0.
  const std::vector<std::uint16_t> h = {0x3C00, 0xC000, 0x7BFF, 0x0001, 0x0400, 0x8000};
  // BF16: 1, -2.5, 2^-133 (subnormal), the largest finite.
  const std::vector<std::uint16_t> b = {0x3F80, 0xC020, 0x0001, 0x7F7F};
  const auto bytes = safetensors_bytes({f32_tensor("a.f32", {2, 2}, f, 4), u16_tensor("b.f16", "F16", h),
                                        u16_tensor("c.bf16", "BF16", b)});
  const SafetensorsView v = parse(bytes);
  REQUIRE(v.tensors().size() == 3);
  REQUIRE(v.find("a.f32") != nullptr);
  CHECK(v.find("nope") == nullptr);
  CHECK(v.find("a.f32")->shape == std::vector<std::int64_t>{2, 2});
  std::vector<float> out(6);
  v.to_float(*v.find("a.f32"), out.data());
  CHECK(std::memcmp(out.data(), f, 16) == 0);
  v.to_float(*v.find("b.f16"), out.data());
  CHECK(out[0] == 1.0f);
  CHECK(out[1] == -2.0f);
  CHECK(out[2] == 65504.0f);
  CHECK(out[3] == std::ldexp(1.0f, -24));
  CHECK(out[4] == std::ldexp(1.0f, -14));
  CHECK((out[5] == 0.0f && std::signbit(out[5])));
  v.to_float(*v.find("c.bf16"), out.data());
  CHECK(out[0] == 1.0f);
  CHECK(out[1] == -2.5f);
  CHECK(out[2] == std::ldexp(1.0f, -133));
  CHECK(out[3] == 0x1.FEp127f);
  // BF16 rounding of the test writer: nearest even.
  CHECK(float_to_bf16(1.0f + 0x1p-8f) == 0x3F80);   // tie -> even (down)
  CHECK(float_to_bf16(1.0f + 0x3p-8f) == 0x3F82);   // tie -> even (up)
  CHECK(float_to_bf16(1.0f + 0x1.8p-8f) == 0x3F81);  // above the tie
}

TEST_CASE("malformed safetensors headers are refused naming the file and tensor") {
  const float f[4] = {1, 2, 3, 4};
  CHECK_NOTHROW(parse(safetensors_bytes({f32_tensor("t", {4}, f, 4)})));
  expect_corrupt({1, 2, 3}, {"w.safetensors", "3 bytes", "8-byte header length"});
  {
    auto b = safetensors_bytes({f32_tensor("t", {4}, f, 4)});
    const std::uint64_t n = b.size();
    std::memcpy(b.data(), &n, 8);
    expect_corrupt(b, {"w.safetensors", "header length", "exceeds the file"});
    const std::uint64_t huge = ~std::uint64_t{0};
    std::memcpy(b.data(), &huge, 8);
    expect_corrupt(b, {"w.safetensors", "100 MiB"});
  }
  expect_corrupt(raw_file("{\"t\": {", 0), {"w.safetensors", "not valid JSON"});
  expect_corrupt(raw_file("[1, 2]", 0), {"w.safetensors", "not a JSON object"});
  expect_corrupt(raw_file(R"({"t": 3})", 0), {"'t'", "not an object"});
  expect_corrupt(raw_file(R"({"t": {"dtype": "Q4", "shape": [2], "data_offsets": [0, 1]}})", 1),
                 {"w.safetensors", "'t'", "unknown dtype 'Q4'"});
  expect_corrupt(raw_file(R"({"t": {"dtype": "F32", "shape": [3], "data_offsets": [0, 16]}})", 16),
                 {"w.safetensors", "'t'", "12 bytes", "hold 16"});
  expect_corrupt(raw_file(R"({"t": {"dtype": "F32", "shape": [4], "data_offsets": [0, 16]}})", 12),
                 {"w.safetensors", "'t'", "exceed the 12 data bytes"});
  expect_corrupt(raw_file(R"({"t": {"dtype": "F32", "shape": [1], "data_offsets": [8, 4]}})", 16),
                 {"'t'", "end before they begin"});
  expect_corrupt(raw_file(R"({"t": {"dtype": "F32", "shape": [-1], "data_offsets": [0, 4]}})", 4),
                 {"'t'", "not a non-negative integer"});
  expect_corrupt(raw_file(R"({"t": {"dtype": "F32", "shape": [1099511627777], "data_offsets": [0, 4]}})", 4),
                 {"'t'", "too large"});
  expect_corrupt(raw_file(R"({"t": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4], "x": 1}})", 4),
                 {"'t'", "unknown key 'x'"});
  expect_corrupt(raw_file(R"({"t": {"dtype": "F32", "data_offsets": [0, 4]}})", 4), {"'t'", "'shape'"});
  expect_corrupt(raw_file(R"({"t": {"dtype": "F32", "shape": [1], "data_offsets": [0]}})", 4), {"'t'", "data_offsets"});
  expect_corrupt(raw_file(R"({"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]},
                              "b": {"dtype": "F32", "shape": [2], "data_offsets": [4, 12]}})", 12),
                 {"w.safetensors", "'a'", "'b'", "overlap"});
  expect_corrupt(raw_file(R"({"a": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]},
                              "a": {"dtype": "F32", "shape": [1], "data_offsets": [4, 8]}})", 8),
                 {"w.safetensors", "duplicate tensor name 'a'"});
  expect_corrupt(raw_file(R"({"__metadata__": 5})", 0), {"__metadata__"});
  // Empty tensors may share an offset; a scalar has shape [].
  CHECK_NOTHROW(parse(raw_file(R"({"a": {"dtype": "F32", "shape": [0], "data_offsets": [0, 0]},
                                   "b": {"dtype": "BF16", "shape": [], "data_offsets": [0, 2]}})", 2)));
}

TEST_CASE("values that cannot become float32 are refused naming the tensor") {
  const float bad[2] = {1.0f, std::numeric_limits<float>::quiet_NaN()};
  // A view does not own its bytes: keep them alive while it is used.
  const auto nan_bytes = safetensors_bytes({f32_tensor("w.nan", {2}, bad, 2)});
  const SafetensorsView v = parse(nan_bytes);
  float out[2];
  expect_error([&] { v.to_float(*v.find("w.nan"), out); }, sasq::ErrorCode::kCorruptData,
               {"w.safetensors", "'w.nan'", "non-finite", "element 1"});
  const auto i64_bytes = raw_file(R"({"ids": {"dtype": "I64", "shape": [1], "data_offsets": [0, 8]}})", 8);
  const SafetensorsView i = parse(i64_bytes);
  expect_error([&] { i.to_float(*i.find("ids"), out); }, sasq::ErrorCode::kUnsupported,
               {"w.safetensors", "'ids'", "I64"});
  const auto inf_bytes = safetensors_bytes({u16_tensor("inf", "F16", {0x7C00})});
  const SafetensorsView h = parse(inf_bytes);
  expect_error([&] { h.to_float(*h.find("inf"), out); }, sasq::ErrorCode::kCorruptData, {"'inf'", "non-finite"});
}

TEST_CASE("sharded folders resolve every tensor through the index") {
  const float a[2] = {1, 2}, b[3] = {3, 4, 5};
  TempDir d;
  write_file(d.str() + "/s1.safetensors", safetensors_bytes({f32_tensor("a", {2}, a, 2)}));
  write_file(d.str() + "/s2.safetensors", safetensors_bytes({bf16_tensor("b", {3}, b, 3)}));
  const std::string index = d.str() + "/model.safetensors.index.json";
  write_file(index, json{{"metadata", json::object()}, {"weight_map", {{"a", "s1.safetensors"}, {"b", "s2.safetensors"}}}}.dump());
  {
    const SafetensorsFolder f(d.str());
    CHECK(f.names() == std::vector<std::string>{"a", "b"});
    CHECK(f.file_of("b").find("s2.safetensors") != std::string::npos);
    float out[3];
    f.to_float("b", out);
    CHECK((out[0] == 3 && out[1] == 4 && out[2] == 5));
    f.to_float("a", out);
    CHECK((out[0] == 1 && out[1] == 2));
    expect_error([&] { f.info("c"); }, sasq::ErrorCode::kCorruptData, {d.str(), "'c'", "missing"});
  }
  write_file(index, json{{"weight_map", {{"a", "s1.safetensors"}, {"b", "s1.safetensors"}}}}.dump());
  expect_error([&] { SafetensorsFolder f(d.str()); }, sasq::ErrorCode::kCorruptData,
               {"model.safetensors.index.json", "'b'", "s1.safetensors", "missing from it"});
  write_file(index, json{{"weight_map", {{"b", "s2.safetensors"}}}}.dump());
  write_file(d.str() + "/s2.safetensors", safetensors_bytes({f32_tensor("c", {2}, a, 2), bf16_tensor("b", {3}, b, 3)}));
  expect_error([&] { SafetensorsFolder f(d.str()); }, sasq::ErrorCode::kCorruptData,
               {"s2.safetensors", "'c'", "is not in", "index.json"});
  write_file(index, json{{"weight_map", {{"a", "../s1.safetensors"}}}}.dump());
  expect_error([&] { SafetensorsFolder f(d.str()); }, sasq::ErrorCode::kCorruptData, {"'a'", "not a file in the folder"});
  write_file(index, json{{"weight_map", {{"a", "s3.safetensors"}}}}.dump());
  expect_error([&] { SafetensorsFolder f(d.str()); }, sasq::ErrorCode::kIoError, {"s3.safetensors", "cannot open"});
  write_file(index, "{\"weight_map\": [");
  expect_error([&] { SafetensorsFolder f(d.str()); }, sasq::ErrorCode::kCorruptData, {"index.json", "not valid JSON"});
  write_file(index, json{{"weights", json::object()}}.dump());
  expect_error([&] { SafetensorsFolder f(d.str()); }, sasq::ErrorCode::kCorruptData, {"index.json", "weight_map"});
  // A tensor in two shards (the index can name only one of them).
  write_file(d.str() + "/s2.safetensors", safetensors_bytes({f32_tensor("a", {2}, a, 2), bf16_tensor("b", {3}, b, 3)}));
  write_file(index, json{{"weight_map", {{"a", "s1.safetensors"}, {"b", "s2.safetensors"}}}}.dump());
  expect_error([&] { SafetensorsFolder f(d.str()); }, sasq::ErrorCode::kCorruptData, {"'a'", "s1", "s2", "duplicate"});
  std::filesystem::remove(index);
  expect_error([&] { SafetensorsFolder f(d.str()); }, sasq::ErrorCode::kIoError,
               {d.str(), "no model.safetensors or model.safetensors.index.json"});
  write_file(d.str() + "/model.safetensors", safetensors_bytes({f32_tensor("a", {2}, a, 2)}));
  CHECK(SafetensorsFolder(d.str()).names() == std::vector<std::string>{"a"});
}
