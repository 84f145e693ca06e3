// Backward pass of the minimal LLaMA to activations and activation-quantizer scales only (weights
// are frozen: no weight gradient is ever formed). Each op's rule, with dy the incoming gradient:
//   rmsnorm  y = g ⊙ x·r, r = (mean(x²) + eps)^(-1/2):  dx = r·(g⊙dy) − x · r³/D · Σ_j (g⊙dy)_j x_j
//   rope     dx = Rᵀ dy (rotation by the negative angle)
//   attn     dV = Pᵀ dO;  dP = dO Vᵀ;  dS = P ⊙ (dP − rowsum(dP ⊙ P));  dQ = c·dS K;  dK = c·dSᵀ Q
//   swiglu   h = silu(a) ⊙ b:  da = dh ⊙ b ⊙ σ(a)(1 + a(1 − σ(a))),  db = dh ⊙ silu(a)
//   linear   y = x Wᵀ:  dx = dy W
//   CE       dz = w · (softmax(z) − onehot(y));  with distillation weight α and teacher p:
//            dz = w · (softmax(z) − (1 − α) onehot(y) − α p)
//   fq (LSQ, Esser et al. 2020, STE for round):  v = x/s;  inside qmin ≤ v ≤ qmax: dx = dy,
//            ∂x̂/∂s = rne(v) − v;  outside: dx = 0, ∂x̂/∂s = qmin or qmax;  ds += Σ dy · ∂x̂/∂s
#pragma once

#include <Eigen/Core>

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <vector>

#include "train_forward.hpp"

namespace sasq::llama::grad {

/// Gradients of the loss w.r.t. every site's scale(s) (same layout as SiteQuantizer::scale) and
/// w.r.t. the embedded input rows [t][dim] (the end of the chain; the table itself is frozen).
template <class T>
struct Gradients {
  std::vector<std::vector<T>> scale;
  RowMatrix<T> embedded;

