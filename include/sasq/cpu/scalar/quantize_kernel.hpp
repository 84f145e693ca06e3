// Scalar activation quantize row kernels: q = clamp(rne(x · inv_scale), -128, 127) (quant/affine.hpp,
// GridS8Full), and the abs-max reduction of dynamic per-token quantization. The portable path.
#pragma once

#include <cmath>
#include <cstddef>
#include <cstdint>

#include "sasq/cpu/isa.hpp"
#include "sasq/quant/affine.hpp"
#include "sasq/quant/scheme.hpp"

namespace sasq::cpu {

template <class Isa>
struct QuantizeKernel;

template <>
struct QuantizeKernel<isa::scalar> {
  /// Quantizes n floats; returns false if any input is NaN or infinite.
  static bool row(const float* x, std::ptrdiff_t n, float inv_scale, std::int8_t* q) {
    const QuantParam p{1.0f / inv_scale, inv_scale, 0};
    bool finite = true;
    for (std::ptrdiff_t i = 0; i < n; ++i) {
      finite &= std::fabs(x[i]) <= 3.40282347e38f;
      q[i] = static_cast<std::int8_t>(quantize_value<GridS8Full>(x[i], p));
    }
    return finite;
  }
  /// max |x| over n floats; sets finite = false on NaN / Inf.
  static float abs_max(const float* x, std::ptrdiff_t n, bool& finite) {
    float m = 0.0f;
    for (std::ptrdiff_t i = 0; i < n; ++i) {
      const float a = std::fabs(x[i]);
      finite &= a <= 3.40282347e38f;
      m = a > m ? a : m;
    }
    return m;
  }
};

}  // namespace sasq::cpu
