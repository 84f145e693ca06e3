// The host side of the CUDA headers: SASQ_HOST_DEVICE quantize, STE and epilogue functors compiled
// by nvcc agree bit-for-bit with the same functions compiled by the C++ compiler; the register
// int4 unpacking matches Int4::from_nibble for every 16-bit pattern. Needs no GPU.
#include <doctest/doctest.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <random>
#include <vector>

#include "host_functors.hpp"
#include "sasq/core/int4.hpp"
#include "sasq/gemm/epilogue.hpp"
#include "sasq/quant/params.hpp"

using namespace sasq;
namespace nv = sasq::cuda_test::nvcc_host;

namespace {

bool same_bits(float a, float b) { return std::memcmp(&a, &b, sizeof a) == 0; }

std::vector<float> probe_values() {
  std::vector<float> v = {0.0f, -0.0f, 0.5f, -0.5f, 1.5f, 2.5f, -2.5f, 126.5f, 127.5f, -128.5f, 1e-30f, 1e30f,
                          -1e30f, std::numeric_limits<float>::infinity(), -std::numeric_limits<float>::infinity(),
                          std::numeric_limits<float>::quiet_NaN(), 8388608.5f};
  std::mt19937 rng(42);
  std::normal_distribution<float> d(0.0f, 50.0f);
  for (int i = 0; i < 2000; ++i) v.push_back(d(rng));
  return v;
}

}  // namespace

TEST_CASE("nvcc-compiled quantize functors agree with the C++ build") {
  const QuantParam ps = QuantParam::make(0.37f), pu = QuantParam::make(0.25f, 7);
  for (float x : probe_values()) {
    CAPTURE(x);
    CHECK(nv::quantize_s8(x, ps) == quantize_value<GridS8>(x, ps));
    CHECK(nv::quantize_s8(x, QuantParam::make(1.0f)) == quantize_value<GridS8>(x, QuantParam::make(1.0f)));
    CHECK(nv::quantize_u4(x, pu) == quantize_value<GridU4>(x, pu));
    CHECK(same_bits(nv::fake_quantize_s8(x, ps), fake_quantize_value<GridS8>(x, ps)));
  }
  for (float lo : {-3.0f, -1e-40f, 0.0f, -100.0f}) {
    for (float hi : {0.0f, 1e-40f, 2.0f, 300.0f}) {
      const QuantParam a = nv::param_from_range_u8(lo, hi), b = param_from_range_unchecked<GridU8>(lo, hi);
      CHECK(same_bits(a.scale, b.scale));
      CHECK(a.zero_point == b.zero_point);
      CHECK(same_bits(nv::param_from_range_s4(lo, hi).scale, param_from_range_unchecked<GridS4>(lo, hi).scale));
    }
  }
}

TEST_CASE("nvcc-compiled LSQ STE agrees with the C++ build") {
  for (float x : probe_values()) {
    if (std::isnan(x)) continue;
    CAPTURE(x);
    const ste::Grad a = nv::lsq_backward_s8(x, 0.05f), b = ste::Lsq<GridS8>::backward(x, 0.05f);
    CHECK(same_bits(a.dx, b.dx));
    CHECK(same_bits(a.dparam, b.dparam));
    CHECK(same_bits(nv::lsq_forward_s4(x, 3.0f), ste::Lsq<GridS4>::forward(x, 3.0f)));
  }
}

TEST_CASE("nvcc-compiled epilogue stages agree with the C++ build") {
  std::mt19937 rng(7);
  std::uniform_int_distribution<std::int32_t> acc(-2000000, 2000000);
  std::uniform_real_distribution<float> u(-3.0f, 3.0f);
  for (int i = 0; i < 2000; ++i) {
    const std::int32_t a = acc(rng);
    const float ws = std::fabs(u(rng)) * 1e-3f, y = u(rng), as = std::fabs(u(rng)) * 1e-2f, b = u(rng);
    const float want = epilogue::Dequantize::apply_row(epilogue::Dequantize::apply_group(y, a, ws), as, b);
    CHECK(same_bits(nv::dequantize_group_row(a, ws, y, as, b), want));
    CHECK(same_bits(nv::silu(want), epilogue::Silu::apply(want)));
    CHECK(nv::requantize(want, 1.0f / 0.07f) == epilogue::Requantize::apply(want, 1.0f / 0.07f));
  }
}

TEST_CASE("unpack_int4x4 sign-extends every nibble of every 16-bit pattern") {
  for (std::uint32_t u = 0; u <= 0xFFFFu; ++u) {
    const std::uint32_t w = nv::unpack_int4x4(static_cast<std::uint16_t>(u));
    for (int i = 0; i < 4; ++i) {
      const int got = static_cast<std::int8_t>(static_cast<std::uint8_t>(w >> (8 * i)));
      const int want = Int4::from_nibble(static_cast<std::uint8_t>(u >> (4 * i))).value();
      if (got != want) {
        FAIL("pattern ", u, " nibble ", i, ": got ", got, ", want ", want);
      }
    }
  }
  CHECK(nv::unpack_int4x4(0x8F70u) == 0xF8FF0700u);
}

TEST_CASE("tensor-core GEMM tiles replayed on the host compute A · Wᵀ (ldmatrix / mma.sync emulated)") {
  struct Case {
    bool large;
    int bits;
    bool gate_up;
    int m, rows, k;
  };
  for (const Case c : {Case{true, 8, false, 130, 136, 80}, Case{true, 4, false, 129, 130, 96},
                       Case{false, 8, false, 70, 72, 208}, Case{false, 4, false, 17, 66, 64},
                       Case{false, 8, true, 33, 2 * 40, 48}, Case{false, 4, true, 64, 2 * 70, 128},
                       Case{true, 8, true, 131, 2 * 72, 16}}) {
    CAPTURE(c.large);
    CAPTURE(c.bits);
    CAPTURE(c.gate_up);
    CAPTURE(c.m);
    CHECK(nv::replay_tile_gemm(c.large, c.bits, c.gate_up, c.m, c.rows, c.k, 17u) == 0);
  }
}
