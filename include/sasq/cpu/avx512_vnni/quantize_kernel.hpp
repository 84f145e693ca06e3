// AVX-512 activation quantize row kernels, 64 floats per step with 16-wide masked tails: vmulps by
// inv_scale, vrndscaleps (round to nearest even), clamp to [-128, 127], vcvtps2dq, then packs into one
// 64-byte store (tails: masked vpmovsdb). Bit-exact to
// quantize_value<GridS8Full> for finite inputs; a running NaN/Inf mask replaces a separate check pass.
#pragma once

#include <cstddef>
#include <cstdint>

#include "sasq/core/config.hpp"
#include "sasq/cpu/isa.hpp"

#if SASQ_HAS_X86_KERNELS
#include <immintrin.h>

// GCC 12's AVX-512 intrinsics read _mm512_undefined_*() and trip -Wuninitialized once inlined.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif

#define SASQ_TARGET_AVX512_QUANT SASQ_TARGET("avx2,fma,avx512f,avx512bw,avx512vl,avx512dq")

namespace sasq::cpu {

template <class Isa>
struct QuantizeKernel;

template <>
struct QuantizeKernel<isa::avx512_vnni> {
  SASQ_TARGET_AVX512_QUANT static bool row(const float* x, std::ptrdiff_t n, float inv_scale, std::int8_t* q) {
    const __m512 inv = _mm512_set1_ps(inv_scale), lo = _mm512_set1_ps(-128.0f), hi = _mm512_set1_ps(127.0f);
    const __m512 fmax = _mm512_set1_ps(3.40282347e38f);
    __mmask16 bad = 0;
    std::ptrdiff_t i = 0;
    // 64 values per step: four quantized zmm packed (vpackssdw, vpacksswb, vpermd) into one store.
    const __m512i order = _mm512_setr_epi32(0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15);
    for (; i + 64 <= n; i += 64) {
      __m512i qi[4];
      for (int j = 0; j < 4; ++j) {
        const __m512 v = _mm512_loadu_ps(x + i + 16 * j);
        bad |= _mm512_cmp_ps_mask(_mm512_abs_ps(v), fmax, _CMP_NLE_UQ);
        const __m512 r = _mm512_roundscale_ps(_mm512_mul_ps(v, inv), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
        qi[j] = _mm512_cvtps_epi32(_mm512_min_ps(_mm512_max_ps(r, lo), hi));
      }
      const __m512i b = _mm512_packs_epi16(_mm512_packs_epi32(qi[0], qi[1]), _mm512_packs_epi32(qi[2], qi[3]));
      _mm512_storeu_si512(q + i, _mm512_permutexvar_epi32(order, b));
    }
    for (; i < n; i += 16) {
      const __mmask16 m = n - i >= 16 ? __mmask16(0xFFFF) : __mmask16((1u << (n - i)) - 1);
      const __m512 v = _mm512_maskz_loadu_ps(m, x + i);
      bad |= _mm512_mask_cmp_ps_mask(m, _mm512_abs_ps(v), fmax, _CMP_NLE_UQ);
      const __m512 r = _mm512_roundscale_ps(_mm512_mul_ps(v, inv), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
      const __m512i qi = _mm512_cvtps_epi32(_mm512_min_ps(_mm512_max_ps(r, lo), hi));
      _mm512_mask_cvtsepi32_storeu_epi8(q + i, m, qi);
    }
    return bad == 0;
  }
  SASQ_TARGET_AVX512_QUANT static float abs_max(const float* x, std::ptrdiff_t n, bool& finite) {
    const __m512 fmax = _mm512_set1_ps(3.40282347e38f);
    __m512 m0 = _mm512_setzero_ps(), m1 = _mm512_setzero_ps();
    __mmask16 bad = 0;
    std::ptrdiff_t i = 0;
    for (; i + 32 <= n; i += 32) {
      const __m512 a = _mm512_abs_ps(_mm512_loadu_ps(x + i)), b = _mm512_abs_ps(_mm512_loadu_ps(x + i + 16));
      bad |= _mm512_cmp_ps_mask(a, fmax, _CMP_NLE_UQ) | _mm512_cmp_ps_mask(b, fmax, _CMP_NLE_UQ);
      m0 = _mm512_max_ps(m0, a);
      m1 = _mm512_max_ps(m1, b);
    }
    for (; i < n; i += 16) {
      const __mmask16 m = n - i >= 16 ? __mmask16(0xFFFF) : __mmask16((1u << (n - i)) - 1);
      const __m512 a = _mm512_abs_ps(_mm512_maskz_loadu_ps(m, x + i));
      bad |= _mm512_mask_cmp_ps_mask(m, a, fmax, _CMP_NLE_UQ);
      m0 = _mm512_max_ps(m0, a);
    }
    finite = finite && bad == 0;
    return _mm512_reduce_max_ps(_mm512_max_ps(m0, m1));
  }
};

}  // namespace sasq::cpu

#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic pop
#endif

#endif  // SASQ_HAS_X86_KERNELS
