// Scalar GEMM tile kernel on the packed layout (packed_weights.hpp): the portable path, and the proof
// that packing, column sums and epilogue ordering agree with gemm_reference on any CPU.
//   acc = Σ_{k in g} a_u8[r][k] · w[c][k] - shift[r] · colsum_g[c]   (uint32 wrap-around = exact int32)
#pragma once

#include <cstdint>

#include "sasq/cpu/gemm_tile.hpp"
#include "sasq/cpu/isa.hpp"
#include "sasq/gemm/epilogue.hpp"
#include "sasq/gemm/packed_weights.hpp"

namespace sasq::cpu {

template <class Isa>
struct GemmKernel;

template <>
struct GemmKernel<isa::scalar> {
  static constexpr int kTileRows = 4;
  /// Whether tile() honours TileArgs::c (writes f32 C directly); else finish_tile copies y.
  static constexpr bool kStoresC = false;
  /// Requantize stage of finish_tile (the scalar form here).
  static void requantize_row(const float* y, int n, float inv_scale, std::int8_t* dst) {
    requantize_row_scalar(y, n, inv_scale, dst);
  }
  /// Row copy of the packed-A buffer (the scalar form here).
  static void pack_rows(const std::uint8_t* src, std::ptrdiff_t lds, std::ptrdiff_t rows, std::ptrdiff_t k,
                        std::ptrdiff_t kp, std::uint8_t flip, std::uint8_t* dst, std::ptrdiff_t lda) {
    pack_rows_scalar(src, lds, rows, k, kp, flip, dst, lda);
  }

  /// Dequantized tile of `rows` rows into y[rows][kTileCols].
  static void tile(const PackedWeights& w, const TileArgs& t, int rows, float* y) {
    const std::ptrdiff_t groups = w.groups(), gs = w.group_size(), kp = w.k_padded();
    for (int v = 0; v < kPanelsPerBlock; ++v) {
      const std::ptrdiff_t p = t.p0 + v;
      for (int r = 0; r < rows; ++r) {
        const std::uint8_t* ar = t.a + r * t.lda;
        for (int c = 0; c < kPanelCols; ++c) {
          float acc_f = 0.0f;
          for (std::ptrdiff_t g = 0; g < groups; ++g) {
            std::uint32_t acc = 0;
            const std::ptrdiff_t k_end = (g + 1) * gs < kp ? (g + 1) * gs : kp;
            for (std::ptrdiff_t k = g * gs; k < k_end; ++k)
              acc += static_cast<std::uint32_t>(ar[k]) * static_cast<std::uint32_t>(w.weight(p, c, k));
            acc -= static_cast<std::uint32_t>(t.shift[r]) * static_cast<std::uint32_t>(w.col_sums(p, g)[c]);
            acc_f = epilogue::Dequantize::apply_group(acc_f, static_cast<std::int32_t>(acc), w.scales(p, g)[c]);
          }
          y[r * kTileCols + v * kPanelCols + c] =
              epilogue::Dequantize::apply_row(acc_f, t.row_scale[r], t.bias[v * kPanelCols + c]);
        }
      }
    }
  }
};

}  // namespace sasq::cpu
