// The AVX-512 VNNI multi-tile pass: `tiles` consecutive 6-row tiles of one panel block (4 panels, 64
// columns, per-channel scales, every row the same shift) in one inline-asm loop, for the model's small
// shapes where a tile's K loop is short and per-tile setup would dominate. Accumulators in zmm 4r + v as
// in prefill_pass.hpp. Per tile:
//   init:  acc[r][v] = corr[v] = -shift · colsum[v] (int32; the exact sum fits, so acc ends at the value
//          the reference gets, as prefill_pass's acc - shift · colsum);
//   loop:  per K octet and quad q, 4 weight vectors in zmm28..31 (int8: loaded; int4: nibble q masked
//          with 0x0F (zmm25), sign-extended by vpshufb (zmm26)), per row one vpbroadcastd (zmm27) and 4
//          vpdpbusd (u8 activations x s8 weights);
//   flush: d[r][v] = fmaf(fmaf(float(acc), ws[v], 0), as[r], bias[v])   (epilogue.hpp order).
// AT&T syntax, GCC and Clang.
#pragma once

#include <cstddef>
#include <cstdint>

#include "sasq/core/config.hpp"
#include "sasq/cpu/avx512_vnni/prefill_pass.hpp"

#if SASQ_HAS_X86_KERNELS

