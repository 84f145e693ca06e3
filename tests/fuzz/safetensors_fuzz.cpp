// libFuzzer target: the safetensors header parser and the float32 conversion must accept or reject
// any bytes with a sasq::Error, never crash, read outside the input or allocate beyond its size
// (a parsed tensor's byte count is bounded by the input, so its float32 copy is at most 4x that).
// Seeds: tests/fuzz/safetensors_corpus (F32, BF16/F16 with metadata, an empty tensor and a scalar).
#include <cstddef>
#include <cstdint>
#include <vector>

#include "llama/safetensors.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  try {
    const auto v = sasq::llama::SafetensorsView::parse(data, size, "fuzz.safetensors");
    for (const auto& t : v.tensors()) {
      // A successful parse guarantees the tensor lies inside the input.
      if (t.begin > t.end || t.end > size) __builtin_trap();
      std::vector<float> out(t.numel());
      try {
        v.to_float(t, out.data());
      } catch (const sasq::Error&) {
      }
    }
  } catch (const sasq::Error&) {
  }
  return 0;
}
