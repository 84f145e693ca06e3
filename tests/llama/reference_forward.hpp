// Test oracle: the llama2.c run.c forward written as plain scalar loops, one token at a time with
// its own KV cache, independent of llama/ops.hpp (shared only: the Weights struct).
#pragma once

#include <cmath>
#include <vector>

#include "llama/weights.hpp"

namespace sasq::llama::test {

class ReferenceModel {
 public:
  explicit ReferenceModel(const Weights& w)
      : w_(w), c_(w.config),
        kcache_(static_cast<std::size_t>(c_.n_layers * c_.seq_len * c_.kv_dim())),
        vcache_(kcache_.size()) {}

  /// Logits of `token` at position `pos` (positions must be fed in order 0, 1, ...).
  std::vector<float> step(int token, int pos) {
    const int dim = c_.dim, hs = c_.head_size(), kv_dim = c_.kv_dim(), hidden = c_.hidden_dim;
    std::vector<float> x(w_.token_embedding.row(token).data(), w_.token_embedding.row(token).data() + dim);
    std::vector<float> xb(dim), q(dim), k(kv_dim), v(kv_dim), att(pos + 1), o(dim), h1(hidden), h3(hidden), y(dim);
    for (int l = 0; l < c_.n_layers; ++l) {
      const LayerWeights& L = w_.layers[static_cast<std::size_t>(l)];
      norm(x, L.rms_att.data(), xb);
      matvec(L.wq, xb, q);
      matvec(L.wk, xb, k);
      matvec(L.wv, xb, v);
      for (int i = 0; i < dim; i += 2) {
        const int head_dim = i % hs;
        const float freq = 1.0f / std::pow(10000.0f, static_cast<float>(head_dim) / static_cast<float>(hs));
        const float val = static_cast<float>(pos) * freq, fcr = std::cos(val), fci = std::sin(val);
        for (int rot = 0; rot < (i < kv_dim ? 2 : 1); ++rot) {
          std::vector<float>& vec = rot == 0 ? q : k;
          const float v0 = vec[i], v1 = vec[i + 1];
          vec[i] = v0 * fcr - v1 * fci;
          vec[i + 1] = v0 * fci + v1 * fcr;
        }
      }
      float* kc = &kcache_[static_cast<std::size_t>((l * c_.seq_len + pos) * kv_dim)];
      float* vc = &vcache_[static_cast<std::size_t>((l * c_.seq_len + pos) * kv_dim)];
      for (int i = 0; i < kv_dim; ++i) kc[i] = k[i], vc[i] = v[i];
      for (int h = 0; h < c_.n_heads; ++h) {
        const int kvh = h / (c_.n_heads / c_.n_kv_heads);
        for (int t = 0; t <= pos; ++t) {
          const float* kt = &kcache_[static_cast<std::size_t>((l * c_.seq_len + t) * kv_dim + kvh * hs)];
          float score = 0.0f;
          for (int i = 0; i < hs; ++i) score += q[h * hs + i] * kt[i];
          att[t] = score / std::sqrt(static_cast<float>(hs));
        }
        float mx = att[0];
        for (int t = 1; t <= pos; ++t) mx = std::max(mx, att[t]);
        float sum = 0.0f;
        for (int t = 0; t <= pos; ++t) sum += (att[t] = std::exp(att[t] - mx));
        for (int t = 0; t <= pos; ++t) att[t] /= sum;
        for (int i = 0; i < hs; ++i) {
          float acc = 0.0f;
          for (int t = 0; t <= pos; ++t)
            acc += att[t] * vcache_[static_cast<std::size_t>((l * c_.seq_len + t) * kv_dim + kvh * hs + i)];
          xb[h * hs + i] = acc;
        }
      }
      matvec(L.wo, xb, o);
      for (int i = 0; i < dim; ++i) x[i] += o[i];
      norm(x, L.rms_ffn.data(), xb);
      matvec(L.w1, xb, h1);
      matvec(L.w3, xb, h3);
      for (int i = 0; i < hidden; ++i) h1[i] = h1[i] * (1.0f / (1.0f + std::exp(-h1[i]))) * h3[i];
      matvec(L.w2, h1, y);
      for (int i = 0; i < dim; ++i) x[i] += y[i];
    }
    norm(x, w_.rms_final.data(), xb);
    std::vector<float> logits(static_cast<std::size_t>(c_.vocab_size));
    matvec(w_.classifier(), xb, logits);
    return logits;
  }

  /// Sum of NLLs (natural log, double) of tokens[1..] from a fresh context.
  double nll(const std::vector<int>& tokens) {
    double total = 0.0;
    for (std::size_t t = 0; t + 1 < tokens.size(); ++t) {
      const std::vector<float> z = step(tokens[t], static_cast<int>(t));
      double m = z[0], s = 0.0;
      for (float v : z) m = std::max(m, static_cast<double>(v));
      for (float v : z) s += std::exp(static_cast<double>(v) - m);
      total += std::log(s) + m - static_cast<double>(z[static_cast<std::size_t>(tokens[t + 1])]);
    }
    return total;
  }

 private:
  static void norm(const std::vector<float>& x, const float* g, std::vector<float>& o) {
    float ss = 0.0f;
    for (float v : x) ss += v * v;
    ss = 1.0f / std::sqrt(ss / static_cast<float>(x.size()) + 1e-5f);
    for (std::size_t j = 0; j < x.size(); ++j) o[j] = g[j] * (ss * x[j]);
  }
  static void matvec(const Matrix& w, const std::vector<float>& x, std::vector<float>& out) {
    for (Eigen::Index i = 0; i < w.rows(); ++i) {
      float acc = 0.0f;
      for (Eigen::Index j = 0; j < w.cols(); ++j) acc += w(i, j) * x[static_cast<std::size_t>(j)];
      out[static_cast<std::size_t>(i)] = acc;
    }
  }

  const Weights& w_;
  Config c_;
  std::vector<float> kcache_, vcache_;
};

}  // namespace sasq::llama::test
