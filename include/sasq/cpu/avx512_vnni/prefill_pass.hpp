// The AVX-512 VNNI prefill tile (R = 3..6 rows x 4 panels = 64 columns) in inline assembly, the R x 4
// int32 accumulators in zmm 4r + v from the K loop through the flush. prefill_pass: one pass over n K
// octets (zero, K loop, flush); prefill_groups: every group of a tile whose rows share one shift, each
// flush leaving the accumulators at the next group's -shift · colsum. GCC 12 keeps such a tile in
// registers only when the loop is alone in its function (then the accumulators go through memory at
// every group); with a flush in the same function it spills or shuffles them inside the loop, so both
// are written out here. AT&T syntax, GCC and Clang.
//   loop, per octet and quad q: 4 weight vectors in zmm28..31 (int8: loaded; int4: 16 x nibble q, SASQ_W4),
//     per row one vpbroadcastd of 4 activation bytes (zmm27), 4 vpdpbusd (u8 activations x s8 weights,
//     exact int32);
//   flush, per panel v and row r: (int4: acc >>= 4, exact) acc -= shift[r] · colsum (int32 wraps and the
//     exact sum fits, so this is the value the reference gets), then one of (epilogue.hpp):
//     group:  d[r][v] = fmaf(float(acc), ws, d[r][v])                 Dequantize::apply_group
//     final:  d[r][v] = fmaf(fmaf(float(acc), ws, 0), as[r], bias[v])  apply_group from 0, apply_row
//   Uniform: every row has the same shift (s8 A, a per-tensor u8 zero point): one vpmulld per panel.
#pragma once

#include <cstddef>
#include <cstdint>

#include "sasq/core/config.hpp"
#include "sasq/cpu/avx512_vnni/int4_x16.hpp"

#if SASQ_HAS_X86_KERNELS

