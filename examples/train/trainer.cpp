// The SASQ scale trainer (train/trainer.hpp): calibration, the training loop and held-out
// evaluation, compiled once into sasq_llama_model.
#include "train/trainer.hpp"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <numeric>
#include <random>
#include <string>
#include <vector>

#include "llama/backward.hpp"
#include "llama/forward_instances.hpp"
#include "llama/online_rotation.hpp"
#include "llama/parallel.hpp"
#include "llama/ops.hpp"
#include "llama/train_forward.hpp"
#include "sasq/core/matrix_view.hpp"
#include "sasq/quant/observers.hpp"
#include "sasq/quant/ste.hpp"

namespace sasq::train {

namespace {

/// A sequence cut to at most max_predictions + 1 tokens.
Span<const int> cut(const std::vector<int>& seq, int max_predictions) {
  return Span<const int>(seq.data(), std::min(seq.size(), static_cast<std::size_t>(max_predictions) + 1));
}

/// Forward-pass policy that feeds each site's activation to a per-channel observer.
template <class Obs>
struct ChannelCalibrationExec {
  std::vector<ChannelwiseObserver<Obs>> observers;  ///< [layer · kNumLinearSites + site]
  void on_site(int layer, llama::Site s, llama::Matrix& x) {
    if (static_cast<int>(s) >= llama::kNumLinearSites) return;
    observers[static_cast<std::size_t>(layer * llama::kNumLinearSites + static_cast<int>(s))].observe(
        MatrixView<const float>(x.data(), x.rows(), x.cols()));
  }
  void linear(int, llama::Proj, const llama::Matrix& x, const llama::Matrix& w, llama::Matrix& y) {
    llama::linear(x, w, y);
  }
};

/// Per-channel scales [layer · kNumLinearSites + site][channel] from observer prototype `proto`.
template <class Obs>
std::vector<std::vector<float>> calibrate_channels(const llama::Weights& w, const llama::RopeTable& rope,
                                            const std::vector<std::vector<int>>& seqs, int bits,
                                            const Obs& proto, const Rotation* down) {
  auto wrapped = llama::with_online_rotation(
      ChannelCalibrationExec<Obs>{std::vector<ChannelwiseObserver<Obs>>(
          static_cast<std::size_t>(w.config.n_layers * llama::kNumLinearSites), ChannelwiseObserver<Obs>(proto))},
      down);
  for (const auto& s : seqs) llama::forward(w, rope, Span<const int>(s).subspan(0, s.size() - 1), 0, nullptr, wrapped);
  const ChannelCalibrationExec<Obs>& exec = wrapped.inner;
  std::vector<std::vector<float>> out(exec.observers.size());
  llama::with_act_grid(bits, [&](auto grid) {
    using G = decltype(grid);
    for (std::size_t i = 0; i < out.size(); ++i)
      for (std::size_t c = 0; c < exec.observers[i].channels(); ++c)
        out[i].push_back(exec.observers[i].channel(c).template param<G>().scale);
  });
  return out;
}

double lr_at(const TrainOptions& o, int step) {
  if (step < o.warmup_steps) return o.lr * (step + 1) / static_cast<double>(o.warmup_steps);
  const double span = std::max(1, o.steps - o.warmup_steps);
  const double p = std::min(1.0, (step - o.warmup_steps) / span);
  const double lo = o.lr * o.min_lr_ratio;
  switch (o.schedule) {
    case LrSchedule::kCosine: return lo + 0.5 * (o.lr - lo) * (1.0 + std::cos(3.14159265358979323846 * p));
    case LrSchedule::kLinear: return o.lr + (lo - o.lr) * p;
    case LrSchedule::kConstant: return o.lr;
  }
  return o.lr;
}


/// Site quantizers for the training forward: one per (layer, linear site); the configured sites
/// enabled with `scales` (layout: config sites in order, per layer), the others pass through.
std::vector<llama::grad::SiteQuantizer<float>> make_quantizers(const llama::Config& c, const QuantConfig& q,
                                                               const ScalesFile& scales) {
  std::vector<llama::grad::SiteQuantizer<float>> sites(static_cast<std::size_t>(c.n_layers * llama::kNumLinearSites));
  for (auto& s : sites) s.scale = {1.0f};
  for (const SiteScales& s : scales.sites) {
    auto& sq = sites[static_cast<std::size_t>(s.layer * llama::kNumLinearSites + static_cast<int>(s.site))];
    sq.enabled = true;
    sq.qmin = q.qmin();
    sq.qmax = q.qmax();
    sq.scale = s.scale;
  }
  return sites;
}

}  // namespace

ScalesFile calibrate_scales(const llama::Weights& w, const QuantConfig& q,
                            const std::vector<std::vector<int>>& sequences,
                            const std::string& model_fingerprint) {
  SASQ_REQUIRE(q.bits == 4 || q.bits == 8, "activation bits must be 4 or 8, got ", q.bits);
  SASQ_REQUIRE(!sequences.empty(), "no calibration sequences");
  SASQ_REQUIRE(!q.sites.empty(), "no quantizer sites configured");
  const int n_layers = w.config.n_layers;
  ScalesFile f{model_fingerprint, n_layers, q.bits, q.full_range(), q.granularity, std::nullopt, {}};
  for (int l = 0; l < n_layers; ++l) {
    for (std::size_t i = 0; i < q.sites.size(); ++i) {
      const llama::Site s = q.sites[i];
      SASQ_REQUIRE(static_cast<int>(s) < llama::kNumLinearSites, "site ", llama::site_name(s),
                   " cannot be trained (only the inputs of linear layers)");
      for (std::size_t j = 0; j < i; ++j) SASQ_REQUIRE(q.sites[j] != s, "site ", llama::site_name(s), " listed twice");
      f.sites.push_back({l, s, {}});
    }
  }
  const llama::RopeTable rope = llama::make_rope_table(w.config);
  if (q.granularity == Granularity::kPerTensor) {
    const llama::SiteParams p = llama::calibrate(w, rope, sequences, q.observer, q.bits, q.down_rotation);
    for (SiteScales& s : f.sites) s.scale = {p[static_cast<std::size_t>(s.layer)][static_cast<std::size_t>(s.site)].scale};
  } else {
    std::vector<std::vector<float>> ch;
    switch (q.observer) {
      case llama::ObserverKind::kMinMax: ch = calibrate_channels(w, rope, sequences, q.bits, MinMaxObserver(), q.down_rotation); break;
      case llama::ObserverKind::kMeanAbsMax: ch = calibrate_channels(w, rope, sequences, q.bits, MeanAbsMaxObserver(), q.down_rotation); break;
      case llama::ObserverKind::kEmaMinMax: ch = calibrate_channels(w, rope, sequences, q.bits, EmaMinMaxObserver(), q.down_rotation); break;
      case llama::ObserverKind::kPercentile: ch = calibrate_channels(w, rope, sequences, q.bits, PercentileObserver(), q.down_rotation); break;
      case llama::ObserverKind::kMse: ch = calibrate_channels(w, rope, sequences, q.bits, MseObserver(), q.down_rotation); break;
    }
    for (SiteScales& s : f.sites) s.scale = ch[static_cast<std::size_t>(s.layer * llama::kNumLinearSites + static_cast<int>(s.site))];
  }
  return f;
}

llama::SiteParams to_site_params(const ScalesFile& f) {
  SASQ_REQUIRE(f.granularity == Granularity::kPerTensor, "llama::FakeQuantExec takes per-tensor scales only");
  llama::SiteParams p(static_cast<std::size_t>(f.n_layers));
  for (auto& row : p) row.fill(QuantParam::make(1.0f));
  for (const SiteScales& s : f.sites)
    p[static_cast<std::size_t>(s.layer)][static_cast<std::size_t>(s.site)] = QuantParam::make(s.scale[0]);
  return p;
}

EvalStats evaluate_nll(const llama::Weights& w, const QuantConfig& q, const ScalesFile& scales,
                       const std::vector<std::vector<int>>& sequences, int max_predictions, int threads) {
  const llama::grad::ModelView<float> m = llama::grad::view_of(w, q.down_rotation);
  const auto sites = make_quantizers(w.config, q, scales);
  std::vector<double> nll(sequences.size());
  std::vector<std::vector<std::int64_t>> clipped(sequences.size()), count(sequences.size());
  std::vector<llama::grad::Tape<float>> tapes(static_cast<std::size_t>(std::max(1, threads)));
  llama::parallel_for(sequences.size(), threads, [&](std::size_t i, int wk) {
    auto& tape = tapes[static_cast<std::size_t>(wk)];
    nll[i] = llama::grad::forward(m, sites, cut(sequences[i], max_predictions), 1.0f, tape);
    clipped[i] = tape.clipped;
    count[i] = tape.count;
  });
  EvalStats st;
  st.clipped.assign(sites.size(), 0);
  st.count.assign(sites.size(), 0);
  double sum = 0;
  for (std::size_t i = 0; i < sequences.size(); ++i) {
    sum += nll[i];
    st.tokens += static_cast<std::int64_t>(cut(sequences[i], max_predictions).size()) - 1;
    for (std::size_t s = 0; s < sites.size(); ++s) {
      st.clipped[s] += clipped[i][s];
      st.count[s] += count[i][s];
    }
  }
  st.mean_nll = st.tokens > 0 ? sum / static_cast<double>(st.tokens) : 0.0;
  return st;
}

TrainResult train_scales(const llama::Weights& w, const QuantConfig& q, const TrainData& data,
                         const TrainOptions& o, const std::string& model_fingerprint) {
  using clock = std::chrono::steady_clock;
  const auto t0 = clock::now();
  SASQ_REQUIRE(o.steps >= 0 && o.batch >= 1 && o.max_predictions >= 1 && o.eval_every >= 1 && o.threads >= 1,
               "steps, batch, max_predictions, eval_every and threads must be positive");
  SASQ_REQUIRE(o.lr > 0 && std::isfinite(o.lr), "learning rate ", o.lr, " is not positive");
  SASQ_REQUIRE(!data.train.empty() && !data.heldout.empty(), "need training and held-out sequences (got ",
               data.train.size(), " and ", data.heldout.size(), ")");
  for (const auto* set : {&data.train, &data.heldout})
    for (const auto& s : *set) SASQ_REQUIRE(s.size() >= 2, "a sequence has ", s.size(), " tokens, need at least 2");
  SASQ_REQUIRE(o.kd_weight >= 0 && o.kd_weight <= 1, "distillation weight ", o.kd_weight, " is not in [0, 1]");
  SASQ_REQUIRE(o.kd_weight == 0 || o.teacher, "distillation weight ", o.kd_weight, " needs a teacher model");
  if (o.kd_weight > 0) {
    const llama::Config &a = o.teacher->config, &b = w.config;
    SASQ_REQUIRE(a.dim == b.dim && a.hidden_dim == b.hidden_dim && a.n_layers == b.n_layers && a.n_heads == b.n_heads &&
                     a.n_kv_heads == b.n_kv_heads && a.vocab_size == b.vocab_size,
                 "the distillation teacher's shape differs from the trained model's");
  }

  TrainResult res;
  std::vector<std::vector<int>> calib;
  for (std::size_t i = 0; i < data.train.size() && static_cast<int>(i) < o.calibration_sequences; ++i) {
    const Span<const int> c = cut(data.train[i], o.max_predictions);
    calib.emplace_back(c.begin(), c.end());
  }
  res.initial_scales = calibrate_scales(w, q, calib, model_fingerprint);
  res.scales = res.initial_scales;

  // Flat parameter vector θ = ln s over all scales of all configured sites.
  std::vector<std::size_t> offset;
  std::vector<double> theta;
  for (const SiteScales& s : res.initial_scales.sites) {
    offset.push_back(theta.size());
    for (const float v : s.scale) theta.push_back(std::log(static_cast<double>(v)));
  }
  const std::size_t n_params = theta.size();
  std::vector<double> m1(n_params, 0.0), m2(n_params, 0.0), gscale(n_params, 1.0);
  if (o.lsq_grad_scale) {
    for (std::size_t k = 0; k < res.initial_scales.sites.size(); ++k) {
      const SiteScales& s = res.initial_scales.sites[k];
      const std::size_t per_token = q.granularity == Granularity::kPerTensor
                                        ? static_cast<std::size_t>(site_channels(w.config, s.site)) : 1u;
      for (std::size_t c = 0; c < s.scale.size(); ++c)
        gscale[offset[k] + c] = ste::lsq_grad_scale(per_token, q.qmax());
    }
  }
  auto scales_from_theta = [&](const std::vector<double>& th) {
    ScalesFile f = res.initial_scales;
    for (std::size_t k = 0; k < f.sites.size(); ++k)
      for (std::size_t c = 0; c < f.sites[k].scale.size(); ++c)
        f.sites[k].scale[c] = static_cast<float>(std::exp(th[offset[k] + c]));
    return f;
  };

  const llama::grad::ModelView<float> m = llama::grad::view_of(w, q.down_rotation);
  const int workers = std::max(1, o.threads);
  std::vector<llama::grad::Tape<float>> tapes(static_cast<std::size_t>(workers));
  std::vector<llama::grad::Gradients<float>> grads(static_cast<std::size_t>(workers));
  const bool distill = o.kd_weight > 0;
  const llama::grad::ModelView<float> teacher =
      distill ? llama::grad::view_of(*o.teacher, q.down_rotation) : llama::grad::ModelView<float>{};
  std::vector<llama::grad::SiteQuantizer<float>> teacher_sites(static_cast<std::size_t>(w.config.n_layers * llama::kNumLinearSites));
  for (auto& s : teacher_sites) s.scale = {1.0f};  // disabled: the teacher runs unquantized
  std::vector<llama::grad::Tape<float>> teacher_tapes(distill ? static_cast<std::size_t>(workers) : 0u);

  EvalStats init_eval = evaluate_nll(w, q, res.initial_scales, data.heldout, o.max_predictions, o.threads);
  EvalStats best_eval = init_eval;
  res.initial_heldout_nll = res.best_heldout_nll = init_eval.mean_nll;
  res.history.push_back({0, std::nan(""), init_eval.mean_nll});
  std::vector<double> best_theta = theta;
  int since_best = 0;
  double last_heldout = init_eval.mean_nll;

  std::mt19937_64 rng(o.seed);
  std::vector<std::size_t> order(data.train.size());
  std::iota(order.begin(), order.end(), std::size_t{0});
  std::shuffle(order.begin(), order.end(), rng);
  std::size_t cursor = 0;

  for (int step = 0; step < o.steps; ++step) {
    std::vector<std::size_t> batch;
    for (int b = 0; b < o.batch; ++b) {
      if (cursor == order.size()) {
        std::shuffle(order.begin(), order.end(), rng);
        cursor = 0;
      }
      batch.push_back(order[cursor++]);
    }
    std::int64_t predictions = 0;
    for (const std::size_t i : batch) predictions += static_cast<std::int64_t>(cut(data.train[i], o.max_predictions).size()) - 1;
    const float weight = 1.0f / static_cast<float>(predictions);
    const ScalesFile cur = scales_from_theta(theta);
    const auto sites = make_quantizers(w.config, q, cur);
    std::vector<std::vector<double>> seq_grad(batch.size());
    std::vector<double> seq_loss(batch.size());
    llama::parallel_for(batch.size(), workers, [&](std::size_t b, int wk) {
      auto& tape = tapes[static_cast<std::size_t>(wk)];
      auto& g = grads[static_cast<std::size_t>(wk)];
      const Span<const int> seq = cut(data.train[batch[b]], o.max_predictions);
      llama::grad::Distillation<float> kd;
      if (distill) {
        auto& tt = teacher_tapes[static_cast<std::size_t>(wk)];
        llama::grad::forward(teacher, teacher_sites, seq, 1.0f, tt);
        kd = {&tt.probs, static_cast<float>(o.kd_weight)};
      }
      seq_loss[b] = llama::grad::forward<float>(m, sites, seq, weight, tape, nullptr, kd);
      g.reset(sites);
      llama::grad::backward(m, sites, tape, g);
      auto& out = seq_grad[b];
      out.assign(n_params, 0.0);
      for (std::size_t k = 0; k < cur.sites.size(); ++k) {
        const SiteScales& s = cur.sites[k];
        const auto& gs = g.scale[static_cast<std::size_t>(s.layer * llama::kNumLinearSites + static_cast<int>(s.site))];
        for (std::size_t c = 0; c < s.scale.size(); ++c) out[offset[k] + c] = gs[c];
      }
    });
    // dL/dθ = s · dL/ds (× LSQ scale), summed in batch order: deterministic for any thread count.
    std::vector<double> gtheta(n_params, 0.0);
    double loss = 0;
    for (std::size_t b = 0; b < batch.size(); ++b) {
      loss += seq_loss[b];
      for (std::size_t p = 0; p < n_params; ++p) gtheta[p] += seq_grad[b][p];
    }
    double norm2 = 0;
    for (std::size_t p = 0; p < n_params; ++p) {
      gtheta[p] *= std::exp(theta[p]) * gscale[p];
      norm2 += gtheta[p] * gtheta[p];
    }
    SASQ_REQUIRE(std::isfinite(norm2) && std::isfinite(loss), "non-finite loss or gradient at step ", step);
    const double norm = std::sqrt(norm2);
    const double clip = (o.clip_norm > 0 && norm > o.clip_norm) ? o.clip_norm / norm : 1.0;
    const double lr = lr_at(o, step);
    const double bc1 = 1.0 - std::pow(0.9, step + 1), bc2 = 1.0 - std::pow(0.999, step + 1);
    for (std::size_t p = 0; p < n_params; ++p) {
      const double gp = gtheta[p] * clip;
      m1[p] = 0.9 * m1[p] + 0.1 * gp;
      m2[p] = 0.999 * m2[p] + 0.001 * gp * gp;
      theta[p] -= lr * (m1[p] / bc1) / (std::sqrt(m2[p] / bc2) + 1e-8);
    }
    res.steps_run = step + 1;
    HistoryPoint hp{step + 1, loss, std::nan("")};
    const bool last = step + 1 == o.steps;
    if ((step + 1) % o.eval_every == 0 || last) {
      const EvalStats ev = evaluate_nll(w, q, scales_from_theta(theta), data.heldout, o.max_predictions, o.threads);
      hp.heldout_nll = last_heldout = ev.mean_nll;
      if (ev.mean_nll < res.best_heldout_nll) {
        res.best_heldout_nll = ev.mean_nll;
        res.best_step = step + 1;
        best_theta = theta;
        best_eval = ev;
        since_best = 0;
      } else {
        ++since_best;
      }
    }
    res.history.push_back(hp);
    if (o.on_progress) {
      const double el = std::chrono::duration<double>(clock::now() - t0).count();
      o.on_progress({step + 1, o.steps, loss, last_heldout, el, el / (step + 1) * (o.steps - step - 1)});
    }
    if (o.patience > 0 && since_best >= o.patience) {
      res.stopped_early = !last;
      break;
    }
  }

  res.scales = scales_from_theta(best_theta);
  if (res.best_step == 0) res.scales = res.initial_scales;
  for (std::size_t k = 0; k < res.scales.sites.size(); ++k) {
    const SiteScales& s0 = res.initial_scales.sites[k];
    const SiteScales& s1 = res.scales.sites[k];
    SiteReport r{s0.layer, s0.site, s0.scale, s1.scale, 0, 0, 0, 0, 0};
    for (std::size_t c = 0; c < s0.scale.size(); ++c) {
      r.initial_clip_threshold += static_cast<double>(s0.scale[c]) * q.qmax();
      r.clip_threshold += static_cast<double>(s1.scale[c]) * q.qmax();
      r.drift += static_cast<double>(s1.scale[c]) / static_cast<double>(s0.scale[c]) - 1.0;
    }
    const double n = static_cast<double>(s0.scale.size());
    r.initial_clip_threshold /= n;
    r.clip_threshold /= n;
    r.drift /= n;
    const std::size_t idx = static_cast<std::size_t>(s0.layer * llama::kNumLinearSites + static_cast<int>(s0.site));
    auto frac = [&](const EvalStats& e) {
      return e.count[idx] ? static_cast<double>(e.clipped[idx]) / static_cast<double>(e.count[idx]) : 0.0;
    };
    r.initial_clip_fraction = frac(init_eval);
    r.clip_fraction = frac(best_eval);
    res.sites.push_back(std::move(r));
  }
  res.seconds = std::chrono::duration<double>(clock::now() - t0).count();
  return res;
}

}  // namespace sasq::train
