// FP32 block operations for block_bench (see fp32_ops.hpp), compiled with -march=native.
#include "fp32_ops.hpp"

#include <omp.h>

#include <Eigen/Core>
#include <cmath>
#include <vector>

namespace block {

using RowMat = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
using Stride = Eigen::OuterStride<>;

ParallelFor omp_parallel_for() {
  return [](int n, const std::function<void(int)>& task) {
#pragma omp parallel for num_threads(n) schedule(static, 1)
    for (int i = 0; i < n; ++i) task(i);
  };
}

void set_eigen_threads(int threads) { Eigen::setNbThreads(threads); }

void rmsnorm(const float* x, const float* g, float* y, int rows) {
  for (int r = 0; r < rows; ++r) {
    const float* xr = x + static_cast<std::ptrdiff_t>(r) * kDim;
    float* yr = y + static_cast<std::ptrdiff_t>(r) * kDim;
    float ss = 0.0f;
    for (int j = 0; j < kDim; ++j) ss += xr[j] * xr[j];
    const float inv = 1.0f / std::sqrt(ss / kDim + 1e-5f);
    for (int j = 0; j < kDim; ++j) yr[j] = xr[j] * inv * g[j];
  }
}

void rope(float* qkv, int pos0, int rows) {
  static const std::vector<float> freq = [] {
    std::vector<float> f(kHeadDim / 2);
    for (int i = 0; i < kHeadDim / 2; ++i) f[static_cast<std::size_t>(i)] = std::pow(10000.0f, -2.0f * i / kHeadDim);
    return f;
  }();
  for (int r = pos0; r < pos0 + rows; ++r) {
    float* row = qkv + static_cast<std::ptrdiff_t>(r) * kQkvCols;
    for (int i = 0; i < kHeadDim / 2; ++i) {
      const float c = std::cos(r * freq[static_cast<std::size_t>(i)]), s = std::sin(r * freq[static_cast<std::size_t>(i)]);
      for (int part = 0; part < 2; ++part)  // q, then k
        for (int h = 0; h < kHeads; ++h) {
          float* p = row + part * kDim + h * kHeadDim + 2 * i;
          const float a = p[0], b = p[1];
          p[0] = a * c - b * s;
          p[1] = a * s + b * c;
        }
    }
  }
}

namespace {

using HeadVec = Eigen::Matrix<float, 1, kHeadDim>;

/// Touches the kHeadDim floats at p (all their cache lines) ahead of use: the K and V rows of one head
/// are kQkvCols floats apart, a stride the hardware prefetchers do not follow from DRAM.
inline void prefetch_head_row(const float* p) {
  for (int i = 0; i < kHeadDim; i += 16) __builtin_prefetch(p + i);
}

/// One query row against keys [0, keys) of head h (decode): one pass over the K rows for the scores,
/// softmax, one pass over the V rows for o = Σ p_j v_j, each row a fixed-size Eigen vector (contiguous,
/// unrolled) and prefetched kAhead rows ahead.
void attend_one(const float* qkv, int pos, int h, float scale, float* scores, float* o) {
  constexpr int kAhead = 8;
  const int keys = pos + 1;
  const Eigen::Map<const HeadVec> q(qkv + static_cast<std::ptrdiff_t>(pos) * kQkvCols + h * kHeadDim);
  const float* k0 = qkv + kDim + h * kHeadDim;
  const float* v0 = qkv + 2 * kDim + h * kHeadDim;
  for (int j = 0; j < keys; ++j) {
    if (j + kAhead < keys) prefetch_head_row(k0 + static_cast<std::ptrdiff_t>(j + kAhead) * kQkvCols);
    scores[j] = q.dot(Eigen::Map<const HeadVec>(k0 + static_cast<std::ptrdiff_t>(j) * kQkvCols)) * scale;
  }
  Eigen::Map<Eigen::ArrayXf> s(scores, keys);
  s = (s - s.maxCoeff()).exp();
  s /= s.sum();
  Eigen::Map<HeadVec> out(o);
  out.setZero();
  for (int j = 0; j < keys; ++j) {
    if (j + kAhead < keys) prefetch_head_row(v0 + static_cast<std::ptrdiff_t>(j + kAhead) * kQkvCols);
    out += scores[j] * Eigen::Map<const HeadVec>(v0 + static_cast<std::ptrdiff_t>(j) * kQkvCols);
  }
}

}  // namespace

void attention(const float* qkv, int pos0, int rows, const ParallelFor& pf, int threads,
               const std::function<void(int, int, const float*)>& sink) {
  const int keys = pos0 + rows;
  const float scale = 1.0f / std::sqrt(static_cast<float>(kHeadDim));
  if (rows == 1) {  // decode: matrix-vector products over the KV cache, streamed once per head
    pf(threads, [&](int t) {
      std::vector<float> scores(static_cast<std::size_t>(keys));
      alignas(64) float o[kHeadDim];
      for (int h = kHeads * t / threads; h < kHeads * (t + 1) / threads; ++h) {
        attend_one(qkv, pos0, h, scale, scores.data(), o);
        sink(0, h, o);
      }
    });
    return;
  }
  pf(threads, [&](int t) {
    RowMat s(rows, keys), o(rows, kHeadDim);
    for (int h = kHeads * t / threads; h < kHeads * (t + 1) / threads; ++h) {
      Eigen::Map<const RowMat, 0, Stride> q(qkv + static_cast<std::ptrdiff_t>(pos0) * kQkvCols + h * kHeadDim, rows, kHeadDim, Stride(kQkvCols));
      Eigen::Map<const RowMat, 0, Stride> k(qkv + kDim + h * kHeadDim, keys, kHeadDim, Stride(kQkvCols));
      Eigen::Map<const RowMat, 0, Stride> v(qkv + 2 * kDim + h * kHeadDim, keys, kHeadDim, Stride(kQkvCols));
      s.noalias() = (q * k.transpose()) * scale;
      for (int i = 0; i < rows; ++i) {
        const int visible = pos0 + i + 1;
        const float mx = s.row(i).head(visible).maxCoeff();
        s.row(i).head(visible) = (s.row(i).head(visible).array() - mx).exp();
        s.row(i).head(visible) /= s.row(i).head(visible).sum();
        s.row(i).tail(keys - visible).setZero();
      }
      o.noalias() = s * v;
      for (int i = 0; i < rows; ++i) sink(i, h, o.row(i).data());
    }
  });
}

void swiglu(const float* gu, float* out, int rows) {
  for (int r = 0; r < rows; ++r) {
    const float* g = gu + static_cast<std::ptrdiff_t>(r) * 2 * kHidden;
    float* o = out + static_cast<std::ptrdiff_t>(r) * kHidden;
    for (int j = 0; j < kHidden; ++j) o[j] = g[j] / (1.0f + std::exp(-g[j])) * g[kHidden + j];
  }
}

void add(float* x, const float* y, std::size_t n) {
  for (std::size_t i = 0; i < n; ++i) x[i] += y[i];
}

void dequantize(const std::int32_t* acc, const float* ws, const float* as, float* y, int m, int n) {
  for (int r = 0; r < m; ++r)
    for (int c = 0; c < n; ++c)
      y[static_cast<std::ptrdiff_t>(r) * n + c] = static_cast<float>(acc[static_cast<std::ptrdiff_t>(r) * n + c]) * ws[c] * as[r];
}

void eigen_linear(const float* x, const float* w, float* y, int m, int k, int n) {
  Eigen::Map<const RowMat> xm(x, m, k), wm(w, n, k);
  Eigen::Map<RowMat> ym(y, m, n);
  ym.noalias() = xm * wm.transpose();
}

}  // namespace block