namespace sasq::cpu::avx512_vnni_asm {

/// Operands of one pass. Pointers advance as in the packed layouts; byte strides.
struct PassArgs {
  const std::uint8_t* wo;     ///< the block's packed weights at the pass's first octet
  const std::uint8_t* ao;     ///< packed A, row 0 of the tile, at the pass's first octet
  std::ptrdiff_t lda;         ///< bytes between packed A rows
  std::ptrdiff_t n;           ///< K octets, >= 1
  const std::int32_t* cs;     ///< 16 column sums of panel 0 of the block, this group (64-byte aligned)
  const float* sc;            ///< 16 weight scales of panel 0, this group (64-byte aligned)
  std::ptrdiff_t ps;          ///< bytes from panel v to v + 1 in cs and sc
  const std::int32_t* shift;  ///< per row: 128 (s8 A) or the zero point (u8 A)
  const float* row_scale;     ///< per row activation scale (final passes)
  const float* bias;          ///< 64 floats, 64-byte aligned (final passes)
  float* d;                   ///< output row 0 (group passes: 64-byte aligned)
  std::ptrdiff_t ldd;         ///< bytes between output rows
};

// Accumulator register of row r, panel v: zmm(4r + v).
#define SASQ_ACC(r, v) SASQ_ACC_##r##_##v
#define SASQ_ACC_0_0 "0"
#define SASQ_ACC_0_1 "1"
#define SASQ_ACC_0_2 "2"
#define SASQ_ACC_0_3 "3"
#define SASQ_ACC_1_0 "4"
#define SASQ_ACC_1_1 "5"
#define SASQ_ACC_1_2 "6"
#define SASQ_ACC_1_3 "7"
#define SASQ_ACC_2_0 "8"
#define SASQ_ACC_2_1 "9"
#define SASQ_ACC_2_2 "10"
#define SASQ_ACC_2_3 "11"
#define SASQ_ACC_3_0 "12"
#define SASQ_ACC_3_1 "13"
#define SASQ_ACC_3_2 "14"
#define SASQ_ACC_3_3 "15"
#define SASQ_ACC_4_0 "16"
#define SASQ_ACC_4_1 "17"
#define SASQ_ACC_4_2 "18"
#define SASQ_ACC_4_3 "19"
#define SASQ_ACC_5_0 "20"
#define SASQ_ACC_5_1 "21"
#define SASQ_ACC_5_2 "22"
#define SASQ_ACC_5_3 "23"

// Row addresses: A rows 3..5 and output rows 3..5 from [a3] (set to a + 3 lda before the loop, to
// d + 3 ldd before the flush).
#define SASQ_A0 "(%[ao])"
#define SASQ_A1 "(%[ao],%[lda])"
#define SASQ_A2 "(%[ao],%[lda],2)"
#define SASQ_A3 "(%[a3])"
#define SASQ_A4 "(%[a3],%[lda])"
#define SASQ_A5 "(%[a3],%[lda],2)"
#define SASQ_D0 "(%[d])"
#define SASQ_D1 "(%[d],%[ldd])"
#define SASQ_D2 "(%[d],%[ldd],2)"
#define SASQ_D3 "(%[a3])"
#define SASQ_D4 "(%[a3],%[ldd])"
#define SASQ_D5 "(%[a3],%[ldd],2)"
#define SASQ_DA(r, v) #v "*64" SASQ_D##r

#define SASQ_ZERO1(r)                                                          \
  "vpxord %%zmm" SASQ_ACC(r, 0) ", %%zmm" SASQ_ACC(r, 0) ", %%zmm" SASQ_ACC(r, 0) "\n\t" \
  "vpxord %%zmm" SASQ_ACC(r, 1) ", %%zmm" SASQ_ACC(r, 1) ", %%zmm" SASQ_ACC(r, 1) "\n\t" \
  "vpxord %%zmm" SASQ_ACC(r, 2) ", %%zmm" SASQ_ACC(r, 2) ", %%zmm" SASQ_ACC(r, 2) "\n\t" \
  "vpxord %%zmm" SASQ_ACC(r, 3) ", %%zmm" SASQ_ACC(r, 3) ", %%zmm" SASQ_ACC(r, 3) "\n\t"
#define SASQ_ZERO3 SASQ_ZERO1(0) SASQ_ZERO1(1) SASQ_ZERO1(2)
#define SASQ_ZERO4 SASQ_ZERO3 SASQ_ZERO1(3)
#define SASQ_ZERO5 SASQ_ZERO4 SASQ_ZERO1(4)
#define SASQ_ZERO6 SASQ_ZERO5 SASQ_ZERO1(5)

// Weight vectors of quad q into zmm28..31. int8: 512-byte octets, quad q at q * 256.
#define SASQ_W8(q)                           \
  "vmovdqa64 " #q "*256(%[wo]), %%zmm28\n\t"     \
  "vmovdqa64 " #q "*256+64(%[wo]), %%zmm29\n\t"  \
  "vmovdqa64 " #q "*256+128(%[wo]), %%zmm30\n\t" \
  "vmovdqa64 " #q "*256+192(%[wo]), %%zmm31\n\t"
// int4: 256-byte octets, nibble q of each byte as the int8 16·w (int4_x16.hpp; mask in zmm25): the
// accumulators hold 16 x the int32 sums and the flush shifts them right by 4 before anything else.
#define SASQ_W4Q(q, z, off) SASQ_INT4X16_##q(z, off "(%[wo])", "zmm25")
#define SASQ_W4(q) SASQ_W4Q(q, "zmm28", "0") SASQ_W4Q(q, "zmm29", "64") SASQ_W4Q(q, "zmm30", "128") SASQ_W4Q(q, "zmm31", "192")
#define SASQ_CONSTS8
#define SASQ_CONSTS4 "vmovdqa64 %[high4], %%zmm25\n\t"
// int4 accumulator a: 16 x the sum back to the sum.
#define SASQ_UNX8(a)
#define SASQ_UNX4(a) "vpsrad $4, %%zmm" a ", %%zmm" a "\n\t"
#define SASQ_OB8 "512"
#define SASQ_OB4 "256"

// Row r of quad q: 4 activation bytes at A row r + 4q, 4 vpdpbusd.
#define SASQ_DP(q, r)                                                     \
  "vpbroadcastd " #q "*4" SASQ_A##r ", %%zmm27\n\t"                       \
  "vpdpbusd %%zmm28, %%zmm27, %%zmm" SASQ_ACC(r, 0) "\n\t"                \
  "vpdpbusd %%zmm29, %%zmm27, %%zmm" SASQ_ACC(r, 1) "\n\t"                \
  "vpdpbusd %%zmm30, %%zmm27, %%zmm" SASQ_ACC(r, 2) "\n\t"                \
  "vpdpbusd %%zmm31, %%zmm27, %%zmm" SASQ_ACC(r, 3) "\n\t"
#define SASQ_DP3(q) SASQ_DP(q, 0) SASQ_DP(q, 1) SASQ_DP(q, 2)
#define SASQ_DP4(q) SASQ_DP3(q) SASQ_DP(q, 3)
#define SASQ_DP5(q) SASQ_DP4(q) SASQ_DP(q, 4)
#define SASQ_DP6(q) SASQ_DP5(q) SASQ_DP(q, 5)

#define SASQ_LOOP(bits, R)                                                                     \
  SASQ_ZERO##R SASQ_CONSTS##bits "lea (%[ao],%[lda],2), %[a3]\n\t"                              \
  "add %[lda], %[a3]\n\t"                                                                      \
  "1:\n\t" SASQ_W##bits(0) SASQ_DP##R(0) SASQ_W##bits(1) SASQ_DP##R(1) "add $" SASQ_OB##bits ", %[wo]\n\t" \
  "add $8, %[ao]\n\t"                                                                          \
  "add $8, %[a3]\n\t"                                                                          \
  "dec %[n]\n\t"                                                                               \
  "jnz 1b\n\t"

// Flush. Column sums of panel v into zmm27, scales into zmm28 (panel 3 through [n], free after the loop);
// the shift correction in zmm24; final: zmm29 = 0, bias of panel v in zmm30.
#define SASQ_CS0 "(%[cs])"
#define SASQ_CS1 "(%[cs],%[ps])"
#define SASQ_CS2 "(%[cs],%[ps],2)"
#define SASQ_CS3 "(%[n])"
#define SASQ_SC0 "(%[sc])"
#define SASQ_SC1 "(%[sc],%[ps])"
#define SASQ_SC2 "(%[sc],%[ps],2)"
#define SASQ_SC3 "(%[n])"
#define SASQ_PRE0(base)
#define SASQ_PRE1(base)
#define SASQ_PRE2(base)
#define SASQ_PRE3(base) "lea (%[" base "],%[ps],2), %[n]\n\t" "add %[ps], %[n]\n\t"
#define SASQ_CORRH_U "vpmulld (%[sh])%{1to16%}, %%zmm27, %%zmm24\n\t"
#define SASQ_CORRH_N
#define SASQ_CORRR_U(r)
#define SASQ_CORRR_N(r) "vpmulld " #r "*4(%[sh])%{1to16%}, %%zmm27, %%zmm24\n\t"
#define SASQ_BIAS_G(v)
#define SASQ_BIAS_F(v) "vmovaps " #v "*64(%[bias]), %%zmm30\n\t"
#define SASQ_FSETUP_G "lea (%[d],%[ldd],2), %[a3]\n\t" "add %[ldd], %[a3]\n\t"
#define SASQ_FSETUP_F SASQ_FSETUP_G "vpxord %%zmm29, %%zmm29, %%zmm29\n\t"
#define SASQ_STORE_G(r, v, a)                                    \
  "vfmadd213ps " SASQ_DA(r, v) ", %%zmm28, %%zmm" a "\n\t"        \
  "vmovaps %%zmm" a ", " SASQ_DA(r, v) "\n\t"
#define SASQ_STORE_F(r, v, a)                                                  \
  "vfmadd213ps %%zmm29, %%zmm28, %%zmm" a "\n\t"                                \
  "vfmadd132ps " #r "*4(%[rs])%{1to16%}, %%zmm30, %%zmm" a "\n\t"               \
  "vmovups %%zmm" a ", " SASQ_DA(r, v) "\n\t"
#define SASQ_FROW_(b, r, v, U, F, a)                                                       \
  SASQ_UNX##b(a) SASQ_CORRR_##U(r) "vpsubd %%zmm24, %%zmm" a ", %%zmm" a "\n\t"            \
  "vcvtdq2ps %%zmm" a ", %%zmm" a "\n\t" SASQ_STORE_##F(r, v, a)
#define SASQ_FROW(b, r, v, U, F) SASQ_FROW_(b, r, v, U, F, SASQ_ACC(r, v))
#define SASQ_FROWS3(b, v, U, F) SASQ_FROW(b, 0, v, U, F) SASQ_FROW(b, 1, v, U, F) SASQ_FROW(b, 2, v, U, F)
#define SASQ_FROWS4(b, v, U, F) SASQ_FROWS3(b, v, U, F) SASQ_FROW(b, 3, v, U, F)
#define SASQ_FROWS5(b, v, U, F) SASQ_FROWS4(b, v, U, F) SASQ_FROW(b, 4, v, U, F)
#define SASQ_FROWS6(b, v, U, F) SASQ_FROWS5(b, v, U, F) SASQ_FROW(b, 5, v, U, F)
#define SASQ_FLUSH_V(b, v, R, U, F)                                                             \
  SASQ_PRE##v("cs") "vmovdqa32 " SASQ_CS##v ", %%zmm27\n\t" SASQ_CORRH_##U SASQ_PRE##v("sc")    \
  "vmovaps " SASQ_SC##v ", %%zmm28\n\t" SASQ_BIAS_##F(v) SASQ_FROWS##R(b, v, U, F)
#define SASQ_FLUSH(b, R, U, F)                                                                      \
  SASQ_FSETUP_##F SASQ_FLUSH_V(b, 0, R, U, F) SASQ_FLUSH_V(b, 1, R, U, F) SASQ_FLUSH_V(b, 2, R, U, F) \
  SASQ_FLUSH_V(b, 3, R, U, F)

#define SASQ_PASS(bits, R, U, F)                                                                                  \
  __asm__ volatile(SASQ_LOOP(bits, R) SASQ_FLUSH(bits, R, U, F)                                                       \
                   : [wo] "+r"(wo), [ao] "+r"(ao), [a3] "=&r"(a3), [n] "+r"(n)                                     \
                   : [lda] "r"(p.lda), [cs] "r"(p.cs), [sc] "r"(p.sc), [ps] "r"(p.ps), [sh] "r"(p.shift),          \
                     [rs] "r"(p.row_scale), [bias] "r"(p.bias), [d] "r"(p.d), [ldd] "r"(p.ldd),                                 \
                     [high4] "m"(kInt4x16Mask.high4)                                                            \
                   : "xmm0", "xmm1", "xmm2", "xmm3", "xmm4", "xmm5", "xmm6", "xmm7", "xmm8", "xmm9", "xmm10",     \
                     "xmm11", "xmm12", "xmm13", "xmm14", "xmm15", "xmm16", "xmm17", "xmm18", "xmm19", "xmm20",   \
                     "xmm21", "xmm22", "xmm23", "xmm24", "xmm25", "xmm26", "xmm27", "xmm28", "xmm29", "xmm30",   \
                     "xmm31", "cc", "memory")
#define SASQ_PASS_R(bits, U, F)               \
  if constexpr (R == 3) SASQ_PASS(bits, 3, U, F); \
  if constexpr (R == 4) SASQ_PASS(bits, 4, U, F); \
  if constexpr (R == 5) SASQ_PASS(bits, 5, U, F); \
  if constexpr (R == 6) SASQ_PASS(bits, 6, U, F);
#define SASQ_PASS_B(U, F)                           \
  if constexpr (Bits == 8) {                        \
    SASQ_PASS_R(8, U, F)                            \
  } else {                                          \
    SASQ_PASS_R(4, U, F)                            \
  }

// The whole group loop of a tile in one statement (uniform shift, group scales): the accumulators start
// from -shift · colsum of their group (int4: 16 x that), set by the previous group's flush with a register copy of the
// next group's correction (the last group recomputes its own, so no load passes the column sums).
#define SASQ_GINIT1(r, v) "vmovdqa32 %%zmm24, %%zmm" SASQ_ACC(r, v) "\n\t"
#define SASQ_GINITV(v, R) SASQ_GCS(v) "vpmulld (%[nsh])%{1to16%}, %%zmm27, %%zmm24\n\t" SASQ_GINITR##R(v)
#define SASQ_GINITR3(v) SASQ_GINIT1(0, v) SASQ_GINIT1(1, v) SASQ_GINIT1(2, v)
#define SASQ_GINITR4(v) SASQ_GINITR3(v) SASQ_GINIT1(3, v)
#define SASQ_GINITR5(v) SASQ_GINITR4(v) SASQ_GINIT1(4, v)
#define SASQ_GINITR6(v) SASQ_GINITR5(v) SASQ_GINIT1(5, v)
// Column sums of panel v of the group at [n] into zmm27 (panel 3 through [a3]).
#define SASQ_GCS0 "(%[n])"
#define SASQ_GCS1 "(%[n],%[ps])"
#define SASQ_GCS2 "(%[n],%[ps],2)"
#define SASQ_GCS3 "(%[a3])"
#define SASQ_GPRE0(base)
#define SASQ_GPRE1(base)
#define SASQ_GPRE2(base)
#define SASQ_GPRE3(base) "lea (%[" base "],%[ps],2), %[a3]\n\t" "add %[ps], %[a3]\n\t"
#define SASQ_GCS(v) SASQ_GPRE##v("n") "vmovdqa32 " SASQ_GCS##v ", %%zmm27\n\t"
#define SASQ_GSC0 "(%[sc])"
#define SASQ_GSC1 "(%[sc],%[ps])"
#define SASQ_GSC2 "(%[sc],%[ps],2)"
#define SASQ_GSC3 "(%[a3])"
#define SASQ_GY(r, v) #r "*256+" #v "*64(%[y])"
// y = 0 (zmm26), inside the statement: a memset before the call compiles to rep stos, which waits for
// the previous tile's C stores (cache misses) to drain.
#define SASQ_YZ1(r) "vmovaps %%zmm26, " SASQ_GY(r, 0) "\n\t" "vmovaps %%zmm26, " SASQ_GY(r, 1) "\n\t" \
  "vmovaps %%zmm26, " SASQ_GY(r, 2) "\n\t" "vmovaps %%zmm26, " SASQ_GY(r, 3) "\n\t"
#define SASQ_YZ3 "vpxord %%zmm26, %%zmm26, %%zmm26\n\t" SASQ_YZ1(0) SASQ_YZ1(1) SASQ_YZ1(2)
#define SASQ_YZ4 SASQ_YZ3 SASQ_YZ1(3)
#define SASQ_YZ5 SASQ_YZ4 SASQ_YZ1(4)
#define SASQ_YZ6 SASQ_YZ5 SASQ_YZ1(5)
#define SASQ_GFROW(b, r, v)                                                                 \
  SASQ_UNX##b(SASQ_ACC(r, v)) "vcvtdq2ps %%zmm" SASQ_ACC(r, v) ", %%zmm" SASQ_ACC(r, v) "\n\t" \
  "vfmadd213ps " SASQ_GY(r, v) ", %%zmm28, %%zmm" SASQ_ACC(r, v) "\n\t"             \
  "vmovaps %%zmm" SASQ_ACC(r, v) ", " SASQ_GY(r, v) "\n\t" SASQ_GINIT1(r, v)
#define SASQ_GFROWS3(b, v) SASQ_GFROW(b, 0, v) SASQ_GFROW(b, 1, v) SASQ_GFROW(b, 2, v)
#define SASQ_GFROWS4(b, v) SASQ_GFROWS3(b, v) SASQ_GFROW(b, 3, v)
#define SASQ_GFROWS5(b, v) SASQ_GFROWS4(b, v) SASQ_GFROW(b, 4, v)
#define SASQ_GFROWS6(b, v) SASQ_GFROWS5(b, v) SASQ_GFROW(b, 5, v)
// Flush of panel v: scales into zmm28, the next group's correction into zmm24, then per row
// y = fmaf(float(acc), ws, y) and acc = the next group's start.
#define SASQ_GFLUSHV(b, v, R)                                                                      \
  SASQ_GPRE##v("sc") "vmovaps " SASQ_GSC##v ", %%zmm28\n\t" SASQ_GCS(v)                              \
  "vpmulld (%[nsh])%{1to16%}, %%zmm27, %%zmm24\n\t" SASQ_GFROWS##R(b, v)
#define SASQ_GROUPS(bits, R)                                                                       \
  __asm__ volatile(                                                                                \
      SASQ_YZ##R SASQ_CONSTS##bits "mov %[cs], %[n]\n\t" SASQ_GINITV(0, R) SASQ_GINITV(1, R) SASQ_GINITV(2, R)    \
      SASQ_GINITV(3, R)                                                                            \
      "2:\n\t"                                                                                     \
      "mov %[gn], %[n]\n\t"                                                                        \
      "cmp $1, %[g]\n\t"                                                                           \
      "jne 3f\n\t"                                                                                 \
      "mov %[ln], %[n]\n\t"                                                                        \
      "3:\n\t"                                                                                     \
      "lea (%[ao],%[lda],2), %[a3]\n\t"                                                            \
      "add %[lda], %[a3]\n\t"                                                                      \
      "1:\n\t" SASQ_W##bits(0) SASQ_DP##R(0) SASQ_W##bits(1) SASQ_DP##R(1) "add $" SASQ_OB##bits ", %[wo]\n\t" \
      "add $8, %[ao]\n\t"                                                                          \
      "add $8, %[a3]\n\t"                                                                          \
      "dec %[n]\n\t"                                                                               \
      "jnz 1b\n\t"                                                                                 \
      "lea 64(%[cs]), %[n]\n\t"                                                                    \
      "cmp $1, %[g]\n\t"                                                                           \
      "cmove %[cs], %[n]\n\t" SASQ_GFLUSHV(bits, 0, R) SASQ_GFLUSHV(bits, 1, R) SASQ_GFLUSHV(bits, 2, R)    \
      SASQ_GFLUSHV(bits, 3, R)                                                                     \
      "add $64, %[cs]\n\t"                                                                         \
      "add $64, %[sc]\n\t"                                                                         \
      "dec %[g]\n\t"                                                                               \
      "jnz 2b\n\t"                                                                                 \
      : [wo] "+r"(wo), [ao] "+r"(ao), [a3] "=&r"(a3), [n] "=&r"(n), [g] "+r"(g), [cs] "+r"(cs), [sc] "+r"(sc)  \
      : [lda] "r"(lda), [ps] "r"(ps), [nsh] "r"(&nsh), [y] "r"(y), [gn] "m"(gn), [ln] "m"(ln),       \
        [high4] "m"(kInt4x16Mask.high4)                                                             \
      : "xmm0", "xmm1", "xmm2", "xmm3", "xmm4", "xmm5", "xmm6", "xmm7", "xmm8", "xmm9", "xmm10",   \
        "xmm11", "xmm12", "xmm13", "xmm14", "xmm15", "xmm16", "xmm17", "xmm18", "xmm19", "xmm20",  \
        "xmm21", "xmm22", "xmm23", "xmm24", "xmm25", "xmm26", "xmm27", "xmm28", "xmm29", "xmm30",  \
        "xmm31", "cc", "memory")

/// Every group of an R-row tile whose rows share one shift (Bits-bit weights, groups >= 1 of
/// group_octs octets, the last of last_octs): y[r][v] (64-byte aligned, 64 floats a row, zeroed here
/// first) = Σ_g fmaf(float(acc_g), ws_g, ·) in group order, acc_g the exact int32 group sum.
/// cs, sc: column sums and scales of panel 0 of the block, group 0; ps: bytes from panel to panel.
template <int R, int Bits>
SASQ_TARGET("avx2,fma,avx512f,avx512bw,avx512vl,avx512dq,avx512vnni")
inline void prefill_groups(const std::uint8_t* wo, const std::uint8_t* ao, std::ptrdiff_t lda, std::ptrdiff_t groups,
                           std::ptrdiff_t group_octs, std::ptrdiff_t last_octs, const std::int32_t* cs, const float* sc,
                           std::ptrdiff_t ps, std::int32_t shift, float* y) {
  static_assert(R >= 3 && R <= 6 && (Bits == 8 || Bits == 4), "prefill_groups: R in 3..6, Bits 8 or 4");
  const std::int32_t nsh = -shift * (Bits == 4 ? 16 : 1);  // int4: accumulators at 16 x (int32 wraps)
  const std::ptrdiff_t gn = group_octs, ln = last_octs;
  const std::uint8_t* a3;
  std::ptrdiff_t n, g = groups;
  if constexpr (Bits == 8) {
    if constexpr (R == 3) SASQ_GROUPS(8, 3);
    if constexpr (R == 4) SASQ_GROUPS(8, 4);
    if constexpr (R == 5) SASQ_GROUPS(8, 5);
    if constexpr (R == 6) SASQ_GROUPS(8, 6);
  } else {
    if constexpr (R == 3) SASQ_GROUPS(4, 3);
    if constexpr (R == 4) SASQ_GROUPS(4, 4);
    if constexpr (R == 5) SASQ_GROUPS(4, 5);
    if constexpr (R == 6) SASQ_GROUPS(4, 6);
  }
  (void)a3;
  (void)n;
}

/// Runs one pass (header comment) of an R-row tile with Bits-bit weights; returns with p.wo and p.ao
/// advanced past the pass's n octets.
template <int R, int Bits, bool Uniform, bool Final>
SASQ_TARGET("avx2,fma,avx512f,avx512bw,avx512vl,avx512dq,avx512vnni")
inline void prefill_pass(PassArgs& p) {
  static_assert(R >= 3 && R <= 6 && (Bits == 8 || Bits == 4), "prefill_pass: R in 3..6, Bits 8 or 4");
  const std::uint8_t* wo = p.wo;
  const std::uint8_t* ao = p.ao;
  const std::uint8_t* a3;
  std::ptrdiff_t n = p.n;
  if constexpr (Uniform && Final) {
    SASQ_PASS_B(U, F)
  }
  if constexpr (Uniform && !Final) {
    SASQ_PASS_B(U, G)
  }
  if constexpr (!Uniform && Final) {
    SASQ_PASS_B(N, F)
  }
  if constexpr (!Uniform && !Final) {
    SASQ_PASS_B(N, G)
  }
  (void)a3;
  (void)n;
  p.wo = wo;
  p.ao = ao;
}

}  // namespace sasq::cpu::avx512_vnni_asm

