// Hugging Face folder loader: synthetic folders (F32/BF16, tied/explicit lm_head, sharded) load to
// exactly the weights they were written from; the q/k un-permutation turns Hugging Face's rotate_half
// RoPE into the examples' adjacent-pair RoPE; config/tensor errors name file and key; peak memory.
#include <doctest/doctest.h>

#include <malloc.h>

#include <cmath>
#include <filesystem>
#include <functional>
#include <fstream>
#include <initializer_list>
#include <random>
#include <string>

#include "llama/hf_model.hpp"
#include "llama/model.hpp"
#include "safetensors_writer.hpp"
#include "synthetic_model.hpp"
#include "expect_error.hpp"

using namespace sasq::llama;
using namespace sasq::llama::test;
using nlohmann::json;

namespace {

struct TempDir {
  std::filesystem::path path;
  explicit TempDir(const char* tag) {
    static int counter = 0;
    path = std::filesystem::temp_directory_path() /
           ("sasq_hf_" + std::string(tag) + "_" + std::to_string(::getpid()) + "_" + std::to_string(counter++));
    std::filesystem::remove_all(path);
    std::filesystem::create_directories(path);
  }
  ~TempDir() { std::filesystem::remove_all(path); }
  std::string str() const { return path.string(); }
};


bool same_bits(const Matrix& a, const Matrix& b) {
  return a.rows() == b.rows() && a.cols() == b.cols() && std::memcmp(a.data(), b.data(), sizeof(float) * a.size()) == 0;
}
bool same_bits(const Vector& a, const Vector& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), sizeof(float) * a.size()) == 0;
}

/// Every tensor of a and b bit-identical.
void check_identical(const Weights& a, const Weights& b) {
  CHECK(a.config.dim == b.config.dim);
  CHECK(a.config.n_kv_heads == b.config.n_kv_heads);
  CHECK(a.config.shared_classifier == b.config.shared_classifier);
  CHECK(same_bits(a.token_embedding, b.token_embedding));
  CHECK(same_bits(a.classifier(), b.classifier()));
  CHECK(same_bits(a.rms_final, b.rms_final));
  REQUIRE(a.layers.size() == b.layers.size());
  for (std::size_t l = 0; l < a.layers.size(); ++l) {
    CHECK(same_bits(a.layers[l].rms_att, b.layers[l].rms_att));
    CHECK(same_bits(a.layers[l].rms_ffn, b.layers[l].rms_ffn));
    for (int p = 0; p < kNumProj; ++p)
      CHECK_MESSAGE(same_bits(proj_weight(a.layers[l], static_cast<Proj>(p)), proj_weight(b.layers[l], static_cast<Proj>(p))),
                    "layer ", l, " ", proj_name(static_cast<Proj>(p)));
  }
}

/// w with every weight rounded to BF16 (nearest even), as the BF16 folder stores it.
Weights bf16_rounded(Weights w) {
  auto round = [](float* p, Eigen::Index n) {
    for (Eigen::Index i = 0; i < n; ++i) p[i] = sasq::llama::detail::bf16_to_float(float_to_bf16(p[i]));
  };
  round(w.token_embedding.data(), w.token_embedding.size());
  round(w.wcls.data(), w.wcls.size());
  round(w.rms_final.data(), w.rms_final.size());
  for (auto& L : w.layers) {
    round(L.rms_att.data(), L.rms_att.size());
    round(L.rms_ffn.data(), L.rms_ffn.size());
    for (int p = 0; p < kNumProj; ++p) round(proj_weight(L, static_cast<Proj>(p)).data(), proj_weight(L, static_cast<Proj>(p)).size());
  }
  return w;
}

/// Hugging Face LlamaRotaryEmbedding + apply_rotary_pos_emb on one head vector at position pos:
/// out_j = x_j cos(pos f_j) - x_{j+hs/2} sin(pos f_j), out_{j+hs/2} = x_{j+hs/2} cos + x_j sin,
/// f_j = theta^(-2j/hs) for j < hs/2 (double precision).
std::vector<double> rotate_half_rope(const float* x, int hs, int pos, double theta) {
  std::vector<double> out(static_cast<std::size_t>(hs));
  for (int j = 0; j < hs / 2; ++j) {
    const double a = pos * std::pow(theta, -2.0 * j / hs), c = std::cos(a), s = std::sin(a);
    out[static_cast<std::size_t>(j)] = x[j] * c - x[j + hs / 2] * s;
    out[static_cast<std::size_t>(j + hs / 2)] = x[j + hs / 2] * c + x[j] * s;
  }
  return out;
}

