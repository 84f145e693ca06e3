// LLaMA weights in float32 Eigen row-major matrices, nn.Linear layout W[out][in], one struct per layer.
//   y = x W^T for an activation row x[in]; the classifier is the token embedding when shared.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <Eigen/Core>

#include "llama/config.hpp"

namespace sasq::llama {

/// Row-major float matrix: activations [tokens][channels] and weights [out][in].
using Matrix = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
/// Float vector (RMSNorm gains).
using Vector = Eigen::VectorXf;

/// The tensors of one decoder layer (llama2.c names; PyTorch names in comments).
struct LayerWeights {
  Vector rms_att;  ///< [dim] attention_norm gain
  Matrix wq;       ///< [n_heads*head_size][dim] q_proj
  Matrix wk;       ///< [kv_dim][dim] k_proj
  Matrix wv;       ///< [kv_dim][dim] v_proj
  Matrix wo;       ///< [dim][n_heads*head_size] o_proj
  Vector rms_ffn;  ///< [dim] ffn_norm gain
  Matrix w1;       ///< [hidden_dim][dim] gate_proj
  Matrix w2;       ///< [dim][hidden_dim] down_proj
  Matrix w3;       ///< [hidden_dim][dim] up_proj
};

/// A tensor stored by a version-2 (Q8_0) checkpoint: symmetric int8 in [-127, 127] with one
/// float scale per `group_size` consecutive elements of the flattened row-major tensor:
/// w = scale[i / group_size] * q[i] (llama2.c export.py quantize_q80).
struct Q8Tensor {
  std::string name;  ///< e.g. "layers.3.wq", "token_embedding", "wcls"
  int rows = 0;
  int cols = 0;
  int group_size = 0;
  std::vector<std::int8_t> q;  ///< rows * cols values
  std::vector<float> scale;    ///< rows * cols / group_size scales (finite, >= 0)
};

/// Everything a forward pass reads. Owned, immutable after loading (quantized variants are
/// copies with dequantized matrices).
struct Weights {
  Config config;
  Matrix token_embedding;  ///< [vocab_size][dim]
  std::vector<LayerWeights> layers;
  Vector rms_final;  ///< [dim]
  Matrix wcls;       ///< [vocab_size][dim]; empty when config.shared_classifier
  int format_version = 0;  ///< 0 legacy float32, 1 ak42 float32, 2 ak42 Q8_0, 3 Hugging Face folder
  /// Version 2 only: the int8 tensors as stored (the float matrices above hold them dequantized).
  std::vector<Q8Tensor> q8;

  /// The classifier weight [vocab_size][dim]: wcls, or the token embedding when shared.
  const Matrix& classifier() const { return config.shared_classifier ? token_embedding : wcls; }
};

}  // namespace sasq::llama