#undef SASQ_ACC
#undef SASQ_ACC_0_0
#undef SASQ_ACC_0_1
#undef SASQ_ACC_0_2
#undef SASQ_ACC_0_3
#undef SASQ_ACC_1_0
#undef SASQ_ACC_1_1
#undef SASQ_ACC_1_2
#undef SASQ_ACC_1_3
#undef SASQ_ACC_2_0
#undef SASQ_ACC_2_1
#undef SASQ_ACC_2_2
#undef SASQ_ACC_2_3
#undef SASQ_ACC_3_0
#undef SASQ_ACC_3_1
#undef SASQ_ACC_3_2
#undef SASQ_ACC_3_3
#undef SASQ_ACC_4_0
#undef SASQ_ACC_4_1
#undef SASQ_ACC_4_2
#undef SASQ_ACC_4_3
#undef SASQ_ACC_5_0
#undef SASQ_ACC_5_1
#undef SASQ_ACC_5_2
#undef SASQ_ACC_5_3
#undef SASQ_A0
#undef SASQ_A1
#undef SASQ_A2
#undef SASQ_A3
#undef SASQ_A4
#undef SASQ_A5
#undef SASQ_D0
#undef SASQ_D1
#undef SASQ_D2
#undef SASQ_D3
#undef SASQ_D4
#undef SASQ_D5
#undef SASQ_DA
#undef SASQ_ZERO1
#undef SASQ_ZERO3
#undef SASQ_ZERO4
#undef SASQ_ZERO5
#undef SASQ_ZERO6
#undef SASQ_W8
#undef SASQ_W4Q
#undef SASQ_UNX8
#undef SASQ_UNX4
#undef SASQ_W4
#undef SASQ_CONSTS8
#undef SASQ_CONSTS4
#undef SASQ_OB8
#undef SASQ_OB4
#undef SASQ_DP
#undef SASQ_DP3
#undef SASQ_DP4
#undef SASQ_DP5
#undef SASQ_DP6
#undef SASQ_LOOP
#undef SASQ_CS0
#undef SASQ_CS1
#undef SASQ_CS2
#undef SASQ_CS3
#undef SASQ_SC0
#undef SASQ_SC1
#undef SASQ_SC2
#undef SASQ_SC3
#undef SASQ_PRE0
#undef SASQ_PRE1
#undef SASQ_PRE2
#undef SASQ_PRE3
#undef SASQ_CORRH_U
#undef SASQ_CORRH_N
#undef SASQ_CORRR_U
#undef SASQ_CORRR_N
#undef SASQ_BIAS_G
#undef SASQ_BIAS_F
#undef SASQ_FSETUP_G
#undef SASQ_FSETUP_F
#undef SASQ_STORE_G
#undef SASQ_STORE_F
#undef SASQ_FROW_
#undef SASQ_FROW
#undef SASQ_FROWS3
#undef SASQ_FROWS4
#undef SASQ_FROWS5
#undef SASQ_FROWS6
#undef SASQ_FLUSH_V
#undef SASQ_FLUSH
#undef SASQ_PASS
#undef SASQ_PASS_R
#undef SASQ_PASS_B
#undef SASQ_GINIT1
#undef SASQ_GINITV
#undef SASQ_GINITR3
#undef SASQ_GINITR4
#undef SASQ_GINITR5
#undef SASQ_GINITR6
#undef SASQ_GCS0
#undef SASQ_GCS1
#undef SASQ_GCS2
#undef SASQ_GCS3
#undef SASQ_GPRE0
#undef SASQ_GPRE1
#undef SASQ_GPRE2
#undef SASQ_GPRE3
#undef SASQ_GCS
#undef SASQ_GSC0
#undef SASQ_GSC1
#undef SASQ_GSC2
#undef SASQ_GSC3
#undef SASQ_GY
#undef SASQ_YZ1
#undef SASQ_YZ3
#undef SASQ_YZ4
#undef SASQ_YZ5
#undef SASQ_YZ6
#undef SASQ_GFROW
#undef SASQ_GFROWS3
#undef SASQ_GFROWS4
#undef SASQ_GFROWS5
#undef SASQ_GFROWS6
#undef SASQ_GFLUSHV
#undef SASQ_GROUPS

#endif  // SASQ_HAS_X86_KERNELS
