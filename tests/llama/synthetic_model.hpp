// Test helper: a small random LLaMA and its llama2.c serializations (v0 legacy, v1, v2 Q8_0), written
// per karpathy/llama2.c export.py so the loader can be checked against known weights.
#pragma once

#include <cmath>
#include <cstdint>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "llama/checkpoint.hpp"
#include "llama/model.hpp"

namespace sasq::llama::test {

inline Config tiny_config(bool shared = true) {
  Config c;
  c.dim = 16;
  c.hidden_dim = 24;
  c.n_layers = 2;
  c.n_heads = 4;
  c.n_kv_heads = 2;
  c.vocab_size = 32;
  c.seq_len = 12;
  c.shared_classifier = shared;
  return c;
}

/// A quantization-sized model: dim 64 (a multiple of the int4 group sizes), hidden 96, vocab 48.
inline Config quant_config() {
  Config c = tiny_config(false);
  c.dim = 64;
  c.hidden_dim = 96;
  c.vocab_size = 48;
  c.seq_len = 16;
  return c;
}

/// `count` deterministic token sequences of length `len` (BOS first, then LCG tokens below `vocab`).
inline std::vector<std::vector<int>> lcg_sequences(int count, int len, int vocab, unsigned seed) {
  std::vector<std::vector<int>> s;
  unsigned x = seed;
  for (int i = 0; i < count; ++i) {
    std::vector<int> t{kBosToken};
    for (int j = 1; j < len; ++j) t.push_back(static_cast<int>((x = x * 1103515245u + 12345u) >> 16) % vocab);
    s.push_back(t);
  }
  return s;
}

inline Matrix random_matrix(std::mt19937& rng, int rows, int cols, float scale) {
  std::normal_distribution<float> d(0.0f, scale);
  Matrix m(rows, cols);
  for (Eigen::Index i = 0; i < m.size(); ++i) m.data()[i] = d(rng);
  return m;
}

inline Weights random_weights(const Config& c, unsigned seed = 1) {
  std::mt19937 rng(seed);
  Weights w;
  w.config = c;
  w.token_embedding = random_matrix(rng, c.vocab_size, c.dim, 1.0f);
  const float s = 1.0f / std::sqrt(static_cast<float>(c.dim));
  for (int l = 0; l < c.n_layers; ++l) {
    LayerWeights L;
    L.rms_att = Vector::Ones(c.dim) + 0.1f * Vector::Random(c.dim);
    L.rms_ffn = Vector::Ones(c.dim) + 0.1f * Vector::Random(c.dim);
    L.wq = random_matrix(rng, c.dim, c.dim, s);
    L.wk = random_matrix(rng, c.kv_dim(), c.dim, s);
    L.wv = random_matrix(rng, c.kv_dim(), c.dim, s);
    L.wo = random_matrix(rng, c.dim, c.dim, s);
    L.w1 = random_matrix(rng, c.hidden_dim, c.dim, s);
    L.w2 = random_matrix(rng, c.dim, c.hidden_dim, 1.0f / std::sqrt(static_cast<float>(c.hidden_dim)));
    L.w3 = random_matrix(rng, c.hidden_dim, c.dim, s);
    w.layers.push_back(L);
  }
  w.rms_final = Vector::Ones(c.dim);
  if (!c.shared_classifier) w.wcls = random_matrix(rng, c.vocab_size, c.dim, s);
  return w;
}

class Writer {
 public:
  template <class T>
  void put(T v) {
    const auto* p = reinterpret_cast<const unsigned char*>(&v);
    bytes.insert(bytes.end(), p, p + sizeof(T));
  }
  void floats(const float* p, Eigen::Index n) {
    for (Eigen::Index i = 0; i < n; ++i) put(p[i]);
  }
  void pad_to(std::size_t n) { bytes.resize(n, 0); }
  std::vector<unsigned char> bytes;
};

inline void put_dims(Writer& o, const Config& c, int vocab) {
  for (int v : {c.dim, c.hidden_dim, c.n_layers, c.n_heads, c.n_kv_heads, vocab, c.seq_len}) o.put<std::int32_t>(v);
}

/// The matrices in export order (token embedding, wq.. w3 layer-major, wcls when separate).
inline std::vector<const Matrix*> export_matrices(const Weights& w) {
  std::vector<const Matrix*> m{&w.token_embedding};
  for (int p : {0, 1, 2, 3, 4, 5, 6})
    for (const auto& L : w.layers) m.push_back(&proj_weight(L, static_cast<Proj>(p)));
  if (!w.config.shared_classifier) m.push_back(&w.wcls);
  return m;
}

/// Legacy v0 (legacy_export): header with vocab < 0 for a separate classifier, tensors, freq_cis
/// tables (when with_freq), wcls.
inline std::vector<unsigned char> write_v0(const Weights& w, bool with_freq = true) {
  const Config& c = w.config;
  Writer o;
  put_dims(o, c, c.shared_classifier ? c.vocab_size : -c.vocab_size);
  o.floats(w.token_embedding.data(), w.token_embedding.size());
  for (const auto& L : w.layers) o.floats(L.rms_att.data(), c.dim);
  for (int p : {0, 1, 2, 3})
    for (const auto& L : w.layers) o.floats(proj_weight(L, static_cast<Proj>(p)).data(), proj_weight(L, static_cast<Proj>(p)).size());
  for (const auto& L : w.layers) o.floats(L.rms_ffn.data(), c.dim);
  for (int p : {4, 5, 6})
    for (const auto& L : w.layers) o.floats(proj_weight(L, static_cast<Proj>(p)).data(), proj_weight(L, static_cast<Proj>(p)).size());
  o.floats(w.rms_final.data(), c.dim);
  if (with_freq)
    for (int i = 0; i < c.seq_len * c.head_size(); ++i) o.put(0.5f);
  if (!c.shared_classifier) o.floats(w.wcls.data(), w.wcls.size());
  return o.bytes;
}

inline void put_v_header(Writer& o, const Config& c, int version) {
  o.put<std::uint32_t>(0x616b3432u);
  o.put<std::int32_t>(version);
  put_dims(o, c, c.vocab_size);
  o.put<std::uint8_t>(c.shared_classifier ? 1 : 0);
}

inline void put_norms(Writer& o, const Weights& w) {
  for (const auto& L : w.layers) o.floats(L.rms_att.data(), w.config.dim);
  for (const auto& L : w.layers) o.floats(L.rms_ffn.data(), w.config.dim);
  o.floats(w.rms_final.data(), w.config.dim);
}

/// ak42 version 1 (version1_export).
inline std::vector<unsigned char> write_v1(const Weights& w) {
  Writer o;
  put_v_header(o, w.config, 1);
  o.pad_to(256);
  put_norms(o, w);
  for (const Matrix* m : export_matrices(w)) o.floats(m->data(), m->size());
  return o.bytes;
}

/// ak42 version 2 (version2_export): int8 groups with scale = absmax / 127, round half to even.
inline std::vector<unsigned char> write_v2(const Weights& w, int group_size) {
  Writer o;
  put_v_header(o, w.config, 2);
  o.put<std::int32_t>(group_size);
  o.pad_to(256);
  put_norms(o, w);
  std::vector<float> scales;
  for (const Matrix* m : export_matrices(w)) {
    for (Eigen::Index g = 0; g < m->size() / group_size; ++g) {
      float amax = 0.0f;
      for (int i = 0; i < group_size; ++i) amax = std::max(amax, std::fabs(m->data()[g * group_size + i]));
      const float s = amax / 127.0f;
      for (int i = 0; i < group_size; ++i)
        o.put<std::int8_t>(static_cast<std::int8_t>(std::nearbyint(m->data()[g * group_size + i] / s)));
      scales.push_back(s);
    }
  }
  o.floats(scales.data(), static_cast<Eigen::Index>(scales.size()));
  return o.bytes;
}

}  // namespace sasq::llama::test
