// sasq-experiment: the method loop of the runner, its weight and transform caches, SASQ training
// and the truncation ablation (runner.hpp).
#include "experiment/runner.hpp"

#include <unistd.h>

#include <array>
#include <cmath>
#include <cstdio>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "experiment/channel_factors.hpp"
#include "experiment/report.hpp"
#include "llama/gptq.hpp"

namespace sasq::experiment {

void Runner::run_variant(const std::string& variant, const llama::Weights& w, std::vector<Row>& rows,
                         std::vector<train::TrainResult>& trainings, std::vector<std::string>& training_names,
                         std::vector<Row>* ablation) {
  // FP32 reference.
  {
    const PhaseTimes::Scope ph(phases_, "evaluation (fake quant)");
    Row r{variant, "FP32", "FP32"};
    r.ppl_ts = ppl_fp32(w, t_.ts_eval);
    r.ppl_wiki = ppl_fp32(w, t_.wiki_eval);
    report(r);
    rows.push_back(r);
  }
  // Caches keyed by the addresses of this variant's transformed models.
  calibrations_.clear();
  weights_.clear();
  folded_.clear();
  packed_.clear();
  smoothquant_.clear();
  transformed_.clear();
  alpha_models_.clear();
  {
    const PhaseTimes::Scope ph(phases_, "transforms");
    stats_ = collect_absmax(w, rope_, t_.ts_calib, o_.threads);
    for (Transform t : {Transform::kNone, Transform::kRotation, Transform::kSmoothRot})
      transformed_.emplace(t, apply_transform(w, t, stats_));
  }

  const bool stress = variant == "stress";
  for (const BitConfig& b : selected_bit_configs(o_.bits, o_.quick, stress)) {
    const float alpha = search_alpha(w, b);
    for (const Method& m : kMethods) {
      if (!method_selected(m, b, o_.methods, o_.quick, stress)) continue;
      const WeightMethod wm = weight_method(m);
      double factor_train_s = 0.0;
      const TransformedModel& tm = m.transform == Transform::kSmoothQuant ? smoothquant(w, alpha)
                                   : m.channel_factors ? channel_folded(b, wm, variant + " " + b.name, factor_train_s)
                                                       : transformed_.at(m.transform);
      const llama::QuantizedModel& qm = weights(tm, b, wm);
      Row r{variant, m.name, b.name};
      r.weights = llama::weight_method_name(wm);
      r.wbits = b.wbits;
      r.wgroup = b.wgroup;
      r.abits = b.abits;
      r.is_static = m.act != Act::kDynamic;
      if (m.transform == Transform::kSmoothQuant) r.note = "α " + fmt(alpha, 1);
      ActQuantConfig ac{b.abits, m.act == Act::kDynamic ? ActMode::kDynamicPerToken : ActMode::kStatic, false,
                        m.clip_ratio};
      llama::SiteParams params;
      if (m.act == Act::kStatic) {
        params = calibrate(qm.model, tm, m.observer, b, wm);
      } else if (m.act == Act::kSasq) {
        const auto t0 = Clock::now();
        const ObserverKind init = pick_init(qm, tm, b, wm);
        r.note = std::string("init ") + (init == ObserverKind::kMse ? "MSE-clip" : "mean-abs-max");
        train::TrainResult tr = [&] {
          const PhaseTimes::Scope ph(phases_, "SASQ training");
          return train(qm.model, tm, b.abits, init, variant + " " + b.name + " " + m.name);
        }();
        r.train_s = seconds_since(t0) + factor_train_s;
        std::fprintf(stderr, "  SASQ training %s %s: best held-out step %d of %d run (%s), held-out ppl %.4f -> %.4f\n",
                     b.name, m.name, tr.best_step, tr.steps_run, tr.stopped_early ? "stopped early" : "all steps",
                     std::exp(tr.initial_heldout_nll), std::exp(tr.best_heldout_nll));
        params = train::to_site_params(tr.scales);
        trainings.push_back(std::move(tr));
        training_names.push_back(variant + " / " + b.name + " / " + m.name);
        if (ablation && std::string(m.name) == kAblatedMethod && b.wbits == 8 && b.abits == 8)
          run_ablation(variant, w, params, b.abits, *ablation);
      }
      const llama::SiteParams* sp = ac.mode == ActMode::kStatic ? &params : nullptr;
      const Rotation* down = tm.down ? &*tm.down : nullptr;
      {
        const PhaseTimes::Scope ph(phases_, "evaluation (fake quant)");
        r.ppl_ts = ppl_fake(qm, t_.ts_eval, ac, sp, down);
        r.ppl_wiki = ppl_fake(qm, t_.wiki_eval, ac, sp, down);
      }
      if (r.is_static) {
        // True-integer path (sasq::gemm) on the first stories: a sign that it runs, and its speed
        // (its logits equal the fake-quant ones: llama_test).
        const PhaseTimes::Scope ph(phases_, "integer path (tok/s)");
        const llama::PackedModel& pm = packed(qm);
        const llama::PplResult ri = run_integer(qm, pm, t_.int_eval, ac, sp, down);
        r.int_tokens_per_s = static_cast<double>(ri.tokens) / ri.seconds;
      }
      report(r);
      rows.push_back(r);
    }
  }
}

void Runner::run_heldout(const llama::Weights& w) {
  {
    const PhaseTimes::Scope ph(phases_, "transforms");
    stats_ = collect_absmax(w, rope_, t_.ts_calib, o_.threads);
    for (Transform t : {Transform::kNone, Transform::kRotation}) transformed_.emplace(t, apply_transform(w, t, stats_));
    if (o_.chan_alpha > 0.0)
      fold_channel_factors(transformed_.at(Transform::kRotation), rope_, t_.ts_calib, o_.threads,
                           static_cast<float>(o_.chan_alpha), kChannelFactorSites);
  }
  std::printf("bits\tweights\tmethod\tlr\tsteps\tbatch\tpatience\tlsq\tkd\tinit\tbest_step\tsteps_run\t"
              "heldout_ppl_init\theldout_ppl\n");
  for (const BitConfig& b : selected_bit_configs(o_.bits, o_.quick, false))
    for (const Method& m : kMethods) {
      if (m.transform == Transform::kSmoothQuant || m.transform == Transform::kSmoothRot || m.act == Act::kStatic ||
          !method_selected(m, b, o_.methods, o_.quick, false))
        continue;
      const WeightMethod wm = weight_method(m);
      double factor_train_s = 0.0;
      const TransformedModel& tm =
          m.channel_factors ? channel_folded(b, wm, b.name, factor_train_s) : transformed_.at(m.transform);
      const llama::QuantizedModel& qm = weights(tm, b, wm);
      const Rotation* down = tm.down ? &*tm.down : nullptr;
      if (m.act == Act::kDynamic) {  // a reference: no training, held-out perplexity in the last column
        const ActQuantConfig ac{b.abits, ActMode::kDynamicPerToken, false, m.clip_ratio};
        const double p = ppl_fake(qm, t_.ts_heldout, ac, nullptr, down);
        std::printf("%s\t%s\t%s\t\t\t\t\t\t\t\t\t\t\t%.4f\n", b.name, llama::weight_method_name(wm), m.name, p);
        std::fflush(stdout);
        continue;
      }
      const ObserverKind init = pick_init(qm, tm, b, wm);
      const train::TrainResult tr =
          train(qm.model, tm, b.abits, init, std::string(b.name) + " " + m.name, o_.sasq_per_channel && !m.channel_factors);
      const ActQuantConfig ac{b.abits, ActMode::kStatic, false, 1.0f};
      auto heldout_ppl = [&](const train::ScalesFile& f) {
        if (f.granularity == train::Granularity::kPerTensor) {
          const llama::SiteParams sp = train::to_site_params(f);
          return ppl_fake(qm, t_.ts_heldout, ac, &sp, down);
        }
        train::QuantConfig q;
        q.bits = b.abits;
        q.granularity = f.granularity;
        q.down_rotation = down;
        return std::exp(train::evaluate_nll(qm.model, q, f, t_.ts_heldout, 1 << 30, o_.threads).mean_nll);
      };
      std::printf("%s\t%s\t%s\t%g\t%d\t%d\t%d\t%d\t%g\t%s\t%d\t%d\t%.4f\t%.4f\n", b.name,
                  llama::weight_method_name(wm), m.name, b.abits == 4 ? o_.train_lr_a4 : o_.train_lr, o_.train_steps,
                  o_.train_batch, b.abits == 4 ? o_.train_patience_a4 : o_.train_patience, o_.lsq_grad_scale ? 1 : 0,
                  o_.train_kd,
                  init == ObserverKind::kMse ? "mse" : "mean-abs-max", tr.best_step, tr.steps_run,
                  heldout_ppl(tr.initial_scales), heldout_ppl(tr.scales));
      std::fflush(stdout);
    }
}

WeightMethod Runner::weight_method(const Method& m) const {
  return m.rtn ? WeightMethod::kRtn : m.act == Act::kSasq ? o_.sasq_wquant : o_.wquant;
}

const llama::QuantizedModel& Runner::weights(const TransformedModel& tm, const BitConfig& b, WeightMethod wm) {
  const auto key = std::make_tuple(&tm, b.wbits, b.wgroup, wm);
  auto it = weights_.find(key);
  if (it != weights_.end()) return it->second;
  const PhaseTimes::Scope ph(phases_, llama::is_gptq(wm) ? "GPTQ weights" : "RTN weights");
  const auto t0 = Clock::now();
  llama::QuantizedModel qm = llama::quantize_model_weights(tm.weights, {b.wbits, b.wgroup, wm, false}, rope_,
                                                           t_.ts_calib, tm.down ? &*tm.down : nullptr, o_.threads);
  if (llama::is_gptq(wm)) {
    gptq_s_ += seconds_since(t0);
    ++gptq_models_;
  }
  return weights_.emplace(key, std::move(qm)).first->second;
}

const llama::PackedModel& Runner::packed(const llama::QuantizedModel& qm) {
  auto it = packed_.find(&qm);
  if (it == packed_.end()) it = packed_.emplace(&qm, llama::pack_model(qm)).first;
  return it->second;
}

const TransformedModel& Runner::channel_folded(const BitConfig& b, WeightMethod wm, const std::string& label,
                                               double& seconds) {
  auto it = folded_.find(b.name);
  if (it != folded_.end()) return it->second;
  const auto t0 = Clock::now();
  const TransformedModel& rot = transformed_.at(Transform::kRotation);
  const llama::QuantizedModel& qm = weights(rot, b, wm);
  const ObserverKind init = pick_init(qm, rot, b, wm);
  const train::TrainResult tr = [&] {
    const PhaseTimes::Scope ph(phases_, "SASQ training");
    return train(qm.model, rot, b.abits, init, label + " per-channel factors", true);
  }();
  std::fprintf(stderr, "  per-channel SASQ %s (factors): best held-out step %d of %d run\n", label.c_str(), tr.best_step,
               tr.steps_run);
  TransformedModel f = rot;
  fold_learned_factors(f, tr.scales, kChannelFactorSites);
  seconds += seconds_since(t0);
  return folded_.emplace(b.name, std::move(f)).first->second;
}

const TransformedModel& Runner::smoothquant(const llama::Weights& w, float alpha) {
  auto it = smoothquant_.find(alpha);
  if (it == smoothquant_.end()) it = smoothquant_.emplace(alpha, apply_transform(w, Transform::kSmoothQuant, stats_, alpha)).first;
  return it->second;
}

void Runner::run_ablation(const std::string& variant, const llama::Weights& w, const llama::SiteParams& params, int bits,
                          std::vector<Row>& out) {
  const std::array<bool, llama::kNumLinearSites> all{true, true, true, true};
  std::vector<std::pair<Truncation, std::array<bool, llama::kNumLinearSites>>> cases = {
      {Truncation::kClipOnly, all}, {Truncation::kRoundOnly, all}, {Truncation::kBoth, all}};
  for (int s = 0; s < llama::kNumLinearSites; ++s) {
    std::array<bool, llama::kNumLinearSites> one{};
    one[static_cast<std::size_t>(s)] = true;
    cases.emplace_back(Truncation::kClipOnly, one);
  }
  const PhaseTimes::Scope ph(phases_, "truncation ablation");
  for (const auto& [mode, sites] : cases) {
    std::string where;
    for (int s = 0; s < llama::kNumLinearSites; ++s)
      if (sites[static_cast<std::size_t>(s)]) where += std::string(where.empty() ? "" : ", ") + llama::site_name(static_cast<llama::Site>(s));
    Row r{variant, std::string(truncation_name(mode)) + " @ " + (sites == all ? std::string("all sites") : where),
          "FP32 weights, A" + std::to_string(bits)};
    r.abits = bits;
    const TruncationExec exec{&params, bits, mode, sites};
    r.ppl_ts = ppl_truncation(w, t_.ts_eval, exec);
    r.ppl_wiki = ppl_truncation(w, t_.wiki_eval, exec);
    report(r);
    out.push_back(r);
  }
}

train::TrainResult Runner::train(const llama::Weights& w, const TransformedModel& tm, int bits, ObserverKind init,
                                 const std::string& label, bool per_channel) const {
  train::QuantConfig q;
  q.bits = bits;
  q.observer = init;
  q.down_rotation = tm.down ? &*tm.down : nullptr;
  if (per_channel) q.granularity = train::Granularity::kPerChannel;
  train::TrainOptions to;
  to.steps = o_.train_steps;
  to.lr = bits == 4 ? o_.train_lr_a4 : o_.train_lr;
  to.batch = o_.train_batch;
  to.patience = bits == 4 ? o_.train_patience_a4 : o_.train_patience;
  to.lsq_grad_scale = o_.lsq_grad_scale;
  to.teacher = &tm.weights;
  to.kd_weight = o_.train_kd;
  to.threads = o_.threads;
  to.calibration_sequences = o_.calib_sequences;
  const bool tty = isatty(STDERR_FILENO) != 0;
  if (tty)
    to.on_progress = [&label](const train::Progress& p) {
      std::fprintf(stderr, "\r  training %s: step %d/%d loss %.4f held-out ppl %.4f ETA %.0fs   ", label.c_str(),
                   p.step, p.steps, p.train_loss, std::exp(p.heldout_nll), p.eta_s);
    };
  train::TrainData data{t_.ts_train, t_.ts_heldout};
  train::TrainResult r = train::train_scales(w, q, data, to, "");
  if (tty) std::fprintf(stderr, "\r%100s\r", "");
  return r;
}

void Runner::report(const Row& r) const {
  std::fprintf(stderr, "%-8s %-9s %-4s %-36s ts %8.4f  wiki %9.3f", r.variant.c_str(), r.bits.c_str(),
               r.weights.c_str(), (r.method + (r.note.empty() ? "" : " (" + r.note + ")")).c_str(), r.ppl_ts, r.ppl_wiki);
  if (!std::isnan(r.int_tokens_per_s)) std::fprintf(stderr, "  int %7.0f tok/s", r.int_tokens_per_s);
  if (!std::isnan(r.train_s)) std::fprintf(stderr, "  train %.1fs", r.train_s);
  std::fprintf(stderr, "  [%.0fs]\n", seconds_since(start_));
}

}  // namespace sasq::experiment