std::string read_text(const std::string& path) {
  std::ifstream in(path);
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

}  // namespace

TEST_CASE("Hugging Face folders load to the weights they were written from") {
  for (bool shared : {true, false}) {
    const Weights w = random_weights(tiny_config(shared), 3);
    TempDir d("f32");
    write_hf_folder(d.str(), w, false);
    CHECK(is_hf_folder(d.str()));
    CHECK_FALSE(is_hf_folder(d.str() + "/model.safetensors"));
    const Weights r = load_hf_model(d.str());
    CHECK(r.format_version == 3);
    CHECK(r.config.seq_len == w.config.seq_len);
    CHECK(r.config.rms_norm_eps == 1e-5f);
    CHECK(r.config.rope_theta == 10000.0f);
    check_identical(w, r);
    TempDir s("bf16");
    write_hf_folder(s.str(), w, true, 3);
    check_identical(bf16_rounded(w), load_hf_model(s.str()));
  }
}

TEST_CASE("the q/k un-permutation turns rotate_half RoPE into adjacent-pair RoPE") {
  // Attention scores q_h . k_g of the Hugging Face convention (permuted rows, rotate_half) equal
  // those of the loaded weights with the examples' RoPE, at every position pair and head.
  Config c = tiny_config(false);
  c.rope_theta = 500000.0f;  // a non-default base travels from config.json into the RoPE table
  const Weights w = random_weights(c, 5);
  TempDir d("rope");
  write_hf_folder(d.str(), w, false);
  json cfg = json::parse(read_text(d.str() + "/config.json"));
  cfg["rope_theta"] = 500000.0;
  write_file(d.str() + "/config.json", cfg.dump());
  const Weights r = load_hf_model(d.str());
  REQUIRE(r.config.rope_theta == 500000.0f);
  const Matrix q_hf = hf_permute(w.layers[1].wq, c.n_heads), k_hf = hf_permute(w.layers[1].wk, c.n_kv_heads);
  const RopeTable rope = make_rope_table(r.config);
  const int hs = c.head_size();
  // Largest |score difference| between HF's convention and ours with weights (wq, wk).
  auto gap = [&](const Matrix& wq, const Matrix& wk) {
    std::mt19937 rng(2);
    std::normal_distribution<float> nd;
    double worst = 0.0;
    for (int trial = 0; trial < 4; ++trial) {
      Matrix x(1, c.dim);
      for (Eigen::Index i = 0; i < x.size(); ++i) x.data()[i] = nd(rng);
      const int pq = 3 + trial, pk = trial;
      Matrix q = x * wq.transpose(), k = x * wk.transpose();
      apply_rope(q, pq, rope);
      apply_rope(k, pk, rope);
      const Matrix qh = x * q_hf.transpose(), kh = x * k_hf.transpose();
      for (int h = 0; h < c.n_heads; ++h) {
        const int g = h / c.kv_mul();
        const auto a = rotate_half_rope(qh.data() + h * hs, hs, pq, 500000.0);
        const auto b = rotate_half_rope(kh.data() + g * hs, hs, pk, 500000.0);
        double hf = 0.0, ours = 0.0;
        for (int j = 0; j < hs; ++j) {
          hf += a[static_cast<std::size_t>(j)] * b[static_cast<std::size_t>(j)];
          ours += static_cast<double>(q(0, h * hs + j)) * k(0, g * hs + j);
        }
        worst = std::max(worst, std::abs(hf - ours));
      }
    }
    return worst;
  };
  CHECK(gap(r.layers[1].wq, r.layers[1].wk) < 1e-4);
  CHECK(gap(q_hf, k_hf) > 1e-2);  // the permuted rows as stored do not compute the same scores
}

