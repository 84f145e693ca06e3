// AVX-512 VNNI GEMM tile kernel: R (<= 6) rows x 4 panels (64 columns), 24 zmm int32 accumulators.
// Per K octet and quad q: load the 4 panels' 64-byte weight vectors (int4: one zmm of nibbles, the low
// nibbles are quad 0 and the high nibbles quad 1, sign-extended with a vpshufb table), broadcast 4
// activation bytes per row, vpdpbusd (u8 x s8 -> int32, no intermediate saturation). After each
// weight group the accumulators are corrected by -shift[r] · colsum (the +128 s8 shift or the u8 zero
// point), converted and fmadded with the group's weight scales; finally fmadded with the row scale and
// the bias (epilogue.hpp order). Tiles of 3-6 rows (prefill) run each group as one inline-asm pass
// (prefill_pass.hpp) that keeps the accumulators in registers from the K loop through the flush.
// Decode (M <= 6) is the same kernel with R = M: each weight byte is read once per call. Tiles of 1-2 rows
// keep a second accumulator set (odd quads) to break the vpdpbusd dependency chains, and with group
// scales run the whole group loop in registers (decode_groups) without waiting on the column sums:
// int4 swaps the operands (weights w + 8 unsigned, activations a_u8 - 128 signed; each group starts from
// the A row's sum), int8 subtracts shift · colsum at the group's end.
#pragma once

#include <cstdint>
#include <algorithm>
#include <cstring>

#include "sasq/core/config.hpp"
#include "sasq/cpu/avx512_vnni/prefill_pass.hpp"
#include "sasq/cpu/avx512_vnni/row_tiles_pass.hpp"
#include "sasq/cpu/gemm_tile.hpp"
#include "sasq/cpu/isa.hpp"
#include "sasq/gemm/packed_weights.hpp"

#if SASQ_HAS_X86_KERNELS
#include <immintrin.h>

// GCC 12's AVX-512 intrinsics read _mm512_undefined_*() and trip -Wuninitialized once inlined.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif

#define SASQ_TARGET_AVX512_VNNI SASQ_TARGET("avx2,fma,avx512f,avx512bw,avx512vl,avx512dq,avx512vnni")
// Register tiles must be fully unrolled or GCC keeps the accumulator arrays in memory.
#define SASQ_UNROLL _Pragma("GCC unroll 8")

namespace sasq::cpu {

template <class Isa>
struct GemmKernel;

template <>
struct GemmKernel<isa::avx512_vnni> {
  static constexpr int kTileRows = 6;
  /// f32 output without activation: the finished tile goes straight to C (masked for the last block).
  static constexpr bool kStoresC = true;

