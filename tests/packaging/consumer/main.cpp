// Uses sasq as a downstream project would: quantize a few values and check the version.
#include <cstdio>
#include <cstring>

#include <sasq/sasq.hpp>

int main() {
  if (std::strcmp(sasq::kVersion, SASQ_EXPECTED_VERSION) != 0) {
    std::printf("version mismatch: %s vs %s\n", sasq::kVersion, SASQ_EXPECTED_VERSION);
    return 1;
  }
  const auto p = sasq::QuantParam::make(0.5f);
  const int q = sasq::quantize_value<sasq::GridS8>(1.25f, p);  // 2.5 rounds half to even -> 2
  if (q != 2 || sasq::dequantize_value(q, p) != 1.0f) {
    std::printf("unexpected quantization: q = %d\n", q);
    return 1;
  }
  std::printf("sasq %s consumer ok\n", sasq::kVersion);
  return 0;
}