TEST_CASE("config.json errors name the file and the key") {
  const Config c = tiny_config(true);
  auto expect_config = [&](const json& cfg, sasq::ErrorCode code, std::initializer_list<std::string> fragments) {
    expect_error([&] { parse_hf_config(cfg.dump(), "dir/config.json"); }, code, fragments);
  };
  json base = hf_config(c);
  CHECK(parse_hf_config(base.dump(), "x").n_kv_heads == c.n_kv_heads);
  json j = base;
  j.erase("num_key_value_heads");
  CHECK(parse_hf_config(j.dump(), "x").n_kv_heads == c.n_heads);  // transformers' default
  j = base;
  j.erase("rms_norm_eps");
  CHECK(parse_hf_config(j.dump(), "x").rms_norm_eps == 1e-6f);     // LlamaConfig's default
  j.erase("tie_word_embeddings");
  CHECK_FALSE(parse_hf_config(j.dump(), "x").shared_classifier);
  expect_error([&] { parse_hf_config("{", "dir/config.json"); }, sasq::ErrorCode::kCorruptData, {"dir/config.json", "JSON"});
  j = base;
  j.erase("hidden_size");
  expect_config(j, sasq::ErrorCode::kCorruptData, {"dir/config.json", "'hidden_size'", "missing"});
  j = base;
  j["num_hidden_layers"] = "5";
  expect_config(j, sasq::ErrorCode::kCorruptData, {"'num_hidden_layers'", "not an integer"});
  j = base;
  j["vocab_size"] = -3;
  expect_config(j, sasq::ErrorCode::kCorruptData, {"'vocab_size'", "out of range"});
  j = base;
  j["model_type"] = "gpt2";
  expect_config(j, sasq::ErrorCode::kUnsupported, {"dir/config.json", "gpt2"});
  j = base;
  j["hidden_act"] = "gelu";
  expect_config(j, sasq::ErrorCode::kUnsupported, {"gelu"});
  j = base;
  j["rope_scaling"] = {{"rope_type", "llama3"}, {"factor", 8.0}};
  expect_config(j, sasq::ErrorCode::kUnsupported, {"rope_scaling", "llama3"});
  j = base;
  j["attention_bias"] = true;
  expect_config(j, sasq::ErrorCode::kUnsupported, {"bias"});
  j = base;
  j["head_dim"] = 8;
  expect_config(j, sasq::ErrorCode::kUnsupported, {"head_dim = 8"});
  j = base;
  j["num_key_value_heads"] = 3;
  expect_config(j, sasq::ErrorCode::kCorruptData, {"dir/config.json", "n_kv_heads = 3"});
  j = base;
  j["rms_norm_eps"] = 0;
  expect_config(j, sasq::ErrorCode::kCorruptData, {"rms_norm_eps"});
  j = base;
  j["model_type"] = "mistral";
  j["sliding_window"] = 4;
  expect_config(j, sasq::ErrorCode::kUnsupported, {"sliding_window = 4"});
  j["sliding_window"] = nullptr;
  CHECK_NOTHROW(parse_hf_config(j.dump(), "x"));
}

