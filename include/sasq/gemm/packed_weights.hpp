// Weights W[N][K] (int8, or signed int4 held in int8) packed once for the integer GEMM kernels.
// Layout: panels of kPanelCols = 16 output columns, grouped in blocks of kPanelsPerBlock = 4 panels
// (64 columns, the micro-kernel width); K in octets of 8 (padded with zero weights to Kp, a multiple
// of 8). Block b is one contiguous stream, octet after octet; for octet o, panel v of the block, column
// c and k = 8o + j:
//   int8: 512 bytes per octet; byte (j / 4) * 256 + 64 v + 4c + (j % 4)     = w[c][k]  (VNNI quads)
//   int4: 256 bytes per octet; byte 64 v + 4c + (j % 4), low nibble if j < 4 = w[c][k]  (high: j >= 4)
// Per panel and group g: 16 weight scales and 16 column sums Σ_{k in g} w[c][k] (for the u8 zero point
// and the s8 +128 shift). Extra panels that pad the count to a block hold zeros.
#pragma once

#include <cmath>
#include <cstddef>
#include <cstdint>

#include "sasq/core/buffer.hpp"
#include "sasq/core/matrix_view.hpp"
#include "sasq/core/span.hpp"
#include "sasq/core/status.hpp"

namespace sasq {

/// Output columns per packed panel (one zmm of int32 accumulators).
inline constexpr int kPanelCols = 16;
/// Panels computed together by one micro-kernel call; packing pads the panel count to a multiple.
inline constexpr int kPanelsPerBlock = 4;
/// K is packed in octets (two 4-byte VNNI quads); Kp = K rounded up to a multiple of kKStep.
inline constexpr int kKStep = 8;
/// Largest K whose int32 accumulation cannot overflow: |a - z| <= 255 and |w| <= 128 give
/// |Σ| <= 32640 K <= 2^31 - 1 for K <= 65793 (also bounds the s8 +128-shifted partial sums).
inline constexpr std::int64_t kMaxK = 65793;

/// How weights are quantized: bits (8 or 4, signed), group size along K (0 = one scale per output
/// channel; else 32, 64 or 128), and whether the rows are a gate/up pair for a fused SwiGLU.
struct WeightFormat {
  int bits = 8;
  int group_size = 0;
  /// W holds 2F rows: gate_proj rows [0, F) then up_proj rows [F, 2F); gemm writes F columns.
  bool gate_up_pair = false;
};

/// Packed weights with their scales and column sums; owns 64-byte aligned memory. Build with
/// pack_weights(); immutable afterwards and safe to share between threads.
class PackedWeights {
 public:
  PackedWeights() = default;

  const WeightFormat& format() const { return format_; }
  /// Rows of the original W (N; 2F for a gate/up pair).
  std::ptrdiff_t weight_rows() const { return weight_rows_; }
  /// Columns of the gemm output C (N; F for a gate/up pair).
  std::ptrdiff_t output_cols() const { return format_.gate_up_pair ? weight_rows_ / 2 : weight_rows_; }
  std::ptrdiff_t k() const { return k_; }
  std::ptrdiff_t k_padded() const { return k_padded_; }
  /// Group size along K in elements (k_padded() for per-channel scales).
  std::ptrdiff_t group_size() const { return group_size_; }
  std::ptrdiff_t groups() const { return groups_; }
  std::ptrdiff_t panels() const { return panels_; }
  /// Bytes of one K octet of one block (all kPanelsPerBlock panels).
  std::ptrdiff_t octet_bytes() const { return kPanelsPerBlock * kPanelCols * format_.bits; }
  std::ptrdiff_t block_bytes() const { return k_padded_ / kKStep * octet_bytes(); }

