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

#if defined(__linux__)
#include <sys/mman.h>
#endif

namespace sasq {

/// Owns `size` trivially copyable elements aligned to kAlignment bytes (a cache line and a
/// zmm register). Moves, never copies implicitly; clone() makes an explicit copy. Buffers of
/// kHugePageBytes or more are aligned to it and, on Linux, advised as transparent huge pages (packed
/// weights streamed from DRAM then cost one TLB miss per 2 MiB instead of per 4 KiB).
template <class T>
class AlignedBuffer {
  static_assert(std::is_trivially_copyable_v<T>, "AlignedBuffer holds trivially copyable types only");

 public:
  static constexpr std::size_t kAlignment = 64;
  static constexpr std::size_t kHugePageBytes = std::size_t{1} << 21;

  AlignedBuffer() = default;
  explicit AlignedBuffer(std::size_t size) : size_(size) {
    if (size == 0) return;
    if (size > (std::numeric_limits<std::size_t>::max() - kAlignment) / sizeof(T)) throw std::bad_alloc();
    const std::size_t align = size * sizeof(T) >= kHugePageBytes ? kHugePageBytes : kAlignment;
    const std::size_t bytes = (size * sizeof(T) + align - 1) / align * align;
    data_ = static_cast<T*>(std::aligned_alloc(align, bytes));
    if (!data_) throw std::bad_alloc();
#if defined(__linux__) && defined(MADV_HUGEPAGE)
    if (align == kHugePageBytes) madvise(data_, bytes, MADV_HUGEPAGE);  // advice only: failure is harmless
#endif
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
