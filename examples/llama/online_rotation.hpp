// Online rotation of down_proj inputs (QuaRot's R4) as an execution-policy wrapper: a rotated model
// (w2 <- w2 R, see sasq/transform/llama_block.hpp) needs u <- u R on every down_proj input u before
// it is quantized; every other site and every linear is delegated unchanged.
#pragma once

#include <utility>

#include "llama/model.hpp"
#include "sasq/core/matrix_view.hpp"
#include "sasq/transform/rotation.hpp"

namespace sasq::llama {

/// Wraps any execution policy (Fp32Exec, FakeQuantExec, IntegerExec, CalibrationExec, ...).
/// `down` (may be null: no rotation) must outlive the wrapper.
template <class Inner>
struct OnlineRotationExec {
  Inner inner;
  const Rotation* down = nullptr;

  void on_site(int layer, Site s, Matrix& x) {
    if (down && s == Site::kDownIn) apply_rotation(*down, MatrixView<float>(x.data(), x.rows(), x.cols()));
    inner.on_site(layer, s, x);
  }
  void linear(int layer, Proj p, const Matrix& x, const Matrix& w, Matrix& y) { inner.linear(layer, p, x, w, y); }
};

template <class Inner>
OnlineRotationExec<Inner> with_online_rotation(Inner inner, const Rotation* down) {
  return {std::move(inner), down};
}

}  // namespace sasq::llama