  /// Start of panel block b (panels [4b, 4b + 4)).
  const std::uint8_t* block(std::ptrdiff_t b) const { return data_.data() + b * block_bytes(); }
  /// kPanelCols weight scales of panel p, group g.
  const float* scales(std::ptrdiff_t p, std::ptrdiff_t g) const {
    return scales_.data() + (p * groups_ + g) * kPanelCols;
  }
  /// kPanelCols column sums of panel p, group g.
  const std::int32_t* col_sums(std::ptrdiff_t p, std::ptrdiff_t g) const {
    return col_sums_.data() + (p * groups_ + g) * kPanelCols;
  }
  /// Row of W held by column c of panel p, or -1 for a padding column.
  std::ptrdiff_t weight_row(std::ptrdiff_t p, int c) const {
    if (!format_.gate_up_pair) {
      const std::ptrdiff_t n = p * kPanelCols + c;
      return n < weight_rows_ ? n : -1;
    }
    const std::ptrdiff_t f = (p / 2) * kPanelCols + c, half = weight_rows_ / 2;
    return f < half ? f + (p % 2) * half : -1;
  }
  /// Byte offset of the weight of panel p, column c at k in the packed data (int4: which byte holds it).
  std::ptrdiff_t byte_offset(std::ptrdiff_t p, int c, std::ptrdiff_t k) const {
    const int j = static_cast<int>(k % kKStep), v = static_cast<int>(p % kPanelsPerBlock);
    const std::ptrdiff_t base = (p / kPanelsPerBlock) * block_bytes() + (k / kKStep) * octet_bytes();
    return base + (format_.bits == 8 ? (j / 4) * 256 : 0) + 64 * v + 4 * c + j % 4;
  }
  /// Weight of panel p, column c at k (k < k_padded()), decoded from the packed layout.
  int weight(std::ptrdiff_t p, int c, std::ptrdiff_t k) const {
    const std::uint8_t b = data_[static_cast<std::size_t>(byte_offset(p, c, k))];
    if (format_.bits == 8) return static_cast<std::int8_t>(b);
    const int nib = k % kKStep < 4 ? (b & 0xF) : (b >> 4);
    return nib - ((nib & 0x8) << 1);
  }

