// Recording forward pass of the minimal LLaMA for training activation-quantizer scales, on any
// scalar type (float to train, double for finite-difference checks). Weights are read-only views.
//   per layer:  a = fq_attn(rmsnorm(x, g_att));  q = rope(a Wqᵀ), k = rope(a Wkᵀ), v = a Wvᵀ
//               x = x + fq_oproj(attention(q, k, v)) Woᵀ
//               f = fq_ffn(rmsnorm(x, g_ffn));   x = x + fq_down(silu(f W1ᵀ) ⊙ f W3ᵀ) W2ᵀ
//   loss = w · Σ_t (logsumexp(z_t) − z_t[y_t]),   z = rmsnorm(x, g_final) Wclsᵀ
//   with a teacher (distillation weight α, teacher probabilities p_t):
//   loss = w · Σ_t (logsumexp(z_t) − (1 − α) z_t[y_t] − α Σ_j p_tj z_tj)
//        = w · Σ_t ((1 − α) CE_t + α (KL(p_t ‖ softmax z_t) + H(p_t)))   (H: the teacher's entropy, constant)
//   fq(x) = s · clamp(rne(x · (1/s)), qmin, qmax)   (symmetric grid, per tensor or per column)
#pragma once

#include <Eigen/Core>

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <type_traits>
#include <vector>

#include "llama/weights.hpp"
#include "sasq/core/span.hpp"
#include "sasq/core/status.hpp"
#include "sasq/quant/rounding.hpp"
#include "sasq/transform/rotation.hpp"

