// Tensor quantization over views: QuantParams (one QuantParam per tensor / row / column / group),
// compute_params from min/max, and quantize / dequantize / fake_quantize applying
//   q = clamp(rne(x * inv_scale) + z, qmin, qmax),  x^ = scale * (q - z)
// element-wise with the parameter of the element's group (quant/affine.hpp is normative).
#pragma once

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <limits>
#include <string>
#include <utility>
#include <vector>

#include "sasq/core/int4.hpp"
#include "sasq/core/matrix_view.hpp"
#include "sasq/core/span.hpp"
#include "sasq/core/status.hpp"
#include "sasq/quant/affine.hpp"
#include "sasq/quant/params.hpp"
#include "sasq/quant/rounding.hpp"
#include "sasq/quant/scheme.hpp"

namespace sasq {

/// Which elements share a QuantParam. Rows are tokens (activations) or output features
/// (weights W[N][K]); columns are channels / the reduction dimension.
enum class ParamLayout {
  kPerTensor,  ///< one parameter for every element; any shape
  kPerRow,     ///< one per row (PerToken, PerChannel{0}); rows must match
  kPerColumn,  ///< one per column (PerChannel{1}); cols must match, any number of rows
  kPerGroup,   ///< one per group_size consecutive elements of a row; rows and cols must match
};

inline const char* to_string(ParamLayout l) noexcept {
  switch (l) {
    case ParamLayout::kPerTensor: return "per-tensor";
    case ParamLayout::kPerRow: return "per-row";
    case ParamLayout::kPerColumn: return "per-column";
    case ParamLayout::kPerGroup: return "per-group";
  }
  return "unknown";
}

/// Quantization parameters of a tensor on grid GridT: a validated array of QuantParam with its
/// layout. Per-group parameters are stored row-major [rows][groups_per_row]; groups run along
/// each row, group g covering columns [g * group_size, min((g + 1) * group_size, cols)), so the
/// last group of a row is short when group_size does not divide cols.
template <class GridT>
class QuantParams {
 public:
  using grid = GridT;

  /// One parameter for the whole tensor.
  static QuantParams per_tensor(QuantParam p) {
    return QuantParams(ParamLayout::kPerTensor, 0, 0, 0, std::vector<QuantParam>{p});
  }
  /// One parameter per row; rows() = p.size().
  static QuantParams per_row(std::vector<QuantParam> p) {
    const auto n = static_cast<std::ptrdiff_t>(p.size());
    return QuantParams(ParamLayout::kPerRow, n, 0, 0, std::move(p));
  }
  /// One parameter per column; cols() = p.size().
  static QuantParams per_column(std::vector<QuantParam> p) {
    const auto n = static_cast<std::ptrdiff_t>(p.size());
    return QuantParams(ParamLayout::kPerColumn, 0, n, 0, std::move(p));
  }
  /// Groups of group_size along each row of a rows x cols tensor; p holds
  /// rows * ceil(cols / group_size) parameters, row-major.
  static QuantParams per_group(std::ptrdiff_t rows, std::ptrdiff_t cols, int group_size,
                               std::vector<QuantParam> p) {
    return QuantParams(ParamLayout::kPerGroup, rows, cols, group_size, std::move(p));
  }

  ParamLayout layout() const { return layout_; }
  /// Rows the parameters apply to (per-row, per-group); 0 when any number of rows is accepted.
  std::ptrdiff_t rows() const { return rows_; }
  /// Columns the parameters apply to (per-column, per-group); 0 when any number is accepted.
  std::ptrdiff_t cols() const { return cols_; }
  /// Group size (per-group), else 0.
  int group_size() const { return group_size_; }
  /// ceil(cols / group_size) for per-group parameters, else 0.
  std::ptrdiff_t groups_per_row() const {
    return group_size_ > 0 ? (cols_ + group_size_ - 1) / group_size_ : 0;
  }
  /// All parameters in storage order.
  Span<const QuantParam> values() const { return {values_.data(), values_.size()}; }
  std::size_t size() const { return values_.size(); }
  const QuantParam& operator[](std::size_t i) const { return values_[i]; }

