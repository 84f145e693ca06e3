// MatrixView<T>: a non-owning row-major 2-D view with a leading dimension (row stride).
#pragma once

#include <cstddef>
#include <type_traits>

#include "sasq/core/config.hpp"
#include "sasq/core/span.hpp"

namespace sasq {

/// Row-major view: element (r, c) is data[r * ld + c], with ld >= cols (in elements).
/// Rows are tokens and columns are channels for activations; rows are output features
/// for weights in the nn.Linear layout W[N][K]. Does not own memory.
template <class T>
class MatrixView {
 public:
  using element_type = T;
  using value_type = std::remove_cv_t<T>;

  constexpr MatrixView() = default;
  SASQ_HOST_DEVICE constexpr MatrixView(T* data, std::ptrdiff_t rows, std::ptrdiff_t cols,
                                        std::ptrdiff_t ld)
      : data_(data), rows_(rows), cols_(cols), ld_(ld) {}
  /// Contiguous matrix (ld == cols).
  SASQ_HOST_DEVICE constexpr MatrixView(T* data, std::ptrdiff_t rows, std::ptrdiff_t cols)
      : MatrixView(data, rows, cols, cols) {}
  /// MatrixView<T> converts to MatrixView<const T>.
  template <class U, class = std::enable_if_t<std::is_convertible_v<U (*)[], T (*)[]>>>
  SASQ_HOST_DEVICE constexpr MatrixView(MatrixView<U> o)  // NOLINT(implicit)
      : data_(o.data()), rows_(o.rows()), cols_(o.cols()), ld_(o.ld()) {}

  SASQ_HOST_DEVICE constexpr T* data() const { return data_; }
  SASQ_HOST_DEVICE constexpr std::ptrdiff_t rows() const { return rows_; }
  SASQ_HOST_DEVICE constexpr std::ptrdiff_t cols() const { return cols_; }
  SASQ_HOST_DEVICE constexpr std::ptrdiff_t ld() const { return ld_; }
  SASQ_HOST_DEVICE constexpr std::ptrdiff_t size() const { return rows_ * cols_; }
  SASQ_HOST_DEVICE constexpr bool empty() const { return rows_ == 0 || cols_ == 0; }
  SASQ_HOST_DEVICE constexpr bool contiguous() const { return ld_ == cols_ || rows_ <= 1; }

  SASQ_HOST_DEVICE constexpr T& operator()(std::ptrdiff_t r, std::ptrdiff_t c) const {
    return data_[r * ld_ + c];
  }
  SASQ_HOST_DEVICE constexpr T* row_ptr(std::ptrdiff_t r) const { return data_ + r * ld_; }
  /// Row r as a Span of cols() elements.
  SASQ_HOST_DEVICE constexpr Span<T> row(std::ptrdiff_t r) const {
    return Span<T>(data_ + r * ld_, static_cast<std::size_t>(cols_));
  }
  /// Sub-block [r0, r0 + nr) x [c0, c0 + nc), sharing ld.
  SASQ_HOST_DEVICE constexpr MatrixView block(std::ptrdiff_t r0, std::ptrdiff_t c0,
                                              std::ptrdiff_t nr, std::ptrdiff_t nc) const {
    return MatrixView(data_ + r0 * ld_ + c0, nr, nc, ld_);
  }

 private:
  T* data_ = nullptr;
  std::ptrdiff_t rows_ = 0;
  std::ptrdiff_t cols_ = 0;
  std::ptrdiff_t ld_ = 0;
};

}  // namespace sasq
