// GPTQ on the example model (llama/gptq.hpp), compiled once into sasq_llama_model.
#include "llama/gptq.hpp"

#include <algorithm>
#include <cstddef>
#include <vector>

#include "llama/model.hpp"
#include "llama/online_rotation.hpp"
#include "llama/parallel.hpp"
#include "sasq/core/matrix_view.hpp"
#include "sasq/core/status.hpp"

namespace sasq::llama {

GptqConfig example_gptq_config(const WeightQuantConfig& cfg) {
  GptqConfig g;
  g.bits = cfg.bits;
  g.group_size = cfg.group_size;
  g.mse_clip = true;
  g.act_order = g.static_groups = cfg.method == WeightMethod::kGptqActOrder;
  return g;
}

namespace {

/// Execution policy that accumulates the Hessians of one layer's linear input sites (all of them,
/// or only `only`).
class HessianExec {
 public:
  HessianExec(const Config& c, int layer, int only = -1) : layer_(layer), only_(only) {
    const std::ptrdiff_t k[kNumLinearSites] = {c.dim, c.n_heads * c.head_size(), c.dim, c.hidden_dim};
    for (int s = 0; s < kNumLinearSites; ++s) acc_.emplace_back(k[s]);
  }
  void on_site(int layer, Site s, Matrix& x) {
    if (layer == layer_ && static_cast<int>(s) < kNumLinearSites && (only_ < 0 || static_cast<int>(s) == only_))
      acc_[static_cast<std::size_t>(s)].observe(MatrixView<const float>(x.data(), x.rows(), x.cols()));
  }
  /// With `only`, the projections reading that site or a later one feed nothing it observes: they are
  /// skipped (zero output) instead of multiplied.
  void linear(int layer, Proj p, const Matrix& x, const Matrix& w, Matrix& y) {
    if (only_ >= 0 && layer == layer_ && static_cast<int>(site_of(p)) >= only_) {
      y.setZero(x.rows(), w.rows());
      return;
    }
    llama::linear(x, w, y);
  }
  std::vector<HessianAccumulator>& accumulators() { return acc_; }

