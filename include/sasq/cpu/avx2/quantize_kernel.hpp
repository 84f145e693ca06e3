// AVX2 activation quantize row kernels, 8 floats per step (scalar tail): vmulps by inv_scale, vroundps
// (nearest even), clamp to [-128, 127], vcvtps2dq, saturating packs to int8. Bit-exact to
// quantize_value<GridS8Full> for finite inputs; NaN/Inf are flagged by an unordered compare.
#pragma once

#include <cstddef>
#include <cstdint>

#include "sasq/core/config.hpp"
#include "sasq/cpu/isa.hpp"
#include "sasq/cpu/scalar/quantize_kernel.hpp"

#if SASQ_HAS_X86_KERNELS
#include <immintrin.h>

#define SASQ_TARGET_AVX2_QUANT SASQ_TARGET("avx2,fma")

namespace sasq::cpu {

template <>
struct QuantizeKernel<isa::avx2> {
  SASQ_TARGET_AVX2_QUANT static bool row(const float* x, std::ptrdiff_t n, float inv_scale, std::int8_t* q) {
    const __m256 inv = _mm256_set1_ps(inv_scale), lo = _mm256_set1_ps(-128.0f), hi = _mm256_set1_ps(127.0f);
    const __m256 fmax = _mm256_set1_ps(3.40282347e38f), sign = _mm256_set1_ps(-0.0f);
    __m256 bad = _mm256_setzero_ps();
    std::ptrdiff_t i = 0;
    for (; i + 8 <= n; i += 8) {
      const __m256 v = _mm256_loadu_ps(x + i);
      bad = _mm256_or_ps(bad, _mm256_cmp_ps(_mm256_andnot_ps(sign, v), fmax, _CMP_NLE_UQ));
      const __m256 r = _mm256_round_ps(_mm256_mul_ps(v, inv), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
      const __m256i qi = _mm256_cvtps_epi32(_mm256_min_ps(_mm256_max_ps(r, lo), hi));
      const __m128i w16 = _mm_packs_epi32(_mm256_castsi256_si128(qi), _mm256_extracti128_si256(qi, 1));
      _mm_storel_epi64(reinterpret_cast<__m128i*>(q + i), _mm_packs_epi16(w16, w16));
    }
    const bool tail_ok = QuantizeKernel<isa::scalar>::row(x + i, n - i, inv_scale, q + i);
    return tail_ok && _mm256_movemask_ps(bad) == 0;
  }
  SASQ_TARGET_AVX2_QUANT static float abs_max(const float* x, std::ptrdiff_t n, bool& finite) {
    const __m256 fmax = _mm256_set1_ps(3.40282347e38f), sign = _mm256_set1_ps(-0.0f);
    __m256 m0 = _mm256_setzero_ps(), bad = _mm256_setzero_ps();
    std::ptrdiff_t i = 0;
    for (; i + 8 <= n; i += 8) {
      const __m256 a = _mm256_andnot_ps(sign, _mm256_loadu_ps(x + i));
      bad = _mm256_or_ps(bad, _mm256_cmp_ps(a, fmax, _CMP_NLE_UQ));
      m0 = _mm256_max_ps(m0, a);
    }
    alignas(32) float lanes[8];
    _mm256_store_ps(lanes, m0);
    float m = QuantizeKernel<isa::scalar>::abs_max(x + i, n - i, finite);
    for (float l : lanes) m = l > m ? l : m;
    finite = finite && _mm256_movemask_ps(bad) == 0;
    return m;
  }
};

}  // namespace sasq::cpu

#endif  // SASQ_HAS_X86_KERNELS