 private:
  friend PackedWeights pack_weights(MatrixView<const std::int8_t>, Span<const float>, WeightFormat);
  WeightFormat format_{};
  std::ptrdiff_t weight_rows_ = 0, k_ = 0, k_padded_ = 0, group_size_ = 0, groups_ = 0, panels_ = 0;
  AlignedBuffer<std::uint8_t> data_;
  AlignedBuffer<float> scales_;
  AlignedBuffer<std::int32_t> col_sums_;
};

namespace detail {
/// Throws unless s is a finite, positive scale with a finite reciprocal.
inline void require_scale(float s, const char* what, std::ptrdiff_t index) {
  if (!(std::isfinite(s) && s > 0.0f && std::isfinite(1.0f / s)))
    fail(ErrorCode::kInvalidArgument, what, "[", index, "] = ", s,
         " is not a finite positive scale with a finite reciprocal");
}
/// Validates a WeightFormat and a K against the packing rules.
inline void require_weight_format(const WeightFormat& f, std::ptrdiff_t k) {
  if (f.bits != 8 && f.bits != 4) fail(ErrorCode::kInvalidArgument, "weight bits must be 8 or 4, got ", f.bits);
  if (f.group_size != 0 && f.group_size != 32 && f.group_size != 64 && f.group_size != 128)
    fail(ErrorCode::kInvalidArgument, "weight group size must be 0 (per channel), 32, 64 or 128, got ",
         f.group_size);
  if (k < 1) fail(ErrorCode::kInvalidArgument, "K must be >= 1, got ", k);
  if (k > kMaxK)
    fail(ErrorCode::kOutOfRange, "K = ", k, " exceeds kMaxK = ", kMaxK,
         ", the largest K whose int32 accumulation cannot overflow");
}
/// Scales per weight row implied by a format: 1 (per channel) or ceil(K / group_size).
inline std::ptrdiff_t scales_per_row(const WeightFormat& f, std::ptrdiff_t k) {
  return f.group_size == 0 ? 1 : (k + f.group_size - 1) / f.group_size;
}
}  // namespace detail

/// Packs W[N][K] (row n = output feature n, nn.Linear layout) with its scales: N scales for per-channel
/// (group_size 0), else N x ceil(K / group_size) scales, row-major [n][g]. int4 values must lie in
/// [-8, 7] (one value per int8). Throws on bad shapes, out-of-range values, bad scales, K > kMaxK.
inline PackedWeights pack_weights(MatrixView<const std::int8_t> w, Span<const float> scales,
                                  WeightFormat format) {
  detail::require_weight_format(format, w.cols());
  SASQ_REQUIRE(w.rows() >= 1, "W must have at least one row, got ", w.rows());
  SASQ_REQUIRE(w.ld() >= w.cols() && w.data() != nullptr, "W view is invalid (ld ", w.ld(), " < cols ",
               w.cols(), " or null data)");
  SASQ_REQUIRE(!format.gate_up_pair || w.rows() % 2 == 0, "a gate/up pair needs an even row count, got ",
               w.rows());
  const std::ptrdiff_t n_rows = w.rows(), k = w.cols(), spr = detail::scales_per_row(format, k);
  SASQ_REQUIRE(static_cast<std::ptrdiff_t>(scales.size()) == n_rows * spr, "expected ", n_rows * spr,
               " weight scales (", n_rows, " rows x ", spr, " per row), got ", scales.size());
  for (std::size_t i = 0; i < scales.size(); ++i)
    detail::require_scale(scales[i], "weight scale", static_cast<std::ptrdiff_t>(i));
  const int lo = format.bits == 8 ? -128 : -8, hi = format.bits == 8 ? 127 : 7;

  PackedWeights pw;
  pw.format_ = format;
  pw.weight_rows_ = n_rows;
  pw.k_ = k;
  pw.k_padded_ = (k + kKStep - 1) / kKStep * kKStep;
  pw.group_size_ = format.group_size == 0 ? pw.k_padded_ : format.group_size;
  pw.groups_ = spr;
  const std::ptrdiff_t out_cols = format.gate_up_pair ? n_rows / 2 : n_rows;
  const std::ptrdiff_t col_panels = (out_cols + kPanelCols - 1) / kPanelCols;
  const std::ptrdiff_t per_block = format.gate_up_pair ? kPanelsPerBlock / 2 : kPanelsPerBlock;
  pw.panels_ = (col_panels + per_block - 1) / per_block * kPanelsPerBlock;
  pw.data_ = AlignedBuffer<std::uint8_t>(static_cast<std::size_t>(pw.panels_ / kPanelsPerBlock * pw.block_bytes()));
  pw.scales_ = AlignedBuffer<float>(static_cast<std::size_t>(pw.panels_ * spr * kPanelCols));
  pw.col_sums_ = AlignedBuffer<std::int32_t>(static_cast<std::size_t>(pw.panels_ * spr * kPanelCols));
  for (std::ptrdiff_t p = 0; p < pw.panels_; ++p) {
    for (int c = 0; c < kPanelCols; ++c) {
      const std::ptrdiff_t row = pw.weight_row(p, c);
      if (row < 0) continue;
      for (std::ptrdiff_t g = 0; g < spr; ++g) pw.scales_[(p * spr + g) * kPanelCols + c] = scales[row * spr + g];
      for (std::ptrdiff_t kk = 0; kk < k; ++kk) {
        const int v = w(row, kk);
        if (v < lo || v > hi)
          fail(ErrorCode::kInvalidArgument, "pack_weights: W(", row, ", ", kk, ") = ", v,
               " is outside the int", format.bits, " range [", lo, ", ", hi, "]");
        pw.col_sums_[(p * spr + kk / pw.group_size_) * kPanelCols + c] += v;
        std::uint8_t& byte = pw.data_[static_cast<std::size_t>(pw.byte_offset(p, c, kk))];
        if (format.bits == 8) {
          byte = static_cast<std::uint8_t>(v);
        } else {
          byte = static_cast<std::uint8_t>(byte | (kk % kKStep < 4 ? (v & 0xF) : (v & 0xF) << 4));
        }
      }
    }
  }
  return pw;
}

}  // namespace sasq
