// The AVX-512 VNNI multi-tile pass: `tiles` consecutive R-row tiles (R <= 6) of one panel block (V <= 4
// panels of 16 columns, the last stored under a column mask; per-channel scales, every row the same
// shift) in one inline-asm loop, for the model's small shapes where a tile's K loop is short and per-tile
// setup would dominate. Accumulators in zmm 4r + v as in prefill_pass.hpp. Per tile:
//   init:  acc[r][v] = 0 (vpxord: no load ahead of the first vpdpbusd);
//   loop:  per K octet and quad q, V weight vectors in zmm28.. (int8: loaded; int4: 16·w of nibble q,
//          int4_x16.hpp, mask 0xF0 in zmm25), per row one vpbroadcastd (zmm27; s8 A read in place: XOR
//          0x80 with zmm24, a + 128 as u8) and V vpdpbusd (u8 activations x s8 weights); then quad 0 of
//          one more octet when K % 8 == 4;
//   flush: (int4: acc >>= 4, exact) acc += corr[v] = -shift · colsum[v] (int32, wrapping: the exact sum
//          fits, so this is the value the reference gets), then
//          d[r][v] = fmaf(fmaf(float(acc), ws[v], 0), as[r], bias[v]) (epilogue.hpp order).
// AT&T syntax, GCC and Clang.
#pragma once

#include <cstddef>
#include <cstdint>

#include "sasq/core/config.hpp"
#include "sasq/cpu/avx512_vnni/int4_x16.hpp"

#if SASQ_HAS_X86_KERNELS

