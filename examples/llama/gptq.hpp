// GPTQ weights for the LLaMA example (sasq/quant/gptq.hpp), true-sequential in QuaRot's order
// (its gptq_fwrd, GPTQ's --true-sequential): layer by layer, and within a layer the groups
// [k, v, q], [o], [up, gate], [down] in turn, each group's input Hessian accumulated on the
// calibration sequences run through the model whose earlier layers and earlier groups are already
// GPTQ-quantized (float activations, as GPTQ and QuaRot do). A rotated model passes its online
// down_proj rotation, so the down_proj Hessian is that of the rotated input (QuaRot: rotate, then GPTQ).
#pragma once

#include <vector>

#include "llama/ops.hpp"
#include "llama/quantized.hpp"
#include "llama/weights.hpp"
#include "sasq/quant/gptq.hpp"
#include "sasq/transform/rotation.hpp"

// Defined in gptq.cpp (library sasq_llama_model).
namespace sasq::llama {

/// The GPTQ settings of the example: QuaRot's defaults (percdamp 0.01, MSE clip search of the
/// scales = its w_clip, natural column order, block 128); kGptqActOrder: act-order with static groups.
GptqConfig example_gptq_config(const WeightQuantConfig& cfg);

/// Hessians of layer `layer`'s four sites over `seqs` (inputs: all tokens but the last) on `threads`
/// threads; per-thread sums merged in thread order, so the result does not depend on scheduling.
/// Only layers 0..layer run (later layers cannot change these inputs).
std::vector<HessianAccumulator> layer_hessians(const Weights& w, const RopeTable& rope,
                                               const std::vector<std::vector<int>>& seqs, int layer,
                                               const Rotation* down, int threads);

/// GPTQ-quantizes every decoder linear (cfg.method must be a GPTQ method; the classifier, if asked, gets the
/// MSE clip rule). `calib`: calibration sequences (>= 2 tokens each); `down`: the online down_proj
/// rotation of a rotated model, or null.
QuantizedModel quantize_weights_gptq(const Weights& w, const WeightQuantConfig& cfg, const RopeTable& rope,
                                     const std::vector<std::vector<int>>& calib, const Rotation* down,
                                     int threads);

/// quantize_weights for RTN and MSE; quantize_weights_gptq for GPTQ.
QuantizedModel quantize_model_weights(const Weights& w, const WeightQuantConfig& cfg, const RopeTable& rope,
                                      const std::vector<std::vector<int>>& calib, const Rotation* down,
                                      int threads);

}  // namespace sasq::llama
