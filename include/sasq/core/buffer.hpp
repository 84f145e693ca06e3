// AlignedBuffer<T>: an owning, 64-byte aligned, zero-initialised array for kernel operands.
#pragma once

#include <cstddef>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <new>
#include <type_traits>
#include <utility>

#include "sasq/core/matrix_view.hpp"
#include "sasq/core/span.hpp"

namespace sasq {

/// Owns `size` trivially copyable elements aligned to kAlignment bytes (a cache line and a
/// zmm register). Moves, never copies implicitly; clone() makes an explicit copy.
template <class T>
class AlignedBuffer {
  static_assert(std::is_trivially_copyable_v<T>, "AlignedBuffer holds trivially copyable types only");

 public:
  static constexpr std::size_t kAlignment = 64;

  AlignedBuffer() = default;
  explicit AlignedBuffer(std::size_t size) : size_(size) {
    if (size == 0) return;
    if (size > (std::numeric_limits<std::size_t>::max() - kAlignment) / sizeof(T)) throw std::bad_alloc();
    std::size_t bytes = (size * sizeof(T) + kAlignment - 1) / kAlignment * kAlignment;
    data_ = static_cast<T*>(std::aligned_alloc(kAlignment, bytes));
    if (!data_) throw std::bad_alloc();
    std::memset(static_cast<void*>(data_), 0, bytes);
  }
  AlignedBuffer(AlignedBuffer&& o) noexcept
      : data_(std::exchange(o.data_, nullptr)), size_(std::exchange(o.size_, 0)) {}
  AlignedBuffer& operator=(AlignedBuffer&& o) noexcept {
    if (this != &o) {
      std::free(data_);
      data_ = std::exchange(o.data_, nullptr);
      size_ = std::exchange(o.size_, 0);
    }
    return *this;
  }
  AlignedBuffer(const AlignedBuffer&) = delete;
  AlignedBuffer& operator=(const AlignedBuffer&) = delete;
  ~AlignedBuffer() { std::free(data_); }

  AlignedBuffer clone() const {
    AlignedBuffer copy(size_);
    if (size_) std::memcpy(static_cast<void*>(copy.data_), data_, size_ * sizeof(T));
    return copy;
  }

  T* data() { return data_; }
  const T* data() const { return data_; }
  std::size_t size() const { return size_; }
  bool empty() const { return size_ == 0; }
  T& operator[](std::size_t i) { return data_[i]; }
  const T& operator[](std::size_t i) const { return data_[i]; }
  T* begin() { return data_; }
  T* end() { return data_ + size_; }
  const T* begin() const { return data_; }
  const T* end() const { return data_ + size_; }

  Span<T> span() { return {data_, size_}; }
  Span<const T> span() const { return {data_, size_}; }
  /// Views the buffer as a contiguous rows x cols matrix (rows * cols must not exceed size()).
  MatrixView<T> matrix(std::ptrdiff_t rows, std::ptrdiff_t cols) {
    SASQ_ASSERT(static_cast<std::size_t>(rows * cols) <= size_);
    return {data_, rows, cols};
  }
  MatrixView<const T> matrix(std::ptrdiff_t rows, std::ptrdiff_t cols) const {
    SASQ_ASSERT(static_cast<std::size_t>(rows * cols) <= size_);
    return {data_, rows, cols};
  }

 private:
  T* data_ = nullptr;
  std::size_t size_ = 0;
};

}  // namespace sasq
