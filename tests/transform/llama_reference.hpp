// Test helper: a small random LLaMA model (owning buffers), its sasq views, and a double-accumulating
// reference forward (RMSNorm, q/k/v, causal GQA attention without RoPE, o, RMSNorm, SwiGLU, lm head).
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <vector>

#include "sasq/core/matrix_view.hpp"
#include "sasq/transform/llama_block.hpp"
#include "sasq/transform/orthogonal.hpp"
#include "sasq/transform/rotation.hpp"

namespace sasq::test {

struct LlamaShape {
  std::ptrdiff_t dim, hidden, n_heads, n_kv_heads, head_dim, vocab, n_layers;
};

struct LayerWeights {
  std::vector<float> attn_norm, wq, wk, wv, wo, ffn_norm, w1, w3, w2;
};

/// Intermediate activations of one layer, kept for calibration statistics.
struct LayerTrace {
  std::vector<float> attn_in;  // T x dim, RMSNorm output read by q/k/v
  std::vector<float> ffn_in;   // T x dim, RMSNorm output read by gate/up
  std::vector<float> down_in;  // T x hidden, silu(gate) * up
};

class TinyLlama {
 public:
  TinyLlama(LlamaShape s, std::uint64_t seed) : s_(s) {
    SeededRandom rng(seed);
    auto fill = [&rng](std::vector<float>& v, std::size_t n, double stddev) {
      v.resize(n);
      for (float& x : v) x = static_cast<float>(rng.normal() * stddev);
    };
    auto fill_norm = [&rng](std::vector<float>& v, std::size_t n) {
      v.resize(n);
      for (float& x : v) x = static_cast<float>(0.5 + rng.uniform());
    };
    const auto d = static_cast<std::size_t>(s.dim), h = static_cast<std::size_t>(s.hidden);
    const auto qd = static_cast<std::size_t>(s.n_heads * s.head_dim);
    const auto kvd = static_cast<std::size_t>(s.n_kv_heads * s.head_dim);
    fill(embedding_, static_cast<std::size_t>(s.vocab) * d, 1.0);
    embedding_[3] = 25.0f;  // an outlier channel in one token's embedding
    fill(classifier_, static_cast<std::size_t>(s.vocab) * d, 1.0 / std::sqrt(static_cast<double>(d)));
    fill_norm(final_norm_, d);
    layers_.resize(static_cast<std::size_t>(s.n_layers));
    for (auto& l : layers_) {
      fill_norm(l.attn_norm, d);
      fill(l.wq, qd * d, 1.0 / std::sqrt(static_cast<double>(d)));
      fill(l.wk, kvd * d, 1.0 / std::sqrt(static_cast<double>(d)));
      fill(l.wv, kvd * d, 1.0 / std::sqrt(static_cast<double>(d)));
      fill(l.wo, d * qd, 1.0 / std::sqrt(static_cast<double>(qd)));
      fill_norm(l.ffn_norm, d);
      fill(l.w1, h * d, 1.0 / std::sqrt(static_cast<double>(d)));
      fill(l.w3, h * d, 1.0 / std::sqrt(static_cast<double>(d)));
      fill(l.w2, d * h, 1.0 / std::sqrt(static_cast<double>(h)));
    }
  }

  const LlamaShape& shape() const { return s_; }

  LlamaLayerViews layer_views(std::size_t i) {
    auto& l = layers_[i];
    const auto d = s_.dim, h = s_.hidden, qd = s_.n_heads * s_.head_dim, kvd = s_.n_kv_heads * s_.head_dim;
    return {Span<float>(l.attn_norm),
            MatrixView<float>(l.wq.data(), qd, d),
            MatrixView<float>(l.wk.data(), kvd, d),
            MatrixView<float>(l.wv.data(), kvd, d),
            MatrixView<float>(l.wo.data(), d, qd),
            Span<float>(l.ffn_norm),
            MatrixView<float>(l.w1.data(), h, d),
            MatrixView<float>(l.w3.data(), h, d),
            MatrixView<float>(l.w2.data(), d, h),
            s_.head_dim};
  }

  LlamaModelViews views() {
    LlamaModelViews m{MatrixView<float>(embedding_.data(), s_.vocab, s_.dim), {}, Span<float>(final_norm_),
                      MatrixView<float>(classifier_.data(), s_.vocab, s_.dim)};
    for (std::size_t i = 0; i < layers_.size(); ++i) m.layers.push_back(layer_views(i));
    return m;
  }

  /// Logits [T][vocab] for `tokens`; `down_rotation` (may be null) is applied online to every
  /// down_proj input. `traces` (may be null) receives the intermediate activations per layer.
  std::vector<float> forward(const std::vector<int>& tokens, const Rotation* down_rotation,
                             std::vector<LayerTrace>* traces = nullptr) const {
    const auto t_n = static_cast<std::ptrdiff_t>(tokens.size());
    const auto d = s_.dim;
    std::vector<float> x(static_cast<std::size_t>(t_n * d));
    for (std::ptrdiff_t t = 0; t < t_n; ++t) {
      std::copy_n(embedding_.data() + tokens[static_cast<std::size_t>(t)] * d, d, x.data() + t * d);
    }
    if (traces) traces->assign(layers_.size(), {});
    for (std::size_t i = 0; i < layers_.size(); ++i) {
      layer_forward(layers_[i], x, t_n, down_rotation, traces ? &(*traces)[i] : nullptr);
    }
    const auto u = rmsnorm(x, t_n, final_norm_);
    return linear(u, t_n, classifier_, s_.vocab, d);
  }

