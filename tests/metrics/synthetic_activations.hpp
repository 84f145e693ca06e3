// Test/tool helper: synthetic LLaMA-like activations with one outlier channel and one
// massive-outlier token, and a Gaussian weight.
#pragma once

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <vector>

#include "sasq/core/matrix_view.hpp"
#include "sasq/transform/orthogonal.hpp"

namespace sasq::test {

struct SyntheticLayer {
  std::ptrdiff_t tokens = 0, channels = 0, outputs = 0;
  std::vector<float> x;  // tokens x channels
  std::vector<float> w;  // outputs x channels
  std::ptrdiff_t outlier_channel = 0, massive_token = 0, massive_channel = 0;
  MatrixView<const float> xv() const { return {x.data(), tokens, channels}; }
  MatrixView<const float> wv() const { return {w.data(), outputs, channels}; }
};

/// X ~ N(0, 1) with channel `outlier_channel` scaled by 20 (a persistent outlier channel) and a
/// massive activation of 400 at (massive_token, massive_channel), as in LLaMA's down_proj inputs;
/// W ~ N(0, 1/C).
inline SyntheticLayer make_outlier_layer(std::ptrdiff_t tokens, std::ptrdiff_t channels, std::ptrdiff_t outputs,
                                         std::uint64_t seed) {
  SyntheticLayer l;
  l.tokens = tokens;
  l.channels = channels;
  l.outputs = outputs;
  l.outlier_channel = channels / 5;
  l.massive_token = tokens / 3;
  l.massive_channel = channels / 2 + 1;
  SeededRandom rng(seed);
  l.x.resize(static_cast<std::size_t>(tokens * channels));
  for (float& v : l.x) v = static_cast<float>(rng.normal());
  for (std::ptrdiff_t t = 0; t < tokens; ++t) l.x[static_cast<std::size_t>(t * channels + l.outlier_channel)] *= 20.0f;
  l.x[static_cast<std::size_t>(l.massive_token * channels + l.massive_channel)] = 400.0f;
  l.w.resize(static_cast<std::size_t>(outputs * channels));
  const double sd = 1.0 / std::sqrt(static_cast<double>(channels));
  for (float& v : l.w) v = static_cast<float>(rng.normal() * sd);
  return l;
}

}  // namespace sasq::test
