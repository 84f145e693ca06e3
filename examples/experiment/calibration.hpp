// Static calibration on several threads with the serial result: the forward passes of a chunk of
// sequences run in parallel and record their site activations, which are then fed to the observers
// in sequence order, exactly as llama::observe_calibration does one sequence after the other.
#pragma once

#include <algorithm>
#include <cstddef>
#include <tuple>
#include <vector>

#include "llama/model.hpp"
#include "llama/online_rotation.hpp"
#include "llama/parallel.hpp"
#include "llama/quantized.hpp"
#include "sasq/core/span.hpp"
#include "sasq/core/status.hpp"
#include "sasq/transform/rotation.hpp"

namespace sasq::experiment {

/// Execution policy that records every site activation of a float forward pass, in call order.
struct CaptureExec {
  std::vector<std::tuple<int, llama::Site, llama::Matrix>> sites;
  void on_site(int layer, llama::Site s, llama::Matrix& x) { sites.emplace_back(layer, s, x); }
  void linear(int, llama::Proj, const llama::Matrix& x, const llama::Matrix& w, llama::Matrix& y) {
    llama::linear(x, w, y);
  }
};

/// Sequences whose activations are held at once (each at most seq_len tokens × every site).
inline constexpr std::size_t kCaptureChunk = 16;

/// llama::observe_calibration on `threads` threads: the same observers fed the same batches in the
/// same order, hence the same parameters bit for bit.
inline llama::CalibrationExec observe_calibration_parallel(const llama::Weights& w, const llama::RopeTable& rope,
                                                           const std::vector<std::vector<int>>& sequences,
                                                           llama::ObserverKind kind, const Rotation* down, int threads) {
  SASQ_REQUIRE(!sequences.empty(), "no calibration sequences");
  for (const auto& s : sequences)
    SASQ_REQUIRE(s.size() >= 2, "calibration sequence of ", s.size(), " tokens (need >= 2)");
  llama::CalibrationExec exec(w.config, kind);
  std::vector<std::vector<std::tuple<int, llama::Site, llama::Matrix>>> captured(kCaptureChunk);
  for (std::size_t c0 = 0; c0 < sequences.size(); c0 += kCaptureChunk) {
    const std::size_t n = std::min(kCaptureChunk, sequences.size() - c0);
    llama::parallel_for(n, threads, [&](std::size_t i, int) {
      auto cap = llama::with_online_rotation(CaptureExec{}, down);
      const std::vector<int>& s = sequences[c0 + i];
      llama::forward(w, rope, Span<const int>(s).subspan(0, s.size() - 1), 0, nullptr, cap);
      captured[i] = std::move(cap.inner.sites);
    });
    for (std::size_t i = 0; i < n; ++i)
      for (auto& [layer, site, x] : captured[i]) exec.on_site(layer, site, x);
  }
  return exec;
}

}  // namespace sasq::experiment
