// The FP32 parts of a LLaMA-7B-shaped decoder block that every variant of block_bench shares (RMSNorm,
// RoPE, causal attention with a KV cache, SwiGLU, residual add, oneDNN's dequantize pass) and the Eigen
// FP32 linear layer; compiled in their own translation unit with -march=native (peers get this machine's
// best ISA; sasq code is compiled without -m flags).
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>

namespace block {

inline constexpr int kDim = 4096, kHeads = 32, kHeadDim = 128, kHidden = 11008;
/// Rows of the q|k|v buffer: q, k, v of one position side by side (the KV cache is its k and v columns).
inline constexpr int kQkvCols = 3 * kDim;

/// The same contract as sasq::ParallelFor: calls task(0..n-1) and returns when all have returned.
using ParallelFor = std::function<void(int n, const std::function<void(int)>& task)>;

/// An OpenMP parallel-for (the Eigen and oneDNN variants' runtime).
ParallelFor omp_parallel_for();
void set_eigen_threads(int threads);

/// y[r] = x[r] · g / sqrt(mean(x[r]²) + 1e-5) for rows [0, rows) of length kDim.
void rmsnorm(const float* x, const float* g, float* y, int rows);
/// Rotary embedding of the q and k columns of qkv rows [pos0, pos0 + rows) (row r at position r).
void rope(float* qkv, int pos0, int rows);
/// Causal attention of query rows [pos0, pos0 + rows) of qkv against keys/values [0, pos0 + rows) (one
/// row, decode: a matrix-vector pass over the KV cache per head, K and V rows prefetched ahead),
/// heads split over `threads` tasks of pf; sink(row, head, o) receives each head's kHeadDim outputs.
void attention(const float* qkv, int pos0, int rows, const ParallelFor& pf, int threads,
               const std::function<void(int row, int head, const float* o)>& sink);
/// out[r][j] = silu(gu[r][j]) · gu[r][kHidden + j] (gu rows: gate then up).
void swiglu(const float* gu, float* out, int rows);
/// x += y (n floats).
void add(float* x, const float* y, std::size_t n);
/// y[m][n] = float(acc[m][n]) · ws[n] · as[m] (oneDNN int32 output to f32).
void dequantize(const std::int32_t* acc, const float* ws, const float* as, float* y, int m, int n);
/// Y[m][n] = X[m][k] · W[n][k]ᵀ with Eigen (row-major, its own threads).
void eigen_linear(const float* x, const float* w, float* y, int m, int k, int n);

}  // namespace block
