// LLaMA hyper-parameters of a llama2.c checkpoint and their validation.
//   head_size = dim / n_heads,  kv_dim = n_kv_heads * head_size,  kv_mul = n_heads / n_kv_heads
#pragma once

#include <cstdint>
#include <string>

#include "sasq/core/status.hpp"

namespace sasq::llama {

/// Upper bounds that reject absurd headers before any size arithmetic (all products of these
/// bounds fit in 64 bits). Real LLaMA-2-70B: dim 8192, hidden 28672, 80 layers, vocab 32000.
inline constexpr std::int64_t kMaxDim = 1 << 16;
inline constexpr std::int64_t kMaxHiddenDim = 1 << 18;
inline constexpr std::int64_t kMaxLayers = 1 << 10;
inline constexpr std::int64_t kMaxVocab = 1 << 20;
inline constexpr std::int64_t kMaxSeqLen = 1 << 20;

/// Token ids fixed by the llama2.c tokenizers.
inline constexpr int kBosToken = 1;
inline constexpr int kEosToken = 2;

/// RMSNorm epsilon and RoPE base of llama2.c run.c (the defaults; Hugging Face config.json sets both).
inline constexpr float kRmsNormEps = 1e-5f;
inline constexpr float kRopeTheta = 10000.0f;

/// Model shape, as stored in the 7-int32 llama2.c header (vocab_size always positive here; the
/// legacy sign convention is decoded into shared_classifier by the loader).
struct Config {
  int dim = 0;         ///< model width (residual stream channels)
  int hidden_dim = 0;  ///< FFN width (rows of w1/w3, columns of w2)
  int n_layers = 0;
  int n_heads = 0;     ///< query heads
  int n_kv_heads = 0;  ///< key/value heads (grouped-query attention when < n_heads)
  int vocab_size = 0;
  int seq_len = 0;     ///< maximum context length (positions 0 .. seq_len-1)
  bool shared_classifier = true;  ///< classifier weight == token embedding (no separate wcls)
  float rms_norm_eps = kRmsNormEps;  ///< RMSNorm epsilon
  float rope_theta = kRopeTheta;     ///< RoPE base: pair i of a head turns by pos * theta^(-2i/head_size)

  int head_size() const { return dim / n_heads; }
  int kv_dim() const { return n_kv_heads * head_size(); }
  /// Query heads per KV head: query head h reads KV head h / kv_mul().
  int kv_mul() const { return n_heads / n_kv_heads; }
};

/// Throws sasq::Error(kCorruptData, "<source>: <field> ...") unless every field is positive,
/// within the kMax* bounds, n_heads divides dim into an even head_size (RoPE rotates pairs) and
/// n_kv_heads divides n_heads.
inline void validate(const Config& c, const std::string& source) {
  auto check = [&](const char* field, std::int64_t v, std::int64_t max) {
    if (v <= 0 || v > max)
      fail(ErrorCode::kCorruptData, source, ": header field ", field, " = ", v,
           " is outside [1, ", max, "]");
  };
  check("dim", c.dim, kMaxDim);
  check("hidden_dim", c.hidden_dim, kMaxHiddenDim);
  check("n_layers", c.n_layers, kMaxLayers);
  check("n_heads", c.n_heads, kMaxDim);
  check("n_kv_heads", c.n_kv_heads, kMaxDim);
  check("vocab_size", c.vocab_size, kMaxVocab);
  check("seq_len", c.seq_len, kMaxSeqLen);
  if (c.dim % c.n_heads != 0)
    fail(ErrorCode::kCorruptData, source, ": header field n_heads = ", c.n_heads,
         " does not divide dim = ", c.dim);
  if (c.head_size() % 2 != 0)
    fail(ErrorCode::kCorruptData, source, ": head_size = dim / n_heads = ", c.head_size(),
         " is odd (RoPE rotates pairs)");
  if (!(c.rms_norm_eps > 0.0f && c.rms_norm_eps < 1.0f))
    fail(ErrorCode::kCorruptData, source, ": rms_norm_eps = ", c.rms_norm_eps, " is outside (0, 1)");
  if (!(c.rope_theta > 1.0f && c.rope_theta < 1e30f))
    fail(ErrorCode::kCorruptData, source, ": rope_theta = ", c.rope_theta, " is outside (1, 1e30)");
  if (c.n_heads % c.n_kv_heads != 0)
    fail(ErrorCode::kCorruptData, source, ": header field n_kv_heads = ", c.n_kv_heads,
         " does not divide n_heads = ", c.n_heads);
}

}  // namespace sasq::llama
