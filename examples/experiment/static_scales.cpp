// sasq-experiment: static activation scales of the runner (runner.hpp): calibration, the
// SmoothQuant α search and SASQ's initialisation choice.
#include "experiment/runner.hpp"


#include <algorithm>
#include <cstdio>
#include <limits>
#include <string>
#include <tuple>
#include <utility>

#include "experiment/calibration.hpp"
#include "experiment/report.hpp"

namespace sasq::experiment {

float Runner::search_alpha(const llama::Weights& w, const BitConfig& b) {
  const PhaseTimes::Scope ph(phases_, "SmoothQuant alpha search");
  double best = std::numeric_limits<double>::infinity();
  float best_alpha = kSmoothQuantAlphas[0];
  std::string log;
  for (const float a : kSmoothQuantAlphas) {
    const AlphaModel& am = alpha_model(w, a, b);
    const llama::QuantizedModel& qm = am.weights;
    const llama::SiteParams sp = am.calibration.params(b.abits);
    const ActQuantConfig ac{b.abits, ActMode::kStatic, false, 1.0f};
    const double p = ppl_fake_unrotated(qm, t_.ts_heldout, ac, &sp);
    log += " " + fmt(a, 1) + ":" + fmt(p, 3);
    if (p < best) {
      best = p;
      best_alpha = a;
    }
  }
  std::fprintf(stderr, "  SmoothQuant alpha search %s (held-out ppl):%s -> %.1f\n", b.name, log.c_str(), best_alpha);
  return best_alpha;
}

const Runner::AlphaModel& Runner::alpha_model(const llama::Weights& w, float alpha, const BitConfig& b) {
  const auto key = std::make_tuple(alpha, b.wbits, b.wgroup);
  auto it = alpha_models_.find(key);
  if (it != alpha_models_.end()) return it->second;
  const Seqs calib(t_.ts_calib.begin(),
                   t_.ts_calib.begin() + static_cast<std::ptrdiff_t>(std::min(kAlphaCalibSequences, t_.ts_calib.size())));
  llama::QuantizedModel qm =
      llama::quantize_weights(smoothquant(w, alpha).weights, {b.wbits, b.wgroup, WeightMethod::kRtn, false});
  llama::CalibrationExec ce = observe_calibration_parallel(qm.model, rope_, calib, ObserverKind::kMeanAbsMax, nullptr, o_.threads);
  return alpha_models_.emplace(key, AlphaModel{std::move(qm), std::move(ce)}).first->second;
}

llama::SiteParams Runner::calibrate(const llama::Weights& w, const TransformedModel& tm, ObserverKind kind,
                                    const BitConfig& b, WeightMethod wm) {
  const auto key = std::make_tuple(&tm, kind, b.wbits, b.wgroup, wm);
  auto it = calibrations_.find(key);
  const PhaseTimes::Scope ph(phases_, "static calibration");
  if (it == calibrations_.end())
    it = calibrations_
             .emplace(key, observe_calibration_parallel(w, rope_, t_.ts_calib, kind, tm.down ? &*tm.down : nullptr,
                                                        o_.threads))
             .first;
  return it->second.params(b.abits);
}

ObserverKind Runner::pick_init(const llama::QuantizedModel& qm, const TransformedModel& tm, const BitConfig& b, WeightMethod wm) {
  const PhaseTimes::Scope ph(phases_, "SASQ init choice");
  double best = std::numeric_limits<double>::infinity();
  ObserverKind pick = ObserverKind::kMeanAbsMax;
  for (const ObserverKind k : {ObserverKind::kMeanAbsMax, ObserverKind::kMse}) {
    const llama::SiteParams sp = calibrate(qm.model, tm, k, b, wm);
    const ActQuantConfig ac{b.abits, ActMode::kStatic, false, 1.0f};
    const Rotation* down = tm.down ? &*tm.down : nullptr;
    const double p = ppl_fake(qm, t_.ts_heldout, ac, &sp, down);
    if (p < best) {
      best = p;
      pick = k;
    }
  }
  return pick;
}

}  // namespace sasq::experiment
