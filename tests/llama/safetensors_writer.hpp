// Test helper: writes safetensors files and Hugging Face LLaMA folders (config.json, shards, index)
// from float data, so the reader and the folder loader can be checked against known tensors.
#pragma once

#include <cstdint>
#include <cstring>
#include <fstream>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "llama/weights.hpp"

namespace sasq::llama::test {

/// float -> BF16 with round to nearest even (finite inputs), as torch's .to(torch.bfloat16).
inline std::uint16_t float_to_bf16(float f) {
  std::uint32_t b;
  std::memcpy(&b, &f, 4);
  b += 0x7FFFu + ((b >> 16) & 1u);
  return static_cast<std::uint16_t>(b >> 16);
}

/// One tensor to write: name, dtype ("F32", "BF16" or any name with raw bytes), shape, bytes.
struct RawTensor {
  std::string name;
  std::string dtype;
  std::vector<std::int64_t> shape;
  std::vector<unsigned char> bytes;
};

inline RawTensor f32_tensor(std::string name, std::vector<std::int64_t> shape, const float* p, std::size_t n) {
  RawTensor t{std::move(name), "F32", std::move(shape), std::vector<unsigned char>(n * 4)};
  if (n) std::memcpy(t.bytes.data(), p, n * 4);
  return t;
}

inline RawTensor bf16_tensor(std::string name, std::vector<std::int64_t> shape, const float* p, std::size_t n) {
  RawTensor t{std::move(name), "BF16", std::move(shape), std::vector<unsigned char>(n * 2)};
  for (std::size_t i = 0; i < n; ++i) {
    const std::uint16_t h = float_to_bf16(p[i]);
    std::memcpy(t.bytes.data() + 2 * i, &h, 2);
  }
  return t;
}

/// Serializes tensors back to back in the given order; `extra` is merged into the header JSON.
inline std::vector<unsigned char> safetensors_bytes(const std::vector<RawTensor>& tensors,
                                                    const nlohmann::json& extra = nlohmann::json::object()) {
  nlohmann::json h = nlohmann::json::object();
  h["__metadata__"] = {{"format", "pt"}};
  std::uint64_t off = 0;
  for (const auto& t : tensors) {
    h[t.name] = {{"dtype", t.dtype}, {"shape", t.shape}, {"data_offsets", {off, off + t.bytes.size()}}};
    off += t.bytes.size();
  }
  for (const auto& [k, v] : extra.items()) h[k] = v;
  std::string text = h.dump();
  while (text.size() % 8) text.push_back(' ');
  const std::uint64_t n = text.size();
  std::string s(reinterpret_cast<const char*>(&n), 8);
  s += text;
  for (const auto& t : tensors) s.append(t.bytes.begin(), t.bytes.end());
  return std::vector<unsigned char>(s.begin(), s.end());
}

inline void write_file(const std::string& path, const std::string& s) {
  std::ofstream(path, std::ios::binary).write(s.data(), static_cast<std::streamsize>(s.size()));
}

inline void write_file(const std::string& path, const std::vector<unsigned char>& b) {
  std::ofstream(path, std::ios::binary).write(reinterpret_cast<const char*>(b.data()), static_cast<std::streamsize>(b.size()));
}

/// Rows of a q/k projection permuted as Hugging Face's convert_llama_weights_to_hf.py permute():
/// HF row h*hs + half*hs/2 + i  =  Meta row h*hs + 2i + half.
inline Matrix hf_permute(const Matrix& w, int heads) {
  const int hs = static_cast<int>(w.rows()) / heads;
  Matrix out(w.rows(), w.cols());
  for (int h = 0; h < heads; ++h)
    for (int half = 0; half < 2; ++half)
      for (int i = 0; i < hs / 2; ++i) out.row(h * hs + half * hs / 2 + i) = w.row(h * hs + 2 * i + half);
  return out;
}

/// The tensors of `w` under Hugging Face names, q/k permuted, in F32 or BF16.
inline std::vector<RawTensor> hf_tensors(const Weights& w, bool bf16) {
  const Config& c = w.config;
  std::vector<RawTensor> out;
  auto add = [&](const std::string& name, const float* p, std::vector<std::int64_t> shape) {
    std::size_t n = 1;
    for (auto d : shape) n *= static_cast<std::size_t>(d);
    out.push_back(bf16 ? bf16_tensor(name, shape, p, n) : f32_tensor(name, shape, p, n));
  };
  auto mat = [&](const std::string& name, const Matrix& m) { add(name, m.data(), {m.rows(), m.cols()}); };
  mat("model.embed_tokens.weight", w.token_embedding);
  for (int l = 0; l < c.n_layers; ++l) {
    const LayerWeights& L = w.layers[static_cast<std::size_t>(l)];
    const std::string p = "model.layers." + std::to_string(l) + ".";
    add(p + "input_layernorm.weight", L.rms_att.data(), {c.dim});
    mat(p + "self_attn.q_proj.weight", hf_permute(L.wq, c.n_heads));
    mat(p + "self_attn.k_proj.weight", hf_permute(L.wk, c.n_kv_heads));
    mat(p + "self_attn.v_proj.weight", L.wv);
    mat(p + "self_attn.o_proj.weight", L.wo);
    add(p + "post_attention_layernorm.weight", L.rms_ffn.data(), {c.dim});
    mat(p + "mlp.gate_proj.weight", L.w1);
    mat(p + "mlp.up_proj.weight", L.w3);
    mat(p + "mlp.down_proj.weight", L.w2);
  }
  add("model.norm.weight", w.rms_final.data(), {c.dim});
  if (!c.shared_classifier) mat("lm_head.weight", w.wcls);
  return out;
}

/// config.json of `c` as transformers writes it for LlamaForCausalLM.
inline nlohmann::json hf_config(const Config& c) {
  return {{"architectures", {"LlamaForCausalLM"}}, {"model_type", "llama"},     {"hidden_size", c.dim},
          {"intermediate_size", c.hidden_dim},      {"num_hidden_layers", c.n_layers},
          {"num_attention_heads", c.n_heads},       {"num_key_value_heads", c.n_kv_heads},
          {"vocab_size", c.vocab_size},             {"max_position_embeddings", c.seq_len},
          {"rms_norm_eps", 1e-5},                   {"rope_theta", 10000.0},
          {"tie_word_embeddings", c.shared_classifier}, {"hidden_act", "silu"}};
}

/// Writes `w` as a Hugging Face folder in `dir` (existing): config.json and either one
/// model.safetensors or `shards` files with model.safetensors.index.json.
inline void write_hf_folder(const std::string& dir, const Weights& w, bool bf16, int shards = 1) {
  write_file(dir + "/config.json", hf_config(w.config).dump(2));
  const std::vector<RawTensor> all = hf_tensors(w, bf16);
  if (shards == 1) {
    write_file(dir + "/model.safetensors", safetensors_bytes(all));
    return;
  }
  nlohmann::json index = {{"metadata", {{"total_size", 0}}}, {"weight_map", nlohmann::json::object()}};
  for (int s = 0; s < shards; ++s) {
    const std::string file = "model-0000" + std::to_string(s + 1) + "-of-0000" + std::to_string(shards) + ".safetensors";
    std::vector<RawTensor> part;
    for (std::size_t i = static_cast<std::size_t>(s); i < all.size(); i += static_cast<std::size_t>(shards)) {
      part.push_back(all[i]);
      index["weight_map"][all[i].name] = file;
    }
    write_file(dir + "/" + file, safetensors_bytes(part));
  }
  write_file(dir + "/model.safetensors.index.json", index.dump(2));
}

}  // namespace sasq::llama::test