  /// Requantize stage, 16 lanes: rne(y · inv) (vrndscaleps), clamp to [-128, 127], NaN -> 0, vpmovsdb.
  SASQ_TARGET_AVX512_VNNI static void requantize_row(const float* y, int n, float inv_scale, std::int8_t* dst) {
    const __m512 inv = _mm512_set1_ps(inv_scale), lo = _mm512_set1_ps(-128.0f), hi = _mm512_set1_ps(127.0f);
    for (int j = 0; j < n; j += 16) {
      const __mmask16 m = n - j >= 16 ? __mmask16(0xFFFF) : __mmask16((1u << (n - j)) - 1);
      const __m512 r = _mm512_roundscale_ps(_mm512_mul_ps(_mm512_maskz_loadu_ps(m, y + j), inv),
                                            _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
      const __mmask16 ordered = _mm512_cmp_ps_mask(r, r, _CMP_ORD_Q);
      const __m512 c = _mm512_maskz_mov_ps(ordered, _mm512_min_ps(_mm512_max_ps(r, lo), hi));
      _mm512_mask_cvtsepi32_storeu_epi8(dst + j, m, _mm512_cvtps_epi32(c));
    }
  }

  /// Packed-A row copy (PackRowsFn), 64 bytes per step: masked load (zeros past k), XOR with the flip byte
  /// on the loaded lanes, full aligned store (packed rows are padded to a multiple of 64 bytes).
  SASQ_TARGET_AVX512_VNNI static void pack_rows(const std::uint8_t* src, std::ptrdiff_t lds, std::ptrdiff_t rows,
                                                std::ptrdiff_t k, std::ptrdiff_t kp, std::uint8_t flip,
                                                std::uint8_t* dst, std::ptrdiff_t lda) {
    const __m512i f = _mm512_set1_epi8(static_cast<char>(flip));
    for (std::ptrdiff_t r = 0; r < rows; ++r, src += lds, dst += lda)
      for (std::ptrdiff_t j = 0; j < kp; j += 64) {
        const std::ptrdiff_t n = k - j;
        const __mmask64 m = n >= 64 ? ~__mmask64(0) : n <= 0 ? __mmask64(0) : (__mmask64(1) << n) - 1;
        _mm512_store_si512(dst + j, _mm512_xor_si512(_mm512_maskz_loadu_epi8(m, src + j), _mm512_maskz_mov_epi8(m, f)));
      }
  }

  /// The decode tiles' per-group A sums (TileArgs::group_sums) of one packed-A row a (k_padded kp bytes):
  /// out[g] = Σ (a[j] - 128) over group g's bytes, once per call instead of once per panel block.
  SASQ_TARGET_AVX512_VNNI static void group_sums(const std::uint8_t* a, std::ptrdiff_t kp, std::ptrdiff_t group_size,
                                                 std::int32_t* out) {
    for (std::ptrdiff_t o = 0; o < kp; o += group_size, ++out) *out = centered_sum(a + o, std::min(group_size, kp - o));
  }

  static void tile(const PackedWeights& w, const TileArgs& t, int rows, float* y) {
    if (w.format().bits == 8) {
      dispatch_rows<8>(w, t, rows, y);
    } else {
      dispatch_rows<4>(w, t, rows, y);
    }
  }

  /// `count` consecutive full kTileRows-row tiles of one panel block in one call (t: the first tile; tile
  /// i starts i · kTileRows rows further in A, shift, row_scale and C). Per-channel scales with C written
  /// directly (t.c set) run the prefill passes back to back with no per-tile dispatch (full_passes); any
  /// other case runs tile() per tile. Same passes as tile(), so the same results.
  static void full_tiles(const PackedWeights& w, TileArgs t, std::ptrdiff_t count, float* y) {
    if (w.groups() == 1 && t.c) {
      w.format().bits == 8 ? full_passes<8>(w, t, count, y) : full_passes<4>(w, t, count, y);
      return;
    }
    for (std::ptrdiff_t i = 0; i < count; ++i) {
      tile(w, t, kTileRows, y);
      t.a += kTileRows * t.lda;
      t.shift += kTileRows;
      t.row_scale += kTileRows;
      if (t.c) t.c += kTileRows * t.ldc;
    }
  }

 private:
  template <int Bits>
  static void dispatch_rows(const PackedWeights& w, const TileArgs& t, int rows, float* y) {
    switch (rows) {
      case 1: kernel<1, Bits>(w, t, y); break;
      case 2: kernel<2, Bits>(w, t, y); break;
      case 3: prefill<3, Bits>(w, t, y); break;
      case 4: prefill<4, Bits>(w, t, y); break;
      case 5: prefill<5, Bits>(w, t, y); break;
      default: prefill<6, Bits>(w, t, y); break;
    }
  }

  /// Stores the finished 16 columns v of tile row r: to C when t.c is set (masked to t.c_cols), else to y.
  SASQ_TARGET_AVX512_VNNI static inline void store(const TileArgs& t, float* y, int r, int v, __m512 value) {
    if (t.c) {
      const int n = t.c_cols - v * kPanelCols;
      if (n <= 0) return;
      const __mmask16 m = n >= 16 ? __mmask16(0xFFFF) : __mmask16((1u << n) - 1);
      _mm512_mask_storeu_ps(t.c + r * t.ldc + v * kPanelCols, m, value);
    } else {
      _mm512_store_ps(y + r * kTileCols + v * kPanelCols, value);
    }
  }

  SASQ_TARGET_AVX512_VNNI static inline __m512i broadcast4(const std::uint8_t* p) {
    std::int32_t v;
    std::memcpy(&v, p, 4);
    return _mm512_set1_epi32(v);
  }

  /// One K octet of the register tile: acc[q % S][r][v] += a[r] quad q · w[v] quad q (vpdpbusd).
  template <int R, int Bits, int S>
  SASQ_TARGET_AVX512_VNNI static inline __attribute__((always_inline)) void octet(__m512i (&acc)[S][R][kPanelsPerBlock],
                                                                                 const std::uint8_t* wo, const std::uint8_t* ao,
                                                                                 std::ptrdiff_t lda, __m512i lut, __m512i low4) {
    constexpr int V = kPanelsPerBlock;
    SASQ_UNROLL
    for (int q = 0; q < 2; ++q) {
      __m512i b[V];
      SASQ_UNROLL
      for (int v = 0; v < V; ++v) {
        if constexpr (Bits == 8) {
          b[v] = _mm512_load_si512(wo + q * 256 + v * 64);
        } else {
          const __m512i x = _mm512_load_si512(wo + v * 64);
          const __m512i nib = q == 0 ? _mm512_and_si512(x, low4) : _mm512_and_si512(_mm512_srli_epi16(x, 4), low4);
          b[v] = _mm512_shuffle_epi8(lut, nib);
        }
      }
      SASQ_UNROLL
      for (int r = 0; r < R; ++r) {
        const __m512i a = broadcast4(ao + r * lda + q * 4);
        SASQ_UNROLL
        for (int v = 0; v < V; ++v) acc[q % S][r][v] = _mm512_dpbusd_epi32(acc[q % S][r][v], a, b[v]);
      }
    }
  }

  /// One K octet of int4 weights with the operands swapped: acc[q % S][r][v] += (w[v] + 8) quad q ·
  /// (a[r] - 128) quad q; w + 8 is the two's-complement nibble XOR 8 (one vpternlogd: (x & 0x0F) ^ 8), the
  /// packed activations (a_u8) XOR 0x80 are a_u8 - 128 as int8.
  template <int R, int S>
  SASQ_TARGET_AVX512_VNNI static inline __attribute__((always_inline)) void octet_unsigned_w(
      __m512i (&acc)[S][R][kPanelsPerBlock], const std::uint8_t* wo, const std::uint8_t* ao, std::ptrdiff_t lda,
      __m512i low4, __m512i eight, __m512i flip) {
    constexpr int V = kPanelsPerBlock;
    constexpr int kAndXor = 0x6A;  // vpternlogd truth table of (A & B) ^ C
    SASQ_UNROLL
    for (int q = 0; q < 2; ++q) {
      __m512i b[V];
      SASQ_UNROLL
      for (int v = 0; v < V; ++v) {
        const __m512i x = _mm512_load_si512(wo + v * 64);
        b[v] = _mm512_ternarylogic_epi32(q == 0 ? x : _mm512_srli_epi16(x, 4), low4, eight, kAndXor);
      }
      SASQ_UNROLL
      for (int r = 0; r < R; ++r) {
        const __m512i a = _mm512_xor_si512(broadcast4(ao + r * lda + q * 4), flip);
        SASQ_UNROLL
        for (int v = 0; v < V; ++v) acc[q % S][r][v] = _mm512_dpbusd_epi32(acc[q % S][r][v], b[v], a);
      }
    }
  }

  /// Σ (a[j] - 128) over n bytes of a packed-A row (vpsadbw against zero).
  SASQ_TARGET_AVX512_VNNI static inline std::int32_t centered_sum(const std::uint8_t* a, std::ptrdiff_t n) {
    __m512i s = _mm512_setzero_si512();
    for (std::ptrdiff_t j = 0; j < n; j += 64) {
      const __mmask64 m = n - j >= 64 ? ~__mmask64(0) : (__mmask64(1) << (n - j)) - 1;
      s = _mm512_add_epi64(s, _mm512_sad_epu8(_mm512_maskz_loadu_epi8(m, a + j), _mm512_setzero_si512()));
    }
    return static_cast<std::int32_t>(_mm512_reduce_add_epi64(s) - 128 * n);
  }

  /// int4 nibble -> int8 (two's complement) table for vpshufb, in every 128-bit lane.
  SASQ_TARGET_AVX512_VNNI static inline __m512i nibble_lut() {
    return _mm512_set4_epi32(-0x00010204, -0x04050608, 0x07060504, 0x03020100);
  }

  /// The register tile: acc[r][v] += Σ over n octets of a[r] · w[v] (vpdpbusd). acc lives in memory
  /// between calls; a separate, non-inlined function keeps GCC's allocator from spilling inside the loop.
  /// Decode tiles (R <= 2) keep one accumulator set per quad (S = 2), so 8 or 16 independent vpdpbusd
  /// chains, not 4 or 8, hide its latency; the two sets are added at the end (the same exact int32 sum).
  template <int R, int Bits>
  SASQ_TARGET_AVX512_VNNI __attribute__((noinline)) static void dot_octets(const std::uint8_t* wo, std::ptrdiff_t ob,
                                                                         const std::uint8_t* ao, std::ptrdiff_t lda,
                                                                         std::ptrdiff_t n, __m512i* acc_mem) {
    constexpr int V = kPanelsPerBlock, S = R <= 2 ? 2 : 1;
    const __m512i lut = nibble_lut(), low4 = _mm512_set1_epi8(0x0F);
    __m512i acc[S][R][V];
    SASQ_UNROLL
    for (int r = 0; r < R; ++r)
      SASQ_UNROLL
      for (int v = 0; v < V; ++v) {
        acc[0][r][v] = _mm512_load_si512(acc_mem + r * V + v);
        if constexpr (S == 2) acc[S - 1][r][v] = _mm512_setzero_si512();
      }
    for (std::ptrdiff_t o = 0; o < n; ++o, wo += ob, ao += kKStep) octet<R, Bits, S>(acc, wo, ao, lda, lut, low4);
    SASQ_UNROLL
    for (int r = 0; r < R; ++r)
      SASQ_UNROLL
      for (int v = 0; v < V; ++v) {
        if constexpr (S == 2) acc[0][r][v] = _mm512_add_epi32(acc[0][r][v], acc[S - 1][r][v]);
        _mm512_store_si512(acc_mem + r * V + v, acc[0][r][v]);
      }
  }

  /// Decode tile (R <= 2) with per-group scales: the whole group loop in one function, the float
  /// accumulators y[r][v] in registers instead of a memory round trip per group. No group waits for its
  /// column sums (64 bytes per panel and group: streams the hardware prefetchers follow badly from DRAM,
  /// so a load at the group's start held up its vpdpbusd chains):
  ///  * int4: weights are the unsigned vpdpbusd operand (octet_unsigned_w); with a' = a_u8 - 128,
  ///      Σ w (a_u8 - shift) = Σ (w + 8) a' - 8 Σ a' - (shift - 128) · colsum_g,
  ///    the accumulators start from -8 Σ a' (the A row, in L1), and the last term, only for u8
  ///    activations with a zero point other than 128, is subtracted at the group's end;
  ///  * int8 (w + 128 would cost a vpxord per weight vector): the usual operands, the accumulators start
  ///    at 0 and shift · colsum_g is subtracted at the group's end (the same exact int32 sum).
  /// Then fmaf(float(acc), ws, y) per group as in the general path.
  template <int R, int Bits>
  SASQ_TARGET_AVX512_VNNI __attribute__((noinline)) static void decode_groups(const PackedWeights& w, const TileArgs& t,
                                                                            float* y) {
    constexpr int V = kPanelsPerBlock, S = R == 1 ? 2 : 1;
    constexpr bool kUnsignedW = Bits == 4;
    constexpr __mmask16 kAll = 0xFFFF;
    const __m512i lut = nibble_lut(), low4 = _mm512_set1_epi8(0x0F), eight = _mm512_set1_epi8(8),
                  flip = _mm512_set1_epi8(static_cast<char>(0x80));
    const std::ptrdiff_t groups = w.groups(), octs = w.k_padded() / kKStep, group_octs = w.group_size() / kKStep;
    const std::ptrdiff_t ob = w.octet_bytes();
    // Per row, the multiple of colsum_g subtracted at each group's end.
    std::int32_t late_shift[R];
    bool late = false;
    for (int r = 0; r < R; ++r) {
      late_shift[r] = kUnsignedW ? t.shift[r] - 128 : t.shift[r];
      late = late || late_shift[r] != 0;
    }
    const std::uint8_t* wo = w.block(t.p0 / kPanelsPerBlock);
    const std::uint8_t* ao = t.a;
    __m512 yf[R][V];
    SASQ_UNROLL
    for (int r = 0; r < R; ++r)
      SASQ_UNROLL
      for (int v = 0; v < V; ++v) yf[r][v] = _mm512_setzero_ps();
    for (std::ptrdiff_t g = 0; g < groups; ++g) {
      const std::ptrdiff_t o0 = g * group_octs, o_end = o0 + group_octs < octs ? o0 + group_octs : octs;
      __m512i acc[S][R][V];
      SASQ_UNROLL
      for (int r = 0; r < R; ++r) {
        const std::int32_t sum_a = !kUnsignedW        ? 0
                                   : t.group_sums ? t.group_sums[r * groups + g]
                                                  : centered_sum(ao + r * t.lda, (o_end - o0) * kKStep);
        const __m512i start = _mm512_set1_epi32(-8 * sum_a);
        SASQ_UNROLL
        for (int v = 0; v < V; ++v) {
          acc[0][r][v] = start;
          if constexpr (S == 2) acc[S - 1][r][v] = _mm512_setzero_si512();
        }
      }
      for (std::ptrdiff_t o = o0; o < o_end; ++o, wo += ob, ao += kKStep) {
        if constexpr (kUnsignedW) {
          octet_unsigned_w<R, S>(acc, wo, ao, t.lda, low4, eight, flip);
        } else {
          octet<R, Bits, S>(acc, wo, ao, t.lda, lut, low4);
        }
      }
      SASQ_UNROLL
      for (int v = 0; v < V; ++v) {
        const __m512 sc = _mm512_load_ps(w.scales(t.p0 + v, g));
        SASQ_UNROLL
        for (int r = 0; r < R; ++r) {
          __m512i sum = S == 2 ? _mm512_add_epi32(acc[0][r][v], acc[S - 1][r][v]) : acc[0][r][v];
          if (late)
            sum = _mm512_sub_epi32(sum, _mm512_mullo_epi32(_mm512_set1_epi32(late_shift[r]),
                                                           _mm512_load_si512(w.col_sums(t.p0 + v, g))));
          yf[r][v] = _mm512_fmadd_ps(_mm512_maskz_cvtepi32_ps(kAll, sum), sc, yf[r][v]);
        }
      }
    }
    SASQ_UNROLL
    for (int r = 0; r < R; ++r) {
      const __m512 rs = _mm512_set1_ps(t.row_scale[r]);
      SASQ_UNROLL
      for (int v = 0; v < V; ++v)
        store(t, y, r, v, _mm512_fmadd_ps(yf[r][v], rs, _mm512_load_ps(t.bias + v * kPanelCols)));
    }
  }

  /// Prefill tile (R = 3..6 rows): per-channel scales in one prefill_pass straight into C (full blocks)
  /// or y; group scales into y (rows sharing one shift: the whole group loop in one statement; else one
  /// pass per group), then fmaf(y, as, bias) (Dequantize::apply_row).
  template <int R, int Bits, bool Uniform>
  SASQ_TARGET_AVX512_VNNI __attribute__((noinline)) static void prefill_tile(const PackedWeights& w, const TileArgs& t,
                                                                           float* y) {
    constexpr int V = kPanelsPerBlock;
    const std::ptrdiff_t groups = w.groups(), octs = w.k_padded() / kKStep, group_octs = w.group_size() / kKStep;
    avx512_vnni_asm::PassArgs p{w.block(t.p0 / kPanelsPerBlock), t.a, t.lda, octs, w.col_sums(t.p0, 0),
                                w.scales(t.p0, 0), groups * kPanelCols * 4, t.shift, t.row_scale, t.bias,
                                y, kTileCols * 4};
    if (groups == 1) {
      const bool full = t.c && t.c_cols == kTileCols;
      if (full) {
        p.d = t.c;
        p.ldd = t.ldc * 4;
      }
      avx512_vnni_asm::prefill_pass<R, Bits, Uniform, true>(p);
      if (t.c && !full)
        for (int r = 0; r < R; ++r)
          for (int v = 0; v < V; ++v) store(t, y, r, v, _mm512_load_ps(y + r * kTileCols + v * kPanelCols));
      return;
    }
    if constexpr (Uniform) {
      const std::ptrdiff_t last_octs = octs - (groups - 1) * group_octs;
      avx512_vnni_asm::prefill_groups<R, Bits>(p.wo, p.ao, p.lda, groups, group_octs, last_octs, p.cs, p.sc, p.ps,
                                               t.shift[0], y);
    } else {
      __m512 zero = _mm512_setzero_ps();
      __asm__("" : "+v"(zero));  // opaque, so GCC does not turn the loop into rep stos (prefill_pass.hpp)
      for (int i = 0; i < R * kTileCols; i += 16) _mm512_store_ps(y + i, zero);
      for (std::ptrdiff_t g = 0; g < groups; ++g) {
        p.n = std::min(group_octs, octs - g * group_octs);
        p.cs = w.col_sums(t.p0, g);
        p.sc = w.scales(t.p0, g);
        avx512_vnni_asm::prefill_pass<R, Bits, Uniform, false>(p);
      }
    }
    // Row scale and bias (Dequantize::apply_row).
    for (int r = 0; r < R; ++r) {
      const __m512 rs = _mm512_set1_ps(t.row_scale[r]);
      for (int v = 0; v < V; ++v) {
        float* yv = y + r * kTileCols + v * kPanelCols;
        store(t, y, r, v, _mm512_fmadd_ps(_mm512_load_ps(yv), rs, _mm512_load_ps(t.bias + v * kPanelCols)));
      }
    }
  }

 public:
  /// All `rows` (>= 1) rows of block t.p0 with the caller's A read in place, no packing (row_tiles_pass):
  /// rows / 6 six-row tiles in one pass, then one rows % 6-row tile. t.a is row 0 of the caller's A (t.lda
  /// bytes a row, K = k bytes read per row, k % 4 == 0): s8 (FlipS8: XOR 0x80 after each broadcast, shift
  /// 128) or u8 with one zero point for every row (shift); t.row_scale the first tile's 6 scales, the next
  /// tile's rs_step bytes further (0 for a per-tensor scale); per-channel scales, direct f32 C (t.c). The
  /// same sums and epilogue as the packed path.
  template <bool FlipS8>
  static void rows_in_place(const PackedWeights& w, const TileArgs& t, std::ptrdiff_t rows, std::ptrdiff_t k,
                            std::ptrdiff_t rs_step, std::int32_t shift) {
    w.format().bits == 8 ? in_place_passes<8, FlipS8>(w, t, rows, k, rs_step, shift)
                         : in_place_passes<4, FlipS8>(w, t, rows, k, rs_step, shift);
  }

 private:
  /// The BlockConsts of panel block t.p0 for rows sharing `shift`.
  SASQ_TARGET_AVX512_VNNI static void block_consts(const PackedWeights& w, const TileArgs& t, std::int32_t shift,
                                                   avx512_vnni_asm::BlockConsts& bc) {
    const __m512i nshift = _mm512_set1_epi32(-shift);
    for (int v = 0; v < kPanelsPerBlock; ++v) {
      _mm512_store_si512(bc.corr[v], _mm512_mullo_epi32(nshift, _mm512_load_si512(w.col_sums(t.p0 + v, 0))));
      _mm512_store_ps(bc.scale[v], _mm512_load_ps(w.scales(t.p0 + v, 0)));
      _mm512_store_ps(bc.bias[v], _mm512_load_ps(t.bias + v * kPanelCols));
    }
  }

  template <int Bits, bool FlipS8>
  SASQ_TARGET_AVX512_VNNI __attribute__((noinline)) static void in_place_passes(const PackedWeights& w, const TileArgs& t,
                                                                              std::ptrdiff_t rows, std::ptrdiff_t k,
                                                                              std::ptrdiff_t rs_step, std::int32_t shift) {
    avx512_vnni_asm::BlockConsts bc;
    block_consts(w, t, shift, bc);
    const std::ptrdiff_t octs = k / 8, tail_quad = (k % 8) / 4, tiles = rows / kTileRows;
    if (tiles > 0) row_tiles<Bits, kTileRows, FlipS8>(w, t, bc, octs, tail_quad, rs_step, tiles);
    TileArgs u = t;  // the last rows % 6 rows
    u.a += tiles * kTileRows * t.lda;
    u.row_scale = reinterpret_cast<const float*>(reinterpret_cast<const char*>(t.row_scale) + tiles * rs_step);
    u.c += tiles * kTileRows * t.ldc;
    switch (rows % kTileRows) {
      case 1: row_tiles<Bits, 1, FlipS8>(w, u, bc, octs, tail_quad, 0, 1); break;
      case 2: row_tiles<Bits, 2, FlipS8>(w, u, bc, octs, tail_quad, 0, 1); break;
      case 3: row_tiles<Bits, 3, FlipS8>(w, u, bc, octs, tail_quad, 0, 1); break;
      case 4: row_tiles<Bits, 4, FlipS8>(w, u, bc, octs, tail_quad, 0, 1); break;
      case 5: row_tiles<Bits, 5, FlipS8>(w, u, bc, octs, tail_quad, 0, 1); break;
      default: break;
    }
  }

  /// row_tiles_pass over `count` R-row tiles of block t.p0 into the direct C t.c, with as many panels as
  /// hold columns of C (the last under its column mask).
  template <int Bits, int R, bool FlipS8>
  static void row_tiles(const PackedWeights& w, const TileArgs& t, const avx512_vnni_asm::BlockConsts& bc,
                        std::ptrdiff_t octs, std::ptrdiff_t tail_quad, std::ptrdiff_t rs_step, std::ptrdiff_t count) {
    const int panels = std::min(kPanelsPerBlock, (t.c_cols + kPanelCols - 1) / kPanelCols);
    const int n = t.c_cols - (panels - 1) * kPanelCols;
    const auto last = static_cast<std::uint16_t>(n >= kPanelCols ? 0xFFFFu : (1u << n) - 1);
    const std::uint8_t* wb = w.block(t.p0 / kPanelsPerBlock);
    const std::ptrdiff_t ldd = t.ldc * 4;
    const auto pass = [&](auto fn) {
      fn(wb, octs, tail_quad, t.a, t.lda, bc, t.row_scale, rs_step, t.c, ldd, count, last);
    };
    switch (panels) {
      case 1: pass(avx512_vnni_asm::row_tiles_pass<Bits, R, 1, FlipS8>); break;
      case 2: pass(avx512_vnni_asm::row_tiles_pass<Bits, R, 2, FlipS8>); break;
      case 3: pass(avx512_vnni_asm::row_tiles_pass<Bits, R, 3, FlipS8>); break;
      default: pass(avx512_vnni_asm::row_tiles_pass<Bits, R, 4, FlipS8>); break;
    }
  }

  /// Stores the kTileRows x kTileCols tile y into C (rows ldc apart), panel v under mask[v].
  SASQ_TARGET_AVX512_VNNI static void copy_rows(const float* y, const __mmask16* mask, float* c, std::ptrdiff_t ldc) {
    for (int r = 0; r < kTileRows; ++r)
      for (int v = 0; v < kPanelsPerBlock; ++v)
        _mm512_mask_storeu_ps(c + r * ldc + v * kPanelCols, mask[v],
                              _mm512_load_ps(y + r * kTileCols + v * kPanelCols));
  }

  /// full_tiles with per-channel scales and a direct C. Rows sharing one shift (s8 A, per-tensor u8 zero
  /// point): one row_tiles_pass over every tile (corr = -shift · colsum computed once per block); other
  /// shifts: one final prefill_pass per tile, its arguments set once. A block narrower than kTileCols (the
  /// last block of C) runs tile by tile through y and masked stores of its valid columns.
  template <int Bits>
  SASQ_TARGET_AVX512_VNNI __attribute__((noinline)) static void full_passes(const PackedWeights& w, const TileArgs& t,
                                                                          std::ptrdiff_t count, float* y) {
    constexpr int R = kTileRows, V = kPanelsPerBlock;
    const bool full = t.c_cols == kTileCols;
    const std::ptrdiff_t octs = w.k_padded() / kKStep;
    const std::uint8_t* wb = w.block(t.p0 / kPanelsPerBlock);
    __mmask16 mask[V];
    for (int v = 0; v < V; ++v) {
      const int n = t.c_cols - v * kPanelCols;
      mask[v] = n >= kPanelCols ? __mmask16(0xFFFF) : n <= 0 ? __mmask16(0) : __mmask16((1u << n) - 1);
    }
    bool uniform = true;
    for (std::ptrdiff_t r = 1; r < count * R; ++r) uniform = uniform && t.shift[r] == t.shift[0];
    if (uniform) {
      avx512_vnni_asm::BlockConsts bc;
      block_consts(w, t, t.shift[0], bc);
      row_tiles<Bits, R, false>(w, t, bc, octs, 0, 4 * R, count);
      return;
    }
    avx512_vnni_asm::PassArgs p{wb, t.a, t.lda, octs, w.col_sums(t.p0, 0), w.scales(t.p0, 0), kPanelCols * 4,
                                t.shift, t.row_scale, t.bias, full ? t.c : y, full ? t.ldc * 4 : kTileCols * 4};
    const std::uint8_t* a = t.a;
    float* c = t.c;
    for (std::ptrdiff_t i = 0; i < count; ++i, a += R * t.lda, c += R * t.ldc, p.shift += R, p.row_scale += R) {
      p.wo = wb;
      p.ao = a;
      if (full) p.d = c;
      avx512_vnni_asm::prefill_pass<R, Bits, false, true>(p);
      if (!full) copy_rows(y, mask, c, t.ldc);
    }
  }

  /// Prefill tiles (R = 3..6): prefill_tile, specialized for a shift shared by every row of the tile.
  template <int R, int Bits>
  static void prefill(const PackedWeights& w, const TileArgs& t, float* y) {
    bool uniform = true;
    for (int r = 1; r < R; ++r) uniform = uniform && t.shift[r] == t.shift[0];
    uniform ? prefill_tile<R, Bits, true>(w, t, y) : prefill_tile<R, Bits, false>(w, t, y);
  }

  /// Decode tiles (R = 1, 2).
  template <int R, int Bits>
  SASQ_TARGET_AVX512_VNNI static void kernel(const PackedWeights& w, const TileArgs& t, float* y) {
    constexpr int V = kPanelsPerBlock;
    constexpr __mmask16 kAll = 0xFFFF;  // masked forms avoid GCC 12's _mm512_undefined warnings
    const std::ptrdiff_t groups = w.groups(), octs = w.k_padded() / kKStep;
    const std::ptrdiff_t ob = w.octet_bytes();
    const std::uint8_t* wb = w.block(t.p0 / kPanelsPerBlock);
    __m512i acc[R * V];
    if (groups == 1) {  // per-channel scales: one pass, y = fmaf(fmaf(acc, ws, 0), as, bias) stored once
      for (int v = 0; v < V; ++v) {
        const __m512i cs = _mm512_load_si512(w.col_sums(t.p0 + v, 0));
        for (int r = 0; r < R; ++r) acc[r * V + v] = _mm512_mullo_epi32(_mm512_set1_epi32(-t.shift[r]), cs);
      }
      dot_octets<R, Bits>(wb, ob, t.a, t.lda, octs, acc);
      for (int v = 0; v < V; ++v) {
        const __m512 sc = _mm512_load_ps(w.scales(t.p0 + v, 0)), bias = _mm512_load_ps(t.bias + v * kPanelCols);
        for (int r = 0; r < R; ++r) {
          const __m512 yw = _mm512_fmadd_ps(_mm512_maskz_cvtepi32_ps(kAll, acc[r * V + v]), sc, _mm512_setzero_ps());
          store(t, y, r, v, _mm512_fmadd_ps(yw, _mm512_set1_ps(t.row_scale[r]), bias));
        }
      }
      return;
    }
    decode_groups<R, Bits>(w, t, y);
  }
};

}  // namespace sasq::cpu

#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic pop
#endif

#endif  // SASQ_HAS_X86_KERNELS
