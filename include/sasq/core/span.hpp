// Span<T>: a non-owning 1-D view (pointer + size), usable on host and device.
#pragma once

#include <cstddef>
#include <type_traits>
#include <vector>

#include "sasq/core/config.hpp"

namespace sasq {

/// Non-owning contiguous view of `size` elements of T. Does not own or free memory.
template <class T>
class Span {
 public:
  using element_type = T;
  using value_type = std::remove_cv_t<T>;

  constexpr Span() = default;
  SASQ_HOST_DEVICE constexpr Span(T* data, std::size_t size) : data_(data), size_(size) {}
  /// Views a std::vector (const or not) without copying.
  template <class U, class A, class = std::enable_if_t<std::is_convertible_v<U (*)[], T (*)[]>>>
  Span(std::vector<U, A>& v) : data_(v.data()), size_(v.size()) {}  // NOLINT(implicit)
  template <class U, class A,
            class = std::enable_if_t<std::is_const_v<T> && std::is_convertible_v<const U (*)[], T (*)[]>>>
  Span(const std::vector<U, A>& v) : data_(v.data()), size_(v.size()) {}  // NOLINT(implicit)
  template <std::size_t N>
  SASQ_HOST_DEVICE constexpr Span(T (&a)[N]) : data_(a), size_(N) {}  // NOLINT(implicit)
  /// Span<T> converts to Span<const T>.
  template <class U, class = std::enable_if_t<std::is_convertible_v<U (*)[], T (*)[]>>>
  SASQ_HOST_DEVICE constexpr Span(Span<U> o) : data_(o.data()), size_(o.size()) {}  // NOLINT

  SASQ_HOST_DEVICE constexpr T* data() const { return data_; }
  SASQ_HOST_DEVICE constexpr std::size_t size() const { return size_; }
  SASQ_HOST_DEVICE constexpr bool empty() const { return size_ == 0; }
  SASQ_HOST_DEVICE constexpr T& operator[](std::size_t i) const { return data_[i]; }
  SASQ_HOST_DEVICE constexpr T* begin() const { return data_; }
  SASQ_HOST_DEVICE constexpr T* end() const { return data_ + size_; }
  /// Elements [offset, offset + count).
  SASQ_HOST_DEVICE constexpr Span subspan(std::size_t offset, std::size_t count) const {
    return Span(data_ + offset, count);
  }

 private:
  T* data_ = nullptr;
  std::size_t size_ = 0;
};

template <class U, class A>
Span(std::vector<U, A>&) -> Span<U>;
template <class U, class A>
Span(const std::vector<U, A>&) -> Span<const U>;

}  // namespace sasq
