// Quantized LLaMA: weights quantized once (symmetric int8/int4, per channel or per group, RTN or
// MSE clip search here; GPTQ in llama/gptq.hpp) and activation quantizers at every site (dynamic per-token or static per-tensor
// scales from an observer), executed as fake-quant float simulation.
//   weight:     w^ = s_g * clamp(rne(w / s_g), -qmax, qmax),  s_g = clip_g / qmax,
//               clip_g = max|w_g| (RTN) or the MSE-optimal clip (mse_optimal_absmax)
//   activation: x^ = s * clamp(rne(x * (1/s)), -qmax-1, qmax), s = c * absmax_row / qmax (dynamic, clip ratio c)
//               or the site's calibrated static scale
#pragma once

#include <algorithm>
#include <array>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <string>
#include <utility>
#include <variant>
#include <vector>

#include "llama/model.hpp"
#include "llama/online_rotation.hpp"
#include "llama/weights.hpp"
#include "sasq/core/span.hpp"
#include "sasq/core/status.hpp"
#include "sasq/quant/affine.hpp"
#include "sasq/quant/observers.hpp"
#include "sasq/quant/params.hpp"
#include "sasq/quant/scheme.hpp"

namespace sasq::llama {

/// Calls fn(Grid{}) with the weight grid of `bits`: symmetric restricted range ([-127, 127],
/// [-7, 7]), so that -w quantizes to -q.
template <class Fn>
decltype(auto) with_weight_grid(int bits, Fn&& fn) {
  if (bits == 8) return fn(GridS8{});
  if (bits == 4) return fn(GridS4{});
  fail(ErrorCode::kInvalidArgument, "weight bit width ", bits, " is not supported (4 or 8)");
}

/// Calls fn(Grid{}) with the activation grid of `bits`: symmetric full range ([-128, 127],
/// [-8, 7]) with s = absmax / qmax, as QuaRot's sym_quant and sasq's activation quantize kernels.
template <class Fn>
decltype(auto) with_act_grid(int bits, Fn&& fn) {
  if (bits == 8) return fn(GridS8Full{});
  if (bits == 4) return fn(GridS4Full{});
  fail(ErrorCode::kInvalidArgument, "activation bit width ", bits, " is not supported (4 or 8)");
}

/// How weight values are chosen: round to nearest with the abs-max scale, round to nearest with the
/// MSE-optimal clip, or GPTQ (llama/gptq.hpp: calibration Hessians, MSE clip scales).
/// kGptqActOrder: GPTQ processing columns by descending diag H (act-order, static groups).
enum class WeightMethod { kRtn, kMse, kGptq, kGptqActOrder };

/// Whether m is one of the GPTQ methods (they need calibration Hessians).
inline bool is_gptq(WeightMethod m) { return m == WeightMethod::kGptq || m == WeightMethod::kGptqActOrder; }

inline const char* weight_method_name(WeightMethod m) {
  switch (m) {
    case WeightMethod::kRtn: return "rtn";
    case WeightMethod::kMse: return "mse";
    case WeightMethod::kGptq: return "gptq";
    case WeightMethod::kGptqActOrder: return "gptq-ao";
  }
  return "?";
}

inline WeightMethod parse_weight_method(const std::string& s) {
  if (s == "rtn") return WeightMethod::kRtn;
  if (s == "mse") return WeightMethod::kMse;
  if (s == "gptq") return WeightMethod::kGptq;
  if (s == "gptq-ao") return WeightMethod::kGptqActOrder;
  fail(ErrorCode::kInvalidArgument, "unknown weight quantization method '", s, "' (rtn, mse, gptq, gptq-ao)");
}

/// How weights are quantized. bits = 0 keeps them float32.
struct WeightQuantConfig {
  int bits = 0;           ///< 0 (float), 8 or 4
  int group_size = 0;     ///< 0: one scale per output channel; else groups along K (32, 64, 128)
  WeightMethod method = WeightMethod::kRtn;
  bool classifier = false;  ///< also quantize the classifier (a shared one gets its own copy)
};

/// One quantized weight matrix W[N][K]: integer values, scales [N][groups] and W^ in float.
struct QuantizedMatrix {
  int bits = 8;
  int group_size = 0;  ///< 0 = per channel
  std::vector<std::int8_t> q;  ///< [N][K] row-major, in [-qmax, qmax]
  std::vector<float> scale;    ///< [N][ceil(K / group_size)] (one per row when per channel)
  Matrix dequantized;          ///< s * q, what a float forward multiplies by
  Matrix values;               ///< q as floats (exact), for the factored fake-quant linear

