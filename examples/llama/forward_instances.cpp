// The explicit instantiations declared in llama/forward_instances.hpp.
#include "llama/forward_instances.hpp"

namespace sasq::llama {

template Matrix forward(const Weights&, const RopeTable&, Span<const int>, int, KVCache*, Fp32Exec&);
template Matrix forward(const Weights&, const RopeTable&, Span<const int>, int, KVCache*, FakeQuantExec&);
template Matrix forward(const Weights&, const RopeTable&, Span<const int>, int, KVCache*, IntegerExec&);
template Matrix forward(const Weights&, const RopeTable&, Span<const int>, int, KVCache*,
                        OnlineRotationExec<CalibrationExec>&);
template Matrix forward(const Weights&, const RopeTable&, Span<const int>, int, KVCache*,
                        OnlineRotationExec<FakeQuantExec>&);
template Matrix forward(const Weights&, const RopeTable&, Span<const int>, int, KVCache*,
                        OnlineRotationExec<IntegerExec>&);

}  // namespace sasq::llama
