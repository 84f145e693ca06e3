// LLaMA building blocks as pure functions on float32 row-major activations [tokens][channels].
//   rmsnorm(x)_j = g_j * (x_j / sqrt(mean(x^2) + eps))          (llama2.c run.c, eps 1e-5)
//   rope: (x_2i, x_2i+1) rotated by pos * theta^(-2i/head_size) within each head (adjacent pairs; theta 10000)
//   attention: softmax(q k^T / sqrt(head_size)) v per head, causal; query head h reads KV head h / kv_mul
//   swiglu(g, u) = g * sigmoid(g) * u;  linear(x, W) = x W^T with W[out][in]
// Every function mirrors run.c's arithmetic (float32, same formulas) so perplexities match it.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <vector>

#include <Eigen/Core>

#include "llama/config.hpp"
#include "llama/weights.hpp"
#include "sasq/core/span.hpp"
#include "sasq/core/status.hpp"

namespace sasq::llama {

/// RMSNorm of one row of n floats, exactly as run.c: ss = sum(x^2) in float, then
/// out_j = g_j * ((1 / sqrt(ss / n + eps)) * x_j). `out` may alias `x`.
inline void rmsnorm(const float* x, const float* g, float* out, int n, float eps = kRmsNormEps) {
  float ss = 0.0f;
  for (int j = 0; j < n; ++j) ss += x[j] * x[j];
  ss /= static_cast<float>(n);
  ss += eps;
  ss = 1.0f / std::sqrt(ss);
  for (int j = 0; j < n; ++j) out[j] = g[j] * (ss * x[j]);
}

/// RMSNorm of every row of x ([T][dim]) with gain g ([dim]).
inline Matrix rmsnorm(const Matrix& x, const Vector& g, float eps = kRmsNormEps) {
  SASQ_REQUIRE(x.cols() == g.size(), "x has ", x.cols(), " columns but the gain has ", g.size());
  Matrix out(x.rows(), x.cols());
  for (Eigen::Index t = 0; t < x.rows(); ++t)
    rmsnorm(x.row(t).data(), g.data(), out.row(t).data(), static_cast<int>(x.cols()), eps);
  return out;
}

/// cos/sin of the RoPE angles: entry [pos][i] for pair i of a head, angle =
/// pos * (1 / theta^(2i / head_size)), each computed in float as run.c does (theta = 10000 there).
struct RopeTable {
  int head_size = 0;
  Matrix cos;  ///< [seq_len][head_size/2]
  Matrix sin;  ///< [seq_len][head_size/2]
};

inline RopeTable make_rope_table(int seq_len, int head_size, float theta = kRopeTheta) {
  SASQ_REQUIRE(seq_len > 0 && head_size > 0 && head_size % 2 == 0, "bad seq_len ", seq_len,
               " or head_size ", head_size, " (must be positive, head_size even)");
  RopeTable t{head_size, Matrix(seq_len, head_size / 2), Matrix(seq_len, head_size / 2)};
  for (int pos = 0; pos < seq_len; ++pos)
    for (int i = 0; i < head_size / 2; ++i) {
      const float freq = 1.0f / std::pow(theta, static_cast<float>(2 * i) / static_cast<float>(head_size));
      const float val = static_cast<float>(pos) * freq;
      t.cos(pos, i) = std::cos(val);
      t.sin(pos, i) = std::sin(val);
    }
  return t;
}

/// The table of a model: its seq_len, head_size and rope_theta.
inline RopeTable make_rope_table(const Config& c) { return make_rope_table(c.seq_len, c.head_size(), c.rope_theta); }

/// Rotates adjacent pairs of every head of x ([T][n_heads*head_size]) in place; row t is at
/// position start_pos + t. inverse = true applies the transposed rotation (the backward pass
/// of RoPE: dL/dx = R^T dL/dy).
inline void apply_rope(Matrix& x, int start_pos, const RopeTable& table, bool inverse = false) {
  const int hs = table.head_size;
  SASQ_REQUIRE(hs > 0 && x.cols() % hs == 0, "x has ", x.cols(), " columns, not a multiple of head_size ", hs);
  SASQ_REQUIRE(start_pos >= 0 && start_pos + x.rows() <= table.cos.rows(), "positions [", start_pos,
               ", ", start_pos + x.rows(), ") exceed the RoPE table's ", table.cos.rows());
  const float sign = inverse ? -1.0f : 1.0f;
  for (Eigen::Index t = 0; t < x.rows(); ++t) {
    const float* c = table.cos.row(start_pos + t).data();
    const float* s = table.sin.row(start_pos + t).data();
    float* row = x.row(t).data();
    for (Eigen::Index i = 0; i < x.cols(); i += 2) {
      const Eigen::Index j = (i % hs) / 2;
      const float fcr = c[j], fci = sign * s[j];
      const float v0 = row[i], v1 = row[i + 1];
      row[i] = v0 * fcr - v1 * fci;
      row[i + 1] = v0 * fci + v1 * fcr;
    }
  }
}

/// Softmax of n floats in place with max subtraction (run.c): x = exp(x - max) / sum.
inline void softmax(float* x, int n) {
  Eigen::Map<Eigen::ArrayXf> a(x, n);
  const float max = a.maxCoeff();
  a = (a - max).exp();
  a /= a.sum();
}

/// Token embedding lookup: row t = token_embedding[tokens[t]]. Throws on ids outside the vocab.
inline Matrix embed(const Weights& w, Span<const int> tokens) {
  Matrix x(static_cast<Eigen::Index>(tokens.size()), w.config.dim);
  for (std::size_t t = 0; t < tokens.size(); ++t) {
    SASQ_REQUIRE(tokens[t] >= 0 && tokens[t] < w.config.vocab_size, "token ", tokens[t], " at index ",
                 t, " is outside the vocabulary [0, ", w.config.vocab_size, ")");
    x.row(static_cast<Eigen::Index>(t)) = w.token_embedding.row(tokens[t]);
  }
  return x;
}

/// y = x W^T: x [T][in], W [out][in] (nn.Linear layout), y [T][out].
inline void linear(const Matrix& x, const Matrix& w, Matrix& y) {
  SASQ_REQUIRE(x.cols() == w.cols(), "x has ", x.cols(), " columns but W is ", w.rows(), "x", w.cols());
  y.resize(x.rows(), w.rows());
  y.noalias() = x * w.transpose();
}

inline Matrix linear(const Matrix& x, const Matrix& w) {
  Matrix y;
  linear(x, w, y);
  return y;
}

/// SwiGLU: out = silu(gate) * up, silu(g) = g * (1 / (1 + exp(-g))) (run.c).
inline Matrix swiglu(const Matrix& gate, const Matrix& up) {
  SASQ_REQUIRE(gate.rows() == up.rows() && gate.cols() == up.cols(), "gate is ", gate.rows(), "x",
               gate.cols(), " but up is ", up.rows(), "x", up.cols());
  Matrix out(gate.rows(), gate.cols());
  out.array() = gate.array() * (1.0f / (1.0f + (-gate.array()).exp())) * up.array();
  return out;
}

/// Causal grouped-query attention for one sequence. q: [T][n_heads*head_size] for positions
/// start_pos .. start_pos+T-1; k, v: [>= start_pos+T][kv_dim] keys/values for positions 0..
/// (RoPE already applied to q and k). out: [T][n_heads*head_size]. The query at position p
/// attends to keys 0..p with scores q.k / sqrt(head_size) and a max-subtracted softmax.
/// When `probs` is non-null it receives, per head, the [T][start_pos+T] attention
/// probabilities (zeros above the causal diagonal) for a backward pass.
inline void causal_attention(const Matrix& q, const Matrix& k, const Matrix& v, int start_pos,
                             const Config& c, Matrix& out, std::vector<Matrix>* probs = nullptr) {
  const int hs = c.head_size();
  const Eigen::Index T = q.rows(), P = start_pos + T;
  SASQ_REQUIRE(q.cols() == c.n_heads * hs, "q has ", q.cols(), " columns, expected ", c.n_heads * hs);
  SASQ_REQUIRE(k.cols() == c.kv_dim() && v.cols() == c.kv_dim() && k.rows() >= P && v.rows() >= P,
               "k/v are ", k.rows(), "x", k.cols(), " and ", v.rows(), "x", v.cols(),
               ", need at least ", P, " rows of kv_dim ", c.kv_dim());
  out.resize(T, q.cols());
  if (probs) probs->assign(static_cast<std::size_t>(c.n_heads), Matrix::Zero(T, P));
  const float sqrt_hs = std::sqrt(static_cast<float>(hs));
  // Query rows in blocks of kBlock: block [t0, t1) only needs keys [0, start_pos + t1), so the
  // work above the causal diagonal is at most one block wide.
  constexpr Eigen::Index kBlock = 32;
  Matrix s;
  for (int h = 0; h < c.n_heads; ++h) {
    const int kvh = h / c.kv_mul();
    for (Eigen::Index t0 = 0; t0 < T; t0 += kBlock) {
      const Eigen::Index nb = std::min(kBlock, T - t0), keys = start_pos + t0 + nb;
      s.resize(nb, keys);
      s.noalias() = q.block(t0, h * hs, nb, hs) * k.block(0, kvh * hs, keys, hs).transpose();
      for (Eigen::Index r = 0; r < nb; ++r) {
        const Eigen::Index n = start_pos + t0 + r + 1;
        auto row = s.row(r);
        row.head(n) /= sqrt_hs;
        softmax(row.data(), static_cast<int>(n));
        row.tail(keys - n).setZero();
      }
      out.block(t0, h * hs, nb, hs).noalias() = s * v.block(0, kvh * hs, keys, hs);
      if (probs) (*probs)[static_cast<std::size_t>(h)].block(t0, 0, nb, keys) = s;
    }
  }
}

}  // namespace sasq::llama
