#include <doctest/doctest.h>

#include <vector>

#include "sasq/quant/quantize.hpp"

using namespace sasq;

TEST_CASE("per-tensor quantize round trip") {
  std::vector<float> x = {-1.0f, 0.25f, 0.5f, 1.0f};
  const auto p = compute_params(MatrixView<const float>(x.data(), 2, 2), Scheme<GridS8>{});
  std::vector<std::int8_t> q(4);
  quantize(MatrixView<const float>(x.data(), 2, 2), p, MatrixView<std::int8_t>(q.data(), 2, 2));
  CHECK(q[0] == -127);
  CHECK(q[3] == 127);
}
