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
namespace {

/// GPTQ settings of the example: QuaRot's defaults (percdamp 0.01, MSE clip search of the scales
/// = its w_clip, natural column order, block 128); kGptqActOrder: act-order with static groups.
GptqConfig example_gptq_config(const WeightQuantConfig& cfg) {
  GptqConfig g;
  g.bits = cfg.bits;
  g.group_size = cfg.group_size;
  g.mse_clip = true;
  g.act_order = g.static_groups = cfg.method == WeightMethod::kGptqActOrder;
  return g;
}

/// Execution policy that accumulates the Hessians of one layer's linear input sites.
class HessianExec {
 public:
  HessianExec(const Config& c, int layer) : layer_(layer) {
    const std::ptrdiff_t k[kNumLinearSites] = {c.dim, c.n_heads * c.head_size(), c.dim, c.hidden_dim};
    for (int s = 0; s < kNumLinearSites; ++s) acc_.emplace_back(k[s]);
  }
  void on_site(int layer, Site s, Matrix& x) {
    if (layer == layer_ && static_cast<int>(s) < kNumLinearSites)
      acc_[static_cast<std::size_t>(s)].observe(MatrixView<const float>(x.data(), x.rows(), x.cols()));
  }
  void linear(int /*layer*/, Proj /*p*/, const Matrix& x, const Matrix& w, Matrix& y) { llama::linear(x, w, y); }
  std::vector<HessianAccumulator>& accumulators() { return acc_; }

 private:
  int layer_;
  std::vector<HessianAccumulator> acc_;
};

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
  const std::size_t n_threads = static_cast<std::size_t>(std::max(1, threads));
  std::vector<OnlineRotationExec<HessianExec>> execs;
  for (std::size_t t = 0; t < n_threads; ++t) execs.push_back(with_online_rotation(HessianExec(w.config, layer), down));
  parallel_for(seqs.size(), threads, [&](std::size_t i, int t) {
    forward(prefix, rope, Span<const int>(seqs[i]).subspan(0, seqs[i].size() - 1), 0, nullptr, execs[static_cast<std::size_t>(t)]);
  });
  std::vector<HessianAccumulator> out = std::move(execs[0].inner.accumulators());
  for (std::size_t t = 1; t < n_threads; ++t)
    for (std::size_t s = 0; s < out.size(); ++s) out[s].merge(execs[t].inner.accumulators()[s]);
  return out;
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
  for (std::size_t l = 0; l < w.layers.size(); ++l) {
    const std::vector<HessianAccumulator> acc = layer_hessians(qm.model, rope, calib, static_cast<int>(l), down, threads);
    std::vector<Eigen::MatrixXd> h;
    for (const HessianAccumulator& a : acc) h.push_back(a.hessian());
    for (int p = 0; p < kNumProj; ++p) {
      const Matrix& wp = proj_weight(w.layers[l], static_cast<Proj>(p));
      const GptqResult r = gptq_quantize(MatrixView<const float>(wp.data(), wp.rows(), wp.cols()),
                                         h[static_cast<std::size_t>(site_of(static_cast<Proj>(p)))], g);
      set_matrix(qm, l, static_cast<Proj>(p), to_quantized_matrix(r));
    }
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
