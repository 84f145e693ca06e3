// GEMM epilogue stages: what turns the int32 accumulators of C = A·Wᵀ into the stored output.
//   acc_g[m][n] = Σ_{k in group g} (a[m][k] - z[m]) · w[n][k]            (exact, int32)
//   y  = fmaf(float(acc_g), ws[n][g], y)  for g = 0, 1, ...  (from y = 0)  dequantize, weight scales
//   y  = fmaf(y, as[m], bias[n])          (bias = 0 without a bias)       dequantize, row scale + bias
//   y  = y / (1 + expf(-y))               SiLU;   y = silu(y_gate) · y_up  SwiGLU of a gate/up pair
//   q  = clamp(rne(y · (1.0f / os)), -128, 127)                            requantize (int8 output)
// Every multiply that feeds an add is an explicit fmaf, so compiler contraction (-ffp-contract) can
// not make two implementations disagree: scalar and SIMD kernels are bit-exact to this definition.
#pragma once

#include <cmath>
#include <cstdint>

#include "sasq/core/config.hpp"
#include "sasq/core/span.hpp"
#include "sasq/quant/rounding.hpp"

namespace sasq {

/// Elementwise activation applied after dequantize + bias.
enum class Activation {
  kNone,    ///< y stays as is
  kSilu,    ///< y / (1 + exp(-y))
  kSwiGlu,  ///< silu(gate) · up; needs weights packed as a gate/up pair (WeightFormat::gate_up_pair)
};

/// The epilogue of one gemm call, applied stage by stage in the order of the header formula:
/// dequantize (always), bias (when `bias` is non-empty), `activation`, then store as f32, or
/// requantize with `output_scale` when C is int8. Holds views only; the caller owns `bias`.
struct Epilogue {
  /// Empty, or one float per weight row: N entries, or 2F (gate rows then up rows) for a gate/up
  /// pair, added before the activation (nn.Linear bias, in the output's real units).
  Span<const float> bias;
  Activation activation = Activation::kNone;
  /// Static scale of an int8 output C (SASQ: the next layer's input scale); must be finite and > 0
  /// when C is int8, ignored for f32 output.
  float output_scale = 1.0f;
};

namespace epilogue {

/// Dequantize stage: weight-scale accumulation over groups, then row scale and bias in one fmaf.
struct Dequantize {
  /// Adds one group's exact integer dot product times its weight scale: fmaf(float(acc), ws, y).
  SASQ_HOST_DEVICE static float apply_group(float y, std::int32_t acc, float weight_scale) {
    return fmaf(static_cast<float>(acc), weight_scale, y);
  }
  /// Applies the activation (row) scale and adds the bias (0.0f when there is none).
  SASQ_HOST_DEVICE static float apply_row(float y, float act_scale, float bias) {
    return fmaf(y, act_scale, bias);
  }
};

/// SiLU (Swish-1) as in LLaMA's MLP: y / (1 + expf(-y)); -inf-safe (gives -0 for y -> -inf).
struct Silu {
  SASQ_HOST_DEVICE static float apply(float y) { return y / (1.0f + expf(-y)); }
};

/// SwiGLU product of one gate/up pair: silu(gate) · up (LLaMA: down_proj(silu(gate) ⊙ up)).
struct SwiGlu {
  SASQ_HOST_DEVICE static float apply(float gate, float up) { return Silu::apply(gate) * up; }
};

/// Requantize to int8 with a static output scale, given inv_scale = 1.0f / output_scale computed
/// once in float: clamp(rne(y · inv_scale), -128, 127); NaN maps to 0.
struct Requantize {
  SASQ_HOST_DEVICE static std::int8_t apply(float y, float inv_scale) {
    const float r = round_half_even(y * inv_scale);
    const float c = r < -128.0f ? -128.0f : (r > 127.0f ? 127.0f : (r == r ? r : 0.0f));
    return static_cast<std::int8_t>(static_cast<int>(c));
  }
};

/// Store stages: the final value written to C.
struct StoreF32 {
  SASQ_HOST_DEVICE static void apply(float y, float* dst, float /*inv_scale*/) { *dst = y; }
};
struct StoreS8 {
  SASQ_HOST_DEVICE static void apply(float y, std::int8_t* dst, float inv_scale) {
    *dst = Requantize::apply(y, inv_scale);
  }
};

/// The store stage for an output element type (float or int8_t).
template <class TC>
struct StoreFor;
template <>
struct StoreFor<float> {
  using type = StoreF32;
};
template <>
struct StoreFor<std::int8_t> {
  using type = StoreS8;
};

}  // namespace epilogue
}  // namespace sasq
