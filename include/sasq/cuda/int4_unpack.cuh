// Register-level int4 -> int8 unpacking for the W4A8 kernels:
//   u = n0 | n1 << 4 | n2 << 8 | n3 << 12 (four nibbles, pack_int4 order)  ->  bytes sext(n0..n3)
#pragma once

#include <cstdint>

#include "sasq/core/config.hpp"
#include "sasq/cuda/common.cuh"

namespace sasq::cuda {

/// Spreads the four signed nibbles of u into the four bytes of a word (byte i = nibble i,
/// sign-extended), ready for dp4a / mma s8 operands: 4 ands and shifts to spread, then the
/// sign bit of each byte (bit 3) times 0xF0 fills the high nibble.
SASQ_HOST_DEVICE inline std::uint32_t unpack_int4x4(std::uint16_t u) {
  const std::uint32_t x = u;
  const std::uint32_t spread = (x & 0xFu) | ((x & 0xF0u) << 4) | ((x & 0xF00u) << 8) | ((x & 0xF000u) << 12);
  return spread | (((spread & 0x08080808u) >> 3) * 0xF0u);
}

}  // namespace sasq::cuda
