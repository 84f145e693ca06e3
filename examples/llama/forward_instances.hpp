// The forward passes that several example programs and tests run, instantiated once in
// sasq_llama_model (forward_instances.cpp): a translation unit that includes this header (and
// links that library) does not compile them again. A file that includes only llama/model.hpp still
// instantiates forward() for its own executors.
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

}  // namespace sasq::llama
