// quantize_static_s8 / quantize_dynamic_per_token_s8 against quantize_value<GridS8Full>, element by
// element, for every ISA this CPU has (explicit Isa argument; the others are skipped with a message).
#include <doctest/doctest.h>

#include <cmath>
#include <cstdint>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "sasq/gemm/quantize_activations.hpp"
#include "sasq/quant/affine.hpp"
#include "sasq/quant/params.hpp"

namespace {

using sasq::Isa;
using sasq::MatrixView;

std::vector<Isa> available_isas() {
  std::vector<Isa> out;
  for (Isa i : {Isa::kScalar, Isa::kAvx2, Isa::kAvx512Vnni}) {
    if (sasq::cpu::isa_supported(i)) {
      out.push_back(i);
    } else {
      const std::string msg = std::string("skipped ISA ") + sasq::to_string(i) + ": not supported by this CPU";
      MESSAGE(msg);
    }
  }
  return out;
}

std::int8_t expected(float x, float scale) {
  return static_cast<std::int8_t>(sasq::quantize_value<sasq::GridS8Full>(x, sasq::QuantParam::make(scale)));
}

}  // namespace

TEST_CASE("static quantization matches quantize_value on tails, ties, saturation and scale extremes") {
  std::mt19937 rng(3);
  std::normal_distribution<float> nd(0.0f, 3.0f);
  for (Isa isa : available_isas()) {
    for (float scale : {0.037f, 1.0f, 1e-30f, 3e30f, 0.5f}) {
      for (std::ptrdiff_t cols : {1, 7, 31, 32, 33, 4103}) {
        const std::ptrdiff_t rows = 3, ld = cols + 5;
        std::vector<float> x(static_cast<std::size_t>(rows * ld));
        for (std::size_t i = 0; i < x.size(); ++i) {
          // Mix random values, exact ties (j + 0.5) · scale, and values far beyond the grid.
          const int kind = static_cast<int>(i % 3);
          x[i] = kind == 0 ? nd(rng) * scale * 20.0f
                 : kind == 1 ? (static_cast<float>(static_cast<int>(i % 300) - 150) + 0.5f) * scale
                             : nd(rng) * 1e3f * scale;
        }
        std::vector<std::int8_t> q(static_cast<std::size_t>(rows * cols));
        sasq::quantize_static_s8(MatrixView<const float>(x.data(), rows, cols, ld), scale,
                                 MatrixView<std::int8_t>(q.data(), rows, cols), isa);
        bool ok = true;
        for (std::ptrdiff_t r = 0; r < rows; ++r)
          for (std::ptrdiff_t c = 0; c < cols; ++c)
            ok &= q[static_cast<std::size_t>(r * cols + c)] == expected(x[static_cast<std::size_t>(r * ld + c)], scale);
        INFO("isa=", sasq::to_string(isa), " scale=", scale, " cols=", cols);
        CHECK(ok);
      }
    }
  }
}

TEST_CASE("dynamic per-token quantization: abs-max scales and values") {
  std::mt19937 rng(4);
  std::normal_distribution<float> nd(0.0f, 1.0f);
  for (float clip : {1.0f, 0.9f})
  for (Isa isa : available_isas()) {
    for (std::ptrdiff_t cols : {1, 15, 33, 64, 4099}) {
      const std::ptrdiff_t rows = 4;
      std::vector<float> x(static_cast<std::size_t>(rows * cols));
      for (auto& v : x) v = nd(rng) * 7.0f;
      for (std::ptrdiff_t c = 0; c < cols; ++c) x[static_cast<std::size_t>(cols + c)] = 0.0f;  // row 1: all zero
      x[static_cast<std::size_t>(3 * cols)] = 1e-44f;                                          // row 3: tiny
      for (std::ptrdiff_t c = 1; c < cols; ++c) x[static_cast<std::size_t>(3 * cols + c)] = 0.0f;
      std::vector<std::int8_t> q(x.size());
      std::vector<float> scales(rows);
      sasq::quantize_dynamic_per_token_s8(MatrixView<const float>(x.data(), rows, cols),
                                          MatrixView<std::int8_t>(q.data(), rows, cols), scales, isa, clip);
      for (std::ptrdiff_t r = 0; r < rows; ++r) {
        float amax = 0.0f;
        for (std::ptrdiff_t c = 0; c < cols; ++c) amax = std::max(amax, std::fabs(x[static_cast<std::size_t>(r * cols + c)]));
        amax *= clip;
        const float s = amax == 0.0f ? 1.0f : std::max(amax / 127.0f, std::numeric_limits<float>::min());
        CHECK(s == sasq::param_from_absmax<sasq::GridS8Full>(amax).scale);
        INFO("isa=", sasq::to_string(isa), " cols=", cols, " row=", r, " clip=", clip);
        CHECK(scales[static_cast<std::size_t>(r)] == s);
        bool ok = true;
        for (std::ptrdiff_t c = 0; c < cols; ++c)
          ok &= q[static_cast<std::size_t>(r * cols + c)] == expected(x[static_cast<std::size_t>(r * cols + c)], s);
        CHECK(ok);
      }
      CHECK(scales[1] == 1.0f);
    }
  }
}

TEST_CASE("non-finite inputs, bad scales and shapes are rejected") {
  for (Isa isa : available_isas()) {
    for (float bad : {std::nanf(""), INFINITY, -INFINITY}) {
      std::vector<float> x(40, 1.0f);
      x[37] = bad;
      std::vector<std::int8_t> q(40);
      std::vector<float> s(2);
      MatrixView<const float> xv(x.data(), 2, 20);
      MatrixView<std::int8_t> qv(q.data(), 2, 20);
      CHECK_THROWS_AS(sasq::quantize_static_s8(xv, 0.1f, qv, isa), sasq::Error);
      CHECK_THROWS_AS(sasq::quantize_dynamic_per_token_s8(xv, qv, s, isa), sasq::Error);
    }
  }
  std::vector<float> x(8, 1.0f), s(1);
  std::vector<std::int8_t> q(8);
  MatrixView<const float> xv(x.data(), 2, 4);
  CHECK_THROWS_AS(sasq::quantize_static_s8(xv, 0.0f, MatrixView<std::int8_t>(q.data(), 2, 4)), sasq::Error);
  CHECK_THROWS_AS(sasq::quantize_static_s8(xv, -1.0f, MatrixView<std::int8_t>(q.data(), 2, 4)), sasq::Error);
  CHECK_THROWS_AS(sasq::quantize_static_s8(xv, 1.0f, MatrixView<std::int8_t>(q.data(), 4, 2)), sasq::Error);
  CHECK_THROWS_AS(sasq::quantize_dynamic_per_token_s8(xv, MatrixView<std::int8_t>(q.data(), 2, 4), s), sasq::Error);
  std::vector<float> s2(2);
  for (float clip : {0.0f, -0.5f, 1.5f, std::nanf("")})
    CHECK_THROWS_AS(sasq::quantize_dynamic_per_token_s8(xv, MatrixView<std::int8_t>(q.data(), 2, 4), s2, sasq::Isa::kAuto, clip),
                    sasq::Error);
}
