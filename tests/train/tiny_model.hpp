// Test models: a small random LLaMA (GQA, 2 layers) as llama::Weights, and a copy of any
// llama::Weights in another scalar type (double for finite-difference checks).
#pragma once

#include <cmath>
#include <cstdint>
#include <random>
#include <vector>

#include "llama/train_forward.hpp"
#include "llama/weights.hpp"

namespace sasq::test {

/// Random weights: embedding N(0, 1), linears N(0, 1/fan_in), RMSNorm gains N(1, 0.2²).
inline llama::Weights random_weights(std::uint32_t seed, int seq_len = 48) {
  llama::Weights w;
  llama::Config& c = w.config;
  c.dim = 16;
  c.hidden_dim = 24;
  c.n_layers = 2;
  c.n_heads = 4;
  c.n_kv_heads = 2;
  c.vocab_size = 20;
  c.seq_len = seq_len;
  c.shared_classifier = true;
  std::mt19937 rng(seed);
  std::normal_distribution<float> nd(0.0f, 1.0f);
  auto mat = [&](int r, int k) {
    llama::Matrix m(r, k);
    for (Eigen::Index i = 0; i < m.size(); ++i) m.data()[i] = nd(rng) / std::sqrt(static_cast<float>(k));
    return m;
  };
  auto gain = [&](int n) {
    llama::Vector g(n);
    for (int i = 0; i < n; ++i) g(i) = 1.0f + 0.2f * nd(rng);
    return g;
  };
  w.token_embedding = mat(c.vocab_size, c.dim) * std::sqrt(static_cast<float>(c.dim));
  for (int l = 0; l < c.n_layers; ++l) {
    llama::LayerWeights L;
    L.rms_att = gain(c.dim);
    L.wq = mat(c.dim, c.dim);
    L.wk = mat(c.kv_dim(), c.dim);
    L.wv = mat(c.kv_dim(), c.dim);
    L.wo = mat(c.dim, c.dim);
    L.rms_ffn = gain(c.dim);
    L.w1 = mat(c.hidden_dim, c.dim);
    L.w2 = mat(c.dim, c.hidden_dim);
    L.w3 = mat(c.hidden_dim, c.dim);
    w.layers.push_back(std::move(L));
  }
  w.rms_final = gain(c.dim);
  return w;
}

/// The tensors of a llama::Weights converted to T, with a ModelView over them.
template <class T>
struct ModelCopy {
  llama::grad::Shape shape;
  std::vector<T> embedding, rms_final, classifier;
  struct Layer {
    std::vector<T> rms_att, wq, wk, wv, wo, rms_ffn, w1, w2, w3;
  };
  std::vector<Layer> layers;

  explicit ModelCopy(const llama::Weights& w) {
    const llama::Config& c = w.config;
    shape = {c.dim, c.hidden_dim, c.n_layers, c.n_heads, c.n_kv_heads, c.vocab_size};
    auto conv = [](const auto& m) {
      std::vector<T> v(static_cast<std::size_t>(m.size()));
      for (Eigen::Index i = 0; i < m.size(); ++i) v[static_cast<std::size_t>(i)] = static_cast<T>(m.data()[i]);
      return v;
    };
    embedding = conv(w.token_embedding);
    rms_final = conv(w.rms_final);
    classifier = conv(w.classifier());
    for (const auto& L : w.layers)
      layers.push_back({conv(L.rms_att), conv(L.wq), conv(L.wk), conv(L.wv), conv(L.wo), conv(L.rms_ffn),
                        conv(L.w1), conv(L.w2), conv(L.w3)});
  }

  llama::grad::ModelView<T> view() const {
    using Map = llama::grad::ConstMatrixMap<T>;
    const int d = shape.dim, h = shape.hidden_dim, kv = shape.kv_dim();
    llama::grad::ModelView<T> m{shape, embedding.data(), {}, rms_final.data(),
                                Map(classifier.data(), shape.vocab_size, d), T(1e-5), {}};
    for (const auto& L : layers)
      m.layers.push_back({L.rms_att.data(), Map(L.wq.data(), d, d), Map(L.wk.data(), kv, d),
                          Map(L.wv.data(), kv, d), Map(L.wo.data(), d, d), L.rms_ffn.data(),
                          Map(L.w1.data(), h, d), Map(L.w2.data(), d, h), Map(L.w3.data(), h, d)});
    return m;
  }
};

}  // namespace sasq::test