  /// Zeroed scale gradients shaped like `sites`.
  void reset(const std::vector<SiteQuantizer<T>>& sites) {
    scale.resize(sites.size());
    for (std::size_t i = 0; i < sites.size(); ++i) scale[i].assign(sites[i].scale.size(), T(0));
  }
};

/// dx += rmsnorm backward (see header) for rows of x with stored 1/rms values.
template <class T>
void rmsnorm_backward(const RowMatrix<T>& x, const T* g, const std::vector<T>& rinv,
                      const RowMatrix<T>& dy, RowMatrix<T>& dx) {
  const Eigen::Index d = x.cols();
  for (Eigen::Index t = 0; t < x.rows(); ++t) {
    const T r = rinv[static_cast<std::size_t>(t)];
    T dot = T(0);
    for (Eigen::Index j = 0; j < d; ++j) dot += g[j] * dy(t, j) * x(t, j);
    const T c = r * r * r * dot / static_cast<T>(d);
    for (Eigen::Index j = 0; j < d; ++j) dx(t, j) += r * g[j] * dy(t, j) - c * x(t, j);
  }
}

/// In place: dy (gradient w.r.t. the rotated vectors) becomes the gradient w.r.t. the inputs.
template <class T>
void rope_backward(RowMatrix<T>& dy, int head_size, T theta = T(10000)) {
  rope_rotate(dy, head_size, true, theta);
}

/// Attention backward for one sequence, given the stored probabilities: writes dq, dk, dv
/// (blocked over query rows like attention_forward).
template <class T>
void attention_backward(const RowMatrix<T>& q, const RowMatrix<T>& k, const RowMatrix<T>& v,
                        const std::vector<RowMatrix<T>>& probs, const RowMatrix<T>& dout,
                        const Shape& shape, RowMatrix<T>& dq, RowMatrix<T>& dk, RowMatrix<T>& dv) {
  const int hs = shape.head_size();
  const int group = shape.n_heads / shape.n_kv_heads;
  const Eigen::Index n = q.rows();
  const T scale = T(1) / std::sqrt(static_cast<T>(hs));
  dq.setZero(q.rows(), q.cols());
  dk.setZero(k.rows(), k.cols());
  dv.setZero(v.rows(), v.cols());
  RowMatrix<T> ds;
  for (int h = 0; h < shape.n_heads; ++h) {
    const int kvh = h / group;
    const RowMatrix<T>& p = probs[static_cast<std::size_t>(h)];
    for (Eigen::Index r0 = 0; r0 < n; r0 += kAttentionBlock) {
      const Eigen::Index len = std::min(kAttentionBlock, n - r0), r1 = r0 + len;
      const auto pb = p.block(r0, 0, len, r1);
      const auto d_o = dout.block(r0, h * hs, len, hs);
      dv.block(0, kvh * hs, r1, hs).noalias() += pb.transpose() * d_o;
      ds.noalias() = d_o * v.block(0, kvh * hs, r1, hs).transpose();
      for (Eigen::Index i = 0; i < len; ++i) {
        const Eigen::Index t = r0 + i;
        T rs = T(0);
        for (Eigen::Index u = 0; u <= t; ++u) rs += ds(i, u) * pb(i, u);
        for (Eigen::Index u = 0; u <= t; ++u) ds(i, u) = pb(i, u) * (ds(i, u) - rs) * scale;
        for (Eigen::Index u = t + 1; u < r1; ++u) ds(i, u) = T(0);
      }
      dq.block(r0, h * hs, len, hs).noalias() += ds * k.block(0, kvh * hs, r1, hs);
      dk.block(0, kvh * hs, r1, hs).noalias() += ds.transpose() * q.block(r0, h * hs, len, hs);
    }
  }
}

/// SwiGLU backward: da, db from dh for h = silu(a) ⊙ b.
template <class T>
void swiglu_backward(const RowMatrix<T>& a, const RowMatrix<T>& b, const RowMatrix<T>& dh,
                     RowMatrix<T>& da, RowMatrix<T>& db) {
  da.resize(a.rows(), a.cols());
  db.resize(a.rows(), a.cols());
  for (Eigen::Index t = 0; t < a.rows(); ++t) {
    for (Eigen::Index j = 0; j < a.cols(); ++j) {
      const T x = a(t, j);
      const T sg = T(1) / (T(1) + std::exp(-x));
      da(t, j) = dh(t, j) * b(t, j) * sg * (T(1) + x * (T(1) - sg));
      db(t, j) = dh(t, j) * x * sg;
    }
  }
}

/// Fake-quant backward: dx = STE-masked dy; ds[c] += Σ dy · ∂x̂/∂s (LSQ, see header), c = 0 per
/// tensor or the column per channel.
template <class T>
void fake_quant_backward(const RowMatrix<T>& x, const SiteQuantizer<T>& sq, const RowMatrix<T>& dy,
                         RowMatrix<T>& dx, std::vector<T>& ds) {
  if (!sq.enabled) {
    dx = dy;
    return;
  }
  const bool per_channel = sq.scale.size() != 1;
  const T lo = static_cast<T>(sq.qmin), hi = static_cast<T>(sq.qmax);
  dx.resize(x.rows(), x.cols());
  for (Eigen::Index t = 0; t < x.rows(); ++t) {
    for (Eigen::Index j = 0; j < x.cols(); ++j) {
      const std::size_t c = per_channel ? static_cast<std::size_t>(j) : 0;
      const T v = x(t, j) * (T(1) / sq.scale[c]);
      T dparam;
      if (v < lo) {
        dparam = lo;
        dx(t, j) = T(0);
      } else if (v > hi) {
        dparam = hi;
        dx(t, j) = T(0);
      } else {
        dparam = rne(v) - v;
        dx(t, j) = dy(t, j);
      }
      ds[c] += dy(t, j) * dparam;
    }
  }
}

/// Backward of one recorded sequence: accumulates d loss / d scale into grads.scale (which must
/// be shaped by Gradients::reset) and writes grads.embedded. Weights are only read.
template <class T>
void backward(const ModelView<T>& m, const std::vector<SiteQuantizer<T>>& sites, const Tape<T>& tape,
              Gradients<T>& grads) {
  const Shape& sh = m.shape;
  const Eigen::Index n = tape.x_final.rows();
  // Cross-entropy and classifier.
  RowMatrix<T> dz = tape.probs;
  const T hard = T(1) - tape.kd;
  for (Eigen::Index t = 0; t < n; ++t) dz(t, tape.targets[static_cast<std::size_t>(t)]) -= hard;
  if (tape.kd != T(0)) dz -= tape.kd * tape.teacher;
  dz *= tape.weight;
  RowMatrix<T> dn = dz * m.classifier;
  RowMatrix<T> dx = RowMatrix<T>::Zero(n, sh.dim);
  rmsnorm_backward(tape.x_final, m.rms_final, tape.rinv_final, dn, dx);

  RowMatrix<T> dq_in, dh, dgate, dup, df, dq, dk, dv, datt;
  for (int l = sh.n_layers - 1; l >= 0; --l) {
    const LayerView<T>& w = m.layers[static_cast<std::size_t>(l)];
    const LayerTape<T>& lt = tape.layers[static_cast<std::size_t>(l)];
    const std::size_t s0 = static_cast<std::size_t>(l * kSitesPerLayer);
    // FFN: x_out = x_mid + fq(h) W2ᵀ.
    dq_in.noalias() = dx * w.w2;
    fake_quant_backward(lt.h, sites[s0 + 3], dq_in, dh, grads.scale[s0 + 3]);
    if (m.down_rotation.size() != 0) dh = (dh * m.down_rotation.transpose()).eval();  // h_rot = h R
    swiglu_backward(lt.gate, lt.up, dh, dgate, dup);
    dq_in.noalias() = dgate * w.w1;
    dq_in.noalias() += dup * w.w3;
    fake_quant_backward(lt.n2, sites[s0 + 2], dq_in, df, grads.scale[s0 + 2]);
    rmsnorm_backward(lt.x_mid, w.rms_ffn, lt.rinv2, df, dx);
    // Attention: x_mid = x_in + fq(att) Woᵀ.
    dq_in.noalias() = dx * w.wo;
    fake_quant_backward(lt.att, sites[s0 + 1], dq_in, datt, grads.scale[s0 + 1]);
    attention_backward(lt.q, lt.k, lt.v, lt.probs, datt, sh, dq, dk, dv);
    rope_backward(dq, sh.head_size(), m.rope_theta);
    rope_backward(dk, sh.head_size(), m.rope_theta);
    dq_in.noalias() = dq * w.wq;
    dq_in.noalias() += dk * w.wk;
    dq_in.noalias() += dv * w.wv;
    fake_quant_backward(lt.n1, sites[s0 + 0], dq_in, df, grads.scale[s0 + 0]);
    rmsnorm_backward(lt.x_in, w.rms_att, lt.rinv1, df, dx);
  }
  grads.embedded = std::move(dx);
}

}  // namespace sasq::llama::grad