TEST_CASE("missing, misshapen and foreign tensors name the file and tensor") {
  const Weights w = random_weights(tiny_config(false), 7);
  auto folder_with = [&](TempDir& d, const std::function<void(std::vector<RawTensor>&)>& edit) {
    write_hf_folder(d.str(), w, false);
    std::vector<RawTensor> t = hf_tensors(w, false);
    edit(t);
    write_file(d.str() + "/model.safetensors", safetensors_bytes(t));
  };
  {
    TempDir d("missing");
    folder_with(d, [](std::vector<RawTensor>& t) { t.erase(t.begin() + 3); });  // layer 0 k_proj
    expect_error([&] { load_hf_model(d.str()); }, sasq::ErrorCode::kCorruptData,
                 {d.str(), "'model.layers.0.self_attn.k_proj.weight'", "missing"});
  }
  {
    TempDir d("lmhead");
    folder_with(d, [](std::vector<RawTensor>& t) { t.pop_back(); });
    expect_error([&] { load_hf_model(d.str()); }, sasq::ErrorCode::kCorruptData, {"'lm_head.weight'", "tie_word_embeddings"});
  }
  {
    TempDir d("shape");
    folder_with(d, [](std::vector<RawTensor>& t) { std::swap(t[5].shape[0], t[5].shape[1]); });  // o_proj 16x16: no-op
    CHECK_NOTHROW(load_hf_model(d.str()));
    folder_with(d, [](std::vector<RawTensor>& t) { std::swap(t[7].shape[0], t[7].shape[1]); });  // gate_proj 24x16
    expect_error([&] { load_hf_model(d.str()); }, sasq::ErrorCode::kCorruptData,
                 {"model.safetensors", "'model.layers.0.mlp.gate_proj.weight'", "shape [16, 24]", "[24, 16]"});
  }
  {
    TempDir d("foreign");
    folder_with(d, [](std::vector<RawTensor>& t) {
      const float b[16] = {};
      t.push_back(f32_tensor("model.layers.0.self_attn.q_proj.bias", {16}, b, 16));
      t.push_back(f32_tensor("model.layers.0.self_attn.rotary_emb.inv_freq", {2}, b, 2));
    });
    expect_error([&] { load_hf_model(d.str()); }, sasq::ErrorCode::kUnsupported,
                 {"model.safetensors", "'model.layers.0.self_attn.q_proj.bias'", "not part of a LLaMA model"});
  }
  {
    TempDir d("noconfig");
    expect_error([&] { load_hf_model(d.str()); }, sasq::ErrorCode::kIoError, {"config.json", "cannot open"});
  }
}

namespace {

/// Reads "<key>: <n> kB" from /proc/self/status, in bytes (-1 when unavailable).
long proc_status_bytes(const char* key) {
  std::ifstream in("/proc/self/status");
  std::string line;
  while (std::getline(in, line))
    if (line.rfind(key, 0) == 0) return std::stol(line.substr(std::string(key).size() + 1)) * 1024;
  return -1;
}

#if defined(__SANITIZE_ADDRESS__)
constexpr bool kSanitized = true;
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
constexpr bool kSanitized = true;
#else
constexpr bool kSanitized = false;
#endif
#else
constexpr bool kSanitized = false;
#endif

}  // namespace

TEST_CASE("loading holds the float32 weights once: peak RSS growth <= model + largest tensor") {
  if (kSanitized) {
    MESSAGE("skipped: sanitizer shadow memory and quarantine distort resident-set measurements");
    return;
  }
  Config c;
  c.dim = 256, c.hidden_dim = 704, c.n_layers = 4, c.n_heads = 8, c.n_kv_heads = 4, c.vocab_size = 8192, c.seq_len = 64;
  c.shared_classifier = false;
  TempDir d("peak");
  long model_bytes = 0, largest = 0;
  {
    const Weights w = random_weights(c, 11);
    write_hf_folder(d.str(), w, false);  // F32: the file is as large as the model
    for (const auto& t : hf_tensors(w, false)) {
      model_bytes += static_cast<long>(t.bytes.size());
      largest = std::max(largest, static_cast<long>(t.bytes.size()));
    }
  }
  malloc_trim(0);
  {
    std::ofstream reset("/proc/self/clear_refs");
    reset << "5";  // resets VmHWM (peak RSS) to the current RSS
  }
  const long before = proc_status_bytes("VmRSS:"), peak0 = proc_status_bytes("VmHWM:");
  if (before < 0 || peak0 < 0 || peak0 > before + (1 << 20)) {
    MESSAGE("skipped: /proc/self/clear_refs cannot reset the peak RSS here");
    return;
  }
  const Weights r = load_hf_model(d.str());
  const long growth = proc_status_bytes("VmHWM:") - before;
  MESSAGE("model ", model_bytes >> 20, " MiB (F32 file of the same size), largest tensor ", largest >> 20,
          " MiB, peak RSS growth while loading ", growth >> 20, " MiB");
  CHECK(r.token_embedding.rows() == c.vocab_size);
  CHECK(growth >= model_bytes * 9 / 10);                      // the weights themselves are resident
  CHECK(growth <= model_bytes + largest + (4 << 20));          // not model + file
}
