// Scalar affine quantization of one value; the normative definition every kernel matches.
//   q  = clamp(round(x * inv_scale) + z, qmin, qmax),   inv_scale = 1.0f / scale (in float)
//   x^ = scale * (q - z)
#pragma once

#include <cmath>
#include <cstdint>

#include "sasq/core/config.hpp"
#include "sasq/quant/rounding.hpp"
#include "sasq/quant/scheme.hpp"

namespace sasq {

/// Scale and zero point of one quantization group. `inv_scale` is 1.0f / scale, computed once in
/// float so that every implementation multiplies by the same number (bit-exact agreement).
struct QuantParam {
  float scale = 1.0f;
  float inv_scale = 1.0f;
  std::int32_t zero_point = 0;

  SASQ_HOST_DEVICE static QuantParam make(float scale, std::int32_t zero_point = 0) {
    return {scale, 1.0f / scale, zero_point};
  }
};

/// Quantizes x onto Grid with saturation. NaN maps to the zero point (inputs are validated at API
/// entry, this only keeps the function total).
template <class GridT, RoundMode Mode = RoundMode::kHalfToEven>
SASQ_HOST_DEVICE inline int quantize_value(float x, QuantParam p) {
  const float r = round_with(x * p.inv_scale, Mode);
  // Clamp in float first so the conversion to int is always in range.
  const float lo = static_cast<float>(GridT::kQmin - p.zero_point);
  const float hi = static_cast<float>(GridT::kQmax - p.zero_point);
  const float c = r < lo ? lo : (r > hi ? hi : (r == r ? r : 0.0f));
  return static_cast<int>(c) + p.zero_point;
}

/// Maps a grid value back to a real value.
SASQ_HOST_DEVICE inline float dequantize_value(int q, QuantParam p) {
  return p.scale * static_cast<float>(q - p.zero_point);
}

/// quantize then dequantize.
template <class GridT, RoundMode Mode = RoundMode::kHalfToEven>
SASQ_HOST_DEVICE inline float fake_quantize_value(float x, QuantParam p) {
  return dequantize_value(quantize_value<GridT, Mode>(x, p), p);
}

}  // namespace sasq
