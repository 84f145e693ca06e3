// Function-preserving transforms of LLaMA layers on weight views (nn.Linear layout W[out][in]):
// RMSNorm folding, SmoothQuant/SmoothRot smoothing per site, and QuaRot rotation, with
//   RMSNorm(x) = x / sqrt(mean(x²) + ε) · g,   RMSNorm(x Q) = RMSNorm(x) Q  when g = 1 and Q orthogonal.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "sasq/core/matrix_view.hpp"
#include "sasq/core/span.hpp"
#include "sasq/core/status.hpp"
#include "sasq/transform/rotation.hpp"
#include "sasq/transform/smoothing.hpp"

namespace sasq {

/// Views of one LLaMA decoder layer's weights, modified in place by the transforms below.
/// dim = model width, hidden = FFN width, q_dim = n_heads · head_dim, kv_dim = n_kv_heads · head_dim.
/// Forward: h = x + wo(attn(q, k, v)) with q/k/v = RMSNorm(x; attn_norm) wq/wk/wvᵀ;
///          out = h + w2(silu(u w1ᵀ) ⊙ (u w3ᵀ)) with u = RMSNorm(h; ffn_norm).
struct LlamaLayerViews {
  Span<float> attn_norm;  ///< [dim] RMSNorm weight before q/k/v
  MatrixView<float> wq;   ///< [q_dim][dim]
  MatrixView<float> wk;   ///< [kv_dim][dim]
  MatrixView<float> wv;   ///< [kv_dim][dim]
  MatrixView<float> wo;   ///< [dim][q_dim]
  Span<float> ffn_norm;   ///< [dim] RMSNorm weight before gate/up
  MatrixView<float> w1;   ///< gate [hidden][dim]
  MatrixView<float> w3;   ///< up [hidden][dim]
  MatrixView<float> w2;   ///< down [dim][hidden]
  std::ptrdiff_t head_dim = 0;
};

/// Views of a whole model: token embedding, layers, final RMSNorm and classifier (must not alias
/// the embedding: untie a tied lm_head by copying it first, as QuaRot does).
struct LlamaModelViews {
  MatrixView<float> embedding;   ///< [vocab][dim]; row = the residual-stream vector of a token
  std::vector<LlamaLayerViews> layers;
  Span<float> final_norm;        ///< [dim]
  MatrixView<float> classifier;  ///< [vocab][dim]
};

/// Throws a clear Error when the shapes of a layer are inconsistent.
inline void check_layer(const LlamaLayerViews& l) {
  const std::ptrdiff_t dim = static_cast<std::ptrdiff_t>(l.attn_norm.size());
  SASQ_REQUIRE(dim > 0 && static_cast<std::ptrdiff_t>(l.ffn_norm.size()) == dim, "norm weights have ",
               l.attn_norm.size(), " and ", l.ffn_norm.size(), " elements");
  SASQ_REQUIRE(l.wq.cols() == dim && l.wk.cols() == dim && l.wv.cols() == dim, "wq/wk/wv must have ", dim,
               " input columns, got ", l.wq.cols(), "/", l.wk.cols(), "/", l.wv.cols());
  SASQ_REQUIRE(l.wk.rows() == l.wv.rows(), "wk has ", l.wk.rows(), " rows, wv ", l.wv.rows());
  SASQ_REQUIRE(l.wo.rows() == dim && l.wo.cols() == l.wq.rows(), "wo is ", l.wo.rows(), "x", l.wo.cols(),
               ", expected ", dim, "x", l.wq.rows());
  SASQ_REQUIRE(l.w1.cols() == dim && l.w3.cols() == dim && l.w1.rows() == l.w3.rows(), "w1 ", l.w1.rows(),
               "x", l.w1.cols(), " and w3 ", l.w3.rows(), "x", l.w3.cols(), " must both be hidden x ", dim);
  SASQ_REQUIRE(l.w2.rows() == dim && l.w2.cols() == l.w1.rows(), "w2 is ", l.w2.rows(), "x", l.w2.cols(),
               ", expected ", dim, "x", l.w1.rows());
  SASQ_REQUIRE(l.head_dim > 0 && l.wq.rows() % l.head_dim == 0 && l.wv.rows() % l.head_dim == 0,
               "head_dim ", l.head_dim, " does not divide q_dim ", l.wq.rows(), " and kv_dim ", l.wv.rows());
}

namespace detail {
inline void fold_norm_into_columns(Span<float> g, const std::vector<MatrixView<float>>& ws) {
  for (const auto& w : ws) scale_columns(w, g);
  for (float& v : g) v = 1.0f;
}
inline bool all_ones(Span<const float> g) {
  for (float v : g) {
    if (v != 1.0f) return false;
  }
  return true;
}
}  // namespace detail

/// Folds both RMSNorm weights into the linears that read them: wq/wk/wv <- W diag(g_attn),
/// w1/w3 <- W diag(g_ffn); the norm weights become 1. Exact up to float rounding.
inline void fold_rmsnorm(LlamaLayerViews& l) {
  check_layer(l);
  detail::fold_norm_into_columns(l.attn_norm, {l.wq, l.wk, l.wv});
  detail::fold_norm_into_columns(l.ffn_norm, {l.w1, l.w3});
}

/// Folds the final RMSNorm weight into the classifier columns; final_norm becomes 1.
inline void fold_final_norm(LlamaModelViews& m) {
  SASQ_REQUIRE(m.classifier.cols() == static_cast<std::ptrdiff_t>(m.final_norm.size()), "classifier has ",
               m.classifier.cols(), " columns, final norm ", m.final_norm.size());
  detail::fold_norm_into_columns(m.final_norm, {m.classifier});
}

/// SmoothQuant at the attention input: s from act_absmax (max_t |RMSNorm output|, per channel,
/// measured on the unmodified layer) and max over wq/wk/wv; attn_norm <- g / s, wq/wk/wv <- W diag(s).
/// Returns s.
inline std::vector<float> smooth_attn_input(LlamaLayerViews& l, Span<const float> act_absmax, float alpha) {
  check_layer(l);
  std::vector<float> s = smooth_scales(act_absmax, {l.wq, l.wk, l.wv}, alpha);
  fold_into_norm(l.attn_norm, s);
  for (auto w : {l.wq, l.wk, l.wv}) scale_columns(w, s);
  return s;
}

/// SmoothQuant at the FFN input (gate/up): ffn_norm <- g / s, w1/w3 <- W diag(s). Returns s.
inline std::vector<float> smooth_ffn_input(LlamaLayerViews& l, Span<const float> act_absmax, float alpha) {
  check_layer(l);
  std::vector<float> s = smooth_scales(act_absmax, {l.w1, l.w3}, alpha);
  fold_into_norm(l.ffn_norm, s);
  for (auto w : {l.w1, l.w3}) scale_columns(w, s);
  return s;
}

/// SmoothRot's smoothing of down_proj's input (arXiv 2506.05413): act_absmax = max_t |silu(gate)·up|
/// per hidden channel; w3 rows <- w3 rows / s (so the SwiGLU product is divided by s),
/// w2 <- w2 diag(s). Returns s.
inline std::vector<float> smooth_down_input(LlamaLayerViews& l, Span<const float> act_absmax, float alpha) {
  check_layer(l);
  std::vector<float> s = smooth_scales(act_absmax, {l.w2}, alpha);
  fold_into_rows(l.w3, s);
  scale_columns(l.w2, s);
  return s;
}

/// Rotates the residual stream by Q (order dim): embedding <- E Q, wq/wk/wv/w1/w3 <- W Q,
/// wo/w2 <- Qᵀ W, classifier <- C Q. Requires folded norms (all RMSNorm weights 1; call
/// fold_rmsnorm / fold_final_norm first), otherwise RMSNorm does not commute with Q.
inline void rotate_residual(LlamaModelViews& m, const Rotation& q) {
  const std::size_t dim = q.size();
  SASQ_REQUIRE(static_cast<std::size_t>(m.embedding.cols()) == dim && m.final_norm.size() == dim,
               "rotation order ", dim, " does not match the model width ", m.embedding.cols());
  SASQ_REQUIRE(detail::all_ones(m.final_norm), "final norm weight is not folded (call fold_final_norm)");
  for (const auto& l : m.layers) {
    check_layer(l);
    SASQ_REQUIRE(detail::all_ones(l.attn_norm) && detail::all_ones(l.ffn_norm),
                 "layer norm weights are not folded (call fold_rmsnorm)");
  }
  rotate_linear_input(m.embedding, q);  // token rows are residual vectors: x -> x Q
  for (const auto& l : m.layers) {
    for (auto w : {l.wq, l.wk, l.wv, l.w1, l.w3}) rotate_linear_input(w, q);
    for (auto w : {l.wo, l.w2}) rotate_linear_output(w, q);
  }
  rotate_linear_input(m.classifier, q);
}

/// Online rotation of down_proj's input (QuaRot R4): w2 <- w2 H (order hidden). The runtime must
/// apply the same H to the down_proj input, u <- u H (apply_rotation(h, u)), before quantizing it.
inline void rotate_down_input(LlamaLayerViews& l, const Rotation& h) {
  check_layer(l);
  rotate_linear_input(l.w2, h);
}

/// Per-head rotation of the value/output path (QuaRot R2, fused, no runtime cost): every value head
/// v_h <- v_h H (wv row block h <- Hᵀ block), and wo's column block of every query head <- block H.
/// Attention mixes tokens, not channels, so each head's output is rotated by H too. Order = head_dim.
inline void rotate_value_output_per_head(LlamaLayerViews& l, const Rotation& h) {
  check_layer(l);
  const std::ptrdiff_t hd = l.head_dim;
  SASQ_REQUIRE(static_cast<std::ptrdiff_t>(h.size()) == hd, "rotation order ", h.size(), " != head_dim ", hd);
  for (std::ptrdiff_t r0 = 0; r0 < l.wv.rows(); r0 += hd) {
    rotate_linear_output(l.wv.block(r0, 0, hd, l.wv.cols()), h);
  }
  for (std::ptrdiff_t c0 = 0; c0 < l.wo.cols(); c0 += hd) {
    rotate_linear_input(l.wo.block(0, c0, l.wo.rows(), hd), h);
  }
}

/// The rotations of a QuaRot-style model transform.
struct QuaRotPlan {
  Rotation residual;  ///< order dim: randomized Hadamard R1 (or fallback, see hadamard_or_orthogonal)
  Rotation down;      ///< order hidden: online rotation of down_proj inputs (R4)
  Rotation head;      ///< order head_dim: per-head value/output rotation (R2)
};

/// Default plan: R1 = randomized (±1 diagonal) rotation of order dim, R4 = exact Hadamard of order
/// hidden when constructible (else the seeded fallback), R2 = Hadamard of order head_dim (or fallback).
inline QuaRotPlan make_quarot_plan(std::size_t dim, std::size_t hidden, std::size_t head_dim,
                                   std::uint64_t seed) {
  return {Rotation::hadamard_or_orthogonal(dim, seed, /*randomize=*/true),
          Rotation::hadamard_or_orthogonal(hidden, seed + 1), Rotation::hadamard_or_orthogonal(head_dim, seed + 2)};
}

/// Applies the whole QuaRot transform in place: fold every RMSNorm (layers and final), rotate the
/// residual stream by plan.residual, per-head value/output rotation by plan.head, and w2 <- w2 H for
/// the online down_proj rotation. Afterwards the runtime must apply plan.down to every down_proj
/// input (apply_rotation) — the only runtime change; all norm weights are 1.
inline void apply_quarot(LlamaModelViews& m, const QuaRotPlan& plan) {
  for (auto& l : m.layers) fold_rmsnorm(l);
  fold_final_norm(m);
  rotate_residual(m, plan.residual);
  for (auto& l : m.layers) {
    rotate_value_output_per_head(l, plan.head);
    rotate_down_input(l, plan.down);
  }
}

}  // namespace sasq
