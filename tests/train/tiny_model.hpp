// A small random LLaMA (GQA, 2 layers) held in any scalar type, for gradient and trainer tests.
#pragma once

#include <cmath>
#include <cstdint>
#include <random>
#include <vector>

#include "llama/train_forward.hpp"

namespace sasq::test {

template <class T>
struct TinyModel {
  llama::grad::Shape shape{16, 24, 2, 4, 2, 20};
  std::vector<T> embedding, rms_final, classifier;
  struct Layer {
    std::vector<T> rms_att, wq, wk, wv, wo, rms_ffn, w1, w2, w3;
  };
  std::vector<Layer> layers;

  explicit TinyModel(std::uint32_t seed) {
    std::mt19937 rng(seed);
    std::normal_distribution<double> nd(0.0, 1.0);
    auto fill = [&](std::vector<T>& v, std::size_t n, double sd, double mean = 0.0) {
      v.resize(n);
      for (auto& x : v) x = static_cast<T>(mean + sd * nd(rng));
    };
    const auto d = static_cast<std::size_t>(shape.dim), h = static_cast<std::size_t>(shape.hidden_dim);
    const auto kv = static_cast<std::size_t>(shape.kv_dim()), vo = static_cast<std::size_t>(shape.vocab_size);
    fill(embedding, vo * d, 1.0);
    fill(rms_final, d, 0.2, 1.0);
    fill(classifier, vo * d, 1.0 / std::sqrt(double(d)));
    layers.resize(static_cast<std::size_t>(shape.n_layers));
    for (auto& L : layers) {
      fill(L.rms_att, d, 0.2, 1.0);
      fill(L.wq, d * d, 1.0 / std::sqrt(double(d)));
      fill(L.wk, kv * d, 1.0 / std::sqrt(double(d)));
      fill(L.wv, kv * d, 1.0 / std::sqrt(double(d)));
      fill(L.wo, d * d, 1.0 / std::sqrt(double(d)));
      fill(L.rms_ffn, d, 0.2, 1.0);
      fill(L.w1, h * d, 1.0 / std::sqrt(double(d)));
      fill(L.w2, d * h, 1.0 / std::sqrt(double(h)));
      fill(L.w3, h * d, 1.0 / std::sqrt(double(d)));
    }
  }

  llama::grad::ModelView<T> view() const {
    using Map = llama::grad::ConstMatrixMap<T>;
    const int d = shape.dim, h = shape.hidden_dim, kv = shape.kv_dim();
    llama::grad::ModelView<T> m{shape, embedding.data(), {}, rms_final.data(),
                                Map(classifier.data(), shape.vocab_size, d), T(1e-5)};
    for (const auto& L : layers) {
      m.layers.push_back({L.rms_att.data(), Map(L.wq.data(), d, d), Map(L.wk.data(), kv, d),
                          Map(L.wv.data(), kv, d), Map(L.wo.data(), d, d), L.rms_ffn.data(),
                          Map(L.w1.data(), h, d), Map(L.w2.data(), d, h), Map(L.w3.data(), h, d)});
    }
    return m;
  }
};

}  // namespace sasq::test
