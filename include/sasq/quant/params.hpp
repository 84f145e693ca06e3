// Scale and zero point from a real range:
//   symmetric:  s = max(|min|, |max|) / qmax,  z = 0
//   asymmetric: lo = min(min, 0), hi = max(max, 0), s = (hi - lo) / (qmax - qmin),
//               z = clamp(rne(-lo / s), qmin, qmax)
// all in float. A zero range gives s = 1 (every value, necessarily 0, maps to z); a range whose
// scale would fall below kMinScale uses kMinScale.
#pragma once

#include <cmath>
#include <cstdint>
#include <limits>

#include "sasq/core/config.hpp"
#include "sasq/core/status.hpp"
#include "sasq/quant/affine.hpp"
#include "sasq/quant/rounding.hpp"
#include "sasq/quant/scheme.hpp"

namespace sasq {

/// Smallest scale the range formulas produce: FLT_MIN (2^-126), the smallest normal float, whose
/// reciprocal (2^126) is still finite. Nonzero ranges with a smaller scale are raised to it.
inline constexpr float kMinScale = std::numeric_limits<float>::min();

/// Throws sasq::Error(kInvalidArgument) naming `where` unless s is a usable scale: finite,
/// > 0 and with a finite reciprocal (rejects 0, negatives, NaN, Inf and scales below 2^-128).
inline void validate_scale(float s, const char* where) {
  if (std::isnan(s)) fail(ErrorCode::kInvalidArgument, where, ": scale is NaN");
  if (std::isinf(s)) fail(ErrorCode::kInvalidArgument, where, ": scale ", s, " is infinite");
  if (s == 0.0f) fail(ErrorCode::kInvalidArgument, where, ": scale is zero");
  if (s < 0.0f) fail(ErrorCode::kInvalidArgument, where, ": scale ", s, " is negative");
  if (!std::isfinite(1.0f / s)) {
    fail(ErrorCode::kInvalidArgument, where, ": scale ", s, " is too small (1/scale overflows float)");
  }
}

/// True when p passes validate_param<GridT> (no exception, for loops over many parameters).
template <class GridT>
bool is_valid_param(QuantParam p) noexcept {
  return std::isfinite(p.scale) && p.scale > 0.0f && std::isfinite(1.0f / p.scale) &&
         p.inv_scale == 1.0f / p.scale && (!GridT::kSymmetric || p.zero_point == 0) &&
         p.zero_point >= GridT::kQmin && p.zero_point <= GridT::kQmax;
}

/// Throws sasq::Error naming `where` unless p is a valid parameter of GridT: a valid scale,
/// inv_scale == 1.0f / scale exactly (as QuantParam::make computes it) and qmin <= z <= qmax
/// (z == 0 for symmetric grids).
template <class GridT>
void validate_param(QuantParam p, const char* where) {
  validate_scale(p.scale, where);
  if (p.inv_scale != 1.0f / p.scale) {
    fail(ErrorCode::kInvalidArgument, where, ": inv_scale ", p.inv_scale, " is not 1/scale for scale ",
         p.scale, " (build parameters with QuantParam::make)");
  }
  if (GridT::kSymmetric && p.zero_point != 0) {
    fail(ErrorCode::kInvalidArgument, where, ": zero point ", p.zero_point,
         " on a symmetric grid (must be 0)");
  }
  if (p.zero_point < GridT::kQmin || p.zero_point > GridT::kQmax) {
    fail(ErrorCode::kInvalidArgument, where, ": zero point ", p.zero_point, " outside [",
         GridT::kQmin, ", ", GridT::kQmax, "]");
  }
}

/// Range formula without validation, for kernels (host or device) that compute dynamic scales
/// from unscanned rows. For finite min <= max it produces exactly what param_from_range returns;
/// otherwise it still has defined behaviour: an infinite bound gives an infinite scale, and the
/// NaN zero point of a row holding both infinities becomes 0 (what the device's cvt gives).
template <class GridT>
SASQ_HOST_DEVICE inline QuantParam param_from_range_unchecked(float min, float max) {
  if constexpr (GridT::kSymmetric) {
    const float amin = min < 0.0f ? -min : min;
    const float amax = max < 0.0f ? -max : max;
    const float absmax = amin > amax ? amin : amax;
    if (absmax == 0.0f) return QuantParam::make(1.0f, 0);
    float s = absmax / static_cast<float>(GridT::kQmax);
    if (s < kMinScale) s = kMinScale;
    return QuantParam::make(s, 0);
  } else {
    const float lo = min < 0.0f ? min : 0.0f;
    const float hi = max > 0.0f ? max : 0.0f;
    if (hi == lo) return QuantParam::make(1.0f, 0);  // lo == hi == 0: z = rne(0) = 0
    float s = (hi - lo) / static_cast<float>(GridT::kQmax - GridT::kQmin);
    if (s < kMinScale) s = kMinScale;
    const float z = round_half_even(-lo / s);
    const float zmin = static_cast<float>(GridT::kQmin);
    const float zmax = static_cast<float>(GridT::kQmax);
    const float zc = z < zmin ? zmin : (z > zmax ? zmax : (z == z ? z : 0.0f));
    return QuantParam::make(s, static_cast<std::int32_t>(zc));
  }
}

/// Scale and zero point covering [min, max] on GridT (formulas in the header summary).
/// Throws sasq::Error for NaN/Inf bounds, min > max, or an asymmetric range wider than FLT_MAX.
template <class GridT>
QuantParam param_from_range(float min, float max) {
  SASQ_REQUIRE(std::isfinite(min) && std::isfinite(max), "range [", min, ", ", max,
               "] is not finite");
  SASQ_REQUIRE(min <= max, "range [", min, ", ", max, "] has min > max");
  if constexpr (!GridT::kSymmetric) {
    const float lo = min < 0.0f ? min : 0.0f;
    const float hi = max > 0.0f ? max : 0.0f;
    SASQ_REQUIRE(std::isfinite(hi - lo), "range [", min, ", ", max, "] is wider than FLT_MAX");
  }
  return param_from_range_unchecked<GridT>(min, max);
}

/// Parameter for a symmetric clip value: param_from_range<GridT>(-absmax, absmax), i.e.
/// s = absmax / qmax on symmetric grids. Throws for a negative or non-finite absmax.
template <class GridT>
QuantParam param_from_absmax(float absmax) {
  SASQ_REQUIRE(std::isfinite(absmax) && absmax >= 0.0f, "absmax ", absmax,
               " is not a finite non-negative number");
  return param_from_range<GridT>(-absmax, absmax);
}

}  // namespace sasq
