// sasq: the CPU library in one include (CUDA headers in sasq/cuda, and sasq/interop/eigen.hpp and sasq/quant/gptq.hpp, which need Eigen, are opt-in).
#pragma once

#include "sasq/version.hpp"

#include "sasq/core/buffer.hpp"
#include "sasq/core/config.hpp"
#include "sasq/core/int4.hpp"
#include "sasq/core/matrix_view.hpp"
#include "sasq/core/span.hpp"
#include "sasq/core/status.hpp"

#include "sasq/quant/affine.hpp"
#include "sasq/quant/observers.hpp"
#include "sasq/quant/params.hpp"
#include "sasq/quant/quantize.hpp"
#include "sasq/quant/rounding.hpp"
#include "sasq/quant/scheme.hpp"
#include "sasq/quant/ste.hpp"
#include "sasq/quant/truncation.hpp"

#include "sasq/transform/hadamard.hpp"
#include "sasq/transform/llama_block.hpp"
#include "sasq/transform/orthogonal.hpp"
#include "sasq/transform/rotation.hpp"
#include "sasq/transform/smoothing.hpp"
#include "sasq/transform/smoothrot.hpp"

#include "sasq/metrics/difficulty.hpp"
#include "sasq/metrics/layer_error.hpp"
#include "sasq/metrics/report.hpp"

#include "sasq/gemm/epilogue.hpp"
#include "sasq/gemm/gemm.hpp"
#include "sasq/gemm/packed_weights.hpp"
#include "sasq/gemm/quantize_activations.hpp"
#include "sasq/gemm/reference.hpp"
