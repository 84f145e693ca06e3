#include <doctest/doctest.h>

#include <Eigen/Core>

#include <utility>
#include <vector>

#include "sasq/interop/eigen.hpp"
#include "sasq/quant/quantize.hpp"

using namespace sasq;
using RowMat = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
using ColMat = Eigen::MatrixXf;

TEST_CASE("row-major Matrix maps to a view of the same memory") {
  RowMat m(3, 5);
  for (int r = 0; r < 3; ++r)
    for (int c = 0; c < 5; ++c) m(r, c) = static_cast<float>(10 * r + c);
  MatrixView<float> v = as_view(m);
  CHECK(v.data() == m.data());
  CHECK(v.rows() == 3);
  CHECK(v.cols() == 5);
  CHECK(v.ld() == 5);
  CHECK(v(2, 4) == 24.0f);
  v(1, 1) = -1.0f;  // writes through
  CHECK(m(1, 1) == -1.0f);
  const RowMat& cm = m;
  MatrixView<const float> cv = as_view(cm);
  CHECK(cv.data() == m.data());
  Eigen::Matrix<float, 2, 3, Eigen::RowMajor> fixed;
  fixed << 1, 2, 3, 4, 5, 6;
  CHECK(as_view(fixed)(1, 0) == 4.0f);
}

TEST_CASE("column-major Matrix maps to the view of its transpose") {
  ColMat m(4, 3);
  for (int r = 0; r < 4; ++r)
    for (int c = 0; c < 3; ++c) m(r, c) = static_cast<float>(10 * r + c);
  MatrixView<float> t = as_transposed_view(m);
  CHECK(t.data() == m.data());
  CHECK(t.rows() == 3);
  CHECK(t.cols() == 4);
  CHECK(t.ld() == 4);
  for (int r = 0; r < 4; ++r)
    for (int c = 0; c < 3; ++c) CHECK(t(c, r) == m(r, c));
  // m.transpose() is a row-major storage-backed object: as_view gives the same view.
  MatrixView<float> t2 = as_view(m.transpose());
  CHECK(t2.data() == t.data());
  CHECK(t2.rows() == 3);
  CHECK(t2.ld() == 4);
}

TEST_CASE("Block and Map with strides become views without copies") {
  RowMat m = RowMat::Zero(6, 8);
  for (int r = 0; r < 6; ++r)
    for (int c = 0; c < 8; ++c) m(r, c) = static_cast<float>(r * 8 + c);
  MatrixView<float> b = as_view(m.block(1, 2, 3, 4));
  CHECK(b.data() == &m(1, 2));
  CHECK(b.rows() == 3);
  CHECK(b.cols() == 4);
  CHECK(b.ld() == 8);
  CHECK(b(2, 3) == m(3, 5));

  std::vector<float> buf(5 * 10);
  for (std::size_t i = 0; i < buf.size(); ++i) buf[i] = static_cast<float>(i);
  Eigen::Map<RowMat, 0, Eigen::OuterStride<>> map(buf.data(), 5, 7, Eigen::OuterStride<>(10));
  MatrixView<float> mv = as_view(map);
  CHECK(mv.data() == buf.data());
  CHECK(mv.ld() == 10);
  CHECK(mv(4, 6) == 46.0f);
  Eigen::Map<const RowMat> cmap(buf.data(), 2, 25);
  MatrixView<const float> cmv = as_view(cmap);
  CHECK(cmv(1, 0) == 25.0f);

  // A runtime inner stride other than 1 cannot be a MatrixView.
  Eigen::Map<RowMat, 0, Eigen::Stride<Eigen::Dynamic, Eigen::Dynamic>> strided(
      buf.data(), 2, 3, Eigen::Stride<Eigen::Dynamic, Eigen::Dynamic>(10, 2));
  CHECK_THROWS_WITH_AS(as_view(strided), doctest::Contains("inner stride 2"), Error);
  Eigen::Map<RowMat, 0, Eigen::Stride<Eigen::Dynamic, Eigen::Dynamic>> unit(
      buf.data(), 2, 3, Eigen::Stride<Eigen::Dynamic, Eigen::Dynamic>(10, 1));
  CHECK(as_view(unit)(1, 2) == 12.0f);
}

TEST_CASE("vectors become spans") {
  Eigen::VectorXf v = Eigen::VectorXf::LinSpaced(5, 0.0f, 4.0f);
  Span<float> s = as_span(v);
  CHECK(s.data() == v.data());
  CHECK(s.size() == 5);
  CHECK(s[3] == 3.0f);
  Eigen::RowVectorXf rv = v.transpose();
  CHECK(as_span(rv).size() == 5);
  CHECK(as_view(rv).rows() == 1);
  RowMat m = RowMat::Ones(3, 4);
  CHECK(as_span(m.row(1)).data() == &m(1, 0));
}

TEST_CASE("expressions are not storage-backed") {
  ColMat a(2, 2), b(2, 2);
  CHECK(is_eigen_storage_v<ColMat>);
  CHECK(is_eigen_storage_v<RowMat&>);
  CHECK(is_eigen_storage_v<decltype(a.block(0, 0, 1, 1))>);
  CHECK(is_eigen_storage_v<Eigen::Map<ColMat>>);
  CHECK(is_eigen_storage_v<Eigen::Ref<ColMat>>);
  CHECK_FALSE(is_eigen_storage_v<decltype(a + b)>);
  CHECK_FALSE(is_eigen_storage_v<decltype(a * b)>);
  CHECK_FALSE(is_eigen_storage_v<decltype(a.array().abs())>);
  CHECK_FALSE(is_eigen_storage_v<decltype(2.0f * a)>);
  CHECK_FALSE(is_eigen_storage_v<std::vector<float>>);
  CHECK_FALSE(is_eigen_storage_v<float>);
}

TEST_CASE("quantizing through views matches quantizing the raw buffer") {
  RowMat m(4, 6);
  for (int r = 0; r < 4; ++r)
    for (int c = 0; c < 6; ++c) m(r, c) = 0.37f * static_cast<float>(r - 2) + 0.11f * static_cast<float>(c);
  const auto p = compute_params(as_view(std::as_const(m)), Scheme<GridS8, PerToken>{});
  RowMat out(4, 6);
  fake_quantize(as_view(std::as_const(m)), p, as_view(out));
  for (int r = 0; r < 4; ++r)
    for (int c = 0; c < 6; ++c) CHECK(out(r, c) == fake_quantize_value<GridS8>(m(r, c), p.at(r, c)));
}
