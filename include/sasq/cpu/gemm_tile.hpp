// One GEMM tile task shared by every ISA: up to kMaxTileRows rows of A x kPanelsPerBlock packed panels.
// A kernel writes the dequantized tile y[r][v * 16 + c] = fmaf(Σ_g ..., as[r], bias) (epilogue.hpp),
// and finish_tile() applies the activation and stores C (f32, or int8 via Requantize) with masking;
// for f32 C without activation a kernel with kStoresC writes the finished tile into C itself.
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
  /// Null, or per row r and weight group g at [r · groups + g]: Σ (a - 128) over the group's bytes of the
  /// packed row (kernels with group_sums; their grouped decode tiles otherwise sum A per block).
  const std::int32_t* group_sums = nullptr;
  /// Null, or row 0 of the block's columns in an f32 C without activation: kernels with kStoresC write
  /// the finished tile there (c_cols valid columns, rows ldc apart) instead of into y.
  float* c = nullptr;
  std::ptrdiff_t ldc = 0;
  int c_cols = 0;
};

/// Writes n int8 values Requantize::apply(y[j], inv_scale) to dst (a kernel's vector form of the stage).
using RequantizeRowFn = void (*)(const float* y, int n, float inv_scale, std::int8_t* dst);

/// The scalar form of RequantizeRowFn.
inline void requantize_row_scalar(const float* y, int n, float inv_scale, std::int8_t* dst) {
  for (int j = 0; j < n; ++j) dst[j] = epilogue::Requantize::apply(y[j], inv_scale);
}

/// Copies `rows` rows of A (lds bytes apart) into the packed-A layout (lda bytes apart): dst[j] = src[j] ^
/// flip for j < k (flip = 0x80 turns s8 into u8 + 128, 0 keeps u8), zeros for j in [k, kp). A kernel's
/// PackRowsFn may also zero bytes up to the next multiple of 64 (packed rows are that long).
using PackRowsFn = void (*)(const std::uint8_t* src, std::ptrdiff_t lds, std::ptrdiff_t rows, std::ptrdiff_t k,
                            std::ptrdiff_t kp, std::uint8_t flip, std::uint8_t* dst, std::ptrdiff_t lda);

/// The scalar form of PackRowsFn.
inline void pack_rows_scalar(const std::uint8_t* src, std::ptrdiff_t lds, std::ptrdiff_t rows, std::ptrdiff_t k,
                             std::ptrdiff_t kp, std::uint8_t flip, std::uint8_t* dst, std::ptrdiff_t lda) {
  for (std::ptrdiff_t r = 0; r < rows; ++r, src += lds, dst += lda) {
    for (std::ptrdiff_t j = 0; j < k; ++j) dst[j] = static_cast<std::uint8_t>(src[j] ^ flip);
    for (std::ptrdiff_t j = k; j < kp; ++j) dst[j] = 0;
  }
}

/// Applies the activation and stores rows [0, rows) of the dequantized tile `y` for panel block
/// `block` into C (columns beyond C are dropped): SiLU / SwiGLU through their scalar stage functions
/// (expf), then a row copy (f32) or `requantize_row` (int8), so every ISA is bit-exact with the reference.
template <class TC>
void finish_tile(const float* y, int rows, std::ptrdiff_t block, const PackedWeights& w, const Epilogue& ep,
                 float inv_out_scale, TC* c, std::ptrdiff_t ldc, std::ptrdiff_t out_cols,
                 RequantizeRowFn requantize_row = requantize_row_scalar) {
  const bool pair = w.format().gate_up_pair;
  const int block_cols = pair ? kTileCols / 2 : kTileCols;
  const std::ptrdiff_t col0 = block * block_cols;
  const int ncols = static_cast<int>(out_cols - col0 < block_cols ? out_cols - col0 : block_cols);
  alignas(64) float act[kTileCols];
  for (int r = 0; r < rows; ++r) {
    const float* yr = y + r * kTileCols;
    if (pair) {
      for (int j = 0; j < ncols; ++j) {
        const int src = (j / kPanelCols) * 2 * kPanelCols + j % kPanelCols;
        act[j] = epilogue::SwiGlu::apply(yr[src], yr[src + kPanelCols]);
      }
      yr = act;
    } else if (ep.activation == Activation::kSilu) {
      for (int j = 0; j < ncols; ++j) act[j] = epilogue::Silu::apply(yr[j]);
      yr = act;
    }
    if constexpr (std::is_same_v<TC, float>) {
      std::memcpy(c + r * ldc + col0, yr, sizeof(float) * static_cast<std::size_t>(ncols));
    } else {
      requantize_row(yr, ncols, inv_out_scale, c + r * ldc + col0);
    }
  }
}

}  // namespace sasq::cpu