  std::ptrdiff_t scales_per_row() const {
    return group_size == 0 ? 1 : (dequantized.cols() + group_size - 1) / group_size;
  }
};

/// Quantizes W[N][K] per output row (group_size 0) or per group of group_size columns of a row
/// (last group short when group_size does not divide K): round to nearest with the abs-max clip (kRtn)
/// or the MSE-optimal clip (kMse, and the GPTQ methods: the rule for a classifier, which has no GPTQ Hessian here).
inline QuantizedMatrix quantize_matrix(const Matrix& w, const WeightQuantConfig& cfg) {
  SASQ_REQUIRE(cfg.group_size >= 0, "group_size ", cfg.group_size, " is negative");
  QuantizedMatrix out;
  out.bits = cfg.bits;
  out.group_size = cfg.group_size;
  const Eigen::Index n = w.rows(), k = w.cols();
  const Eigen::Index g = cfg.group_size == 0 ? k : cfg.group_size;
  const Eigen::Index groups = (k + g - 1) / g;
  out.q.resize(static_cast<std::size_t>(n * k));
  out.scale.resize(static_cast<std::size_t>(n * groups));
  out.dequantized.resize(n, k);
  out.values.resize(n, k);
  with_weight_grid(cfg.bits, [&](auto grid) {
    using G = decltype(grid);
    for (Eigen::Index r = 0; r < n; ++r)
      for (Eigen::Index gi = 0; gi < groups; ++gi) {
        const Eigen::Index c0 = gi * g, len = std::min(g, k - c0);
        const Span<const float> vals(w.row(r).data() + c0, static_cast<std::size_t>(len));
        float clip = 0.0f;
        if (cfg.method != WeightMethod::kRtn) {
          clip = mse_optimal_absmax<G>(vals);
        } else {
          for (const float v : vals) clip = std::max(clip, std::fabs(v));
        }
        const QuantParam p = param_from_absmax<G>(clip);
        out.scale[static_cast<std::size_t>(r * groups + gi)] = p.scale;
        for (Eigen::Index c = c0; c < c0 + len; ++c) {
          const int q = quantize_value<G>(w(r, c), p);
          out.q[static_cast<std::size_t>(r * k + c)] = static_cast<std::int8_t>(q);
          out.dequantized(r, c) = dequantize_value(q, p);
          out.values(r, c) = static_cast<float>(q);
        }
      }
  });
  return out;
}

/// A weight-quantized model: `model` holds W^ (dequantized) in place of every quantized matrix,
/// `matrices[l][p]` the integer form of layer l's projection p (empty when bits = 0).
struct QuantizedModel {
  Weights model;
  WeightQuantConfig config;
  std::vector<std::array<QuantizedMatrix, kNumProj>> matrices;
};

/// Stores projection p of layer l: its dequantized weight into qm.model, the matrix into qm.matrices.
inline void set_matrix(QuantizedModel& qm, std::size_t l, Proj p, QuantizedMatrix m) {
  proj_weight(qm.model.layers[l], p) = m.dequantized;
  qm.matrices[l][static_cast<std::size_t>(p)] = std::move(m);
}

/// The classifier of `w` quantized by cfg's rule into qm.model (no-op unless cfg.classifier).
inline void quantize_classifier(QuantizedModel& qm, const Weights& w, const WeightQuantConfig& cfg) {
  if (!cfg.classifier) return;
  qm.model.wcls = quantize_matrix(w.classifier(), cfg).dequantized;
  qm.model.config.shared_classifier = false;
}

/// Quantizes every linear layer's weight once (and the classifier if asked) by RTN or MSE clip;
/// GPTQ needs calibration data (quantize_weights_gptq in llama/gptq.hpp).
inline QuantizedModel quantize_weights(const Weights& w, const WeightQuantConfig& cfg) {
  SASQ_REQUIRE(!is_gptq(cfg.method) || cfg.bits == 0,
               "GPTQ weights need calibration data: use quantize_weights_gptq (llama/gptq.hpp)");
  QuantizedModel qm;
  qm.config = cfg;
  qm.model = w;
  qm.model.q8.clear();
  if (cfg.bits == 0) return qm;
  qm.matrices.resize(w.layers.size());
  for (std::size_t l = 0; l < w.layers.size(); ++l)
    for (int p = 0; p < kNumProj; ++p)
      set_matrix(qm, l, static_cast<Proj>(p), quantize_matrix(proj_weight(w.layers[l], static_cast<Proj>(p)), cfg));
  quantize_classifier(qm, w, cfg);
  return qm;
}

/// Activation quantizer mode of every site.
enum class ActMode { kNone, kDynamicPerToken, kStatic };

/// How activations are quantized. bits = 0 or mode kNone keeps them float32.
struct ActQuantConfig {
  int bits = 0;  ///< 0 (float), 8 or 4
  ActMode mode = ActMode::kNone;
  bool kv_cache = false;  ///< also quantize the keys/values written to the KV cache
  float clip_ratio = 1.0f;  ///< dynamic mode: s = clip_ratio · absmax_row / qmax (QuaRot: 0.9)
  bool enabled() const { return bits != 0 && mode != ActMode::kNone; }
  bool quantizes(Site s) const {
    return enabled() && (static_cast<int>(s) < kNumLinearSites || kv_cache);
  }
};

/// Static per-tensor parameters, one per (layer, site).
using SiteParams = std::vector<std::array<QuantParam, kNumSites>>;

/// Largest K for which every partial sum of q_x * q_w (|q_x| <= 128, |q_w| <= 127) is an integer
/// below 2^24, hence exact in float32 whatever the summation order.
inline constexpr Eigen::Index kMaxExactK = (Eigen::Index{1} << 24) / (128 * 127);

/// y = s_x[t] * sum_g s_w[n][g] * (q_x[t, g] . q_w[n, g]) in float32 with the integer dot products
/// exact, the groups accumulated with fma in order and the activation scale applied last: the
/// same operations as sasq::gemm's dequantize epilogue, so the result is bit-identical to it.
/// row_scale holds one scale (per tensor) or x.rows() scales (per token).
inline void factored_linear(const Matrix& qx, const std::vector<float>& row_scale, const QuantizedMatrix& w,
                            Matrix& y) {
  const Eigen::Index t_rows = qx.rows(), n = w.values.rows(), k = w.values.cols();
  SASQ_REQUIRE(qx.cols() == k && k <= kMaxExactK, "factored linear: x has ", qx.cols(), " columns, W is ", n,
               "x", k, " (K must match and be <= ", kMaxExactK, ")");
  const Eigen::Index gs = w.group_size == 0 ? k : w.group_size, groups = w.scales_per_row();
  y.resize(t_rows, n);
  Matrix acc;
  for (Eigen::Index g = 0; g < groups; ++g) {
    const Eigen::Index c0 = g * gs, len = std::min(gs, k - c0);
    acc.noalias() = qx.middleCols(c0, len) * w.values.middleCols(c0, len).transpose();
    const Eigen::Map<const Eigen::RowVectorXf, 0, Eigen::InnerStride<>> ws(w.scale.data() + g, n,
                                                                          Eigen::InnerStride<>(groups));
    if (g == 0) {
      y.array() = acc.array().rowwise() * ws.array();
    } else {
      for (Eigen::Index r = 0; r < t_rows; ++r)
        for (Eigen::Index c = 0; c < n; ++c) y(r, c) = std::fma(acc(r, c), ws(c), y(r, c));
    }
  }
  for (Eigen::Index r = 0; r < t_rows; ++r)
    y.row(r) *= row_scale.size() == 1 ? row_scale[0] : row_scale[static_cast<std::size_t>(r)];
}

/// Fake-quant execution: activations at the configured sites are quantized and dequantized in
/// float. Linears multiply by the weights passed to forward() (W^ of a QuantizedModel), or, when
/// `weights` is given and both operands are quantized, use factored_linear on the integer values
/// (bit-identical to IntegerExec).
class FakeQuantExec {
 public:
  /// `params` (static mode only) and `weights` must outlive the executor.
  FakeQuantExec(ActQuantConfig cfg, const SiteParams* params, const QuantizedModel* weights = nullptr)
      : cfg_(cfg), params_(params), weights_(weights) {
    SASQ_REQUIRE(!cfg.enabled() || cfg.bits == 8 || cfg.bits == 4, "activation bits ", cfg.bits, " not 4 or 8");
    SASQ_REQUIRE(cfg.mode != ActMode::kStatic || !cfg.enabled() || params != nullptr,
                 "static activation quantization needs calibrated site parameters");
    SASQ_REQUIRE(cfg.clip_ratio > 0.0f && cfg.clip_ratio <= 1.0f, "clip ratio ", cfg.clip_ratio, " is outside (0, 1]");
  }
  void on_site(int layer, Site s, Matrix& x) {
    if (!cfg_.quantizes(s)) return;
    const bool keep = static_cast<int>(s) < kNumLinearSites && weights_ && !weights_->matrices.empty();
    Saved scratch;
    Saved& sv = keep ? saved_[static_cast<std::size_t>(s)] : scratch;
    if (keep) sv.q.resize(x.rows(), x.cols());
    with_act_grid(cfg_.bits, [&](auto grid) {
      using G = decltype(grid);
      const auto apply_row = [&](Eigen::Index t, QuantParam p) {
        for (Eigen::Index c = 0; c < x.cols(); ++c) {
          const int q = quantize_value<G>(x(t, c), p);
          if (keep) sv.q(t, c) = static_cast<float>(q);
          x(t, c) = dequantize_value(q, p);
        }
      };
      if (cfg_.mode == ActMode::kDynamicPerToken) {
        sv.scale.resize(static_cast<std::size_t>(x.rows()));
        for (Eigen::Index t = 0; t < x.rows(); ++t) {
          const QuantParam p = param_from_absmax<G>(cfg_.clip_ratio * x.row(t).cwiseAbs().maxCoeff());
          sv.scale[static_cast<std::size_t>(t)] = p.scale;
          apply_row(t, p);
        }
      } else {
        const QuantParam p = params_->at(static_cast<std::size_t>(layer))[static_cast<std::size_t>(s)];
        sv.scale.assign(1, p.scale);
        for (Eigen::Index t = 0; t < x.rows(); ++t) apply_row(t, p);
      }
    });
  }
  void linear(int layer, Proj p, const Matrix& x, const Matrix& w, Matrix& y) {
    const Site s = site_of(p);
    if (cfg_.quantizes(s) && weights_ && !weights_->matrices.empty()) {
      const QuantizedMatrix& m = weights_->matrices.at(static_cast<std::size_t>(layer))[static_cast<std::size_t>(p)];
      if (m.values.cols() <= kMaxExactK) {
        factored_linear(saved_[static_cast<std::size_t>(s)].q, saved_[static_cast<std::size_t>(s)].scale, m, y);
        return;
      }
    }
    llama::linear(x, w, y);
  }
  const ActQuantConfig& config() const { return cfg_; }

