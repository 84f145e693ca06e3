// Loader for Hugging Face LLaMA folders: config.json + safetensors (one file or shards with an index),
// converted to the float32 Weights of the llama2.c loader, computing the same function.
//   names:  model.embed_tokens, model.layers.{i}.{input_layernorm, self_attn.{q,k,v,o}_proj,
//           post_attention_layernorm, mlp.{gate,up,down}_proj}, model.norm, lm_head (all ".weight")
//   RoPE:   Hugging Face's conversion permutes the rows of q_proj/k_proj so that rotate_half
//           (pairs j, j + hs/2) equals Meta's adjacent pairs (2j, 2j+1); the loader undoes it:
//           Weights row h*hs + 2i + half  =  HF row h*hs + half*hs/2 + i   (half in {0, 1})
//           so the examples' adjacent-pair RoPE computes the Hugging Face model exactly.
// Memory: every tensor is converted straight into its final float32 matrix (q/k rows are permuted in
// place, one head at a time) and its file pages are dropped after conversion, so the peak resident
// memory is the float32 model plus one tensor's file bytes: 4 bytes per parameter (a 7B model,
// 6.74e9 parameters, needs 27 GB, whatever the file dtype).
#pragma once

#include <sys/stat.h>

#include <cstdint>
#include <fstream>
#include <set>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "llama/config.hpp"
#include "llama/safetensors.hpp"
#include "llama/weights.hpp"
#include "sasq/core/status.hpp"

namespace sasq::llama {

/// True when `path` is a directory holding config.json (a Hugging Face model folder).
inline bool is_hf_folder(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode) && std::ifstream(path + "/config.json").good();
}

/// Parses a LLaMA config.json held in `text`; `source` names it in errors. Reads hidden_size,
/// intermediate_size, num_hidden_layers, num_attention_heads, num_key_value_heads (default: the
/// attention heads), vocab_size, max_position_embeddings (-> seq_len), rms_norm_eps (default 1e-6,
/// transformers' LlamaConfig), rope_theta (default 10000) and tie_word_embeddings (default false).
/// Throws sasq::Error naming the file and key on missing or mistyped keys, a model_type other than
/// llama/mistral, hidden_act other than silu, rope_scaling, attention/MLP biases, a head_dim other
/// than hidden_size / heads, a Mistral sliding window shorter than the context, and every check of
/// validate().
inline Config parse_hf_config(const std::string& text, const std::string& source) {
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(text);
  } catch (const nlohmann::json::exception& e) {
    fail(ErrorCode::kCorruptData, source, ": not valid JSON (", e.what(), ")");
  }
  if (!j.is_object()) fail(ErrorCode::kCorruptData, source, ": not a JSON object");
  auto integer = [&](const char* key, const nlohmann::json* def = nullptr) -> int {
    const nlohmann::json& v = j.contains(key) && !j[key].is_null() ? j[key] : def ? *def : j[key];
    if (!v.is_number_integer()) fail(ErrorCode::kCorruptData, source, ": '", key, "' is missing or not an integer");
    const auto x = v.get<std::int64_t>();
    if (x <= 0 || x > (std::int64_t{1} << 30)) fail(ErrorCode::kCorruptData, source, ": '", key, "' = ", x, " is out of range");
    return static_cast<int>(x);
  };
  auto number = [&](const char* key, double def) -> double {
    if (!j.contains(key) || j[key].is_null()) return def;
    if (!j[key].is_number()) fail(ErrorCode::kCorruptData, source, ": '", key, "' is not a number");
    return j[key].get<double>();
  };
  auto string = [&](const char* key, const char* def) -> std::string {
    if (!j.contains(key) || j[key].is_null()) return def;
    if (!j[key].is_string()) fail(ErrorCode::kCorruptData, source, ": '", key, "' is not a string");
    return j[key].get<std::string>();
  };
  auto flag = [&](const char* key, bool def) -> bool {
    if (!j.contains(key) || j[key].is_null()) return def;
    if (!j[key].is_boolean()) fail(ErrorCode::kCorruptData, source, ": '", key, "' is not true or false");
    return j[key].get<bool>();
  };
  const std::string type = string("model_type", "");
  if (type != "llama" && type != "mistral")
    fail(ErrorCode::kUnsupported, source, ": model_type '", type, "' is not llama or mistral");
  const std::string act = string("hidden_act", "silu");
  if (act != "silu") fail(ErrorCode::kUnsupported, source, ": hidden_act '", act, "' (only silu: SwiGLU)");
  if (j.contains("rope_scaling") && !j["rope_scaling"].is_null())
    fail(ErrorCode::kUnsupported, source, ": rope_scaling ", j["rope_scaling"].dump(), " is not supported");
  if (flag("attention_bias", false) || flag("mlp_bias", false))
    fail(ErrorCode::kUnsupported, source, ": attention_bias / mlp_bias are not supported (LLaMA has no biases)");

  Config c;
  c.dim = integer("hidden_size");
  c.hidden_dim = integer("intermediate_size");
  c.n_layers = integer("num_hidden_layers");
  c.n_heads = integer("num_attention_heads");
  c.n_kv_heads = integer("num_key_value_heads", &j["num_attention_heads"]);
  c.vocab_size = integer("vocab_size");
  c.seq_len = integer("max_position_embeddings");
  c.rms_norm_eps = static_cast<float>(number("rms_norm_eps", 1e-6));
  c.rope_theta = static_cast<float>(number("rope_theta", 10000.0));
  c.shared_classifier = flag("tie_word_embeddings", false);
  if (j.contains("head_dim") && !j["head_dim"].is_null() && c.dim % c.n_heads == 0 && integer("head_dim") != c.dim / c.n_heads)
    fail(ErrorCode::kUnsupported, source, ": head_dim = ", integer("head_dim"), " is not hidden_size / num_attention_heads = ",
         c.dim / c.n_heads);
  if (type == "mistral" && j.contains("sliding_window") && !j["sliding_window"].is_null() &&
      integer("sliding_window") < c.seq_len)
    fail(ErrorCode::kUnsupported, source, ": sliding_window = ", integer("sliding_window"),
         " is shorter than max_position_embeddings = ", c.seq_len, " (sliding-window attention is not implemented)");
  validate(c, source);
  return c;
}

