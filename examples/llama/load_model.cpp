// Model and tokenizer loading (llama/load_model.hpp), compiled once into sasq_llama_model: the
// only translation unit of the example programs that parses JSON.
#include "llama/load_model.hpp"

#include <cstdint>
#include <cstdio>
#include <fstream>
#include <string>

#include "llama/checkpoint.hpp"
#include "llama/hf_model.hpp"
#include "llama/model.hpp"
#include "llama/tokenizer_json.hpp"
#include "sasq/core/status.hpp"

namespace sasq::llama {

Weights load_model(const std::string& path) {
  return is_hf_folder(path) ? load_hf_model(path) : load_checkpoint(path);
}

bool has_own_tokenizer(const std::string& model_path) {
  return is_hf_folder(model_path) && std::ifstream(model_path + "/tokenizer.json").good();
}

Tokenizer load_tokenizer_for(const std::string& model_path, const Weights& w, const std::string& explicit_path,
                             const std::string& fallback) {
  std::string path = explicit_path;
  if (path.empty() && has_own_tokenizer(model_path)) path = model_path + "/tokenizer.json";
  if (path.empty()) path = fallback;
  const bool json = path.size() >= 5 && path.compare(path.size() - 5, 5, ".json") == 0;
  if (!json) return Tokenizer::load(path, w.config.vocab_size);
  Tokenizer tok = load_tokenizer_json(path);
  if (tok.vocab_size() > w.config.vocab_size)
    fail(ErrorCode::kCorruptData, path, ": ", tok.vocab_size(), " token ids, the model has ", w.config.vocab_size);
  return tok;
}

std::string weights_fingerprint(const Weights& w) {
  std::uint64_t h = 0xcbf29ce484222325ull;
  auto bytes = [&h](const void* p, std::size_t n) {
    const auto* b = static_cast<const unsigned char*>(p);
    for (std::size_t i = 0; i < n; ++i) {
      h ^= b[i];
      h *= 0x100000001b3ull;
    }
  };
  const Config& c = w.config;
  for (const std::int32_t v : {c.dim, c.hidden_dim, c.n_layers, c.n_heads, c.n_kv_heads, c.vocab_size}) bytes(&v, 4);
  bytes(&c.rms_norm_eps, 4);
  bytes(&c.rope_theta, 4);
  auto tensor = [&](const float* p, Eigen::Index n) { bytes(p, sizeof(float) * static_cast<std::size_t>(n)); };
  tensor(w.token_embedding.data(), w.token_embedding.size());
  for (const LayerWeights& L : w.layers) {
    tensor(L.rms_att.data(), L.rms_att.size());
    for (int p = 0; p < kNumProj; ++p) {
      if (static_cast<Proj>(p) == Proj::kGate) tensor(L.rms_ffn.data(), L.rms_ffn.size());
      tensor(proj_weight(L, static_cast<Proj>(p)).data(), proj_weight(L, static_cast<Proj>(p)).size());
    }
  }
  tensor(w.rms_final.data(), w.rms_final.size());
  tensor(w.classifier().data(), w.classifier().size());
  char buf[40];
  std::snprintf(buf, sizeof buf, "fnv1a64-f32:%016llx", static_cast<unsigned long long>(h));
  return buf;
}

}  // namespace sasq::llama
