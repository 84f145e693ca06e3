// The SASQ_HOST_DEVICE functors compiled by nvcc (host side), exported as plain functions so that a
// g++-compiled test can compare them with its own compilation of the same headers; plus a host replay
// of the tensor-core GEMM tile.
#pragma once

#include <cstdint>

#include "sasq/quant/affine.hpp"
#include "sasq/quant/ste.hpp"

namespace sasq::cuda_test::nvcc_host {

int quantize_s8(float x, QuantParam p);
int quantize_u4(float x, QuantParam p);
float fake_quantize_s8(float x, QuantParam p);
QuantParam param_from_range_u8(float lo, float hi);
QuantParam param_from_range_s4(float lo, float hi);
ste::Grad lsq_backward_s8(float x, float s);
float lsq_forward_s4(float x, float s);
float dequantize_group_row(std::int32_t acc, float ws, float y, float as, float bias);
float silu(float y);
std::int8_t requantize(float y, float inv_scale);
std::uint32_t unpack_int4x4(std::uint16_t u);

/// Replays gemm_tc_kernel (TileLarge or TileSmall, int8 or int4 weights, optional gate/up pair) on
/// the host with ldmatrix / mma.sync emulated from the PTX ISA and returns the number of outputs
/// whose int32 accumulator differs from the direct dot product or is written other than once
/// (-1 if the gate/up split of the accumulators is broken). Implemented in tile_emulation.cu.
long replay_tile_gemm(bool large, int bits, bool gate_up, int m, int rows, int k, unsigned seed);

}  // namespace sasq::cuda_test::nvcc_host