 private:
  int layer_;
  int only_;
  std::vector<HessianAccumulator> acc_;
};

/// Per-thread Hessian accumulators merged in thread order (the result does not depend on scheduling).
std::vector<HessianAccumulator> merged(std::vector<OnlineRotationExec<HessianExec>>& execs) {
  std::vector<HessianAccumulator> out = std::move(execs[0].inner.accumulators());
  for (std::size_t t = 1; t < execs.size(); ++t)
    for (std::size_t s = 0; s < out.size(); ++s) out[s].merge(execs[t].inner.accumulators()[s]);
  return out;
}

/// QuaRot's (GPTQ --true-sequential) groups of a layer, quantized in this order; each group's
/// Hessian is taken with the groups before it already quantized.
const std::vector<std::vector<Proj>>& sequential_groups() {
  static const std::vector<std::vector<Proj>> groups = {
      {Proj::kK, Proj::kV, Proj::kQ}, {Proj::kO}, {Proj::kUp, Proj::kGate}, {Proj::kDown}};
  return groups;
}

/// The GPTQ-quantized matrix in the example's form (codes, scales, W^ and the codes as floats).
QuantizedMatrix to_quantized_matrix(const GptqResult& r) {
  QuantizedMatrix m;
  m.bits = r.format.bits;
  m.group_size = r.format.group_size;
  m.q = r.codes;
  m.scale = r.scales;
  m.dequantized.resize(r.rows, r.cols);
  m.values.resize(r.rows, r.cols);
  for (Eigen::Index n = 0; n < r.rows; ++n)
    for (Eigen::Index k = 0; k < r.cols; ++k) {
      m.dequantized(n, k) = r.dequantized(n, k);
      m.values(n, k) = static_cast<float>(r.codes[static_cast<std::size_t>(n * r.cols + k)]);
    }
  return m;
}

}  // namespace

std::vector<HessianAccumulator> layer_hessians(const Weights& w, const RopeTable& rope,
                                               const std::vector<std::vector<int>>& seqs, int layer,
                                               const Rotation* down, int threads) {
  SASQ_REQUIRE(layer >= 0 && layer < w.config.n_layers, "layer ", layer, " outside [0, ", w.config.n_layers, ")");
  Weights prefix = w;
  prefix.layers.resize(static_cast<std::size_t>(layer) + 1);
  prefix.config.n_layers = layer + 1;
  std::vector<OnlineRotationExec<HessianExec>> execs;
  for (int t = 0; t < parallel_workers(seqs.size(), threads); ++t)
    execs.push_back(with_online_rotation(HessianExec(w.config, layer), down));
  parallel_for(seqs.size(), threads, [&](std::size_t i, int t) {
    forward(prefix, rope, Span<const int>(seqs[i]).subspan(0, seqs[i].size() - 1), 0, nullptr, execs[static_cast<std::size_t>(t)]);
  });
  return merged(execs);
}

QuantizedModel quantize_weights_gptq(const Weights& w, const WeightQuantConfig& cfg, const RopeTable& rope,
                                     const std::vector<std::vector<int>>& calib, const Rotation* down,
                                     int threads) {
  SASQ_REQUIRE(is_gptq(cfg.method) && (cfg.bits == 8 || cfg.bits == 4),
               "quantize_weights_gptq needs method gptq and 4- or 8-bit weights");
  SASQ_REQUIRE(!calib.empty(), "GPTQ needs calibration sequences");
  for (const auto& s : calib) SASQ_REQUIRE(s.size() >= 2, "calibration sequence of ", s.size(), " tokens (need >= 2)");
  QuantizedModel qm;
  qm.config = cfg;
  qm.model = w;
  qm.model.q8.clear();
  qm.matrices.resize(w.layers.size());
  const GptqConfig g = example_gptq_config(cfg);
  // Residual stream entering the current layer for every calibration sequence (inputs: all tokens
  // but the last), as QuaRot's cached layer inputs: Σ_seq (tokens - 1) × dim floats (stories260K,
  // dim 64: 256 B per token). Starts as the embeddings; advanced through each layer once all its
  // groups are quantized, so every layer runs on the outputs of the already-quantized layers before it.
  std::vector<Matrix> x(calib.size());
  parallel_for(calib.size(), threads, [&](std::size_t i, int) {
    x[i] = embed(w, Span<const int>(calib[i]).subspan(0, calib[i].size() - 1));
  });
  const int workers = parallel_workers(calib.size(), threads);
  for (std::size_t l = 0; l < w.layers.size(); ++l) {
    const int layer = static_cast<int>(l);
    for (const std::vector<Proj>& group : sequential_groups()) {
      // Layer l with the groups before this one already quantized, on the cached inputs.
      const int site = static_cast<int>(site_of(group[0]));
      std::vector<OnlineRotationExec<HessianExec>> execs;
      for (int t = 0; t < workers; ++t) execs.push_back(with_online_rotation(HessianExec(w.config, layer, site), down));
      parallel_for(calib.size(), threads, [&](std::size_t i, int t) {
        Matrix xi = x[i];
        forward_layer(qm.model, layer, rope, xi, 0, nullptr, execs[static_cast<std::size_t>(t)]);
      });
      const Eigen::MatrixXd h = merged(execs)[static_cast<std::size_t>(site)].hessian();
      for (Proj p : group) {
        const Matrix& wp = proj_weight(w.layers[l], p);
        set_matrix(qm, l, p, to_quantized_matrix(gptq_quantize(MatrixView<const float>(wp.data(), wp.rows(), wp.cols()), h, g)));
      }
    }
    parallel_for(calib.size(), threads, [&](std::size_t i, int) {
      auto exec = with_online_rotation(Fp32Exec{}, down);
      forward_layer(qm.model, layer, rope, x[i], 0, nullptr, exec);
    });
  }
  quantize_classifier(qm, w, cfg);
  return qm;
}

QuantizedModel quantize_model_weights(const Weights& w, const WeightQuantConfig& cfg, const RopeTable& rope,
                                      const std::vector<std::vector<int>>& calib, const Rotation* down,
                                      int threads) {
  if (is_gptq(cfg.method) && cfg.bits != 0)
    return quantize_weights_gptq(w, cfg, rope, calib, down, threads);
  return quantize_weights(w, cfg);
}

}  // namespace sasq::llama
