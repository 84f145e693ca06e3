#include <doctest/doctest.h>

#include <cmath>
#include <limits>
#include <vector>

#include "sasq/core/matrix_view.hpp"
#include "sasq/core/status.hpp"
#include "sasq/metrics/layer_error.hpp"

using sasq::MatrixView;

TEST_CASE("fake_quantize_rows: per-row absmax / qmax, round half to even, zero rows stay zero") {
  // Row 0: absmax 7 -> scale 1 at 4 bits: 2.5 -> 2 (ties to even), -3.5 -> -4.
  const std::vector<float> x = {7.0f, 2.5f, -3.5f, 0.2f,  //
                                0.0f, 0.0f, 0.0f, 0.0f};
  const auto q = sasq::fake_quantize_rows(MatrixView<const float>(x.data(), 2, 4), 4);
  CHECK(q == std::vector<float>{7.0f, 2.0f, -4.0f, 0.0f, 0.0f, 0.0f, 0.0f, 0.0f});
  const auto q8 = sasq::fake_quantize_rows(MatrixView<const float>(x.data(), 1, 4), 8);
  CHECK(q8[3] == doctest::Approx(std::nearbyint(0.2 * 127.0 / 7.0) * 7.0 / 127.0));
}

TEST_CASE("layer error: zero for grid-exact inputs, matches a direct computation otherwise") {
  const std::vector<float> x = {7.0f, -2.0f, 1.0f, 3.0f};  // already on the 4-bit grid (scale 1)
  const std::vector<float> w = {-7.0f, 0.0f, 7.0f, 7.0f};  // grid with scale 1
  const MatrixView<const float> xv(x.data(), 1, 4), wv(w.data(), 1, 4);
  const auto e = sasq::layer_quant_error(xv, wv, 4);
  CHECK(e.error == 0.0);
  CHECK(std::isinf(e.sqnr_db));

  const std::vector<float> x2 = {7.0f, 2.5f, -3.5f, 0.2f, 1.0f, -1.0f, 0.5f, 0.3f};
  const std::vector<float> w2 = {0.5f, -0.25f, 0.125f, 1.0f, 0.3f, 0.3f, -0.7f, 0.1f, 0.9f, 0.0f, 0.0f, 0.2f};
  const MatrixView<const float> x2v(x2.data(), 2, 4), w2v(w2.data(), 3, 4);
  const auto xq = sasq::fake_quantize_rows(x2v, 4), wq = sasq::fake_quantize_rows(w2v, 4);
  double ref = 0.0, sig = 0.0;
  for (int t = 0; t < 2; ++t)
    for (int o = 0; o < 3; ++o) {
      double y = 0.0, yq = 0.0;
      for (int c = 0; c < 4; ++c) {
        y += double{x2[t * 4 + c]} * w2[o * 4 + c];
        yq += double{xq[t * 4 + c]} * wq[o * 4 + c];
      }
      ref += (y - yq) * (y - yq);
      sig += y * y;
    }
  const auto e2 = sasq::layer_quant_error(x2v, w2v, 4);
  CHECK(e2.error == doctest::Approx(ref));
  CHECK(e2.sqnr_db == doctest::Approx(10.0 * std::log10(sig / ref)));
  // Estimate: (‖W‖² Σ_t Δx² + ‖X‖² Σ_o Δw²) / 12 with Δ = range / 15.
  const double dx = (10.5 / 15) * (10.5 / 15) + (2.0 / 15) * (2.0 / 15);
  const double dw = (1.25 / 15) * (1.25 / 15) + (1.0 / 15) * (1.0 / 15) + (0.9 / 15) * (0.9 / 15);
  double nx = 0.0, nw = 0.0;
  for (float v : x2) nx += double{v} * v;
  for (float v : w2) nw += double{v} * v;
  CHECK(e2.estimate == doctest::Approx((nw * dx + nx * dw) / 12.0));
  CHECK(sasq::tensor_quant_error(x2v, 4) > 0.0);
}

TEST_CASE("layer error rejects bad input") {
  const std::vector<float> x = {1.0f, 2.0f};
  const std::vector<float> w = {1.0f, 2.0f, 3.0f};
  CHECK_THROWS_WITH_AS(sasq::layer_quant_error(MatrixView<const float>(x.data(), 1, 2),
                                               MatrixView<const float>(w.data(), 1, 3), 4),
                       doctest::Contains("channels"), sasq::Error);
  CHECK_THROWS_WITH_AS(sasq::fake_quantize_rows(MatrixView<const float>(x.data(), 1, 2), 3),
                       doctest::Contains("bits"), sasq::Error);
  const std::vector<float> bad = {1.0f, std::numeric_limits<float>::infinity()};
  CHECK_THROWS_AS(sasq::layer_quant_error(MatrixView<const float>(bad.data(), 1, 2),
                                          MatrixView<const float>(x.data(), 1, 2), 8),
                  sasq::Error);
}
