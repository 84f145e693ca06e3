// Quantization schemes as types: integer grid (bits, symmetric/asymmetric) x granularity.
#pragma once

#include <cstdint>
#include <type_traits>

namespace sasq {

/// Symmetric, restricted range: z = 0, q in [-(2^(b-1) - 1), 2^(b-1) - 1] ([-127, 127], [-7, 7]).
/// The grid is symmetric around zero, so -x quantizes to -q (TFLite/gemmlowp weight convention).
struct Symmetric {};
/// Symmetric, full range: z = 0, q in [-2^(b-1), 2^(b-1) - 1] ([-128, 127], [-8, 7]) as in
/// QuaRot's sym_quant. The scale is still absmax / (2^(b-1) - 1); the extra code -2^(b-1) only
/// catches values below -absmax after rounding (e.g. under a learned, clipping scale).
struct SymmetricFull {};
/// Asymmetric: q in [0, 2^b - 1] with an integer zero point z in the same range, so that
/// real 0 is exactly representable (x = 0 -> q = z).
struct Asymmetric {};

/// Integer grid of a scheme. kQmax is also the divisor of the symmetric scale formula.
template <int Bits, class Mode = Symmetric>
struct Grid {
  static_assert(Bits == 4 || Bits == 8, "sasq grids are 4 or 8 bits");
  static_assert(std::is_same_v<Mode, Symmetric> || std::is_same_v<Mode, SymmetricFull> ||
                    std::is_same_v<Mode, Asymmetric>,
                "Mode must be Symmetric, SymmetricFull or Asymmetric");
  using mode = Mode;
  static constexpr int kBits = Bits;
  static constexpr bool kSymmetric = !std::is_same_v<Mode, Asymmetric>;
  static constexpr int kQmin = std::is_same_v<Mode, Asymmetric> ? 0
                               : std::is_same_v<Mode, SymmetricFull> ? -(1 << (Bits - 1))
                                                                     : -((1 << (Bits - 1)) - 1);
  static constexpr int kQmax = kSymmetric ? (1 << (Bits - 1)) - 1 : (1 << Bits) - 1;
  /// Storage of one quantized value before any packing: int8_t for symmetric, uint8_t otherwise.
  using storage_type = std::conditional_t<kSymmetric, std::int8_t, std::uint8_t>;
};

using GridS8 = Grid<8, Symmetric>;
using GridS4 = Grid<4, Symmetric>;
using GridS8Full = Grid<8, SymmetricFull>;
using GridS4Full = Grid<4, SymmetricFull>;
using GridU8 = Grid<8, Asymmetric>;
using GridU4 = Grid<4, Asymmetric>;

/// One scale (and zero point) for the whole tensor.
struct PerTensor {};
/// One scale per row of a row-major [tokens][channels] activation (dynamic per-token).
struct PerToken {};
/// One scale per index along `axis` (0 = per row, e.g. per output channel of W[N][K];
/// 1 = per column, e.g. per input channel of an activation X[T][C]).
struct PerChannel {
  int axis = 0;
};
/// One scale per `group_size` consecutive elements along each row (the reduction dimension of
/// W[N][K] or X[T][K]). GroupSize > 0 fixes the size at compile time; 0 means runtime.
template <int GroupSize = 0>
struct PerGroup {
  static_assert(GroupSize >= 0, "group size must be positive (or 0 for a runtime size)");
  int group_size = GroupSize;
};

/// A complete quantization scheme: grid plus granularity.
template <class GridT, class Granularity = PerTensor>
struct Scheme {
  using grid = GridT;
  using granularity_type = Granularity;
  Granularity granularity{};
};

template <class T>
struct is_per_group : std::false_type {};
template <int G>
struct is_per_group<PerGroup<G>> : std::true_type {};

}  // namespace sasq
