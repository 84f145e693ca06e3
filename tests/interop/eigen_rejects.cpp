// Compile-fail cases for sasq/interop/eigen.hpp: each SASQ_REJECT_* must stop at a static_assert
// (ctest checks the message; see CMakeLists.txt).
#include <Eigen/Core>

#include "sasq/interop/eigen.hpp"

int main() {
  Eigen::MatrixXf a = Eigen::MatrixXf::Ones(2, 2), b = a;
#if defined(SASQ_REJECT_EXPRESSION)
  auto v = sasq::as_view(a + b);
#elif defined(SASQ_REJECT_COLUMN_MAJOR)
  auto v = sasq::as_view(a);
#elif defined(SASQ_REJECT_TEMPORARY)
  auto v = sasq::as_view(Eigen::Matrix<float, 2, 2, Eigen::RowMajor>(a));
#else
  auto v = sasq::as_view(a.transpose());
#endif
  return v.rows() == 2 && b.rows() == 2 ? 0 : 1;
}
