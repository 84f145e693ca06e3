#include <doctest/doctest.h>

#include <random>
#include <vector>

#include "sasq/core/int4.hpp"

using sasq::Int4;
using sasq::UInt4;

TEST_CASE("Int4 nibble encoding is two's complement") {
  for (int v = -8; v <= 7; ++v) {
    const Int4 x(v);
    CHECK(Int4::from_nibble(x.nibble()).value() == v);
  }
  CHECK(Int4(-1).nibble() == 0xF);
  CHECK(Int4(-8).nibble() == 0x8);
  CHECK(Int4::from_int_saturate(100).value() == 7);
  CHECK(Int4::from_int_saturate(-100).value() == -8);
  CHECK(UInt4::from_int_saturate(16).value() == 15);
}

TEST_CASE("pack_int4 puts element 2i in the low nibble") {
  const std::vector<std::int8_t> v = {1, -2, 7};
  std::vector<std::uint8_t> p(2, 0xAA);
  sasq::pack_int4(sasq::Span<const std::int8_t>(v), sasq::Span<std::uint8_t>(p));
  CHECK(p[0] == 0xE1);
  CHECK(p[1] == 0x07);  // odd length: high nibble of the last byte is zero
}

TEST_CASE("int4 round trips for lengths 1, 2, 31, 32, 33") {
  std::mt19937 rng(7);
  for (std::size_t n : {1u, 2u, 31u, 32u, 33u}) {
    std::vector<std::int8_t> s(n);
    std::vector<std::uint8_t> u(n);
    for (std::size_t i = 0; i < n; ++i) {
      s[i] = static_cast<std::int8_t>(static_cast<int>(rng() % 16) - 8);
      u[i] = static_cast<std::uint8_t>(rng() % 16);
    }
    std::vector<std::uint8_t> ps(sasq::packed_int4_bytes(n)), pu(sasq::packed_int4_bytes(n));
    sasq::pack_int4<Int4>(sasq::Span<const std::int8_t>(s), sasq::Span<std::uint8_t>(ps));
    sasq::pack_int4<UInt4>(sasq::Span<const std::uint8_t>(u), sasq::Span<std::uint8_t>(pu));
    std::vector<std::int8_t> s2(n);
    std::vector<std::uint8_t> u2(n);
    sasq::unpack_int4<Int4>(sasq::Span<const std::uint8_t>(ps), sasq::Span<std::int8_t>(s2));
    sasq::unpack_int4<UInt4>(sasq::Span<const std::uint8_t>(pu), sasq::Span<std::uint8_t>(u2));
    CHECK(s == s2);
    CHECK(u == u2);
  }
}

TEST_CASE("pack_int4 rejects out-of-range values and short outputs") {
  const std::vector<std::int8_t> bad = {3, 8};
  std::vector<std::uint8_t> p(1);
  CHECK_THROWS_AS(sasq::pack_int4(sasq::Span<const std::int8_t>(bad), sasq::Span<std::uint8_t>(p)),
                  sasq::Error);
  const std::vector<std::int8_t> three = {1, 2, 3};
  CHECK_THROWS_WITH_AS(
      sasq::pack_int4(sasq::Span<const std::int8_t>(three), sasq::Span<std::uint8_t>(p)),
      doctest::Contains("need 2"), sasq::Error);
}
