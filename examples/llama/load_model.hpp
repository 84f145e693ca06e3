// What every program does with --model / --tokenizer: a llama2.c .bin file or a Hugging Face folder,
// its tokenizer, and a fingerprint of the weights that is the same for both formats of one model.
#pragma once

#include <string>

#include "llama/tokenizer.hpp"
#include "llama/weights.hpp"

// Defined in load_model.cpp (library sasq_llama_model).
namespace sasq::llama {

/// Loads `path`: a Hugging Face folder (config.json + safetensors) or a llama2.c checkpoint file.
Weights load_model(const std::string& path);

/// True when `model_path` is a Hugging Face folder holding a tokenizer.json (its own tokenizer).
bool has_own_tokenizer(const std::string& model_path);

/// The tokenizer of a model: `explicit_path` when given (a tokenizer.json, else a llama2.c file of
/// exactly the model's vocab_size entries); else the model folder's tokenizer.json when it has one;
/// else `fallback` (a llama2.c file). A tokenizer.json may have fewer ids than the model (padded
/// embeddings) but not more. Throws naming the file on every mismatch.
Tokenizer load_tokenizer_for(const std::string& model_path, const Weights& w, const std::string& explicit_path,
                             const std::string& fallback);

/// FNV-1a 64 of what the forward pass computes with: dim, hidden_dim, n_layers, n_heads, n_kv_heads,
/// vocab_size (int32), rms_norm_eps, rope_theta (float32), then the float32 bytes of the embedding,
/// per layer rms_att, wq, wk, wv, wo, rms_ffn, w1, w2, w3, then rms_final and the classifier, as
/// "fnv1a64-f32:<16 hex digits>". The same for a .bin and a Hugging Face folder holding the same
/// weights (q/k rows are hashed after un-permutation, a tied classifier as the embedding it is);
/// seq_len and the file layout do not enter.
std::string weights_fingerprint(const Weights& w);

}  // namespace sasq::llama
