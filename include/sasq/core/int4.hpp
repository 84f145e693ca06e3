// 4-bit integer types and nibble packing: element 2i in the low nibble of byte i, 2i+1 in the high.
#pragma once

#include <cstddef>
#include <cstdint>

#include "sasq/core/config.hpp"
#include "sasq/core/span.hpp"
#include "sasq/core/status.hpp"

namespace sasq {

/// Signed 4-bit integer in [-8, 7]. Constructed only explicitly, from an int already in range
/// (checked with SASQ_ASSERT); use from_int_saturate() to clamp.
class Int4 {
 public:
  static constexpr int kMin = -8;
  static constexpr int kMax = 7;
  constexpr Int4() = default;
  SASQ_HOST_DEVICE constexpr explicit Int4(int v) : v_(static_cast<std::int8_t>(v)) {}
  SASQ_HOST_DEVICE static constexpr Int4 from_int_saturate(int v) {
    return Int4(v < kMin ? kMin : (v > kMax ? kMax : v));
  }
  /// Decodes a nibble (two's complement in the low 4 bits).
  SASQ_HOST_DEVICE static constexpr Int4 from_nibble(std::uint8_t n) {
    return Int4(static_cast<int>(n & 0xF) - ((n & 0x8) << 1));
  }
  SASQ_HOST_DEVICE constexpr std::uint8_t nibble() const { return static_cast<std::uint8_t>(v_) & 0xF; }
  SASQ_HOST_DEVICE constexpr explicit operator int() const { return v_; }
  SASQ_HOST_DEVICE constexpr int value() const { return v_; }
  friend constexpr bool operator==(Int4 a, Int4 b) { return a.v_ == b.v_; }
  friend constexpr bool operator!=(Int4 a, Int4 b) { return a.v_ != b.v_; }

 private:
  std::int8_t v_ = 0;
};

/// Unsigned 4-bit integer in [0, 15].
class UInt4 {
 public:
  static constexpr int kMin = 0;
  static constexpr int kMax = 15;
  constexpr UInt4() = default;
  SASQ_HOST_DEVICE constexpr explicit UInt4(int v) : v_(static_cast<std::uint8_t>(v)) {}
  SASQ_HOST_DEVICE static constexpr UInt4 from_int_saturate(int v) {
    return UInt4(v < kMin ? kMin : (v > kMax ? kMax : v));
  }
  SASQ_HOST_DEVICE static constexpr UInt4 from_nibble(std::uint8_t n) { return UInt4(n & 0xF); }
  SASQ_HOST_DEVICE constexpr std::uint8_t nibble() const { return v_; }
  SASQ_HOST_DEVICE constexpr explicit operator int() const { return v_; }
  SASQ_HOST_DEVICE constexpr int value() const { return v_; }
  friend constexpr bool operator==(UInt4 a, UInt4 b) { return a.v_ == b.v_; }
  friend constexpr bool operator!=(UInt4 a, UInt4 b) { return a.v_ != b.v_; }

 private:
  std::uint8_t v_ = 0;
};

/// Bytes needed to pack n 4-bit values.
SASQ_HOST_DEVICE constexpr std::size_t packed_int4_bytes(std::size_t n) { return (n + 1) / 2; }

/// Packs n values (each in the 4-bit type's range, held in an int8/uint8) two per byte:
/// value 2i in the low nibble of byte i, 2i+1 in the high nibble; for odd n the last high
/// nibble is 0. `out` must hold packed_int4_bytes(n) bytes. Throws on out-of-range values.
template <class Int4T = Int4, class Src>
void pack_int4(Span<const Src> values, Span<std::uint8_t> out) {
  static_assert(sizeof(Src) == 1, "pack_int4 takes int8_t or uint8_t values");
  SASQ_REQUIRE(out.size() >= packed_int4_bytes(values.size()), "output holds ", out.size(),
               " bytes, need ", packed_int4_bytes(values.size()), " for ", values.size(), " values");
  for (std::size_t i = 0; i < values.size(); ++i) {
    const int v = static_cast<int>(values[i]);
    SASQ_REQUIRE(v >= Int4T::kMin && v <= Int4T::kMax, "value ", v, " at index ", i,
                 " is outside the 4-bit range [", Int4T::kMin, ", ", Int4T::kMax, "]");
    const std::uint8_t nib = Int4T(v).nibble();
    if (i % 2 == 0) {
      out[i / 2] = nib;
    } else {
      out[i / 2] = static_cast<std::uint8_t>(out[i / 2] | (nib << 4));
    }
  }
}

/// Unpacks n = out.size() 4-bit values from `packed` (layout of pack_int4), sign-extending
/// for Int4.
template <class Int4T = Int4, class Dst>
void unpack_int4(Span<const std::uint8_t> packed, Span<Dst> out) {
  static_assert(sizeof(Dst) == 1, "unpack_int4 writes int8_t or uint8_t values");
  SASQ_REQUIRE(packed.size() >= packed_int4_bytes(out.size()), "packed input holds ", packed.size(),
               " bytes, need ", packed_int4_bytes(out.size()), " for ", out.size(), " values");
  for (std::size_t i = 0; i < out.size(); ++i) {
    const std::uint8_t b = packed[i / 2];
    const std::uint8_t nib = (i % 2 == 0) ? (b & 0xF) : (b >> 4);
    out[i] = static_cast<Dst>(Int4T::from_nibble(nib).value());
  }
}

}  // namespace sasq
