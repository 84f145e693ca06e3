// Index maps of the tensor-core GEMM tiles (sasq/cuda/gemm.cuh), host- and device-callable so a host
// test can replay a tile through an emulation of ldmatrix and mma.sync m16n8k32 (PTX ISA layouts):
//   A frag (16x32, row):  a0 = A[g][4t..4t+3], a1 = A[g+8][4t..], a2 = A[g][16+4t..], a3 = A[g+8][16+4t..]
//   B frag (32x8, col):   b0 = B[4t..4t+3][g], b1 = B[16+4t..][g]
//   C frag (16x8):        c_e = C[g + 8(e/2)][2t + e%2]          (g = lane / 4, t = lane % 4)
#pragma once

#include <cstddef>

#include "sasq/core/config.hpp"
#include "sasq/cuda/common.cuh"

namespace sasq::cuda::tile {

/// Byte offset of 16-byte chunk `ch` of row `row` in a tile of 64-byte rows, XOR-swizzled so that the
/// 8 rows read by one ldmatrix phase hit 8 distinct 16-byte bank groups.
SASQ_HOST_DEVICE constexpr int swizzle64(int row, int ch) { return row * 64 + ((ch ^ ((row >> 1) & 3)) << 4); }

/// ldmatrix.x4 for an m16 x k32 A fragment: lane supplies row (lane % 16) of chunk 2ks + lane / 16,
/// so matrices 0..3 are (rows 0-7, k 0-15), (rows 8-15, k 0-15), (rows 0-7, k 16-31), (rows 8-15, k 16-31).
SASQ_HOST_DEVICE constexpr int a_ldsm_row(int lane) { return lane & 15; }
SASQ_HOST_DEVICE constexpr int a_ldsm_chunk(int ks, int lane) { return ks * 2 + (lane >> 4); }

/// ldmatrix.x4 for two n8 x k32 B fragments (int8 W): matrices (n 0-7, k 0-15), (n 0-7, k 16-31),
/// (n 8-15, k 0-15), (n 8-15, k 16-31) -> b0, b1 of n-tile 2p and b0, b1 of n-tile 2p + 1.
SASQ_HOST_DEVICE constexpr int b_ldsm_row(int lane) { return (lane & 7) + ((lane >> 4) << 3); }
SASQ_HOST_DEVICE constexpr int b_ldsm_chunk(int ks, int lane) { return ks * 2 + ((lane >> 3) & 1); }

/// Packed int4 B tile (32-byte rows): b0 of n-tile row (lane / 4) is the 16-bit word at this byte
/// offset within the row, b1 the word 8 bytes further.
SASQ_HOST_DEVICE constexpr int b4_row(int lane) { return lane >> 2; }
SASQ_HOST_DEVICE constexpr int b4_byte(int ks, int lane) { return ks * 16 + (lane & 3) * 2; }

/// Row (within the m16 tile) and column (within the n8 tile) of accumulator e of `lane`.
SASQ_HOST_DEVICE constexpr int acc_row(int lane, int e) { return (lane >> 2) + 8 * (e >> 1); }
SASQ_HOST_DEVICE constexpr int acc_col(int lane, int e) { return (lane & 3) * 2 + (e & 1); }

/// Output column of B-tile row i (block column origin n0): n0 + i, or for a gate/up pair
/// n0 + (i / warp_n) · warp_n/2 + i % (warp_n/2), with `up` set for the second half of each warp's rows.
SASQ_HOST_DEVICE constexpr std::ptrdiff_t b_column(std::ptrdiff_t n0, int i, bool gate_up, int warp_n, bool& up) {
  if (!gate_up) {
    up = false;
    return n0 + i;
  }
  const int half = warp_n / 2, within = i % warp_n;
  up = within >= half;
  return n0 + (i / warp_n) * half + within % half;
}

}  // namespace sasq::cuda::tile
