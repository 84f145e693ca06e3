#include <doctest/doctest.h>

#include <vector>

#include "sasq/quant/observers.hpp"

using namespace sasq;

TEST_CASE("MinMaxObserver streams") {
  MinMaxObserver o;
  std::vector<float> a = {1.0f, -2.0f}, b = {3.0f};
  o.observe(Span<const float>(a));
  o.observe(Span<const float>(b));
  CHECK(o.range().min == -2.0f);
  CHECK(o.range().max == 3.0f);
  PerChannelPercentileObserver pc(PercentileObserver(0.99, 64));
  pc.observe(MatrixView<const float>(a.data(), 1, 2));
  CHECK(pc.params<GridS8>().size() == 2);
  PerChannelMseObserver pm;
  pm.observe(MatrixView<const float>(a.data(), 1, 2));
  CHECK(pm.params<GridU8>().size() == 2);
}
