// sasq/transform views (LlamaModelViews) of the LLaMA example's Eigen weights, so that SmoothQuant,
// QuaRot and SmoothRot from include/sasq/transform apply to a loaded checkpoint in place.
#pragma once

#include "llama/weights.hpp"
#include "sasq/core/matrix_view.hpp"
#include "sasq/core/span.hpp"
#include "sasq/transform/llama_block.hpp"

namespace sasq::llama {

inline MatrixView<float> view_of(Matrix& m) {
  return {m.data(), static_cast<std::ptrdiff_t>(m.rows()), static_cast<std::ptrdiff_t>(m.cols())};
}
inline Span<float> span_of(Vector& v) { return {v.data(), static_cast<std::size_t>(v.size())}; }

/// Views of every tensor a transform touches. Unties a shared classifier first (wcls = copy of the
/// embedding), since the residual rotation treats the embedding and the classifier differently.
inline LlamaModelViews transform_views(Weights& w) {
  if (w.config.shared_classifier) {
    w.wcls = w.token_embedding;
    w.config.shared_classifier = false;
  }
  LlamaModelViews m{view_of(w.token_embedding), {}, span_of(w.rms_final), view_of(w.wcls)};
  for (auto& l : w.layers)
    m.layers.push_back({span_of(l.rms_att), view_of(l.wq), view_of(l.wk), view_of(l.wv), view_of(l.wo),
                        span_of(l.rms_ffn), view_of(l.w1), view_of(l.w3), view_of(l.w2), w.config.head_size()});
  return m;
}

}  // namespace sasq::llama
