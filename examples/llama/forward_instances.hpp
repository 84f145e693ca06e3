// The forward passes with the executors of examples/llama (plain, fake-quant, integer, and each of
// those but the plain one behind the online down_proj rotation), instantiated once in
// sasq_llama_model (forward_instances.cpp), where the model ops and Eigen kernels they share are
// compiled once too: a translation unit that includes this header (and links that library) does
// not compile them again. A file that includes only llama/model.hpp still instantiates forward()
// for its own executors.
#pragma once

#include "llama/integer.hpp"
#include "llama/model.hpp"
#include "llama/online_rotation.hpp"
#include "llama/quantized.hpp"
#include "sasq/core/span.hpp"

namespace sasq::llama {

extern template Matrix forward(const Weights&, const RopeTable&, Span<const int>, int, KVCache*, Fp32Exec&);
extern template Matrix forward(const Weights&, const RopeTable&, Span<const int>, int, KVCache*, FakeQuantExec&);
extern template Matrix forward(const Weights&, const RopeTable&, Span<const int>, int, KVCache*, IntegerExec&);
extern template Matrix forward(const Weights&, const RopeTable&, Span<const int>, int, KVCache*,
                               OnlineRotationExec<CalibrationExec>&);
extern template Matrix forward(const Weights&, const RopeTable&, Span<const int>, int, KVCache*,
                               OnlineRotationExec<FakeQuantExec>&);
extern template Matrix forward(const Weights&, const RopeTable&, Span<const int>, int, KVCache*,
                               OnlineRotationExec<IntegerExec>&);

}  // namespace sasq::llama
