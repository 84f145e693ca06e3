// The int4 -> 16·w decode of the AVX-512 VNNI asm passes. A packed int4 byte holds two two's-complement
// nibbles (low: quad 0, high: quad 1 of a K octet); nibble q moved to the top 4 bits of its byte and
// masked with 0xF0 is the int8 16·w (quad 0: vpsllw $4, then the mask; quad 1: the mask alone, straight
// from memory), so no lookup table. |16·w| <= 128: accumulators of 16·w hold 16 x the int32 sums, exact
// under the same K <= kMaxK bound as int8 (packed_weights.hpp), and a flush shifts them right by 4
// (vpsrad, exact) before anything else.
#pragma once

#include <cstdint>

#include "sasq/core/config.hpp"

#if SASQ_HAS_X86_KERNELS

namespace sasq::cpu::avx512_vnni_asm {

/// 0xF0 bytes, the mask of the 16·w decode. Hidden visibility (ELF, Mach-O): an asm "m" operand naming it
/// is addressed without the GOT (-fPIC would otherwise take one more general register).
struct alignas(64) Int4x16Mask {
  std::uint8_t high4[64];
};
#if defined(_WIN32)
inline constexpr Int4x16Mask kInt4x16Mask = {
#else
inline constexpr Int4x16Mask kInt4x16Mask __attribute__((visibility("hidden"))) = {
#endif
    {0xF0, 0xF0, 0xF0, 0xF0, 0xF0, 0xF0, 0xF0, 0xF0, 0xF0, 0xF0, 0xF0, 0xF0, 0xF0, 0xF0, 0xF0, 0xF0,
     0xF0, 0xF0, 0xF0, 0xF0, 0xF0, 0xF0, 0xF0, 0xF0, 0xF0, 0xF0, 0xF0, 0xF0, 0xF0, 0xF0, 0xF0, 0xF0,
     0xF0, 0xF0, 0xF0, 0xF0, 0xF0, 0xF0, 0xF0, 0xF0, 0xF0, 0xF0, 0xF0, 0xF0, 0xF0, 0xF0, 0xF0, 0xF0,
     0xF0, 0xF0, 0xF0, 0xF0, 0xF0, 0xF0, 0xF0, 0xF0, 0xF0, 0xF0, 0xF0, 0xF0, 0xF0, 0xF0, 0xF0, 0xF0}};

}  // namespace sasq::cpu::avx512_vnni_asm

// AT&T asm text: 16·w of nibble q (0 or 1) of the 64 bytes at memory operand `mem` into zmm register `z`
// (a name such as "zmm28"), with the 0xF0 mask in zmm register `mask`. Left defined for the passes that
// include this header.
#define SASQ_INT4X16_0(z, mem, mask) "vpsllw $4, " mem ", %%" z "\n\t" "vpandd %%" mask ", %%" z ", %%" z "\n\t"
#define SASQ_INT4X16_1(z, mem, mask) "vpandd " mem ", %%" mask ", %%" z "\n\t"

#endif  // SASQ_HAS_X86_KERNELS