namespace sasq::cpu::avx512_vnni_asm {

/// Per-block constants of a row-tiles pass, 64-byte aligned: corr (-shift · column sums, added at the
/// flush), weight scales and bias, 16 values per panel.
struct alignas(64) BlockConsts {
  std::int32_t corr[4][16];
  float scale[4][16];
  float bias[4][16];
};

#define SASQ_RT_ACC(r, v) SASQ_RT_ACC_##r##_##v
#define SASQ_RT_ACC_0_0 "0"
#define SASQ_RT_ACC_0_1 "1"
#define SASQ_RT_ACC_0_2 "2"
#define SASQ_RT_ACC_0_3 "3"
#define SASQ_RT_ACC_1_0 "4"
#define SASQ_RT_ACC_1_1 "5"
#define SASQ_RT_ACC_1_2 "6"
#define SASQ_RT_ACC_1_3 "7"
#define SASQ_RT_ACC_2_0 "8"
#define SASQ_RT_ACC_2_1 "9"
#define SASQ_RT_ACC_2_2 "10"
#define SASQ_RT_ACC_2_3 "11"
#define SASQ_RT_ACC_3_0 "12"
#define SASQ_RT_ACC_3_1 "13"
#define SASQ_RT_ACC_3_2 "14"
#define SASQ_RT_ACC_3_3 "15"
#define SASQ_RT_ACC_4_0 "16"
#define SASQ_RT_ACC_4_1 "17"
#define SASQ_RT_ACC_4_2 "18"
#define SASQ_RT_ACC_4_3 "19"
#define SASQ_RT_ACC_5_0 "20"
#define SASQ_RT_ACC_5_1 "21"
#define SASQ_RT_ACC_5_2 "22"
#define SASQ_RT_ACC_5_3 "23"
// Rows 0..2 from [ao] / [d], rows 3..5 from [a3] (A rows in the loop, output rows in the flush).
#define SASQ_RT_A0 "(%[ao])"
#define SASQ_RT_A1 "(%[ao],%[lda])"
#define SASQ_RT_A2 "(%[ao],%[lda],2)"
#define SASQ_RT_A3 "(%[a3])"
#define SASQ_RT_A4 "(%[a3],%[lda])"
#define SASQ_RT_A5 "(%[a3],%[lda],2)"
#define SASQ_RT_D0 "(%[d])"
#define SASQ_RT_D1 "(%[d],%[ldd])"
#define SASQ_RT_D2 "(%[d],%[ldd],2)"
#define SASQ_RT_D3 "(%[a3])"
#define SASQ_RT_D4 "(%[a3],%[ldd])"
#define SASQ_RT_D5 "(%[a3],%[ldd],2)"

// Weight vector of panel v in zmm(28 + v).
#define SASQ_RT_WREG_0 "28"
#define SASQ_RT_WREG_1 "29"
#define SASQ_RT_WREG_2 "30"
#define SASQ_RT_WREG_3 "31"

// Accumulators of the first V panels of every row start at 0.
#define SASQ_RT_INIT1(r, v) \
  "vpxord %%zmm" SASQ_RT_ACC(r, v) ", %%zmm" SASQ_RT_ACC(r, v) ", %%zmm" SASQ_RT_ACC(r, v) "\n\t"
#define SASQ_RT_INITV_1(r) SASQ_RT_INIT1(r, 0)
#define SASQ_RT_INITV_2(r) SASQ_RT_INITV_1(r) SASQ_RT_INIT1(r, 1)
#define SASQ_RT_INITV_3(r) SASQ_RT_INITV_2(r) SASQ_RT_INIT1(r, 2)
#define SASQ_RT_INITV_4(r) SASQ_RT_INITV_3(r) SASQ_RT_INIT1(r, 3)
#define SASQ_RT_INIT_1(V) SASQ_RT_INITV_##V(0)
#define SASQ_RT_INIT_2(V) SASQ_RT_INIT_1(V) SASQ_RT_INITV_##V(1)
#define SASQ_RT_INIT_3(V) SASQ_RT_INIT_2(V) SASQ_RT_INITV_##V(2)
#define SASQ_RT_INIT_4(V) SASQ_RT_INIT_3(V) SASQ_RT_INITV_##V(3)
#define SASQ_RT_INIT_5(V) SASQ_RT_INIT_4(V) SASQ_RT_INITV_##V(4)
#define SASQ_RT_INIT_6(V) SASQ_RT_INIT_5(V) SASQ_RT_INITV_##V(5)

// Weight vectors of quad q, panels 0..V-1. int8: 512-byte octets, quad q at q * 256; int4: 256-byte
// octets, 16·w of nibble q of each byte (int4_x16.hpp, mask in zmm25).
#define SASQ_RT_W8V(q, v) "vmovdqa64 " #q "*256+" #v "*64(%[wo]), %%zmm" SASQ_RT_WREG_##v "\n\t"
#define SASQ_RT_W4V(q, v) SASQ_INT4X16_##q("zmm" SASQ_RT_WREG_##v, #v "*64(%[wo])", "zmm25")
#define SASQ_RT_W_1(b, q) SASQ_RT_W##b##V(q, 0)
#define SASQ_RT_W_2(b, q) SASQ_RT_W_1(b, q) SASQ_RT_W##b##V(q, 1)
#define SASQ_RT_W_3(b, q) SASQ_RT_W_2(b, q) SASQ_RT_W##b##V(q, 2)
#define SASQ_RT_W_4(b, q) SASQ_RT_W_3(b, q) SASQ_RT_W##b##V(q, 3)
#define SASQ_RT_CONSTS8
#define SASQ_RT_CONSTS4 "vmovdqa64 %[high4], %%zmm25\n\t"
#define SASQ_RT_OB8 "512"
#define SASQ_RT_OB4 "256"

// Row r of quad q: 4 activation bytes broadcast, V vpdpbusd.
#define SASQ_RT_DP1(r, v) "vpdpbusd %%zmm" SASQ_RT_WREG_##v ", %%zmm27, %%zmm" SASQ_RT_ACC(r, v) "\n\t"
#define SASQ_RT_DPV_1(r) SASQ_RT_DP1(r, 0)
#define SASQ_RT_DPV_2(r) SASQ_RT_DPV_1(r) SASQ_RT_DP1(r, 1)
#define SASQ_RT_DPV_3(r) SASQ_RT_DPV_2(r) SASQ_RT_DP1(r, 2)
#define SASQ_RT_DPV_4(r) SASQ_RT_DPV_3(r) SASQ_RT_DP1(r, 3)
// F = X: s8 activations read in place, turned into u8 + 128 after the broadcast (XOR 0x80, zmm24).
#define SASQ_RT_FLIP_
#define SASQ_RT_FLIP_X "vpxord %%zmm24, %%zmm27, %%zmm27\n\t"
#define SASQ_RT_DP(q, r, V, F) \
  "vpbroadcastd " #q "*4" SASQ_RT_A##r ", %%zmm27\n\t" SASQ_RT_FLIP_##F SASQ_RT_DPV_##V(r)
#define SASQ_RT_DPR_1(q, V, F) SASQ_RT_DP(q, 0, V, F)
#define SASQ_RT_DPR_2(q, V, F) SASQ_RT_DPR_1(q, V, F) SASQ_RT_DP(q, 1, V, F)
#define SASQ_RT_DPR_3(q, V, F) SASQ_RT_DPR_2(q, V, F) SASQ_RT_DP(q, 2, V, F)
#define SASQ_RT_DPR_4(q, V, F) SASQ_RT_DPR_3(q, V, F) SASQ_RT_DP(q, 3, V, F)
#define SASQ_RT_DPR_5(q, V, F) SASQ_RT_DPR_4(q, V, F) SASQ_RT_DP(q, 4, V, F)
#define SASQ_RT_DPR_6(q, V, F) SASQ_RT_DPR_5(q, V, F) SASQ_RT_DP(q, 5, V, F)
#define SASQ_RT_FSET_
#define SASQ_RT_FSET_X "vpbroadcastd %[flip], %%zmm24\n\t"

// Flush of row r, panel v: scale in zmm28, zero in zmm29, bias in zmm30; M is "" or the store mask; int4
// accumulators hold 16 x the sums (SASQ_RT_UNX4).
#define SASQ_RT_MASK_ ""
#define SASQ_RT_MASK_K "%{%%k1%}"
#define SASQ_RT_UNX8(r, v)
#define SASQ_RT_UNX4(r, v) "vpsrad $4, %%zmm" SASQ_RT_ACC(r, v) ", %%zmm" SASQ_RT_ACC(r, v) "\n\t"
#define SASQ_RT_FROW(b, r, v, M)                                                                      \
  SASQ_RT_UNX##b(r, v)                                                                                \
  "vpaddd " #v "*64(%[bc]), %%zmm" SASQ_RT_ACC(r, v) ", %%zmm" SASQ_RT_ACC(r, v) "\n\t"               \
  "vcvtdq2ps %%zmm" SASQ_RT_ACC(r, v) ", %%zmm" SASQ_RT_ACC(r, v) "\n\t"                              \
  "vfmadd213ps %%zmm29, %%zmm28, %%zmm" SASQ_RT_ACC(r, v) "\n\t"                                      \
  "vfmadd132ps " #r "*4(%[rs])%{1to16%}, %%zmm30, %%zmm" SASQ_RT_ACC(r, v) "\n\t"                     \
  "vmovups %%zmm" SASQ_RT_ACC(r, v) ", " #v "*64" SASQ_RT_D##r SASQ_RT_MASK_##M "\n\t"
#define SASQ_RT_FROWS_1(b, v, M) SASQ_RT_FROW(b, 0, v, M)
#define SASQ_RT_FROWS_2(b, v, M) SASQ_RT_FROWS_1(b, v, M) SASQ_RT_FROW(b, 1, v, M)
#define SASQ_RT_FROWS_3(b, v, M) SASQ_RT_FROWS_2(b, v, M) SASQ_RT_FROW(b, 2, v, M)
#define SASQ_RT_FROWS_4(b, v, M) SASQ_RT_FROWS_3(b, v, M) SASQ_RT_FROW(b, 3, v, M)
#define SASQ_RT_FROWS_5(b, v, M) SASQ_RT_FROWS_4(b, v, M) SASQ_RT_FROW(b, 4, v, M)
#define SASQ_RT_FROWS_6(b, v, M) SASQ_RT_FROWS_5(b, v, M) SASQ_RT_FROW(b, 5, v, M)
#define SASQ_RT_FLUSHV(b, R, v, M)                  \
  "vmovaps 256+" #v "*64(%[bc]), %%zmm28\n\t"       \
  "vmovaps 512+" #v "*64(%[bc]), %%zmm30\n\t" SASQ_RT_FROWS_##R(b, v, M)
// Panels 0..V-2 stored whole, panel V-1 under k1.
#define SASQ_RT_FLUSH_1(b, R) SASQ_RT_FLUSHV(b, R, 0, K)
#define SASQ_RT_FLUSH_2(b, R) SASQ_RT_FLUSHV(b, R, 0, ) SASQ_RT_FLUSHV(b, R, 1, K)
#define SASQ_RT_FLUSH_3(b, R) SASQ_RT_FLUSHV(b, R, 0, ) SASQ_RT_FLUSHV(b, R, 1, ) SASQ_RT_FLUSHV(b, R, 2, K)
#define SASQ_RT_FLUSH_4(b, R) \
  SASQ_RT_FLUSHV(b, R, 0, ) SASQ_RT_FLUSHV(b, R, 1, ) SASQ_RT_FLUSHV(b, R, 2, ) SASQ_RT_FLUSHV(b, R, 3, K)

#define SASQ_RT_PASS(bits, R, V, F)                                                                              \
  __asm__ volatile(                                                                                           \
      SASQ_RT_CONSTS##bits SASQ_RT_FSET_##F "kmovw %[mask], %%k1\n\t"                                         \
      "2:\n\t" SASQ_RT_INIT_##R(V)                                                                                \
      "mov %[wb], %[wo]\n\t"                                                                                  \
      "mov %[octs], %[n]\n\t"                                                                                 \
      "mov %[ab], %[ao]\n\t"                                                                                  \
      "lea (%[ao],%[lda],2), %[a3]\n\t"                                                                       \
      "add %[lda], %[a3]\n\t"                                                                                 \
      "test %[n], %[n]\n\t"                                                                                   \
      "jz 3f\n\t"                                                                                             \
      "1:\n\t" SASQ_RT_W_##V(bits, 0) SASQ_RT_DPR_##R(0, V, F) SASQ_RT_W_##V(bits, 1) SASQ_RT_DPR_##R(1, V, F) \
      "add $" SASQ_RT_OB##bits ", %[wo]\n\t"                                                                  \
      "add $8, %[ao]\n\t"                                                                                     \
      "add $8, %[a3]\n\t"                                                                                     \
      "dec %[n]\n\t"                                                                                          \
      "jnz 1b\n\t"                                                                                            \
      "3:\n\t"                                                                                                \
      "cmpq $0, %[tq]\n\t"                                                                                    \
      "je 4f\n\t" SASQ_RT_W_##V(bits, 0) SASQ_RT_DPR_##R(0, V, F)                                           \
      "4:\n\t"                                                                                                \
      "vpxord %%zmm29, %%zmm29, %%zmm29\n\t"                                                                  \
      "lea (%[d],%[ldd],2), %[a3]\n\t"                                                                        \
      "add %[ldd], %[a3]\n\t" SASQ_RT_FLUSH_##V(bits, R)                                                      \
      "lea (%[ab],%[lda],4), %[ab]\n\t"                                                                       \
      "lea (%[ab],%[lda],2), %[ab]\n\t"                                                                       \
      "lea (%[d],%[ldd],4), %[d]\n\t"                                                                         \
      "lea (%[d],%[ldd],2), %[d]\n\t"                                                                         \
      "add %[rstep], %[rs]\n\t"                                                                                    \
      "dec %[tiles]\n\t"                                                                                      \
      "jnz 2b\n\t"                                                                                            \
      : [ab] "+r"(ab), [d] "+r"(d), [rs] "+r"(rs), [tiles] "+r"(tiles), [wo] "=&r"(wo), [ao] "=&r"(ao),      \
        [a3] "=&r"(a3), [n] "=&r"(n)                                                                          \
      : [lda] "r"(lda), [ldd] "r"(ldd), [bc] "r"(&bc), [wb] "m"(wb), [octs] "m"(octs), [mask] "m"(mask),      \
        [tq] "m"(tail_quad), [rstep] "m"(row_scale_step), [flip] "m"(kFlip),                                          \
        [high4] "m"(kInt4x16Mask.high4)                                                                       \
      : "xmm0", "xmm1", "xmm2", "xmm3", "xmm4", "xmm5", "xmm6", "xmm7", "xmm8", "xmm9", "xmm10", "xmm11",      \
        "xmm12", "xmm13", "xmm14", "xmm15", "xmm16", "xmm17", "xmm18", "xmm19", "xmm20", "xmm21", "xmm22",    \
        "xmm23", "xmm24", "xmm25", "xmm26", "xmm27", "xmm28", "xmm29", "xmm30", "xmm31", "k1", "cc", "memory")
#define SASQ_RT_PASS_RV(bits, R, F)                   \
  if constexpr (V == 1) SASQ_RT_PASS(bits, R, 1, F); \
  if constexpr (V == 2) SASQ_RT_PASS(bits, R, 2, F); \
  if constexpr (V == 3) SASQ_RT_PASS(bits, R, 3, F); \
  if constexpr (V == 4) SASQ_RT_PASS(bits, R, 4, F);
#define SASQ_RT_PASS_V(bits, F)                          \
  if constexpr (R == 1) { SASQ_RT_PASS_RV(bits, 1, F) } \
  if constexpr (R == 2) { SASQ_RT_PASS_RV(bits, 2, F) } \
  if constexpr (R == 3) { SASQ_RT_PASS_RV(bits, 3, F) } \
  if constexpr (R == 4) { SASQ_RT_PASS_RV(bits, 4, F) } \
  if constexpr (R == 5) { SASQ_RT_PASS_RV(bits, 5, F) } \
  if constexpr (R == 6) { SASQ_RT_PASS_RV(bits, 6, F) }

/// `tiles` >= 1 tiles of R (1..6) rows x V panels (1..4) of one block with Bits-bit weights (header comment):
/// wb is the block's packed weights at octet 0; octs whole K octets (>= 0) then, if tail_quad, one more
/// quad (K = 8 · octs + 4 · tail_quad >= 4); a row 0 of the first tile, rows lda bytes apart: packed A
/// (u8), or with FlipS8 the caller's s8 A in place (K bytes a row are read, nothing past them);
/// row_scale the first tile's R row scales, the next tile's row_scale_step bytes further (0: one set
/// for every tile); d row 0 of its output (rows ldd bytes apart, tile t at 6 · t rows: R < 6 only for a
/// single tile); panels 0..V-2
/// are stored whole, panel V-1 only in the columns of `mask`.
template <int Bits, int R, int V, bool FlipS8>
SASQ_TARGET("avx2,fma,avx512f,avx512bw,avx512vl,avx512dq,avx512vnni")
inline void row_tiles_pass(const std::uint8_t* wb, std::ptrdiff_t octs, std::ptrdiff_t tail_quad, const std::uint8_t* a,
                           std::ptrdiff_t lda, const BlockConsts& bc, const float* row_scale,
                           std::ptrdiff_t row_scale_step, float* d, std::ptrdiff_t ldd, std::ptrdiff_t tiles,
                           std::uint16_t mask) {
  static_assert((Bits == 8 || Bits == 4) && R >= 1 && R <= 6 && V >= 1 && V <= 4,
                "row_tiles_pass: Bits 8 or 4, R in 1..6, V in 1..4");
  static constexpr std::uint32_t kFlip = 0x80808080u;
  const std::uint8_t* ab = a;
  const float* rs = row_scale;
  const std::uint8_t *wo, *ao, *a3;
  std::ptrdiff_t n;
  if constexpr (Bits == 8 && FlipS8) {
    SASQ_RT_PASS_V(8, X)
  } else if constexpr (Bits == 8) {
    SASQ_RT_PASS_V(8, )
  } else if constexpr (FlipS8) {
    SASQ_RT_PASS_V(4, X)
  } else {
    SASQ_RT_PASS_V(4, )
  }
  (void)wo;
  (void)ao;
  (void)a3;
  (void)n;
}

}  // namespace sasq::cpu::avx512_vnni_asm

