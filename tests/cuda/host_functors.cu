// nvcc host compilation of the shared SASQ_HOST_DEVICE math (see host_functors.hpp).
#include "host_functors.hpp"

#include "sasq/cuda/int4_unpack.cuh"
#include "sasq/gemm/epilogue.hpp"
#include "sasq/quant/params.hpp"

namespace sasq::cuda_test::nvcc_host {

int quantize_s8(float x, QuantParam p) { return quantize_value<GridS8>(x, p); }
int quantize_u4(float x, QuantParam p) { return quantize_value<GridU4>(x, p); }
float fake_quantize_s8(float x, QuantParam p) { return fake_quantize_value<GridS8>(x, p); }
QuantParam param_from_range_u8(float lo, float hi) { return param_from_range_unchecked<GridU8>(lo, hi); }
QuantParam param_from_range_s4(float lo, float hi) { return param_from_range_unchecked<GridS4>(lo, hi); }
ste::Grad lsq_backward_s8(float x, float s) { return ste::Lsq<GridS8>::backward(x, s); }
float lsq_forward_s4(float x, float s) { return ste::Lsq<GridS4>::forward(x, s); }
float dequantize_group_row(std::int32_t acc, float ws, float y, float as, float bias) {
  return epilogue::Dequantize::apply_row(epilogue::Dequantize::apply_group(y, acc, ws), as, bias);
}
float silu(float y) { return epilogue::Silu::apply(y); }
std::int8_t requantize(float y, float inv_scale) { return epilogue::Requantize::apply(y, inv_scale); }
std::uint32_t unpack_int4x4(std::uint16_t u) { return cuda::unpack_int4x4(u); }

}  // namespace sasq::cuda_test::nvcc_host
