// True-integer execution of a quantized LLaMA: each site's input quantized to int8 storage (static
// per-tensor or dynamic per-token scale), sasq::gemm with int32 accumulation and the fused
// dequantize epilogue:  y[t][n] = s_x[t] * sum_g s_w[n][g] * sum_{k in g} q_x[t][k] q_w[n][k].
// Agrees with FakeQuantExec on the same QuantizedModel up to float summation order.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <vector>

#include "llama/model.hpp"
#include "llama/quantized.hpp"
#include "sasq/core/matrix_view.hpp"
#include "sasq/core/status.hpp"
#include "sasq/gemm/gemm.hpp"
#include "sasq/gemm/packed_weights.hpp"
#include "sasq/gemm/quantize_activations.hpp"

namespace sasq::llama {

/// Every linear layer's weights packed once for sasq::gemm (layer-major, Proj order).
struct PackedModel {
  std::vector<std::array<PackedWeights, kNumProj>> proj;
};

/// Packs the integer weights of a quantized model (weight bits 4 or 8, group size 0, 32, 64 or 128).
inline PackedModel pack_model(const QuantizedModel& qm) {
  SASQ_REQUIRE(qm.config.bits == 8 || qm.config.bits == 4, "the integer path needs 4- or 8-bit weights, got ",
               qm.config.bits, " bits");
  PackedModel pm;
  pm.proj.resize(qm.matrices.size());
  for (std::size_t l = 0; l < qm.matrices.size(); ++l)
    for (std::size_t p = 0; p < static_cast<std::size_t>(kNumProj); ++p) {
      const QuantizedMatrix& m = qm.matrices[l][p];
      const MatrixView<const std::int8_t> w(m.q.data(), m.dequantized.rows(), m.dequantized.cols());
      pm.proj[l][p] = pack_weights(w, Span<const float>(m.scale), WeightFormat{m.bits, m.group_size, false});
    }
  return pm;
}

/// Integer execution policy for forward(): call forward() with the QuantizedModel's `model`
/// (its norms, embedding and classifier are used; its float linear weights are not).
/// KV-cache sites, when enabled, are fake-quantized in float (the attention stays float).
class IntegerExec {
 public:
  /// `packed` and `params` (static mode) must outlive the executor.
  IntegerExec(const PackedModel& packed, ActQuantConfig cfg, const SiteParams* params)
      : packed_(&packed), cfg_(cfg), params_(params), fake_kv_(cfg, params) {
    SASQ_REQUIRE(cfg.enabled() && (cfg.bits == 8 || cfg.bits == 4),
                 "the integer path needs 4- or 8-bit activation quantization");
    SASQ_REQUIRE(cfg.mode != ActMode::kStatic || params != nullptr,
                 "static activation quantization needs calibrated site parameters");
  }

  void on_site(int layer, Site s, Matrix& x) {
    if (static_cast<int>(s) >= kNumLinearSites) {
      fake_kv_.on_site(layer, s, x);
      return;
    }
    Quantized& a = act_[static_cast<std::size_t>(s)];
    a.q.resize(static_cast<std::size_t>(x.size()));
    a.rows = x.rows();
    a.cols = x.cols();
    const MatrixView<const float> xv(x.data(), x.rows(), x.cols());
    const MatrixView<std::int8_t> qv(a.q.data(), x.rows(), x.cols());
    if (cfg_.mode == ActMode::kStatic) {
      const QuantParam p = params_->at(static_cast<std::size_t>(layer))[static_cast<std::size_t>(s)];
      a.scale = p.scale;
      if (cfg_.bits == 8) {
        quantize_static_s8(xv, p.scale, qv);
      } else {
        for (Eigen::Index i = 0; i < x.size(); ++i)
          a.q[static_cast<std::size_t>(i)] = static_cast<std::int8_t>(quantize_value<GridS4Full>(x.data()[i], p));
      }
    } else {
      a.row_scales.resize(static_cast<std::size_t>(x.rows()));
      if (cfg_.bits == 8) {
        quantize_dynamic_per_token_s8(xv, qv, Span<float>(a.row_scales), Isa::kAuto, cfg_.clip_ratio);
      } else {
        for (Eigen::Index t = 0; t < x.rows(); ++t) {
          const QuantParam p = param_from_absmax<GridS4Full>(cfg_.clip_ratio * x.row(t).cwiseAbs().maxCoeff());
          a.row_scales[static_cast<std::size_t>(t)] = p.scale;
          for (Eigen::Index c = 0; c < x.cols(); ++c)
            a.q[static_cast<std::size_t>(t * x.cols() + c)] =
                static_cast<std::int8_t>(quantize_value<GridS4Full>(x(t, c), p));
        }
      }
    }
  }

  void linear(int layer, Proj p, const Matrix& x, const Matrix& /*w*/, Matrix& y) {
    const Quantized& a = act_[static_cast<std::size_t>(site_of(p))];
    SASQ_REQUIRE(a.rows == x.rows() && a.cols == x.cols(), "site ", site_name(site_of(p)),
                 " was not quantized before ", proj_name(p));
    const PackedWeights& w = packed_->proj.at(static_cast<std::size_t>(layer))[static_cast<std::size_t>(p)];
    y.resize(x.rows(), w.output_cols());
    const ActivationQuant act = cfg_.mode == ActMode::kStatic
                                    ? ActivationQuant::per_tensor(a.scale)
                                    : ActivationQuant::per_token(Span<const float>(a.row_scales));
    GemmOptions opt;
    opt.threads = 1;  // callers parallelise over sequences
    gemm(MatrixView<const std::int8_t>(a.q.data(), a.rows, a.cols), act, w, Epilogue{},
         MatrixView<float>(y.data(), y.rows(), y.cols()), opt);
  }

 private:
  struct Quantized {
    std::vector<std::int8_t> q;
    Eigen::Index rows = 0, cols = 0;
    float scale = 1.0f;
    std::vector<float> row_scales;
  };
  const PackedModel* packed_;
  ActQuantConfig cfg_;
  const SiteParams* params_;
  FakeQuantExec fake_kv_;
  std::array<Quantized, kNumLinearSites> act_;
};

}  // namespace sasq::llama
