// AVX2 GEMM tile kernel (x86-64-v3, no VNNI): exact u8 x s8 products without vpmaddubsw's int16
// saturation (2·255·128 > 32767). Activations are zero-extended and weights sign-extended to int16 and
// multiplied with vpmaddwd, so each int32 lane holds a 2-term partial sum and every column owns two
// adjacent lanes; vphaddd + vpermq fold them after each weight group. Register blocking: 2 rows x
// 16 columns (8 ymm accumulators), looped over the tile's rows and 4 panels. Accumulation and epilogue
// order as in the AVX-512 kernel (shift correction, fmadd with group scales, fmadd row scale + bias).
#pragma once

#include <cstdint>
#include <cstring>

#include "sasq/core/config.hpp"
#include "sasq/cpu/gemm_tile.hpp"
#include "sasq/cpu/isa.hpp"
#include "sasq/gemm/packed_weights.hpp"

#if SASQ_HAS_X86_KERNELS
#include <immintrin.h>

#define SASQ_TARGET_AVX2 SASQ_TARGET("avx2,fma")

namespace sasq::cpu {

template <class Isa>
struct GemmKernel;

template <>
struct GemmKernel<isa::avx2> {
  static constexpr int kTileRows = 4;
  /// Whether tile() honours TileArgs::c (writes f32 C directly); else finish_tile copies y.
  static constexpr bool kStoresC = false;
  /// Requantize stage of finish_tile (the scalar form here).
  static void requantize_row(const float* y, int n, float inv_scale, std::int8_t* dst) {
    requantize_row_scalar(y, n, inv_scale, dst);
  }
  /// Row copy of the packed-A buffer (the scalar form here).
  static void pack_rows(const std::uint8_t* src, std::ptrdiff_t lds, std::ptrdiff_t rows, std::ptrdiff_t k,
                        std::ptrdiff_t kp, std::uint8_t flip, std::uint8_t* dst, std::ptrdiff_t lda) {
    pack_rows_scalar(src, lds, rows, k, kp, flip, dst, lda);
  }

  static void tile(const PackedWeights& w, const TileArgs& t, int rows, float* y) {
    for (int v = 0; v < kPanelsPerBlock; ++v) {
      for (int r = 0; r < rows; r += 2) {
        const bool two = r + 1 < rows;
        if (w.format().bits == 8) {
          two ? kernel<2, 8>(w, t, r, v, y) : kernel<1, 8>(w, t, r, v, y);
        } else {
          two ? kernel<2, 4>(w, t, r, v, y) : kernel<1, 4>(w, t, r, v, y);
        }
      }
    }
  }

 private:
  /// 4 activation bytes zero-extended to int16 and broadcast to every 64-bit lane.
  SASQ_TARGET_AVX2 static inline __m256i broadcast4(const std::uint8_t* p) {
    std::int32_t v;
    std::memcpy(&v, p, 4);
    return _mm256_broadcastq_epi64(_mm_cvtepu8_epi16(_mm_cvtsi32_si128(v)));
  }

  /// Folds the two lanes per column of 4-column accumulators x (cols 0-3) and z (cols 4-7).
  SASQ_TARGET_AVX2 static inline __m256i fold(__m256i x, __m256i z) {
    return _mm256_permute4x64_epi64(_mm256_hadd_epi32(x, z), 0xD8);
  }

  template <int R, int Bits>
  SASQ_TARGET_AVX2 static void kernel(const PackedWeights& w, const TileArgs& t, int r0, int v, float* y) {
    const std::ptrdiff_t groups = w.groups(), octs = w.k_padded() / kKStep, group_octs = w.group_size() / kKStep;
    const std::ptrdiff_t p = t.p0 + v;
    const std::uint8_t* wp = w.block(t.p0 / kPanelsPerBlock) + v * 64;
    const std::ptrdiff_t ob = w.octet_bytes();
    const __m128i lut = _mm_setr_epi8(0, 1, 2, 3, 4, 5, 6, 7, -8, -7, -6, -5, -4, -3, -2, -1);
    const __m128i low4 = _mm_set1_epi8(0x0F);
    __m256 facc[R][2];
    for (int r = 0; r < R; ++r) facc[r][0] = facc[r][1] = _mm256_setzero_ps();
    for (std::ptrdiff_t g = 0; g < groups; ++g) {
      __m256i acc[R][4];
      for (int r = 0; r < R; ++r)
        for (int i = 0; i < 4; ++i) acc[r][i] = _mm256_setzero_si256();
      const std::ptrdiff_t o_end = (g + 1) * group_octs < octs ? (g + 1) * group_octs : octs;
      for (std::ptrdiff_t o = g * group_octs; o < o_end; ++o) {
        const std::uint8_t* wo = wp + o * ob;
        for (int q = 0; q < 2; ++q) {
          __m256i b[4];
          for (int i = 0; i < 4; ++i) {
            if constexpr (Bits == 8) {
              b[i] = _mm256_cvtepi8_epi16(_mm_load_si128(reinterpret_cast<const __m128i*>(wo + q * 256 + 16 * i)));
            } else {
              const __m128i x = _mm_load_si128(reinterpret_cast<const __m128i*>(wo + 16 * i));
              const __m128i nib = q == 0 ? _mm_and_si128(x, low4) : _mm_and_si128(_mm_srli_epi16(x, 4), low4);
              b[i] = _mm256_cvtepi8_epi16(_mm_shuffle_epi8(lut, nib));
            }
          }
          for (int r = 0; r < R; ++r) {
            const __m256i a = broadcast4(t.a + (r0 + r) * t.lda + o * kKStep + q * 4);
            for (int i = 0; i < 4; ++i) acc[r][i] = _mm256_add_epi32(acc[r][i], _mm256_madd_epi16(a, b[i]));
          }
        }
      }
      for (int h = 0; h < 2; ++h) {
        const __m256i cs = _mm256_load_si256(reinterpret_cast<const __m256i*>(w.col_sums(p, g) + 8 * h));
        const __m256 sc = _mm256_load_ps(w.scales(p, g) + 8 * h);
        for (int r = 0; r < R; ++r) {
          const __m256i sum = fold(acc[r][2 * h], acc[r][2 * h + 1]);
          const __m256i exact = _mm256_sub_epi32(sum, _mm256_mullo_epi32(_mm256_set1_epi32(t.shift[r0 + r]), cs));
          facc[r][h] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(exact), sc, facc[r][h]);
        }
      }
    }
    for (int r = 0; r < R; ++r) {
      const __m256 rs = _mm256_set1_ps(t.row_scale[r0 + r]);
      for (int h = 0; h < 2; ++h)
        _mm256_store_ps(y + (r0 + r) * kTileCols + v * kPanelCols + 8 * h,
                        _mm256_fmadd_ps(facc[r][h], rs, _mm256_load_ps(t.bias + v * kPanelCols + 8 * h)));
    }
  }
};

}  // namespace sasq::cpu

#endif  // SASQ_HAS_X86_KERNELS