 private:
  std::vector<float> rmsnorm(const std::vector<float>& x, std::ptrdiff_t t_n, const std::vector<float>& g) const {
    const auto d = s_.dim;
    std::vector<float> y(x.size());
    for (std::ptrdiff_t t = 0; t < t_n; ++t) {
      double ss = 0.0;
      for (std::ptrdiff_t c = 0; c < d; ++c) ss += static_cast<double>(x[t * d + c]) * x[t * d + c];
      const double inv = 1.0 / std::sqrt(ss / static_cast<double>(d) + 1e-5);
      for (std::ptrdiff_t c = 0; c < d; ++c) y[t * d + c] = static_cast<float>(x[t * d + c] * inv * g[c]);
    }
    return y;
  }

  /// y = x Wᵀ, x: T x k, W: n x k.
  static std::vector<float> linear(const std::vector<float>& x, std::ptrdiff_t t_n, const std::vector<float>& w,
                                   std::ptrdiff_t n, std::ptrdiff_t k) {
    std::vector<float> y(static_cast<std::size_t>(t_n * n));
    for (std::ptrdiff_t t = 0; t < t_n; ++t) {
      for (std::ptrdiff_t o = 0; o < n; ++o) {
        double acc = 0.0;
        for (std::ptrdiff_t c = 0; c < k; ++c) acc += static_cast<double>(x[t * k + c]) * w[o * k + c];
        y[t * n + o] = static_cast<float>(acc);
      }
    }
    return y;
  }

  void layer_forward(const LayerWeights& l, std::vector<float>& x, std::ptrdiff_t t_n, const Rotation* down_rotation,
                     LayerTrace* trace) const {
    const auto d = s_.dim, h = s_.hidden, hd = s_.head_dim;
    const auto qd = s_.n_heads * hd, kvd = s_.n_kv_heads * hd;
    const auto u = rmsnorm(x, t_n, l.attn_norm);
    const auto q = linear(u, t_n, l.wq, qd, d);
    const auto k = linear(u, t_n, l.wk, kvd, d);
    const auto v = linear(u, t_n, l.wv, kvd, d);
    std::vector<float> att(static_cast<std::size_t>(t_n * qd), 0.0f);
    const auto group = s_.n_heads / s_.n_kv_heads;
    for (std::ptrdiff_t head = 0; head < s_.n_heads; ++head) {
      const auto kvh = head / group;
      for (std::ptrdiff_t t = 0; t < t_n; ++t) {
        std::vector<double> p(static_cast<std::size_t>(t + 1));
        double mx = -1e300;
        for (std::ptrdiff_t s = 0; s <= t; ++s) {
          double dot = 0.0;
          for (std::ptrdiff_t c = 0; c < hd; ++c) {
            dot += static_cast<double>(q[t * qd + head * hd + c]) * k[s * kvd + kvh * hd + c];
          }
          p[static_cast<std::size_t>(s)] = dot / std::sqrt(static_cast<double>(hd));
          mx = std::max(mx, p[static_cast<std::size_t>(s)]);
        }
        double z = 0.0;
        for (auto& e : p) z += (e = std::exp(e - mx));
        for (std::ptrdiff_t c = 0; c < hd; ++c) {
          double acc = 0.0;
          for (std::ptrdiff_t s = 0; s <= t; ++s) acc += p[static_cast<std::size_t>(s)] * v[s * kvd + kvh * hd + c];
          att[t * qd + head * hd + c] = static_cast<float>(acc / z);
        }
      }
    }
    const auto o = linear(att, t_n, l.wo, d, qd);
    for (std::size_t i = 0; i < x.size(); ++i) x[i] += o[i];
    const auto u2 = rmsnorm(x, t_n, l.ffn_norm);
    const auto g = linear(u2, t_n, l.w1, h, d);
    const auto up = linear(u2, t_n, l.w3, h, d);
    std::vector<float> a(g.size());
    for (std::size_t i = 0; i < a.size(); ++i) a[i] = static_cast<float>(g[i] / (1.0 + std::exp(-double{g[i]})) * up[i]);
    if (trace) *trace = {u, u2, a};
    if (down_rotation) apply_rotation(*down_rotation, MatrixView<float>(a.data(), t_n, h));
    const auto y = linear(a, t_n, l.w2, d, h);
    for (std::size_t i = 0; i < x.size(); ++i) x[i] += y[i];
  }

  LlamaShape s_;
  std::vector<float> embedding_, classifier_, final_norm_;
  std::vector<LayerWeights> layers_;
};

/// max |a − b| / max(1, max |b|).
inline double relative_max_error(const std::vector<float>& a, const std::vector<float>& b) {
  double num = 0.0, den = 1.0;
  for (std::size_t i = 0; i < a.size(); ++i) {
    num = std::max(num, std::fabs(static_cast<double>(a[i]) - b[i]));
    den = std::max(den, std::fabs(static_cast<double>(b[i])));
  }
  return num / den;
}

}  // namespace sasq::test
