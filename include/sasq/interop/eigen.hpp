// Zero-copy views of storage-backed Eigen objects (Matrix, Map, Block, Ref, Transpose of those):
// row-major -> MatrixView (ld = outerStride), column-major -> the view of its transpose, vectors ->
// Span. Expressions (a + b, products, array ops) are rejected at compile time.
#pragma once

#include <Eigen/Core>

#include <cstddef>
#include <type_traits>
#include <utility>

#include "sasq/core/matrix_view.hpp"
#include "sasq/core/span.hpp"
#include "sasq/core/status.hpp"

namespace sasq {

/// True for Eigen objects backed by addressable storage (Eigen's DirectAccessBit: Matrix, Array,
/// Map, Ref, Block and Transpose of those); false for expressions and for non-Eigen types.
template <class E, class = void>
struct is_eigen_storage : std::false_type {};
template <class E>
struct is_eigen_storage<E, std::enable_if_t<std::is_base_of_v<Eigen::EigenBase<E>, E>>>
    : std::bool_constant<(static_cast<unsigned>(E::Flags) & Eigen::DirectAccessBit) != 0> {};
template <class E>
inline constexpr bool is_eigen_storage_v = is_eigen_storage<std::decay_t<E>>::value;

namespace detail {

/// Compile-time checks shared by as_view / as_transposed_view / as_span (E as forwarded: an
/// rvalue owning object would leave a dangling view). True when the object can be viewed.
template <class E>
constexpr bool check_eigen_viewable() {
  using D = std::decay_t<E>;
  static_assert(is_eigen_storage_v<D>,
                "sasq::as_view needs a storage-backed Eigen object (Matrix, Map, Block, Ref); "
                "evaluate the expression into an Eigen::Matrix first (e.g. Eigen::MatrixXf m = expr;)");
  if constexpr (is_eigen_storage_v<D>) {
    static_assert(D::InnerStrideAtCompileTime == 1 || D::InnerStrideAtCompileTime == Eigen::Dynamic,
                  "sasq views need unit inner stride (consecutive elements of a row adjacent)");
    static_assert(std::is_lvalue_reference_v<E> || !std::is_base_of_v<Eigen::PlainObjectBase<D>, D>,
                  "a sasq view of a temporary Eigen::Matrix would dangle; name the matrix first");
  }
  return is_eigen_storage_v<D>;
}

template <class E>
void check_inner_stride(const E& e, const char* where) {
  if (e.innerStride() != 1) {
    fail(ErrorCode::kInvalidArgument, where, ": Eigen object has inner stride ", e.innerStride(),
         ", sasq views need 1");
  }
}

/// Element type of e.data() (const for read-only objects); `char` for objects without data(),
/// which check_eigen_viewable then rejects with a readable static_assert.
template <class E, class = void>
struct eigen_element {
  using type = char;
};
template <class E>
struct eigen_element<E, std::void_t<decltype(std::declval<E&>().data())>> {
  using type = std::remove_pointer_t<decltype(std::declval<E&>().data())>;
};
template <class E>
using eigen_element_t = typename eigen_element<E>::type;

}  // namespace detail

/// View of a row-major storage-backed Eigen object, sharing its memory: rows(), cols(),
/// ld = outerStride(). Column-major objects do not compile here (use as_transposed_view, or
/// as_view(m.transpose()), which is row-major). Temporaries of owning types (Matrix, Array) are
/// rejected at compile time (the view would dangle). Throws for a runtime inner stride != 1.
template <class E>
auto as_view(E&& e) -> MatrixView<detail::eigen_element_t<std::remove_reference_t<E>>> {
  using D = std::decay_t<E>;
  if constexpr (detail::check_eigen_viewable<E>()) {
    static_assert(static_cast<bool>(D::IsRowMajor),
                  "sasq::as_view needs row-major storage (MatrixView is row-major); use "
                  "sasq::as_transposed_view for a column-major object (a view of its transpose)");
    detail::check_inner_stride(e, "as_view");
    return {e.data(), static_cast<std::ptrdiff_t>(e.rows()), static_cast<std::ptrdiff_t>(e.cols()),
            static_cast<std::ptrdiff_t>(e.outerStride())};
  } else {
    return {};
  }
}

/// View of the transpose of a column-major storage-backed Eigen object: a cols() x rows()
/// MatrixView with ld = outerStride(), sharing memory (column j of e is row j of the view).
template <class E>
auto as_transposed_view(E&& e) -> MatrixView<detail::eigen_element_t<std::remove_reference_t<E>>> {
  using D = std::decay_t<E>;
  if constexpr (detail::check_eigen_viewable<E>()) {
    static_assert(!static_cast<bool>(D::IsRowMajor),
                  "sasq::as_transposed_view takes column-major storage; use sasq::as_view for row-major");
    detail::check_inner_stride(e, "as_transposed_view");
    return {e.data(), static_cast<std::ptrdiff_t>(e.cols()), static_cast<std::ptrdiff_t>(e.rows()),
            static_cast<std::ptrdiff_t>(e.outerStride())};
  } else {
    return {};
  }
}

/// Span over a storage-backed Eigen vector (row or column) with unit inner stride.
template <class E>
auto as_span(E&& e) -> Span<detail::eigen_element_t<std::remove_reference_t<E>>> {
  using D = std::decay_t<E>;
  if constexpr (detail::check_eigen_viewable<E>()) {
    static_assert(D::IsVectorAtCompileTime, "sasq::as_span takes an Eigen vector; use as_view for matrices");
    detail::check_inner_stride(e, "as_span");
    return {e.data(), static_cast<std::size_t>(e.size())};
  } else {
    return {};
  }
}

}  // namespace sasq
