// AVX-512 VNNI GEMM tile kernel: R (<= 6) rows x 4 panels (64 columns), 24 zmm int32 accumulators.
// Per K octet and quad q: load the 4 panels' 64-byte weight vectors (int4: one zmm of nibbles, the low
// nibbles are quad 0 and the high nibbles quad 1, sign-extended with a vpshufb table), broadcast 4
// activation bytes per row, vpdpbusd (u8 x s8 -> int32, no intermediate saturation). After each
// weight group: subtract shift[r] · colsum (the +128 s8 shift or the u8 zero point), convert, and fmadd
// with the group's weight scales; finally fmadd with the row scale and the bias (epilogue.hpp order).
// Decode (M <= 6) is the same kernel with R = M: each weight byte is read once per call.
#pragma once

#include <cstdint>
#include <cstring>

#include "sasq/core/config.hpp"
#include "sasq/cpu/gemm_tile.hpp"
#include "sasq/cpu/isa.hpp"
#include "sasq/gemm/packed_weights.hpp"

#if SASQ_HAS_X86_KERNELS
#include <immintrin.h>

// GCC 12's AVX-512 intrinsics read _mm512_undefined_*() and trip -Wuninitialized once inlined.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"

#define SASQ_TARGET_AVX512_VNNI SASQ_TARGET("avx2,fma,avx512f,avx512bw,avx512vl,avx512dq,avx512vnni")

namespace sasq::cpu {

template <class Isa>
struct GemmKernel;

template <>
struct GemmKernel<isa::avx512_vnni> {
  static constexpr int kTileRows = 6;

  static void tile(const PackedWeights& w, const TileArgs& t, int rows, float* y) {
    if (w.format().bits == 8) {
      dispatch_rows<8>(w, t, rows, y);
    } else {
      dispatch_rows<4>(w, t, rows, y);
    }
  }

 private:
  template <int Bits>
  static void dispatch_rows(const PackedWeights& w, const TileArgs& t, int rows, float* y) {
    switch (rows) {
      case 1: kernel<1, Bits>(w, t, y); break;
      case 2: kernel<2, Bits>(w, t, y); break;
      case 3: kernel<3, Bits>(w, t, y); break;
      case 4: kernel<4, Bits>(w, t, y); break;
      case 5: kernel<5, Bits>(w, t, y); break;
      default: kernel<6, Bits>(w, t, y); break;
    }
  }

  SASQ_TARGET_AVX512_VNNI static inline __m512i broadcast4(const std::uint8_t* p) {
    std::int32_t v;
    std::memcpy(&v, p, 4);
    return _mm512_set1_epi32(v);
  }

  template <int R, int Bits>
  SASQ_TARGET_AVX512_VNNI static void kernel(const PackedWeights& w, const TileArgs& t, float* y) {
    constexpr int V = kPanelsPerBlock;
    constexpr __mmask16 kAll = 0xFFFF;  // masked forms avoid GCC 12's _mm512_undefined warnings
    const std::ptrdiff_t pb = w.panel_bytes(), groups = w.groups(), octs = w.k_padded() / kKStep;
    const std::ptrdiff_t group_octs = w.group_size() / kKStep;
    const std::uint8_t* wp = w.panel(t.p0);
    // int4 nibble -> int8 (two's complement) in every 128-bit lane.
    const __m512i lut = _mm512_set4_epi32(-0x00010204, -0x04050608, 0x07060504, 0x03020100);
    const __m512i low4 = _mm512_set1_epi8(0x0F);
    __m512 facc[R][V];
    for (int r = 0; r < R; ++r)
      for (int v = 0; v < V; ++v) facc[r][v] = _mm512_setzero_ps();
    for (std::ptrdiff_t g = 0; g < groups; ++g) {
      __m512i acc[R][V];
      for (int r = 0; r < R; ++r)
        for (int v = 0; v < V; ++v) acc[r][v] = _mm512_setzero_si512();
      const std::ptrdiff_t o_end = (g + 1) * group_octs < octs ? (g + 1) * group_octs : octs;
      for (std::ptrdiff_t o = g * group_octs; o < o_end; ++o) {
        constexpr std::ptrdiff_t kOctBytes = Bits * kPanelCols;
        const std::uint8_t* wo = wp + o * kOctBytes;
        const std::uint8_t* ao = t.a + o * kKStep;
        for (int q = 0; q < 2; ++q) {
          __m512i b[V];
          for (int v = 0; v < V; ++v) {
            if constexpr (Bits == 8) {
              b[v] = _mm512_load_si512(wo + v * pb + q * 64);
            } else {
              const __m512i x = _mm512_load_si512(wo + v * pb);
              const __m512i nib = q == 0 ? _mm512_and_si512(x, low4) : _mm512_and_si512(_mm512_srli_epi16(x, 4), low4);
              b[v] = _mm512_shuffle_epi8(lut, nib);
            }
          }
          for (int r = 0; r < R; ++r) {
            const __m512i a = broadcast4(ao + r * t.lda + q * 4);
            for (int v = 0; v < V; ++v) acc[r][v] = _mm512_dpbusd_epi32(acc[r][v], a, b[v]);
          }
        }
      }
      // Zero-point / shift correction and per-group weight scale (Dequantize::apply_group).
      for (int v = 0; v < V; ++v) {
        const __m512i cs = _mm512_load_si512(w.col_sums(t.p0 + v, g));
        const __m512 sc = _mm512_load_ps(w.scales(t.p0 + v, g));
        for (int r = 0; r < R; ++r) {
          const __m512i exact = _mm512_sub_epi32(acc[r][v], _mm512_mullo_epi32(_mm512_set1_epi32(t.shift[r]), cs));
          facc[r][v] = _mm512_fmadd_ps(_mm512_maskz_cvtepi32_ps(kAll, exact), sc, facc[r][v]);
        }
      }
    }
    // Row scale and bias (Dequantize::apply_row).
    for (int r = 0; r < R; ++r) {
      const __m512 rs = _mm512_set1_ps(t.row_scale[r]);
      for (int v = 0; v < V; ++v)
        _mm512_store_ps(y + r * kTileCols + v * kPanelCols, _mm512_fmadd_ps(facc[r][v], rs, _mm512_load_ps(t.bias + v * kPanelCols)));
    }
  }
};

}  // namespace sasq::cpu

#pragma GCC diagnostic pop

#endif  // SASQ_HAS_X86_KERNELS
