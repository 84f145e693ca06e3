// LLaMA forward pass (llama2.c run.c semantics) over a chunk of tokens, with quantizer-site hooks.
//   per layer: x += Wo attn(rope(Wq n1), rope(Wk n1), Wv n1);  x += W2 swiglu(W1 n2, W3 n2)
//   with n1 = rmsnorm(x, g_att), n2 = rmsnorm(x, g_ffn); logits = rmsnorm(x, g_final) Wcls^T
#pragma once

#include <cstddef>
#include <vector>

#include "llama/config.hpp"
#include "llama/ops.hpp"
#include "llama/weights.hpp"
#include "sasq/core/span.hpp"
#include "sasq/core/status.hpp"

namespace sasq::llama {

/// Activation quantizer sites of one layer: the inputs of its linear layers (q/k/v share the
/// attention input, gate/up share the FFN input) and, optionally, the keys/values written to the
/// KV cache (after RoPE). The classifier input is not a site: the classifier stays FP32.
enum class Site : int { kAttnIn = 0, kOprojIn, kFfnIn, kDownIn, kKCache, kVCache };
inline constexpr int kNumLinearSites = 4;  ///< kAttnIn .. kDownIn
inline constexpr int kNumSites = 6;        ///< including the KV-cache sites

inline const char* site_name(Site s) {
  switch (s) {
    case Site::kAttnIn: return "attn_in";
    case Site::kOprojIn: return "oproj_in";
    case Site::kFfnIn: return "ffn_in";
    case Site::kDownIn: return "down_in";
    case Site::kKCache: return "k_cache";
    case Site::kVCache: return "v_cache";
  }
  return "unknown";
}

/// The seven linear layers of a decoder layer, with the site feeding each.
enum class Proj : int { kQ = 0, kK, kV, kO, kGate, kDown, kUp };
inline constexpr int kNumProj = 7;

inline Site site_of(Proj p) {
  switch (p) {
    case Proj::kQ: case Proj::kK: case Proj::kV: return Site::kAttnIn;
    case Proj::kO: return Site::kOprojIn;
    case Proj::kGate: case Proj::kUp: return Site::kFfnIn;
    case Proj::kDown: return Site::kDownIn;
  }
  return Site::kAttnIn;
}

inline const char* proj_name(Proj p) {
  static const char* const names[] = {"wq", "wk", "wv", "wo", "w1", "w2", "w3"};
  return names[static_cast<int>(p)];
}

/// The weight of projection p in layer L.
inline const Matrix& proj_weight(const LayerWeights& L, Proj p) {
  switch (p) {
    case Proj::kQ: return L.wq;
    case Proj::kK: return L.wk;
    case Proj::kV: return L.wv;
    case Proj::kO: return L.wo;
    case Proj::kGate: return L.w1;
    case Proj::kDown: return L.w2;
    case Proj::kUp: return L.w3;
  }
  return L.wq;
}

inline Matrix& proj_weight(LayerWeights& L, Proj p) {
  return const_cast<Matrix&>(proj_weight(static_cast<const LayerWeights&>(L), p));
}

/// Keys and values of past positions, per layer [capacity][kv_dim] (after RoPE and after the
/// KV-cache sites).
struct KVCache {
  std::vector<Matrix> k;
  std::vector<Matrix> v;
};

inline KVCache make_kv_cache(const Config& c, int capacity) {
  SASQ_REQUIRE(capacity > 0 && capacity <= c.seq_len, "capacity ", capacity, " outside [1, seq_len = ",
               c.seq_len, "]");
  KVCache cache;
  cache.k.assign(static_cast<std::size_t>(c.n_layers), Matrix::Zero(capacity, c.kv_dim()));
  cache.v.assign(static_cast<std::size_t>(c.n_layers), Matrix::Zero(capacity, c.kv_dim()));
  return cache;
}

/// Execution policy of the plain float32 model: sites are untouched, linears are Eigen GEMMs.
/// Other policies (fake-quant, integer, statistics) provide the same two members:
///   void on_site(int layer, Site s, Matrix& x)   - may observe or modify the activation x
///   void linear(int layer, Proj p, const Matrix& x, const Matrix& w, Matrix& y)  - y = x W^T
struct Fp32Exec {
  void on_site(int /*layer*/, Site /*s*/, Matrix& /*x*/) {}
  void linear(int /*layer*/, Proj /*p*/, const Matrix& x, const Matrix& w, Matrix& y) { llama::linear(x, w, y); }
};

/// Decoder layer l of the model on the residual stream x [T][dim] of tokens at positions
/// start_pos .. start_pos+T-1, in place (x <- layer_l(x)); keys/values as in forward(). forward()
/// runs it for every layer; GPTQ (llama/gptq.cpp) runs one layer at a time on cached inputs.
template <class Exec>
void forward_layer(const Weights& w, int l, const RopeTable& rope, Matrix& x, int start_pos, KVCache* cache,
                   Exec& exec) {
  const Config& c = w.config;
  SASQ_REQUIRE(l >= 0 && l < c.n_layers && x.cols() == c.dim && x.rows() > 0 && start_pos >= 0 &&
                   (cache != nullptr || start_pos == 0) && rope.head_size == c.head_size() &&
                   start_pos + x.rows() <= c.seq_len && rope.cos.rows() >= start_pos + x.rows() &&
                   (!cache || (cache->k.size() > static_cast<std::size_t>(l) &&
                               cache->k[static_cast<std::size_t>(l)].rows() >= start_pos + x.rows())),
               "forward_layer: layer ", l, " of ", c.n_layers, ", input [", x.rows(), "][", x.cols(),
               "] at position ", start_pos, " do not fit the model");
  const Eigen::Index T = x.rows();
  const LayerWeights& L = w.layers[static_cast<std::size_t>(l)];
  Matrix xb = rmsnorm(x, L.rms_att, c.rms_norm_eps);
  Matrix q, k, v, att, o, h1, h3, y;
  exec.on_site(l, Site::kAttnIn, xb);
  exec.linear(l, Proj::kQ, xb, L.wq, q);
  exec.linear(l, Proj::kK, xb, L.wk, k);
  exec.linear(l, Proj::kV, xb, L.wv, v);
  apply_rope(q, start_pos, rope);
  apply_rope(k, start_pos, rope);
  exec.on_site(l, Site::kKCache, k);
  exec.on_site(l, Site::kVCache, v);
  if (cache) {
    cache->k[static_cast<std::size_t>(l)].middleRows(start_pos, T) = k;
    cache->v[static_cast<std::size_t>(l)].middleRows(start_pos, T) = v;
    causal_attention(q, cache->k[static_cast<std::size_t>(l)], cache->v[static_cast<std::size_t>(l)], start_pos,
                     c, att);
  } else {
    causal_attention(q, k, v, 0, c, att);
  }
  exec.on_site(l, Site::kOprojIn, att);
  exec.linear(l, Proj::kO, att, L.wo, o);
  x += o;
  xb = rmsnorm(x, L.rms_ffn, c.rms_norm_eps);
  exec.on_site(l, Site::kFfnIn, xb);
  exec.linear(l, Proj::kGate, xb, L.w1, h1);
  exec.linear(l, Proj::kUp, xb, L.w3, h3);
  Matrix h = swiglu(h1, h3);
  exec.on_site(l, Site::kDownIn, h);
  exec.linear(l, Proj::kDown, h, L.w2, y);
  x += y;
}

/// Runs the model on tokens at positions start_pos .. start_pos+T-1 and returns the logits
/// [T][vocab_size]. With `cache` (capacity >= start_pos+T) the keys/values of earlier positions
/// are read from it and those of these tokens stored into it (incremental decode); without it,
/// start_pos must be 0 (one-shot causal prefill of a fresh sequence).
template <class Exec>
Matrix forward(const Weights& w, const RopeTable& rope, Span<const int> tokens, int start_pos,
               KVCache* cache, Exec& exec) {
  const Config& c = w.config;
  const Eigen::Index T = static_cast<Eigen::Index>(tokens.size());
  SASQ_REQUIRE(T > 0, "no tokens");
  SASQ_REQUIRE(start_pos >= 0 && start_pos + T <= c.seq_len, "positions [", start_pos, ", ",
               start_pos + T, ") exceed seq_len = ", c.seq_len);
  SASQ_REQUIRE(cache != nullptr || start_pos == 0, "start_pos = ", start_pos, " needs a KV cache");
  SASQ_REQUIRE(rope.head_size == c.head_size() && rope.cos.rows() >= start_pos + T,
               "RoPE table does not match the model");
  if (cache)
    SASQ_REQUIRE(cache->k.size() == static_cast<std::size_t>(c.n_layers) &&
                     cache->k[0].rows() >= start_pos + T && cache->k[0].cols() == c.kv_dim(),
                 "KV cache does not hold ", start_pos + T, " positions of this model");

  Matrix x = embed(w, tokens);
  for (int l = 0; l < c.n_layers; ++l) forward_layer(w, l, rope, x, start_pos, cache, exec);
  const Matrix xb = rmsnorm(x, w.rms_final, c.rms_norm_eps);
  return llama::linear(xb, w.classifier());
}

/// Float32 forward of a fresh sequence (all positions at once).
inline Matrix forward(const Weights& w, const RopeTable& rope, Span<const int> tokens) {
  Fp32Exec exec;
  return forward(w, rope, tokens, 0, nullptr, exec);
}

/// Index of the largest value (first on ties, as run.c sample_argmax).
inline int argmax(const float* x, int n) {
  int best = 0;
  for (int i = 1; i < n; ++i)
    if (x[i] > x[best]) best = i;
  return best;
}

/// Greedy generation as run.c with temperature 0: the prompt is fed one token at a time, each
/// next token is the argmax of the logits; stops at BOS or after `steps` positions in total.
/// Returns the tokens after the first (prompt continuation included), as run.c prints them.
template <class Exec>
std::vector<int> generate_greedy(const Weights& w, const RopeTable& rope, Span<const int> prompt,
                                 int steps, Exec& exec) {
  SASQ_REQUIRE(!prompt.empty(), "empty prompt (need at least BOS)");
  SASQ_REQUIRE(steps > 0 && steps <= w.config.seq_len, "steps = ", steps, " outside [1, seq_len = ",
               w.config.seq_len, "]");
  KVCache cache = make_kv_cache(w.config, steps);
  std::vector<int> out;
  int token = prompt[0];
  for (int pos = 0; pos < steps; ++pos) {
    const int one[1] = {token};
    const Matrix logits = forward(w, rope, Span<const int>(one, 1), pos, &cache, exec);
    const int next = pos + 1 < static_cast<int>(prompt.size())
                         ? prompt[static_cast<std::size_t>(pos) + 1]
                         : argmax(logits.data(), w.config.vocab_size);
    if (next == kBosToken) break;
    out.push_back(next);
    token = next;
  }
  return out;
}

}  // namespace sasq::llama
