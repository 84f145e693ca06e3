// The truncation ablation: separates SASQ's two effects on activations with learned static scales s
// (grid [qmin, qmax], e.g. [-128, 127]):
//   clip only:  x -> clamp(x, s·qmin, s·qmax)                 (no rounding)
//   round only: x -> s·rne(x·(1/s))                            (no clamping; rne = round_half_even)
//   both:       x -> s·clamp(rne(x·(1/s)), qmin, qmax)        (= the SASQ fake quantizer)
// applied at a chosen set of linear-input sites of a float-weight model.
#pragma once

#include <array>

#include "llama/model.hpp"
#include "llama/quantized.hpp"
#include "sasq/quant/affine.hpp"
#include "sasq/quant/rounding.hpp"

namespace sasq::experiment {

enum class Truncation { kClipOnly, kRoundOnly, kBoth };

inline const char* truncation_name(Truncation t) {
  switch (t) {
    case Truncation::kClipOnly: return "clip only";
    case Truncation::kRoundOnly: return "round only";
    case Truncation::kBoth: return "clip + round";
  }
  return "?";
}

/// Execution policy: float linears; at the sites in `sites` the activation is clipped and/or rounded
/// with that site's static parameter from `params` (bits: the activation grid). `params` must outlive it.
struct TruncationExec {
  const llama::SiteParams* params;
  int bits;
  Truncation mode;
  std::array<bool, llama::kNumLinearSites> sites;

  void on_site(int layer, llama::Site s, llama::Matrix& x) {
    const int si = static_cast<int>(s);
    if (si >= llama::kNumLinearSites || !sites[static_cast<std::size_t>(si)]) return;
    const QuantParam p = params->at(static_cast<std::size_t>(layer))[static_cast<std::size_t>(si)];
    llama::with_act_grid(bits, [&](auto grid) {
      using G = decltype(grid);
      const float lo = p.scale * static_cast<float>(G::kQmin), hi = p.scale * static_cast<float>(G::kQmax);
      for (Eigen::Index i = 0; i < x.size(); ++i) {
        float& v = x.data()[i];
        if (mode == Truncation::kClipOnly) v = v < lo ? lo : (v > hi ? hi : v);
        else if (mode == Truncation::kRoundOnly) v = p.scale * round_half_even(v * p.inv_scale);
        else v = fake_quantize_value<G>(v, p);
      }
    });
  }
  void linear(int, llama::Proj, const llama::Matrix& x, const llama::Matrix& w, llama::Matrix& y) {
    llama::linear(x, w, y);
  }
};

}  // namespace sasq::experiment