  /// The parameter applied to element (r, c).
  const QuantParam& at(std::ptrdiff_t r, std::ptrdiff_t c) const {
    switch (layout_) {
      case ParamLayout::kPerTensor: return values_[0];
      case ParamLayout::kPerRow: return values_[static_cast<std::size_t>(r)];
      case ParamLayout::kPerColumn: return values_[static_cast<std::size_t>(c)];
      case ParamLayout::kPerGroup:
        return values_[static_cast<std::size_t>(r * groups_per_row() + c / group_size_)];
    }
    return values_[0];
  }

  /// Throws sasq::Error naming `where` unless these parameters apply to a rows x cols tensor.
  void check_shape(std::ptrdiff_t rows, std::ptrdiff_t cols, const char* where) const {
    const bool rows_ok = rows_ == 0 || rows == rows_;
    const bool cols_ok = cols_ == 0 || cols == cols_;
    if (!rows_ok || !cols_ok) {
      fail(ErrorCode::kInvalidArgument, where, ": ", to_string(layout_), " parameters for a ",
           rows_ == 0 ? std::string("any") : std::to_string(rows_), " x ",
           cols_ == 0 ? std::string("any") : std::to_string(cols_), " tensor applied to a ", rows,
           " x ", cols, " tensor");
    }
  }

 private:
  QuantParams(ParamLayout layout, std::ptrdiff_t rows, std::ptrdiff_t cols, int group_size,
              std::vector<QuantParam> values)
      : layout_(layout), rows_(rows), cols_(cols), group_size_(group_size), values_(std::move(values)) {
    SASQ_REQUIRE(!values_.empty(), to_string(layout_), " parameters need at least one value");
    if (layout_ == ParamLayout::kPerGroup) {
      SASQ_REQUIRE(group_size_ > 0, "group size ", group_size_, " is not positive");
      SASQ_REQUIRE(rows_ > 0 && cols_ > 0, "per-group shape ", rows_, " x ", cols_, " is empty");
      SASQ_REQUIRE(static_cast<std::ptrdiff_t>(values_.size()) == rows_ * groups_per_row(), "a ",
                   rows_, " x ", cols_, " tensor with group size ", group_size_, " needs ",
                   rows_ * groups_per_row(), " parameters, got ", values_.size());
    }
    for (std::size_t i = 0; i < values_.size(); ++i) {
      if (!is_valid_param<GridT>(values_[i])) {
        validate_param<GridT>(values_[i],
                              detail::concat("QuantParams: parameter ", i, " of ", values_.size()).c_str());
      }
    }
  }