 private:
  struct Saved {
    Matrix q;                  // integer values of the last quantized input of the site
    std::vector<float> scale;  // its scale (1) or per-token scales (rows)
  };
  ActQuantConfig cfg_;
  const SiteParams* params_;
  const QuantizedModel* weights_;
  std::array<Saved, kNumLinearSites> saved_;
};

/// Observer families for static calibration (sasq/quant/observers.hpp).
enum class ObserverKind { kMinMax, kMeanAbsMax, kEmaMinMax, kPercentile, kMse };

inline ObserverKind parse_observer(const std::string& s) {
  if (s == "minmax") return ObserverKind::kMinMax;
  if (s == "meanabsmax") return ObserverKind::kMeanAbsMax;
  if (s == "ema") return ObserverKind::kEmaMinMax;
  if (s == "percentile") return ObserverKind::kPercentile;
  if (s == "mse") return ObserverKind::kMse;
  fail(ErrorCode::kInvalidArgument, "unknown observer '", s, "' (minmax, meanabsmax, ema, percentile, mse)");
}

/// One observer of any kind; a batch is one sequence's activation at a site.
class AnyObserver {
 public:
  explicit AnyObserver(ObserverKind k) {
    switch (k) {
      case ObserverKind::kMinMax: v_ = MinMaxObserver(); break;
      case ObserverKind::kMeanAbsMax: v_ = MeanAbsMaxObserver(); break;
      case ObserverKind::kEmaMinMax: v_ = EmaMinMaxObserver(); break;
      case ObserverKind::kPercentile: v_ = PercentileObserver(); break;
      case ObserverKind::kMse: v_ = MseObserver(); break;
    }
  }
  void observe(const Matrix& x) {
    const MatrixView<const float> view(x.data(), x.rows(), x.cols());
    std::visit([&](auto& o) { o.observe(view); }, v_);
  }
  template <class G>
  QuantParam param() const {
    return std::visit([](const auto& o) { return o.template param<G>(); }, v_);
  }

