// Host-side launchers of the sasq CUDA kernels for the doctest suites: they copy host vectors to the
// device (Thrust), run one kernel, synchronize and copy the result back. Implemented in kernels.cu.
#pragma once

#include <cstdint>
#include <vector>

#include "sasq/core/status.hpp"
#include "sasq/gemm/epilogue.hpp"
#include "sasq/gemm/packed_weights.hpp"
#include "sasq/quant/affine.hpp"

namespace sasq::cuda_test {

/// Number of CUDA devices (0 without a driver or GPU).
int device_count();

/// Quantized output of a launcher: bytes of the rows (int8 values, or packed nibbles for 4-bit
/// grids), one scale (and zero point) per parameter.
struct Quantized {
  std::vector<std::uint8_t> q;
  std::vector<float> scales;
  std::vector<std::int32_t> zero_points;
};

/// Which grid the quantize launchers use.
enum class TestGrid { kS8, kU8, kS4 };

Status quantize_per_tensor(TestGrid grid, const std::vector<float>& x, int rows, int cols, QuantParam p,
                           Quantized& out);
Status quantize_per_token(TestGrid grid, const std::vector<float>& x, int rows, int cols, Quantized& out,
                          float clip_ratio = 1.0f);
Status quantize_per_group(TestGrid grid, const std::vector<float>& x, int rows, int cols, int group_size,
                          Quantized& out, float clip_ratio = 1.0f);
/// The host-side argument checks of cuda::quantize_per_token (per_group false) or quantize_per_group
/// (group size 1) on GridS8, called with an empty 0 x 0 matrix: no device memory, no launch, so it
/// runs without a GPU.
Status quantize_dynamic_empty(bool per_group, float clip_ratio);
/// Dequantizes `in` (as produced by quantize_per_group with the same arguments).
Status dequantize_per_group(TestGrid grid, const Quantized& in, int rows, int cols, int group_size,
                            std::vector<float>& x);

/// LSQ fake quantization on Grid<8, Symmetric>: y = forward, dx and dscale from backward.
Status fake_quant_s8(const std::vector<float>& x, const std::vector<float>& dy, float scale,
                     float grad_scale, std::vector<float>& y, std::vector<float>& dx, float& dscale);

/// One gemm problem: a [m][k] int8, w [rows][k] weight values (int8, or int4 values in [-8, 7] that
/// the launcher packs), scales as for gemm_reference.
struct GemmCase {
  int m = 0, rows = 0, k = 0;
  WeightFormat format{};
  std::vector<std::int8_t> a, w;
  std::vector<float> w_scales, row_scales, bias;
  float act_scale = 1.0f;
  Activation activation = Activation::kNone;
  float output_scale = 1.0f;
};
Status run_gemm(const GemmCase& g, std::vector<float>& c);
Status run_gemm(const GemmCase& g, std::vector<std::int8_t>& c);
Status run_gemm(const GemmCase& g, std::vector<std::int32_t>& c);

/// fwht_rows on a rows x n matrix with the m x m factor `base` (empty for m == 1).
Status fwht_rows(std::vector<float>& x, int rows, int n, int m, const std::vector<float>& base);

}  // namespace sasq::cuda_test
