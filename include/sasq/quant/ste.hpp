// Straight-through estimators: forward = fake quantization, backward = partial derivatives of
// the output x^ w.r.t. the input and the learned parameter, with round() treated as identity.
//   LSQ:  x^ = s * clamp(rne(x/s), qmin, qmax);  dx^/ds = rne(x/s) - x/s inside, qmin / qmax outside
#pragma once

#include <cmath>
#include <cstddef>

#include "sasq/core/config.hpp"
#include "sasq/core/status.hpp"
#include "sasq/quant/affine.hpp"
#include "sasq/quant/rounding.hpp"
#include "sasq/quant/scheme.hpp"

namespace sasq::ste {

/// Partial derivatives of one output element: dx = dx^/dx, dparam = dx^/d(learned parameter).
struct Grad {
  float dx;
  float dparam;
};

/// Partial derivatives for a quantizer with a learned scale and a learned offset (LSQ+).
struct Grad2 {
  float dx;
  float ds;
  float doffset;
};

/// Plain STE for rounding: forward rne(x), backward d/dx = 1 (round treated as identity).
/// No learned parameter, so dparam = 0.
struct Ste {
  SASQ_HOST_DEVICE static float forward(float x) { return round_half_even(x); }
  SASQ_HOST_DEVICE static Grad backward(float /*x*/) { return {1.0f, 0.0f}; }
};

/// Fake quantization with a fixed parameter p (any grid, any zero point): forward =
/// fake_quantize_value<GridT>(x, p); backward dx = 1 where qmin - z <= x * inv_scale <= qmax - z
/// (x in [(qmin - z) s, (qmax - z) s], bounds included), else 0. The parameter is not learned: dparam = 0.
template <class GridT>
struct ClippedSte {
  SASQ_HOST_DEVICE static float forward(float x, QuantParam p) {
    return fake_quantize_value<GridT>(x, p);
  }
  SASQ_HOST_DEVICE static Grad backward(float x, QuantParam p) {
    // Compared like quantize_value's clamp (v against qmin - z, qmax - z; no add to fuse).
    const float v = x * p.inv_scale;
    const bool inside = v >= static_cast<float>(GridT::kQmin - p.zero_point) &&
                        v <= static_cast<float>(GridT::kQmax - p.zero_point);
    return {inside ? 1.0f : 0.0f, 0.0f};
  }
};

/// LSQ (Esser et al. 2020, arXiv 1902.08153): learned step size s, zero point 0.
/// forward(x, s) = s * clamp(rne(x * (1/s)), qmin, qmax), bit-identical to
/// fake_quantize_value<GridT>(x, QuantParam::make(s)). With v = x * (1/s):
///   v < qmin: {dx 0, ds qmin};  v > qmax: {dx 0, ds qmax};  otherwise {dx 1, ds rne(v) - v}.
/// This is the exact derivative of the surrogate s * clamp(v + r) with the rounding residual
/// r = rne(v) - v held constant (PyTorch's round_pass). Multiply the summed ds by
/// lsq_grad_scale() for LSQ's gradient scaling. Requires s > 0 (not checked: kernels validate).
template <class GridT>
struct Lsq {
  SASQ_HOST_DEVICE static float forward(float x, float s) {
    return fake_quantize_value<GridT>(x, QuantParam::make(s, 0));
  }
  SASQ_HOST_DEVICE static Grad backward(float x, float s) {
    const float v = x * (1.0f / s);
    if (v < static_cast<float>(GridT::kQmin)) return {0.0f, static_cast<float>(GridT::kQmin)};
    if (v > static_cast<float>(GridT::kQmax)) return {0.0f, static_cast<float>(GridT::kQmax)};
    return {1.0f, round_half_even(v) - v};
  }
};

/// LSQ's gradient scale g = 1 / sqrt(n * qmax): n = elements per quantizer (weights) or
/// features per example (activations). Throws for n == 0 or qmax <= 0.
inline float lsq_grad_scale(std::size_t n, int qmax) {
  SASQ_REQUIRE(n > 0 && qmax > 0, "need n > 0 and qmax > 0, got n = ", n, ", qmax = ", qmax);
  return 1.0f / std::sqrt(static_cast<float>(n) * static_cast<float>(qmax));
}

/// LSQ+ (Bhalgat et al. 2020, arXiv 2004.09576): learned scale s and offset beta,
/// q = quantize_value<GridT>(x - beta, QuantParam::make(s)) = clamp(rne((x - beta) * (1/s)), qmin, qmax),
/// x^ = fmaf(s, q, beta): one explicit fused multiply-add, so compiler contraction (nvcc fuses
/// s * q + beta by default) cannot make host and device disagree.
/// With v = (x - beta) * (1/s): v < qmin: {0, qmin, 1}; v > qmax: {0, qmax, 1};
/// otherwise {1, rne(v) - v, 0}.
template <class GridT>
struct LsqPlus {
  SASQ_HOST_DEVICE static float forward(float x, float s, float beta) {
    const int q = quantize_value<GridT>(x - beta, QuantParam::make(s, 0));
    return fmaf(s, static_cast<float>(q), beta);
  }
  SASQ_HOST_DEVICE static Grad2 backward(float x, float s, float beta) {
    const float v = (x - beta) * (1.0f / s);
    if (v < static_cast<float>(GridT::kQmin)) return {0.0f, static_cast<float>(GridT::kQmin), 1.0f};
    if (v > static_cast<float>(GridT::kQmax)) return {0.0f, static_cast<float>(GridT::kQmax), 1.0f};
    return {1.0f, round_half_even(v) - v, 0.0f};
  }
};

/// PACT (Choi et al. 2018, arXiv 1805.06085): learned clip alpha > 0 on [0, alpha] with
/// L = 2^Bits - 1 levels: y = clamp(x, 0, alpha), x^ = rne(y * (1/s)) * s with s = alpha / L
/// (= fake_quantize_value<Grid<Bits, Asymmetric>>(y, QuantParam::make(alpha / L))).
/// PACT's gradient treats the whole quantizer as identity on y (x^ ~ y):
///   dx = 1 for 0 <= x < alpha, else 0;  dalpha = 1 for x >= alpha, else 0.
template <int Bits>
struct Pact {
  using grid = Grid<Bits, Asymmetric>;
  static constexpr int kLevels = (1 << Bits) - 1;

  SASQ_HOST_DEVICE static float forward(float x, float alpha) {
    const float y = x < 0.0f ? 0.0f : (x > alpha ? alpha : x);
    return fake_quantize_value<grid>(y, QuantParam::make(alpha / static_cast<float>(kLevels), 0));
  }
  SASQ_HOST_DEVICE static Grad backward(float x, float alpha) {
    if (x >= alpha) return {0.0f, 1.0f};
    return {x >= 0.0f ? 1.0f : 0.0f, 0.0f};
  }
};

}  // namespace sasq::ste