#undef SASQ_RT_ACC
#undef SASQ_RT_ACC_0_0
#undef SASQ_RT_ACC_0_1
#undef SASQ_RT_ACC_0_2
#undef SASQ_RT_ACC_0_3
#undef SASQ_RT_ACC_1_0
#undef SASQ_RT_ACC_1_1
#undef SASQ_RT_ACC_1_2
#undef SASQ_RT_ACC_1_3
#undef SASQ_RT_ACC_2_0
#undef SASQ_RT_ACC_2_1
#undef SASQ_RT_ACC_2_2
#undef SASQ_RT_ACC_2_3
#undef SASQ_RT_ACC_3_0
#undef SASQ_RT_ACC_3_1
#undef SASQ_RT_ACC_3_2
#undef SASQ_RT_ACC_3_3
#undef SASQ_RT_ACC_4_0
#undef SASQ_RT_ACC_4_1
#undef SASQ_RT_ACC_4_2
#undef SASQ_RT_ACC_4_3
#undef SASQ_RT_ACC_5_0
#undef SASQ_RT_ACC_5_1
#undef SASQ_RT_ACC_5_2
#undef SASQ_RT_ACC_5_3
#undef SASQ_RT_A0
#undef SASQ_RT_A1
#undef SASQ_RT_A2
#undef SASQ_RT_A3
#undef SASQ_RT_A4
#undef SASQ_RT_A5
#undef SASQ_RT_D0
#undef SASQ_RT_D1
#undef SASQ_RT_D2
#undef SASQ_RT_D3
#undef SASQ_RT_D4
#undef SASQ_RT_D5
#undef SASQ_RT_CONSTS4
#undef SASQ_RT_CONSTS8
#undef SASQ_RT_DP
#undef SASQ_RT_FSET_X
#undef SASQ_RT_FSET_
#undef SASQ_RT_FLIP_X
#undef SASQ_RT_FLIP_
#undef SASQ_RT_DP1
#undef SASQ_RT_DPR_1
#undef SASQ_RT_DPR_2
#undef SASQ_RT_DPR_3
#undef SASQ_RT_DPR_4
#undef SASQ_RT_DPR_5
#undef SASQ_RT_DPR_6
#undef SASQ_RT_FROWS_1
#undef SASQ_RT_FROWS_2
#undef SASQ_RT_FROWS_3
#undef SASQ_RT_FROWS_4
#undef SASQ_RT_FROWS_5
#undef SASQ_RT_FROWS_6
#undef SASQ_RT_UNX4
#undef SASQ_RT_UNX8
#undef SASQ_RT_DPV_1
#undef SASQ_RT_DPV_2
#undef SASQ_RT_DPV_3
#undef SASQ_RT_DPV_4
#undef SASQ_RT_FLUSHV
#undef SASQ_RT_FLUSH_1
#undef SASQ_RT_FLUSH_2
#undef SASQ_RT_FLUSH_3
#undef SASQ_RT_FLUSH_4
#undef SASQ_RT_FROW
#undef SASQ_RT_INIT_1
#undef SASQ_RT_INIT_2
#undef SASQ_RT_INIT_3
#undef SASQ_RT_INIT_4
#undef SASQ_RT_INIT_5
#undef SASQ_RT_INIT_6
#undef SASQ_RT_INIT1
#undef SASQ_RT_INITV_1
#undef SASQ_RT_INITV_2
#undef SASQ_RT_INITV_3
#undef SASQ_RT_INITV_4
#undef SASQ_RT_MASK_
#undef SASQ_RT_MASK_K
#undef SASQ_RT_OB4
#undef SASQ_RT_OB8
#undef SASQ_RT_PASS
#undef SASQ_RT_PASS_V
#undef SASQ_RT_PASS_RV
#undef SASQ_RT_W4V
#undef SASQ_RT_W8V
#undef SASQ_RT_WREG_0
#undef SASQ_RT_WREG_1
#undef SASQ_RT_WREG_2
#undef SASQ_RT_WREG_3
#undef SASQ_RT_W_1
#undef SASQ_RT_W_2
#undef SASQ_RT_W_3
#undef SASQ_RT_W_4

#endif  // SASQ_HAS_X86_KERNELS
