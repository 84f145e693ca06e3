// The README quick start: quantize a tensor per token, then fake-quantize with a learned static scale.
#include <cstdio>
#include <vector>

#include <sasq/sasq.hpp>

int main() {
  std::vector<float> x = {0.1f, -2.5f, 0.7f, 3.0f, 1.2f, 0.05f, -0.4f, 9.0f};  // 2 tokens x 4 channels
  const sasq::MatrixView<const float> X(x.data(), 2, 4);

  // Dynamic per-token INT8: one scale per row, int8 codes out.
  const auto params = sasq::compute_params(X, sasq::Scheme<sasq::GridS8, sasq::PerToken>{});
  std::vector<std::int8_t> q(x.size());
  sasq::quantize(X, params, sasq::MatrixView<std::int8_t>(q.data(), 2, 4));

  // Static INT4 with a learned scale: start from calibration (SASQ init: mean abs-max / qmax), then
  // descend the LSQ step-size gradient of the squared error (a stand-in for the training loss).
  sasq::MeanAbsMaxObserver observer;
  observer.observe(X);
  using Lsq = sasq::ste::Lsq<sasq::GridS4>;
  const float s0 = observer.param<sasq::GridS4>().scale;
  float s = s0;
  for (int step = 0; step < 100; ++step) {
    float grad = 0.0f;
    for (float v : x) grad += 2.0f * (Lsq::forward(v, s) - v) * Lsq::backward(v, s).dparam;
    s -= 0.002f * grad;
  }
  std::printf("int8 codes of token 1: %d %d %d %d\n", q[4], q[5], q[6], q[7]);
  std::printf("int4 scale: calibrated %.3f, learned %.3f (clips at %.2f)\n", s0, s, 7 * s);
  std::printf("outlier 9.0 -> %.2f\n", Lsq::forward(9.0f, s));
}
