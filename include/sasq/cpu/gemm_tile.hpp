// One GEMM tile task shared by every ISA: up to kMaxTileRows rows of A x kPanelsPerBlock packed panels.
// A kernel writes the dequantized tile y[r][v * 16 + c] = fmaf(Σ_g ..., as[r], bias) (epilogue.hpp),
// and finish_tile() applies the activation and stores C (f32, or int8 via Requantize) with masking.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <type_traits>

#include "sasq/gemm/epilogue.hpp"
#include "sasq/gemm/packed_weights.hpp"

namespace sasq::cpu {

/// Largest tile height any kernel uses.
inline constexpr int kMaxTileRows = 6;
/// Floats in one tile row of the dequantized buffer.
inline constexpr int kTileCols = kPanelsPerBlock * kPanelCols;

/// Operands of one tile. `a` is row 0 of the tile in the packed-A buffer: uint8, K padded to
/// k_padded() with zeros, s8 activations stored as a + 128 (XOR 0x80).
struct TileArgs {
  const std::uint8_t* a = nullptr;
  std::ptrdiff_t lda = 0;
  const std::int32_t* shift = nullptr;  ///< per row: 128 for s8 A, the zero point for u8 A
  const float* row_scale = nullptr;     ///< per row activation scale
  std::ptrdiff_t p0 = 0;                ///< first panel of the block
  const float* bias = nullptr;          ///< kTileCols bias values of the block's columns (0 for none)
};

/// Applies the activation and stores rows [0, rows) of the dequantized tile `y` for panel block
/// `block` into C (columns beyond C are dropped). Scalar on purpose: bit-exact with the reference.
template <class TC>
void finish_tile(const float* y, int rows, std::ptrdiff_t block, const PackedWeights& w, const Epilogue& ep,
                 float inv_out_scale, TC* c, std::ptrdiff_t ldc, std::ptrdiff_t out_cols) {
  using Store = typename epilogue::StoreFor<TC>::type;
  const bool pair = w.format().gate_up_pair;
  const int block_cols = pair ? kTileCols / 2 : kTileCols;
  const std::ptrdiff_t col0 = block * block_cols;
  const int ncols = static_cast<int>(out_cols - col0 < block_cols ? out_cols - col0 : block_cols);
  if constexpr (std::is_same_v<TC, float>) {
    if (!pair && ep.activation == Activation::kNone) {  // f32 store only: a row copy
      for (int r = 0; r < rows; ++r) std::memcpy(c + r * ldc + col0, y + r * kTileCols, sizeof(float) * static_cast<std::size_t>(ncols));
      return;
    }
  }
  for (int r = 0; r < rows; ++r) {
    const float* yr = y + r * kTileCols;
    TC* cr = c + r * ldc + col0;
    for (int j = 0; j < ncols; ++j) {
      float v;
      if (pair) {
        const int src = (j / kPanelCols) * 2 * kPanelCols + j % kPanelCols;
        v = epilogue::SwiGlu::apply(yr[src], yr[src + kPanelCols]);
      } else {
        v = yr[j];
        if (ep.activation == Activation::kSilu) v = epilogue::Silu::apply(v);
      }
      Store::apply(v, cr + j, inv_out_scale);
    }
  }
}

}  // namespace sasq::cpu
