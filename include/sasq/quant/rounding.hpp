// Rounding modes. Normative: round half to even (IEEE roundTiesToEven, PyTorch's round()).
#pragma once

#include <cmath>

#include "sasq/core/config.hpp"

namespace sasq {

/// How a real value x / scale is rounded to the integer grid.
enum class RoundMode {
  kHalfToEven,    ///< normative: 0.5 -> 0, 1.5 -> 2, 2.5 -> 2, -0.5 -> -0, -1.5 -> -2
  kHalfAwayFromZero,  ///< gemmlowp / std::round: 0.5 -> 1, -0.5 -> -1, 2.5 -> 3
};

/// Round half to even. Requires the default floating-point environment (round-to-nearest, as
/// every SIMD and CUDA path also assumes) and no -ffast-math / -fassociative-math, which would fold
/// the 2^23 add/subtract below; docs/numerics.md lists these requirements.
SASQ_HOST_DEVICE inline float round_half_even(float x) {
#if defined(__CUDA_ARCH__)
  return rintf(x);  // device default rounding is to nearest even
#else
  // |x| >= 2^23 is already an integer; otherwise add and subtract 2^23 (exact in round-to-nearest).
  const float ax = std::fabs(x);
  if (!(ax < 8388608.0f)) return x;
  const float r = (ax + 8388608.0f) - 8388608.0f;
  return std::copysign(r, x);
#endif
}

SASQ_HOST_DEVICE inline float round_half_away(float x) {
#if defined(__CUDA_ARCH__)
  return roundf(x);
#else
  return std::round(x);
#endif
}

/// Rounds x with the given mode.
SASQ_HOST_DEVICE inline float round_with(float x, RoundMode mode) {
  return mode == RoundMode::kHalfToEven ? round_half_even(x) : round_half_away(x);
}

}  // namespace sasq
