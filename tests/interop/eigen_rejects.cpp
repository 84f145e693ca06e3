// Compile-fail cases for sasq/interop/eigen.hpp, compiled once by eigen_rejects.cmake: every
// function below must stop at its static_assert, and the script checks each message appears.
#include <Eigen/Core>

#include "sasq/interop/eigen.hpp"

using RowMat2 = Eigen::Matrix<float, 2, 2, Eigen::RowMajor>;

// "needs a storage-backed Eigen object": an expression has no memory to view.
auto reject_expression(const Eigen::MatrixXf& a, const Eigen::MatrixXf& b) { return sasq::as_view(a + b); }

// "needs row-major storage": MatrixView is row-major; column-major needs as_transposed_view.
auto reject_column_major(Eigen::MatrixXf& a) { return sasq::as_view(a); }

// "would dangle": a temporary owning matrix dies at the end of the full expression.
auto reject_temporary(const RowMat2& a) { return sasq::as_view(RowMat2(a)); }

// "takes an Eigen vector": as_span of a matrix.
auto reject_span_of_matrix(RowMat2& a) { return sasq::as_span(a); }