namespace sasq::cpu::avx512_vnni_asm {

/// Per-block constants of a row-tiles pass, 64-byte aligned: corr (-shift · column sums), weight
/// scales and bias, 16 values per panel.
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

#define SASQ_RT_INIT1(r, v) "vmovdqa32 " #v "*64(%[bc]), %%zmm" SASQ_RT_ACC(r, v) "\n\t"
#define SASQ_RT_INITR(r) SASQ_RT_INIT1(r, 0) SASQ_RT_INIT1(r, 1) SASQ_RT_INIT1(r, 2) SASQ_RT_INIT1(r, 3)
#define SASQ_RT_INIT SASQ_RT_INITR(0) SASQ_RT_INITR(1) SASQ_RT_INITR(2) SASQ_RT_INITR(3) SASQ_RT_INITR(4) SASQ_RT_INITR(5)

#define SASQ_RT_W8(q)                            \
  "vmovdqa64 " #q "*256(%[wo]), %%zmm28\n\t"     \
  "vmovdqa64 " #q "*256+64(%[wo]), %%zmm29\n\t"  \
  "vmovdqa64 " #q "*256+128(%[wo]), %%zmm30\n\t" \
  "vmovdqa64 " #q "*256+192(%[wo]), %%zmm31\n\t"
#define SASQ_RT_SHIFT0(z)
#define SASQ_RT_SHIFT1(z) "vpsrlw $4, %%" z ", %%" z "\n\t"
#define SASQ_RT_NIB(q, z, off)                                                                    \
  "vmovdqa64 " off "(%[wo]), %%" z "\n\t" SASQ_RT_SHIFT##q(z) "vpandd %%zmm25, %%" z ", %%" z "\n\t" \
  "vpshufb %%" z ", %%zmm26, %%" z "\n\t"
#define SASQ_RT_W4(q) \
  SASQ_RT_NIB(q, "zmm28", "0") SASQ_RT_NIB(q, "zmm29", "64") SASQ_RT_NIB(q, "zmm30", "128") SASQ_RT_NIB(q, "zmm31", "192")
#define SASQ_RT_CONSTS8
#define SASQ_RT_CONSTS4 "vmovdqa64 %[lut], %%zmm26\n\t" "vmovdqa64 %[low4], %%zmm25\n\t"
#define SASQ_RT_OB8 "512"
#define SASQ_RT_OB4 "256"

#define SASQ_RT_DP(q, r)                                         \
  "vpbroadcastd " #q "*4" SASQ_RT_A##r ", %%zmm27\n\t"           \
  "vpdpbusd %%zmm28, %%zmm27, %%zmm" SASQ_RT_ACC(r, 0) "\n\t"    \
  "vpdpbusd %%zmm29, %%zmm27, %%zmm" SASQ_RT_ACC(r, 1) "\n\t"    \
  "vpdpbusd %%zmm30, %%zmm27, %%zmm" SASQ_RT_ACC(r, 2) "\n\t"    \
  "vpdpbusd %%zmm31, %%zmm27, %%zmm" SASQ_RT_ACC(r, 3) "\n\t"
#define SASQ_RT_DP6(q) \
  SASQ_RT_DP(q, 0) SASQ_RT_DP(q, 1) SASQ_RT_DP(q, 2) SASQ_RT_DP(q, 3) SASQ_RT_DP(q, 4) SASQ_RT_DP(q, 5)

// Flush of row r, panel v: scale in zmm28, zero in zmm29, bias in zmm30.
#define SASQ_RT_FROW(r, v)                                                                            \
  "vcvtdq2ps %%zmm" SASQ_RT_ACC(r, v) ", %%zmm" SASQ_RT_ACC(r, v) "\n\t"                              \
  "vfmadd213ps %%zmm29, %%zmm28, %%zmm" SASQ_RT_ACC(r, v) "\n\t"                                      \
  "vfmadd132ps " #r "*4(%[rs])%{1to16%}, %%zmm30, %%zmm" SASQ_RT_ACC(r, v) "\n\t"                     \
  "vmovups %%zmm" SASQ_RT_ACC(r, v) ", " #v "*64" SASQ_RT_D##r "\n\t"
#define SASQ_RT_FLUSHV(v)                                                                              \
  "vmovaps 256+" #v "*64(%[bc]), %%zmm28\n\t"                                                          \
  "vmovaps 512+" #v "*64(%[bc]), %%zmm30\n\t" SASQ_RT_FROW(0, v) SASQ_RT_FROW(1, v) SASQ_RT_FROW(2, v) \
      SASQ_RT_FROW(3, v) SASQ_RT_FROW(4, v) SASQ_RT_FROW(5, v)

#define SASQ_RT_PASS(bits)                                                                                    \
  __asm__ volatile(                                                                                           \
      SASQ_RT_CONSTS##bits                                                                                    \
      "2:\n\t" SASQ_RT_INIT                                                                                   \
      "mov %[wb], %[wo]\n\t"                                                                                  \
      "mov %[octs], %[n]\n\t"                                                                                 \
      "mov %[ab], %[ao]\n\t"                                                                                  \
      "lea (%[ao],%[lda],2), %[a3]\n\t"                                                                       \
      "add %[lda], %[a3]\n\t"                                                                                 \
      "1:\n\t" SASQ_RT_W##bits(0) SASQ_RT_DP6(0) SASQ_RT_W##bits(1) SASQ_RT_DP6(1)                            \
      "add $" SASQ_RT_OB##bits ", %[wo]\n\t"                                                                  \
      "add $8, %[ao]\n\t"                                                                                     \
      "add $8, %[a3]\n\t"                                                                                     \
      "dec %[n]\n\t"                                                                                          \
      "jnz 1b\n\t"                                                                                            \
      "vpxord %%zmm29, %%zmm29, %%zmm29\n\t"                                                                  \
      "lea (%[d],%[ldd],2), %[a3]\n\t"                                                                        \
      "add %[ldd], %[a3]\n\t" SASQ_RT_FLUSHV(0) SASQ_RT_FLUSHV(1) SASQ_RT_FLUSHV(2) SASQ_RT_FLUSHV(3)         \
      "lea (%[ab],%[lda],4), %[ab]\n\t"                                                                       \
      "lea (%[ab],%[lda],2), %[ab]\n\t"                                                                       \
      "lea (%[d],%[ldd],4), %[d]\n\t"                                                                         \
      "lea (%[d],%[ldd],2), %[d]\n\t"                                                                         \
      "add $24, %[rs]\n\t"                                                                                    \
      "dec %[tiles]\n\t"                                                                                      \
      "jnz 2b\n\t"                                                                                            \
      : [ab] "+r"(ab), [d] "+r"(d), [rs] "+r"(rs), [tiles] "+r"(tiles), [wo] "=&r"(wo), [ao] "=&r"(ao),      \
        [a3] "=&r"(a3), [n] "=&r"(n)                                                                          \
      : [lda] "r"(lda), [ldd] "r"(ldd), [bc] "r"(&bc), [wb] "m"(wb), [octs] "m"(octs),                        \
        [lut] "m"(kInt4Consts.lut), [low4] "m"(kInt4Consts.low4)                                              \
      : "xmm0", "xmm1", "xmm2", "xmm3", "xmm4", "xmm5", "xmm6", "xmm7", "xmm8", "xmm9", "xmm10", "xmm11",      \
        "xmm12", "xmm13", "xmm14", "xmm15", "xmm16", "xmm17", "xmm18", "xmm19", "xmm20", "xmm21", "xmm22",    \
        "xmm23", "xmm24", "xmm25", "xmm26", "xmm27", "xmm28", "xmm29", "xmm30", "xmm31", "cc", "memory")

/// `tiles` >= 1 tiles of 6 rows with Bits-bit weights (header comment): wb is the block's packed
/// weights at octet 0 (octs >= 1 octets), a row 0 of the first tile in packed A (rows lda bytes apart),
/// row_scale its 6 · tiles row scales, d row 0 of its output (rows ldd bytes apart, tile t at 6 · t rows).
template <int Bits>
SASQ_TARGET("avx2,fma,avx512f,avx512bw,avx512vl,avx512dq,avx512vnni")
inline void row_tiles_pass(const std::uint8_t* wb, std::ptrdiff_t octs, const std::uint8_t* a, std::ptrdiff_t lda,
                           const BlockConsts& bc, const float* row_scale, float* d, std::ptrdiff_t ldd,
                           std::ptrdiff_t tiles) {
  static_assert(Bits == 8 || Bits == 4, "row_tiles_pass: Bits 8 or 4");
  const std::uint8_t* ab = a;
  const float* rs = row_scale;
  const std::uint8_t *wo, *ao, *a3;
  std::ptrdiff_t n;
  if constexpr (Bits == 8) {
    SASQ_RT_PASS(8);
  } else {
    SASQ_RT_PASS(4);
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
#undef SASQ_RT_INIT1
#undef SASQ_RT_INITR
#undef SASQ_RT_INIT
#undef SASQ_RT_W8
#undef SASQ_RT_SHIFT0
#undef SASQ_RT_SHIFT1
#undef SASQ_RT_NIB
#undef SASQ_RT_W4
#undef SASQ_RT_CONSTS8
#undef SASQ_RT_CONSTS4
#undef SASQ_RT_OB8
#undef SASQ_RT_OB4
#undef SASQ_RT_DP
#undef SASQ_RT_DP6
#undef SASQ_RT_FROW
#undef SASQ_RT_FLUSHV
#undef SASQ_RT_PASS

#endif  // SASQ_HAS_X86_KERNELS