namespace sasq::llama::grad {

template <class T>
using RowMatrix = Eigen::Matrix<T, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
template <class T>
using ConstMatrixMap = Eigen::Map<const RowMatrix<T>>;

/// Quantizer sites of one layer in forward order: attention input (shared by q, k, v), o_proj
/// input, FFN input (shared by gate and up), down_proj input. Site index = layer * 4 + site.
inline constexpr int kSitesPerLayer = 4;

/// Model dimensions (llama2.c names).
struct Shape {
  int dim = 0;
  int hidden_dim = 0;
  int n_layers = 0;
  int n_heads = 0;
  int n_kv_heads = 0;
  int vocab_size = 0;
  int head_size() const { return dim / n_heads; }
  int kv_dim() const { return n_kv_heads * head_size(); }
  int n_sites() const { return n_layers * kSitesPerLayer; }
  /// Number of input channels of site `site` (index within a layer).
  int site_channels(int site) const { return site == 3 ? hidden_dim : dim; }
};

/// Read-only views of one layer's weights in the nn.Linear layout W[out][in].
template <class T>
struct LayerView {
  const T* rms_att;  ///< [dim]
  ConstMatrixMap<T> wq, wk, wv, wo;
  const T* rms_ffn;  ///< [dim]
  ConstMatrixMap<T> w1, w2, w3;  ///< gate [hidden][dim], down [dim][hidden], up [hidden][dim]
};

/// Read-only views of a whole model. Nothing here is ever written by training.
template <class T>
struct ModelView {
  Shape shape;
  const T* embedding = nullptr;  ///< [vocab][dim]
  std::vector<LayerView<T>> layers;
  const T* rms_final = nullptr;  ///< [dim]
  ConstMatrixMap<T> classifier{nullptr, 0, 0};  ///< [vocab][dim]
  T eps = T(1e-5);
  /// Online rotation R of a rotated model's down_proj inputs (h <- h R before quantization,
  /// QuaRot's R4), [hidden][hidden]; empty = none. Backward applies Rᵀ.
  RowMatrix<T> down_rotation;
  T rope_theta = T(10000);  ///< RoPE base
};

/// Float views of a loaded (possibly weight-quantized) model; `w` must outlive the view. `down`:
/// the online down_proj rotation of a rotated model (copied densely), or null.
inline ModelView<float> view_of(const Weights& w, const Rotation* down = nullptr) {
  const Config& c = w.config;
  using Map = ConstMatrixMap<float>;
  auto map = [](const Matrix& m) { return Map(m.data(), m.rows(), m.cols()); };
  ModelView<float> m{Shape{c.dim, c.hidden_dim, c.n_layers, c.n_heads, c.n_kv_heads, c.vocab_size},
                     w.token_embedding.data(), {}, w.rms_final.data(), map(w.classifier()), c.rms_norm_eps, {}, c.rope_theta};
  for (const LayerWeights& L : w.layers)
    m.layers.push_back({L.rms_att.data(), map(L.wq), map(L.wk), map(L.wv), map(L.wo), L.rms_ffn.data(),
                        map(L.w1), map(L.w2), map(L.w3)});
  if (down) {
    SASQ_REQUIRE(static_cast<int>(down->size()) == c.hidden_dim, "down_proj rotation of order ", down->size(),
                 " for hidden_dim ", c.hidden_dim);
    const std::vector<float> r = down->dense();
    m.down_rotation = Eigen::Map<const RowMatrix<float>>(r.data(), c.hidden_dim, c.hidden_dim);
  }
  return m;
}

/// One activation quantizer. Disabled sites pass values through. `scale` holds one value (per
/// tensor) or one per input channel (per channel); the grid is symmetric (zero point 0).
template <class T>
struct SiteQuantizer {
  bool enabled = false;
  int qmin = -127;
  int qmax = 127;
  std::vector<T> scale;
};

/// Rounding frozen at a base point, so that finite differences see the function whose exact
/// derivatives are the STE/LSQ gradients: inside the range x̂ = x + s·c with c = rne(x/s) − x/s
/// recorded; outside x̂ = s·qmin or s·qmax. Used only by gradient checks.
template <class T>
struct FrozenRounding {
  bool replay = false;  ///< false: record on the next forward; true: reuse the recorded values
  std::vector<std::vector<T>> residual;          ///< per site, per element
  std::vector<std::vector<signed char>> branch;  ///< −1 below, 0 inside, +1 above the range
};

/// Intermediates of one layer kept for the backward pass.
template <class T>
struct LayerTape {
  RowMatrix<T> x_in, n1, a, q, k, v, att, o, x_mid, n2, f, gate, up, h, hq;
  std::vector<T> rinv1, rinv2;
  std::vector<RowMatrix<T>> probs;  ///< per query head, [t][t'] causal softmax
};

/// Everything the backward pass needs for one sequence.
template <class T>
struct Tape {
  std::vector<int> targets;
  T weight = T(1);
  std::vector<LayerTape<T>> layers;
  RowMatrix<T> x_final, n_final, probs;  ///< probs: softmax of the logits [t][vocab]
  std::vector<T> rinv_final;
  std::vector<std::int64_t> clipped;  ///< per site: elements outside [qmin, qmax]·s
  std::vector<std::int64_t> count;    ///< per site: elements quantized
  RowMatrix<T> teacher;  ///< teacher probabilities [t][vocab] (distillation), empty without one
  T kd = T(0);           ///< distillation weight α of the teacher term
  T loss = T(0);
};

/// Soft targets of a distillation loss: the teacher's next-token probabilities [t][vocab] for the
/// same sequence (e.g. Tape::probs of an unquantized forward) and the weight α ∈ (0, 1] of the
/// teacher term (1 − α stays on the hard label).
template <class T>
struct Distillation {
  const RowMatrix<T>* teacher = nullptr;
  T weight = T(1);
};

/// Round half to even in T (sasq's normative rounding in float, nearbyint in double).
template <class T>
inline T rne(T v) {
  if constexpr (std::is_same_v<T, float>) {
    return round_half_even(v);
  } else {
    return std::nearbyint(v);
  }
}

/// y = x / sqrt(mean(x²) + eps) ⊙ g per row (llama2.c order); stores 1/sqrt(mean + eps) per row.
template <class T>
void rmsnorm_forward(const RowMatrix<T>& x, const T* g, T eps, RowMatrix<T>& y, std::vector<T>& rinv) {
  const Eigen::Index n = x.rows(), d = x.cols();
  y.resize(n, d);
  rinv.resize(static_cast<std::size_t>(n));
  for (Eigen::Index t = 0; t < n; ++t) {
    T ss = x.row(t).squaredNorm() / static_cast<T>(d) + eps;
    const T r = T(1) / std::sqrt(ss);
    rinv[static_cast<std::size_t>(t)] = r;
    for (Eigen::Index j = 0; j < d; ++j) y(t, j) = g[j] * (r * x(t, j));
  }
}

/// Rotates adjacent pairs (x[2i], x[2i+1]) of each head by pos · theta^(−(2i mod hs)/hs), pos = row
/// index (llama2.c RoPE); `inverse` rotates by the negative angle (the transpose, used by backward).
template <class T>
void rope_rotate(RowMatrix<T>& x, int head_size, bool inverse, T theta = T(10000)) {
  std::vector<T> c(static_cast<std::size_t>(head_size / 2)), s(c.size());
  for (Eigen::Index t = 0; t < x.rows(); ++t) {
    for (int j = 0; j < head_size / 2; ++j) {
      const T freq = T(1) / std::pow(theta, static_cast<T>(2 * j) / static_cast<T>(head_size));
      const T val = static_cast<T>(t) * freq;
      c[static_cast<std::size_t>(j)] = std::cos(val);
      s[static_cast<std::size_t>(j)] = inverse ? -std::sin(val) : std::sin(val);
    }
    for (Eigen::Index i = 0; i + 1 < x.cols(); i += 2) {
      const std::size_t j = static_cast<std::size_t>((i % head_size) / 2);
      const T v0 = x(t, i), v1 = x(t, i + 1);
      x(t, i) = v0 * c[j] - v1 * s[j];
      x(t, i + 1) = v0 * s[j] + v1 * c[j];
    }
  }
}

/// Query rows per block of the causal attention: block [r0, r0 + B) only meets keys [0, r0 + B),
/// which skips most of the masked upper triangle.
inline constexpr Eigen::Index kAttentionBlock = 32;

/// Causal grouped-query attention of one sequence: query head h uses KV head h / (n_heads /
/// n_kv_heads); scores scaled by 1/sqrt(head_size); softmax with max subtraction. Stores the
/// probabilities per head ([t][t'], zero above the diagonal).
template <class T>
void attention_forward(const RowMatrix<T>& q, const RowMatrix<T>& k, const RowMatrix<T>& v,
                       const Shape& shape, RowMatrix<T>& out, std::vector<RowMatrix<T>>& probs) {
  const int hs = shape.head_size();
  const int group = shape.n_heads / shape.n_kv_heads;
  const Eigen::Index n = q.rows();
  const T scale = T(1) / std::sqrt(static_cast<T>(hs));
  out.resize(n, q.cols());
  probs.resize(static_cast<std::size_t>(shape.n_heads));
  for (int h = 0; h < shape.n_heads; ++h) {
    const int kvh = h / group;
    RowMatrix<T>& p = probs[static_cast<std::size_t>(h)];
    p.setZero(n, n);
    for (Eigen::Index r0 = 0; r0 < n; r0 += kAttentionBlock) {
      const Eigen::Index len = std::min(kAttentionBlock, n - r0), r1 = r0 + len;
      auto pb = p.block(r0, 0, len, r1);
      pb.noalias() = (q.block(r0, h * hs, len, hs) * k.block(0, kvh * hs, r1, hs).transpose()) * scale;
      for (Eigen::Index i = 0; i < len; ++i) {
        const Eigen::Index t = r0 + i;
        T mx = pb(i, 0);
        for (Eigen::Index u = 1; u <= t; ++u) mx = std::max(mx, pb(i, u));
        T sum = T(0);
        for (Eigen::Index u = 0; u <= t; ++u) {
          pb(i, u) = std::exp(pb(i, u) - mx);
          sum += pb(i, u);
        }
        const T inv = T(1) / sum;
        for (Eigen::Index u = 0; u <= t; ++u) pb(i, u) *= inv;
        for (Eigen::Index u = t + 1; u < r1; ++u) pb(i, u) = T(0);
      }
      out.block(r0, h * hs, len, hs).noalias() = pb * v.block(0, kvh * hs, r1, hs);
    }
  }
}

/// Static fake quantization of x with the site's per-tensor or per-column scale; counts clipped
/// elements. With `frozen`, records (or replays) the rounding of site `index` (see FrozenRounding).
template <class T>
void fake_quant_forward(const RowMatrix<T>& x, const SiteQuantizer<T>& sq, RowMatrix<T>& y,
                        std::int64_t& clipped, FrozenRounding<T>* frozen, int index) {
  y.resize(x.rows(), x.cols());
  if (!sq.enabled) {
    y = x;
    return;
  }
  const bool per_channel = sq.scale.size() != 1;
  SASQ_ASSERT(!per_channel || sq.scale.size() == static_cast<std::size_t>(x.cols()));
  const T lo = static_cast<T>(sq.qmin), hi = static_cast<T>(sq.qmax);
  std::vector<T>* res = nullptr;
  std::vector<signed char>* br = nullptr;
  if (frozen) {
    res = &frozen->residual[static_cast<std::size_t>(index)];
    br = &frozen->branch[static_cast<std::size_t>(index)];
    if (!frozen->replay) {
      res->resize(static_cast<std::size_t>(x.size()));
      br->resize(static_cast<std::size_t>(x.size()));
    }
  }
  std::int64_t clip = 0;
  for (Eigen::Index t = 0; t < x.rows(); ++t) {
    for (Eigen::Index j = 0; j < x.cols(); ++j) {
      const T s = sq.scale[per_channel ? static_cast<std::size_t>(j) : 0];
      const std::size_t e = static_cast<std::size_t>(t * x.cols() + j);
      if (frozen && frozen->replay) {
        const signed char b = (*br)[e];
        y(t, j) = b == 0 ? x(t, j) + s * (*res)[e] : s * (b < 0 ? lo : hi);
        clip += b != 0;
        continue;
      }
      const T v = x(t, j) * (T(1) / s);
      const T r = rne(v);
      const signed char b = v < lo ? -1 : (v > hi ? 1 : 0);
      y(t, j) = s * (r < lo ? lo : (r > hi ? hi : r));
      clip += b != 0;
      if (frozen) {
        (*res)[e] = r - v;
        (*br)[e] = b;
      }
    }
  }
  clipped += clip;
}

/// Runs one sequence: inputs tokens[0..n−1], targets tokens[1..n]; returns w · Σ_t NLL_t (or the
/// distillation loss of the header with `kd`) and fills the tape. `sites` has shape.n_sites() entries.
template <class T>
T forward(const ModelView<T>& m, const std::vector<SiteQuantizer<T>>& sites, Span<const int> tokens,
          T weight, Tape<T>& tape, FrozenRounding<T>* frozen = nullptr, Distillation<T> kd = {}) {
  const Shape& sh = m.shape;
  SASQ_REQUIRE(tokens.size() >= 2, "a training sequence needs at least 2 tokens, got ", tokens.size());
  SASQ_REQUIRE(sites.size() == static_cast<std::size_t>(sh.n_sites()), "expected ", sh.n_sites(),
               " site quantizers, got ", sites.size());
  if (kd.teacher) {
    SASQ_REQUIRE(kd.weight > T(0) && kd.weight <= T(1), "distillation weight ", kd.weight, " is not in (0, 1]");
    SASQ_REQUIRE(kd.teacher->rows() == static_cast<Eigen::Index>(tokens.size()) - 1 && kd.teacher->cols() == sh.vocab_size,
                 "teacher probabilities are ", kd.teacher->rows(), "x", kd.teacher->cols(), ", expected ",
                 tokens.size() - 1, "x", sh.vocab_size);
    tape.teacher = *kd.teacher;
    tape.kd = kd.weight;
  } else {
    tape.teacher.resize(0, 0);
    tape.kd = T(0);
  }
  if (frozen && !frozen->replay) {
    frozen->residual.assign(static_cast<std::size_t>(sh.n_sites()), {});
    frozen->branch.assign(static_cast<std::size_t>(sh.n_sites()), {});
  }
  const Eigen::Index n = static_cast<Eigen::Index>(tokens.size()) - 1;
  tape.targets.assign(tokens.begin() + 1, tokens.end());
  tape.weight = weight;
  tape.clipped.assign(static_cast<std::size_t>(sh.n_sites()), 0);
  tape.count.assign(static_cast<std::size_t>(sh.n_sites()), 0);
  tape.layers.resize(static_cast<std::size_t>(sh.n_layers));

  RowMatrix<T> x(n, sh.dim);
  for (Eigen::Index t = 0; t < n; ++t) {
    const int id = tokens[static_cast<std::size_t>(t)];
    SASQ_REQUIRE(id >= 0 && id < sh.vocab_size, "token ", id, " at position ", t,
                 " is outside the vocabulary [0, ", sh.vocab_size, ")");
    x.row(t) = Eigen::Map<const Eigen::Matrix<T, 1, Eigen::Dynamic>>(
        m.embedding + static_cast<std::ptrdiff_t>(id) * sh.dim, sh.dim);
  }
  auto quant = [&](int site, const RowMatrix<T>& in, RowMatrix<T>& out) {
    const std::size_t i = static_cast<std::size_t>(site);
    fake_quant_forward(in, sites[i], out, tape.clipped[i], frozen, site);
    if (sites[i].enabled) tape.count[i] += in.size();
  };
  for (int l = 0; l < sh.n_layers; ++l) {
    const LayerView<T>& w = m.layers[static_cast<std::size_t>(l)];
    LayerTape<T>& lt = tape.layers[static_cast<std::size_t>(l)];
    const int s0 = l * kSitesPerLayer;
    lt.x_in = x;
    rmsnorm_forward(x, w.rms_att, m.eps, lt.n1, lt.rinv1);
    quant(s0 + 0, lt.n1, lt.a);
    lt.q.noalias() = lt.a * w.wq.transpose();
    lt.k.noalias() = lt.a * w.wk.transpose();
    lt.v.noalias() = lt.a * w.wv.transpose();
    rope_rotate(lt.q, sh.head_size(), false, m.rope_theta);
    rope_rotate(lt.k, sh.head_size(), false, m.rope_theta);
    attention_forward(lt.q, lt.k, lt.v, sh, lt.att, lt.probs);
    quant(s0 + 1, lt.att, lt.o);
    x.noalias() += lt.o * w.wo.transpose();
    lt.x_mid = x;
    rmsnorm_forward(x, w.rms_ffn, m.eps, lt.n2, lt.rinv2);
    quant(s0 + 2, lt.n2, lt.f);
    lt.gate.noalias() = lt.f * w.w1.transpose();
    lt.up.noalias() = lt.f * w.w3.transpose();
    lt.h.resize(n, sh.hidden_dim);
    for (Eigen::Index t = 0; t < n; ++t) {
      for (Eigen::Index j = 0; j < sh.hidden_dim; ++j) {
        const T g = lt.gate(t, j);
        lt.h(t, j) = g * (T(1) / (T(1) + std::exp(-g))) * lt.up(t, j);
      }
    }
    if (m.down_rotation.size() != 0) lt.h = (lt.h * m.down_rotation).eval();
    quant(s0 + 3, lt.h, lt.hq);
    x.noalias() += lt.hq * w.w2.transpose();
  }
  tape.x_final = x;
  rmsnorm_forward(x, m.rms_final, m.eps, tape.n_final, tape.rinv_final);
  tape.probs.noalias() = tape.n_final * m.classifier.transpose();
  T loss = T(0);
  for (Eigen::Index t = 0; t < n; ++t) {
    auto z = tape.probs.row(t);
    const int y = tape.targets[static_cast<std::size_t>(t)];
    SASQ_REQUIRE(y >= 0 && y < sh.vocab_size, "target token ", y, " at position ", t + 1,
                 " is outside the vocabulary [0, ", sh.vocab_size, ")");
    const T mx = z.maxCoeff();
    // Distillation: the target is (1 − α)·onehot(y) + α·p_teacher (the plain CE path is unchanged).
    const T zy = tape.kd == T(0) ? z(y) : (T(1) - tape.kd) * z(y) + tape.kd * tape.teacher.row(t).dot(z);
    T sum = T(0);
    for (Eigen::Index j = 0; j < z.cols(); ++j) {
      z(j) = std::exp(z(j) - mx);
      sum += z(j);
    }
    z /= sum;
    loss += std::log(sum) + mx - zy;
  }
  tape.loss = weight * loss;
  return tape.loss;
}

}  // namespace sasq::llama::grad