/// Reads `path` (a config.json) with parse_hf_config.
inline Config read_hf_config(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) fail(ErrorCode::kIoError, path, ": cannot open file");
  const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  return parse_hf_config(text, path);
}

namespace detail {

/// Converts tensor `name` of shape [rows][cols] ([rows] when cols == 0) into `out`, naming the
/// file and tensor when the shape differs.
inline void read_hf_tensor(const SafetensorsFolder& f, const std::string& name, int rows, int cols, float* out) {
  const SafetensorInfo& t = f.info(name);
  const std::vector<std::int64_t> want = cols == 0 ? std::vector<std::int64_t>{rows} : std::vector<std::int64_t>{rows, cols};
  if (t.shape != want) {
    std::string got, exp;
    for (auto d : t.shape) got += (got.empty() ? "" : ", ") + std::to_string(d);
    for (auto d : want) exp += (exp.empty() ? "" : ", ") + std::to_string(d);
    fail(ErrorCode::kCorruptData, f.file_of(name), ": tensor '", name, "' has shape [", got, "], config.json implies [", exp, "]");
  }
  f.to_float(name, out);
}

/// Undoes Hugging Face's q/k row permutation in place, one head at a time (see the file comment).
inline void unpermute_rotary_rows(Matrix& w, int heads) {
  const Eigen::Index hs = w.rows() / heads;
  Matrix head(hs, w.cols());
  for (int h = 0; h < heads; ++h) {
    head = w.middleRows(h * hs, hs);
    for (Eigen::Index i = 0; i < hs / 2; ++i)
      for (Eigen::Index half = 0; half < 2; ++half) w.row(h * hs + 2 * i + half) = head.row(half * hs / 2 + i);
  }
}

}  // namespace detail

/// Loads a Hugging Face LLaMA folder (config.json and model.safetensors or
/// model.safetensors.index.json + shards) into float32 Weights. Tensors may be F32, F16 or BF16.
/// Throws sasq::Error naming the file and tensor for every problem of the reader, a missing tensor,
/// a shape that contradicts config.json, and tensors the model does not use (other than
/// rotary_emb.inv_freq buffers, and lm_head.weight of a tied model, which transformers ignores too).
inline Weights load_hf_model(const std::string& dir) {
  Weights w;
  w.format_version = 3;
  Config& c = w.config;
  c = read_hf_config(dir + "/config.json");
  const SafetensorsFolder f(dir);
  std::set<std::string> used;
  auto read = [&](const std::string& name, int rows, int cols, float* out) {
    if (!f.contains(name)) fail(ErrorCode::kCorruptData, dir, ": tensor '", name, "' is missing");
    detail::read_hf_tensor(f, name, rows, cols, out);
    used.insert(name);
  };
  auto matrix = [&](Matrix& m, const std::string& name, int rows, int cols) {
    m.resize(rows, cols);
    read(name, rows, cols, m.data());
  };
  auto norm = [&](Vector& v, const std::string& name) {
    v.resize(c.dim);
    read(name, c.dim, 0, v.data());
  };
  matrix(w.token_embedding, "model.embed_tokens.weight", c.vocab_size, c.dim);
  w.layers.resize(static_cast<std::size_t>(c.n_layers));
  const int q = c.n_heads * c.head_size();
  for (int l = 0; l < c.n_layers; ++l) {
    LayerWeights& L = w.layers[static_cast<std::size_t>(l)];
    const std::string p = "model.layers." + std::to_string(l) + ".";
    norm(L.rms_att, p + "input_layernorm.weight");
    matrix(L.wq, p + "self_attn.q_proj.weight", q, c.dim);
    detail::unpermute_rotary_rows(L.wq, c.n_heads);
    matrix(L.wk, p + "self_attn.k_proj.weight", c.kv_dim(), c.dim);
    detail::unpermute_rotary_rows(L.wk, c.n_kv_heads);
    matrix(L.wv, p + "self_attn.v_proj.weight", c.kv_dim(), c.dim);
    matrix(L.wo, p + "self_attn.o_proj.weight", c.dim, q);
    norm(L.rms_ffn, p + "post_attention_layernorm.weight");
    matrix(L.w1, p + "mlp.gate_proj.weight", c.hidden_dim, c.dim);
    matrix(L.w2, p + "mlp.down_proj.weight", c.dim, c.hidden_dim);
    matrix(L.w3, p + "mlp.up_proj.weight", c.hidden_dim, c.dim);
  }
  norm(w.rms_final, "model.norm.weight");
  if (!c.shared_classifier) {
    if (!f.contains("lm_head.weight"))
      fail(ErrorCode::kCorruptData, dir, ": tensor 'lm_head.weight' is missing (config.json: tie_word_embeddings false)");
    matrix(w.wcls, "lm_head.weight", c.vocab_size, c.dim);
  }
  for (const std::string& name : f.names()) {
    const bool ignored = (c.shared_classifier && name == "lm_head.weight") ||
                         (name.size() >= 8 && name.compare(name.size() - 8, 8, "inv_freq") == 0);
    if (!used.count(name) && !ignored)
      fail(ErrorCode::kUnsupported, f.file_of(name), ": tensor '", name, "' is not part of a LLaMA model");
  }
  return w;
}

}  // namespace sasq::llama
