#include <doctest/doctest.h>

#include "sasq/quant/ste.hpp"

using namespace sasq;

TEST_CASE("Lsq forward equals fake_quantize_value bit for bit") {
  for (float x : {-3.0f, -0.37f, 0.0f, 0.5f, 1.26f, 100.0f}) {
    for (float s : {0.01f, 0.1f, 0.3f, 1.0f}) {
      CHECK(ste::Lsq<GridS8>::forward(x, s) == fake_quantize_value<GridS8>(x, QuantParam::make(s)));
    }
  }
}