 private:
  std::variant<MinMaxObserver, MeanAbsMaxObserver, EmaMinMaxObserver, PercentileObserver, MseObserver> v_;
};

/// Calibration execution: float activations (no quantization), every site observed.
class CalibrationExec {
 public:
  CalibrationExec(const Config& c, ObserverKind kind)
      : obs_(static_cast<std::size_t>(c.n_layers) * kNumSites, AnyObserver(kind)) {}
  void on_site(int layer, Site s, Matrix& x) {
    obs_[static_cast<std::size_t>(layer) * kNumSites + static_cast<std::size_t>(s)].observe(x);
  }
  void linear(int /*layer*/, Proj /*p*/, const Matrix& x, const Matrix& w, Matrix& y) { llama::linear(x, w, y); }

  /// Static per-tensor parameters of every (layer, site) on the `bits` activation grid.
  SiteParams params(int bits) const {
    SiteParams out(obs_.size() / kNumSites);
    with_act_grid(bits, [&](auto grid) {
      using G = decltype(grid);
      for (std::size_t i = 0; i < obs_.size(); ++i) out[i / kNumSites][i % kNumSites] = obs_[i].template param<G>();
    });
    return out;
  }

 private:
  std::vector<AnyObserver> obs_;
};

/// Runs the (weight-quantized) model in float over the calibration sequences in order, one
/// observer batch per sequence and site (inputs = all tokens but the last, as evaluated), and returns
/// the observers; params(bits) gives the static site parameters for any activation bit width.
/// `down`: the online down_proj rotation of a rotated model (applied before observing), or null.
inline CalibrationExec observe_calibration(const Weights& w, const RopeTable& rope,
                                           const std::vector<std::vector<int>>& sequences, ObserverKind kind,
                                           const Rotation* down = nullptr) {
  SASQ_REQUIRE(!sequences.empty(), "no calibration sequences");
  auto exec = with_online_rotation(CalibrationExec(w.config, kind), down);
  for (const auto& s : sequences) {
    SASQ_REQUIRE(s.size() >= 2, "calibration sequence of ", s.size(), " tokens (need >= 2)");
    forward(w, rope, Span<const int>(s).subspan(0, s.size() - 1), 0, nullptr, exec);
  }
  return std::move(exec.inner);
}

/// observe_calibration(...).params(bits).
inline SiteParams calibrate(const Weights& w, const RopeTable& rope,
                            const std::vector<std::vector<int>>& sequences, ObserverKind kind, int bits,
                            const Rotation* down = nullptr) {
  return observe_calibration(w, rope, sequences, kind, down).params(bits);
}

}  // namespace sasq::llama