  ParamLayout layout_;
  std::ptrdiff_t rows_;
  std::ptrdiff_t cols_;
  int group_size_;
  std::vector<QuantParam> values_;
};

namespace detail {

/// Throws sasq::Error naming `where` unless v is a valid view: rows, cols >= 0, ld >= cols, and
/// non-null data when it is not empty.
template <class T>
void require_view(MatrixView<T> v, const char* where, const char* name) {
  if (v.rows() < 0 || v.cols() < 0 || v.ld() < v.cols() || (!v.empty() && v.data() == nullptr)) {
    fail(ErrorCode::kInvalidArgument, where, ": ", name, " view is invalid: ", v.rows(), " x ", v.cols(), ", ld ",
         v.ld(), v.data() == nullptr ? ", null data" : "");
  }
}

/// Throws sasq::Error naming `where` and the first non-finite element's (row, col).
inline void require_finite(MatrixView<const float> x, const char* where) {
  for (std::ptrdiff_t r = 0; r < x.rows(); ++r) {
    const float* row = x.row_ptr(r);
    for (std::ptrdiff_t c = 0; c < x.cols(); ++c) {
      if (!std::isfinite(row[c])) {
        fail(ErrorCode::kInvalidArgument, where, ": input element (", r, ", ", c, ") is ",
             std::isnan(row[c]) ? "NaN" : "infinite");
      }
    }
  }
}

/// Throws unless the views have the same shape.
template <class A, class B>
void require_same_shape(const MatrixView<A>& a, const MatrixView<B>& b, const char* where) {
  if (a.rows() != b.rows() || a.cols() != b.cols()) {
    fail(ErrorCode::kInvalidArgument, where, ": input is ", a.rows(), " x ", a.cols(),
         " but output is ", b.rows(), " x ", b.cols());
  }
}

/// Calls fn(r, c, param) for every element of a rows x cols tensor, resolving the layout once
/// per row.
template <class GridT, class Fn>
void for_each_param(const QuantParams<GridT>& p, std::ptrdiff_t rows, std::ptrdiff_t cols, Fn&& fn) {
  const QuantParam* v = p.values().data();
  for (std::ptrdiff_t r = 0; r < rows; ++r) {
    switch (p.layout()) {
      case ParamLayout::kPerTensor:
        for (std::ptrdiff_t c = 0; c < cols; ++c) fn(r, c, v[0]);
        break;
      case ParamLayout::kPerRow:
        for (std::ptrdiff_t c = 0; c < cols; ++c) fn(r, c, v[r]);
        break;
      case ParamLayout::kPerColumn:
        for (std::ptrdiff_t c = 0; c < cols; ++c) fn(r, c, v[c]);
        break;
      case ParamLayout::kPerGroup: {
        const QuantParam* row = v + r * p.groups_per_row();
        const std::ptrdiff_t g = p.group_size();
        for (std::ptrdiff_t c = 0; c < cols; ++c) fn(r, c, row[c / g]);
        break;
      }
    }
  }
}

/// min/max of the elements in [r0, r1) x [c0, c1) (finite input assumed).
inline std::pair<float, float> block_min_max(MatrixView<const float> x, std::ptrdiff_t r0,
                                             std::ptrdiff_t r1, std::ptrdiff_t c0, std::ptrdiff_t c1) {
  float lo = std::numeric_limits<float>::infinity();
  float hi = -std::numeric_limits<float>::infinity();
  for (std::ptrdiff_t r = r0; r < r1; ++r) {
    const float* row = x.row_ptr(r);
    for (std::ptrdiff_t c = c0; c < c1; ++c) {
      lo = row[c] < lo ? row[c] : lo;
      hi = row[c] > hi ? row[c] : hi;
    }
  }
  return {lo, hi};
}

/// Throws unless out and in either do not overlap or are the same view (in-place).
inline void require_no_partial_overlap(MatrixView<const float> in, MatrixView<const float> out,
                                       const char* where) {
  if (in.empty()) return;
  const float* in_end = in.row_ptr(in.rows() - 1) + in.cols();
  const float* out_end = out.row_ptr(out.rows() - 1) + out.cols();
  const std::less_equal<const float*> le;  // a total order even for unrelated arrays
  const bool disjoint = le(in_end, out.data()) || le(out_end, in.data());
  const bool same = in.data() == out.data() && in.ld() == out.ld();
  if (!disjoint && !same) {
    fail(ErrorCode::kInvalidArgument, where,
         ": output partially overlaps the input (in-place needs the same data pointer and ld)");
  }
}

}  // namespace detail

/// Parameters covering the min/max of x (param_from_range) at the scheme's granularity:
/// PerTensor: one; PerToken and PerChannel{0}: one per row; PerChannel{1}: one per column;
/// PerGroup: one per group of group_size columns in each row (last group short when
/// group_size does not divide cols). Throws for empty or non-finite x (naming the element),
/// a PerChannel axis other than 0 or 1, or a group size <= 0.
template <class GridT, class Gran>
QuantParams<GridT> compute_params(MatrixView<const float> x, Scheme<GridT, Gran> scheme) {
  detail::require_view(x, "compute_params", "input");
  SASQ_REQUIRE(!x.empty(), "input is empty (", x.rows(), " x ", x.cols(), ")");
  detail::require_finite(x, "compute_params");
  const std::ptrdiff_t rows = x.rows(), cols = x.cols();
  if constexpr (std::is_same_v<Gran, PerTensor>) {
    const auto mm = detail::block_min_max(x, 0, rows, 0, cols);
    return QuantParams<GridT>::per_tensor(param_from_range<GridT>(mm.first, mm.second));
  } else if constexpr (std::is_same_v<Gran, PerToken> || std::is_same_v<Gran, PerChannel>) {
    int axis = 0;
    if constexpr (std::is_same_v<Gran, PerChannel>) axis = scheme.granularity.axis;
    SASQ_REQUIRE(axis == 0 || axis == 1, "PerChannel axis ", axis, " is not 0 (rows) or 1 (columns)");
    std::vector<QuantParam> p(static_cast<std::size_t>(axis == 0 ? rows : cols));
    if (axis == 0) {
      for (std::ptrdiff_t r = 0; r < rows; ++r) {
        const auto mm = detail::block_min_max(x, r, r + 1, 0, cols);
        p[static_cast<std::size_t>(r)] = param_from_range<GridT>(mm.first, mm.second);
      }
      return QuantParams<GridT>::per_row(std::move(p));
    }
    std::vector<float> lo(static_cast<std::size_t>(cols), std::numeric_limits<float>::infinity());
    std::vector<float> hi(static_cast<std::size_t>(cols), -std::numeric_limits<float>::infinity());
    for (std::ptrdiff_t r = 0; r < rows; ++r) {
      const float* row = x.row_ptr(r);
      for (std::ptrdiff_t c = 0; c < cols; ++c) {
        const auto i = static_cast<std::size_t>(c);
        lo[i] = row[c] < lo[i] ? row[c] : lo[i];
        hi[i] = row[c] > hi[i] ? row[c] : hi[i];
      }
    }
    for (std::size_t c = 0; c < p.size(); ++c) p[c] = param_from_range<GridT>(lo[c], hi[c]);
    return QuantParams<GridT>::per_column(std::move(p));
  } else {
    static_assert(is_per_group<Gran>::value, "granularity must be PerTensor, PerToken, PerChannel or PerGroup");
    const int g = scheme.granularity.group_size;
    SASQ_REQUIRE(g > 0, "group size ", g, " is not positive");
    const std::ptrdiff_t groups = (cols + g - 1) / g;
    std::vector<QuantParam> p(static_cast<std::size_t>(rows * groups));
    for (std::ptrdiff_t r = 0; r < rows; ++r) {
      for (std::ptrdiff_t k = 0; k < groups; ++k) {
        const std::ptrdiff_t c1 = (k + 1) * g < cols ? (k + 1) * g : cols;
        const auto mm = detail::block_min_max(x, r, r + 1, k * g, c1);
        p[static_cast<std::size_t>(r * groups + k)] = param_from_range<GridT>(mm.first, mm.second);
      }
    }
    return QuantParams<GridT>::per_group(rows, cols, g, std::move(p));
  }
}

/// q(r, c) = quantize_value<GridT, Mode>(x(r, c), p.at(r, c)) into GridT's storage type
/// (int8_t symmetric, uint8_t asymmetric; 4-bit grids store one value per byte).
/// Throws for shape mismatches or non-finite x (naming the element).
template <RoundMode Mode = RoundMode::kHalfToEven, class GridT>
void quantize(MatrixView<const float> x, const QuantParams<GridT>& p,
              MatrixView<typename GridT::storage_type> out) {
  detail::require_view(x, "quantize", "input");
  detail::require_view(out, "quantize", "output");
  detail::require_same_shape(x, out, "quantize");
  p.check_shape(x.rows(), x.cols(), "quantize");
  detail::require_finite(x, "quantize");
  using Q = typename GridT::storage_type;
  detail::for_each_param(p, x.rows(), x.cols(), [&](std::ptrdiff_t r, std::ptrdiff_t c, const QuantParam& q) {
    out(r, c) = static_cast<Q>(quantize_value<GridT, Mode>(x(r, c), q));
  });
}

/// out(r, c) = dequantize_value(q(r, c), p.at(r, c)). Throws for shape mismatches or a value
/// outside [qmin, qmax] (naming the element).
template <class GridT>
void dequantize(MatrixView<const typename GridT::storage_type> q, const QuantParams<GridT>& p,
                MatrixView<float> out) {
  detail::require_view(q, "dequantize", "input");
  detail::require_view(out, "dequantize", "output");
  detail::require_same_shape(q, out, "dequantize");
  p.check_shape(q.rows(), q.cols(), "dequantize");
  for (std::ptrdiff_t r = 0; r < q.rows(); ++r) {
    for (std::ptrdiff_t c = 0; c < q.cols(); ++c) {
      const int v = q(r, c);
      if (v < GridT::kQmin || v > GridT::kQmax) {
        fail(ErrorCode::kInvalidArgument, "dequantize: value ", v, " at (", r, ", ", c,
             ") is outside the grid [", GridT::kQmin, ", ", GridT::kQmax, "]");
      }
    }
  }
  detail::for_each_param(p, q.rows(), q.cols(), [&](std::ptrdiff_t r, std::ptrdiff_t c, const QuantParam& qp) {
    out(r, c) = dequantize_value(q(r, c), qp);
  });
}

/// out(r, c) = fake_quantize_value<GridT, Mode>(x(r, c), p.at(r, c)); out may be x itself
/// (same pointer and ld) but must not partially overlap it. Throws for shape mismatches or
/// non-finite x (naming the element).
template <RoundMode Mode = RoundMode::kHalfToEven, class GridT>
void fake_quantize(MatrixView<const float> x, const QuantParams<GridT>& p, MatrixView<float> out) {
  detail::require_view(x, "fake_quantize", "input");
  detail::require_view(out, "fake_quantize", "output");
  detail::require_same_shape(x, out, "fake_quantize");
  p.check_shape(x.rows(), x.cols(), "fake_quantize");
  detail::require_no_partial_overlap(x, out, "fake_quantize");
  detail::require_finite(x, "fake_quantize");
  detail::for_each_param(p, x.rows(), x.cols(), [&](std::ptrdiff_t r, std::ptrdiff_t c, const QuantParam& q) {
    out(r, c) = fake_quantize_value<GridT, Mode>(x(r, c), q);
  });
}

/// Span forms: x is treated as a 1 x n matrix.
template <RoundMode Mode = RoundMode::kHalfToEven, class GridT>
void quantize(Span<const float> x, const QuantParams<GridT>& p, Span<typename GridT::storage_type> out) {
  const auto n = static_cast<std::ptrdiff_t>(x.size());
  const auto m = static_cast<std::ptrdiff_t>(out.size());
  quantize<Mode>(MatrixView<const float>(x.data(), 1, n),  p,
                 MatrixView<typename GridT::storage_type>(out.data(), 1, m));
}
template <class GridT>
void dequantize(Span<const typename GridT::storage_type> q, const QuantParams<GridT>& p, Span<float> out) {
  const auto n = static_cast<std::ptrdiff_t>(q.size());
  const auto m = static_cast<std::ptrdiff_t>(out.size());
  dequantize(MatrixView<const typename GridT::storage_type>(q.data(), 1, n), p,
             MatrixView<float>(out.data(), 1, m));
}
template <RoundMode Mode = RoundMode::kHalfToEven, class GridT>
void fake_quantize(Span<const float> x, const QuantParams<GridT>& p, Span<float> out) {
  const auto n = static_cast<std::ptrdiff_t>(x.size());
  const auto m = static_cast<std::ptrdiff_t>(out.size());
  fake_quantize<Mode>(MatrixView<const float>(x.data(), 1, n), p, MatrixView<float>(out.data(), 1, m));
}

/// Quantizes x onto a 4-bit grid and packs each row with core/int4.hpp's layout (element 2i in
/// the low nibble of byte i, the high nibble of an odd row's last byte 0): out is rows x
/// (at least) packed_int4_bytes(x.cols()) bytes. Throws like quantize().
template <RoundMode Mode = RoundMode::kHalfToEven, class GridT>
void quantize_packed_int4(MatrixView<const float> x, const QuantParams<GridT>& p,
                          MatrixView<std::uint8_t> out) {
  static_assert(GridT::kBits == 4, "quantize_packed_int4 needs a 4-bit grid");
  detail::require_view(x, "quantize_packed_int4", "input");
  detail::require_view(out, "quantize_packed_int4", "output");
  const auto bytes = static_cast<std::ptrdiff_t>(packed_int4_bytes(static_cast<std::size_t>(x.cols())));
  SASQ_REQUIRE(out.rows() == x.rows() && out.cols() >= bytes, "output is ", out.rows(), " x ",
               out.cols(), " bytes, need ", x.rows(), " x ", bytes, " for a ", x.rows(), " x ",
               x.cols(), " input");
  p.check_shape(x.rows(), x.cols(), "quantize_packed_int4");
  detail::require_finite(x, "quantize_packed_int4");
  using Nibble = std::conditional_t<GridT::kSymmetric, Int4, UInt4>;
  for (std::ptrdiff_t r = 0; r < x.rows(); ++r) {
    std::uint8_t* row = out.row_ptr(r);
    for (std::ptrdiff_t b = 0; b < bytes; ++b) row[b] = 0;
  }
  detail::for_each_param(p, x.rows(), x.cols(), [&](std::ptrdiff_t r, std::ptrdiff_t c, const QuantParam& q) {
    const std::uint8_t nib = Nibble(quantize_value<GridT, Mode>(x(r, c), q)).nibble();
    std::uint8_t& byte = out(r, c / 2);
    byte = static_cast<std::uint8_t>(byte | (c % 2 == 0 ? nib : nib << 4));
  });
}

/// Unpacks rows packed by quantize_packed_int4 (out.cols() values per row) and dequantizes them.
/// Throws for shape mismatches or a nibble outside GridT's range.
template <class GridT>
void dequantize_packed_int4(MatrixView<const std::uint8_t> packed, const QuantParams<GridT>& p,
                            MatrixView<float> out) {
  static_assert(GridT::kBits == 4, "dequantize_packed_int4 needs a 4-bit grid");
  detail::require_view(packed, "dequantize_packed_int4", "input");
  detail::require_view(out, "dequantize_packed_int4", "output");
  const auto bytes = static_cast<std::ptrdiff_t>(packed_int4_bytes(static_cast<std::size_t>(out.cols())));
  SASQ_REQUIRE(packed.rows() == out.rows() && packed.cols() >= bytes, "packed input is ",
               packed.rows(), " x ", packed.cols(), " bytes, need ", out.rows(), " x ", bytes,
               " for a ", out.rows(), " x ", out.cols(), " output");
  p.check_shape(out.rows(), out.cols(), "dequantize_packed_int4");
  using Nibble = std::conditional_t<GridT::kSymmetric, Int4, UInt4>;
  detail::for_each_param(p, out.rows(), out.cols(), [&](std::ptrdiff_t r, std::ptrdiff_t c, const QuantParam& q) {
    const std::uint8_t byte = packed(r, c / 2);
    const int v = Nibble::from_nibble(c % 2 == 0 ? byte & 0xF : byte >> 4).value();
    if (v < GridT::kQmin || v > GridT::kQmax) {
      fail(ErrorCode::kInvalidArgument, "dequantize_packed_int4: value ", v, " at (", r, ", ", c,
           ") is outside the grid [", GridT::kQmin, ", ", GridT::kQmax, "]");
    }
    out(r, c) = dequantize_value(v, q);
  });
}

}  // namespace sasq
