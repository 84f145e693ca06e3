// sasq CUDA kernels vs cuBLASLt INT8 on LLaMA-7B linear shapes (N x K: q/k/v/o 4096 x 4096, fused qkv
// 12288 x 4096, gate/up 11008 x 4096, down 4096 x 11008), decode M = 1 first. Each GEMM's int32
// accumulators are checked once against cuBLASLt's before timing; times come from CUDA events
// (UseManualTime); counters: ops/s = 2·M·N·K, bytes/s for the streaming kernels. Skips without a GPU.
#include <benchmark/benchmark.h>
#include <cublasLt.h>
#include <thrust/device_vector.h>
#include <thrust/equal.h>
#include <thrust/tabulate.h>

#include <cstdint>
#include <string>
#include <vector>

#include "sasq/cuda/fwht.cuh"
#include "sasq/cuda/gemm.cuh"
#include "sasq/cuda/quantize.cuh"

namespace {

using sasq::MatrixView;
namespace sc = sasq::cuda;

/// Deterministic pseudo-random int8 in [lo, hi] from the element index (device-side data generation).
struct HashInt8 {
  int lo, hi;
  std::uint32_t seed;
  __host__ __device__ std::int8_t operator()(std::size_t i) const {
    std::uint32_t h = static_cast<std::uint32_t>(i) * 2654435761u ^ seed;
    h ^= h >> 15;
    h *= 2246822519u;
    h ^= h >> 13;
    return static_cast<std::int8_t>(lo + static_cast<int>(h % static_cast<std::uint32_t>(hi - lo + 1)));
  }
};
struct HashFloat {
  __host__ __device__ float operator()(std::size_t i) const {
    const std::uint32_t h = static_cast<std::uint32_t>(i) * 2654435761u;
    return static_cast<float>(h >> 8) * (1.0f / 16777216.0f) * 8.0f - 4.0f;
  }
};
/// Packs two int4 values (from an unpacked int8 weight array) per byte, pack_int4 order.
struct PackPair {
  const std::int8_t* w;
  __host__ __device__ std::uint8_t operator()(std::size_t i) const {
    return static_cast<std::uint8_t>((w[2 * i] & 0xF) | ((w[2 * i + 1] & 0xF) << 4));
  }
};

bool have_gpu(benchmark::State& state) {
  if (sc::device_count() > 0) return true;
  state.SkipWithError("no CUDA device");
  return false;
}

template <class T>
T* raw(thrust::device_vector<T>& v) {
  return thrust::raw_pointer_cast(v.data());
}

/// Times `launch` (enqueue only) with CUDA events, one iteration per benchmark iteration.
template <class Fn>
void time_loop(benchmark::State& state, Fn&& launch) {
  cudaEvent_t start, stop;
  cudaEventCreate(&start);
  cudaEventCreate(&stop);
  for (int i = 0; i < 3; ++i) launch();  // warm-up
  for (auto _ : state) {
    cudaEventRecord(start);
    launch();
    cudaEventRecord(stop);
    cudaEventSynchronize(stop);
    float ms = 0.0f;
    cudaEventElapsedTime(&ms, start, stop);
    state.SetIterationTime(static_cast<double>(ms) * 1e-3);
  }
  cudaEventDestroy(start);
  cudaEventDestroy(stop);
}

/// A problem with int8 activations, int8 weights and their int4 packing (values of W in [-8, 7] so
/// that both formats hold the same matrix and every GEMM's int32 result is comparable).
struct Problem {
  int m, n, k;
  thrust::device_vector<std::int8_t> a, w;
  thrust::device_vector<std::uint8_t> w4;
  thrust::device_vector<float> w_scales, row_scales;
  Problem(int m_, int n_, int k_, int group)
      : m(m_), n(n_), k(k_), a(static_cast<std::size_t>(m_) * k_), w(static_cast<std::size_t>(n_) * k_),
        w4(static_cast<std::size_t>(n_) * k_ / 2),
        w_scales(static_cast<std::size_t>(n_) * (group == 0 ? 1 : k_ / group), 0.01f),
        row_scales(static_cast<std::size_t>(m_), 0.02f) {
    thrust::tabulate(a.begin(), a.end(), HashInt8{-128, 127, 1u});
    thrust::tabulate(w.begin(), w.end(), HashInt8{-8, 7, 2u});
    thrust::tabulate(w4.begin(), w4.end(), PackPair{raw(w)});
  }
  sc::DeviceWeights weights(int bits, int group) {
    if (bits == 8) return {raw(w), n, k, k, sasq::WeightFormat{8, group, false}, raw(w_scales)};
    return {raw(w4), n, k, k / 2, sasq::WeightFormat{4, group, false}, raw(w_scales)};
  }
};

/// cuBLASLt C[M][N] (row-major int32) = A[M][K] · W[N][K]ᵀ, expressed column-major as Cᵀ = W · Aᵀ
/// ("TN": op(W) = T with ld K, op(A) = N with ld K), compute type 32I.
struct LtGemm {
  cublasLtHandle_t handle = nullptr;
  cublasLtMatmulDesc_t op = nullptr;
  cublasLtMatrixLayout_t lw = nullptr, la = nullptr, lc = nullptr;
  cublasLtMatmulAlgo_t algo{};
  bool ok = false;
  std::string error;
  thrust::device_vector<std::uint8_t> workspace = thrust::device_vector<std::uint8_t>(32 << 20);

  LtGemm(int m, int n, int k) {
    if (cublasLtCreate(&handle) != CUBLAS_STATUS_SUCCESS) {
      error = "cublasLtCreate failed";
      return;
    }
    cublasLtMatmulDescCreate(&op, CUBLAS_COMPUTE_32I, CUDA_R_32I);
    const cublasOperation_t t = CUBLAS_OP_T, nn = CUBLAS_OP_N;
    cublasLtMatmulDescSetAttribute(op, CUBLASLT_MATMUL_DESC_TRANSA, &t, sizeof t);
    cublasLtMatmulDescSetAttribute(op, CUBLASLT_MATMUL_DESC_TRANSB, &nn, sizeof nn);
    cublasLtMatrixLayoutCreate(&lw, CUDA_R_8I, k, n, k);
    cublasLtMatrixLayoutCreate(&la, CUDA_R_8I, k, m, k);
    cublasLtMatrixLayoutCreate(&lc, CUDA_R_32I, n, m, n);
    cublasLtMatmulPreference_t pref;
    cublasLtMatmulPreferenceCreate(&pref);
    const std::size_t ws = workspace.size();
    cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &ws, sizeof ws);
    cublasLtMatmulHeuristicResult_t result{};
    int found = 0;
    if (cublasLtMatmulAlgoGetHeuristic(handle, op, lw, la, lc, lc, pref, 1, &result, &found) ==
            CUBLAS_STATUS_SUCCESS &&
        found > 0) {
      algo = result.algo;
      ok = true;
    } else {
      error = "cuBLASLt has no INT8 algorithm for this shape";
    }
    cublasLtMatmulPreferenceDestroy(pref);
  }
  ~LtGemm() {
    if (lc) cublasLtMatrixLayoutDestroy(lc);
    if (la) cublasLtMatrixLayoutDestroy(la);
    if (lw) cublasLtMatrixLayoutDestroy(lw);
    if (op) cublasLtMatmulDescDestroy(op);
    if (handle) cublasLtDestroy(handle);
  }
  cublasStatus_t run(const std::int8_t* a, const std::int8_t* w, std::int32_t* c) {
    const std::int32_t alpha = 1, beta = 0;
    return cublasLtMatmul(handle, op, &alpha, w, lw, a, la, &beta, c, lc, c, lc, &algo,
                          thrust::raw_pointer_cast(workspace.data()), workspace.size(), nullptr);
  }
};

void set_gemm_counters(benchmark::State& state, const Problem& p) {
  state.counters["ops"] = benchmark::Counter(2.0 * p.m * p.n * p.k, benchmark::Counter::kIsIterationInvariantRate);
}

/// Verifies sasq's int32 accumulators (weights `bits`) against cuBLASLt's once.
bool verify_against_lt(benchmark::State& state, Problem& p, int bits) {
  LtGemm lt(p.m, p.n, p.k);
  if (!lt.ok) return true;  // nothing to compare with; cuBLASLt's own benchmark reports the error
  thrust::device_vector<std::int32_t> c_lt(static_cast<std::size_t>(p.m) * p.n), c(c_lt.size());
  if (lt.run(raw(p.a), raw(p.w), raw(c_lt)) != CUBLAS_STATUS_SUCCESS) return true;
  const sasq::Status s = sc::gemm(MatrixView<const std::int8_t>(raw(p.a), p.m, p.k), p.weights(bits, 0),
                                  sc::DeviceEpilogue{}, MatrixView<std::int32_t>(raw(c), p.m, p.n), nullptr);
  if (!s || cudaDeviceSynchronize() != cudaSuccess || !thrust::equal(c.begin(), c.end(), c_lt.begin())) {
    state.SkipWithError(s ? "sasq int32 accumulators differ from cuBLASLt" : s.message().c_str());
    return false;
  }
  return true;
}

void BM_cublaslt_s8s32(benchmark::State& state) {
  if (!have_gpu(state)) return;
  Problem p(static_cast<int>(state.range(0)), static_cast<int>(state.range(1)), static_cast<int>(state.range(2)), 0);
  LtGemm lt(p.m, p.n, p.k);
  if (!lt.ok) {
    state.SkipWithError(lt.error.c_str());
    return;
  }
  thrust::device_vector<std::int32_t> c(static_cast<std::size_t>(p.m) * p.n);
  time_loop(state, [&] { lt.run(raw(p.a), raw(p.w), raw(c)); });
  set_gemm_counters(state, p);
}

/// sasq gemm; range(3) = weight bits, range(4) = group size (0 per channel), range(5) = 1 for int32
/// accumulators (same output as cuBLASLt), 0 for the fused f32 epilogue.
void BM_sasq_gemm(benchmark::State& state) {
  if (!have_gpu(state)) return;
  const int bits = static_cast<int>(state.range(3)), group = static_cast<int>(state.range(4));
  const bool s32 = state.range(5) != 0;
  Problem p(static_cast<int>(state.range(0)), static_cast<int>(state.range(1)), static_cast<int>(state.range(2)), group);
  if (group == 0 && !verify_against_lt(state, p, bits)) return;
  thrust::device_vector<std::int32_t> c32(s32 ? static_cast<std::size_t>(p.m) * p.n : 0);
  thrust::device_vector<float> cf(s32 ? 0 : static_cast<std::size_t>(p.m) * p.n);
  sc::DeviceEpilogue ep{};
  ep.row_scales = raw(p.row_scales);
  const sc::DeviceWeights w = p.weights(bits, group);
  const MatrixView<const std::int8_t> a(raw(p.a), p.m, p.k);
  auto launch = [&] {
    return s32 ? sc::gemm(a, w, ep, MatrixView<std::int32_t>(raw(c32), p.m, p.n), nullptr)
               : sc::gemm(a, w, ep, MatrixView<float>(raw(cf), p.m, p.n), nullptr);
  };
  if (const sasq::Status s = launch(); !s) {
    state.SkipWithError(s.message().c_str());
    return;
  }
  time_loop(state, [&] { (void)launch(); });
  set_gemm_counters(state, p);
  state.counters["weight_bytes"] = benchmark::Counter(static_cast<double>(p.n) * p.k * bits / 8,
                                                      benchmark::Counter::kIsIterationInvariantRate);
}

/// Args: M, K, clip ratio in percent (100: abs-max; 90: QuaRot's --a_clip_ratio 0.9).
void BM_quantize_per_token_s8(benchmark::State& state) {
  if (!have_gpu(state)) return;
  const int rows = static_cast<int>(state.range(0)), cols = static_cast<int>(state.range(1));
  const float clip_ratio = static_cast<float>(state.range(2)) / 100.0f;
  thrust::device_vector<float> x(static_cast<std::size_t>(rows) * cols), scales(rows);
  thrust::tabulate(x.begin(), x.end(), HashFloat{});
  thrust::device_vector<std::int8_t> q(x.size());
  auto launch = [&] {
    return sc::quantize_per_token<sasq::GridS8>(MatrixView<const float>(raw(x), rows, cols),
                                                MatrixView<std::int8_t>(raw(q), rows, cols), raw(scales), nullptr,
                                                nullptr, clip_ratio);
  };
  if (const sasq::Status s = launch(); !s) {
    state.SkipWithError(s.message().c_str());
    return;
  }
  time_loop(state, [&] { (void)launch(); });
  state.counters["bytes"] = benchmark::Counter(5.0 * rows * cols, benchmark::Counter::kIsIterationInvariantRate);
}

void BM_fwht_rows(benchmark::State& state) {
  if (!have_gpu(state)) return;
  const int rows = static_cast<int>(state.range(0)), n = static_cast<int>(state.range(1));
  thrust::device_vector<float> x(static_cast<std::size_t>(rows) * n);
  thrust::tabulate(x.begin(), x.end(), HashFloat{});
  auto launch = [&] { return sc::fwht_rows(MatrixView<float>(raw(x), rows, n), 1, nullptr, nullptr); };
  if (const sasq::Status s = launch(); !s) {
    state.SkipWithError(s.message().c_str());
    return;
  }
  time_loop(state, [&] { (void)launch(); });
  state.counters["bytes"] = benchmark::Counter(8.0 * rows * n, benchmark::Counter::kIsIterationInvariantRate);
}

const std::vector<std::vector<std::int64_t>> kShapes = {{4096, 4096}, {12288, 4096}, {11008, 4096}, {4096, 11008}};
const std::vector<std::int64_t> kRows = {1, 16, 128, 512, 2048};

void gemm_args(benchmark::internal::Benchmark* b, std::vector<std::vector<std::int64_t>> variants) {
  b->ArgNames({"M", "N", "K", "bits", "group", "s32"});
  for (std::int64_t m : kRows)
    for (const auto& nk : kShapes)
      for (const auto& v : variants) b->Args({m, nk[0], nk[1], v[0], v[1], v[2]});
}

}  // namespace

BENCHMARK(BM_cublaslt_s8s32)->ArgNames({"M", "N", "K"})->ArgsProduct({kRows, {4096}, {4096}})
    ->Args({1, 12288, 4096})->Args({1, 11008, 4096})->Args({1, 4096, 11008})
    ->Args({128, 12288, 4096})->Args({128, 11008, 4096})->Args({128, 4096, 11008})
    ->Args({2048, 12288, 4096})->Args({2048, 11008, 4096})->Args({2048, 4096, 11008})
    ->UseManualTime()->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_sasq_gemm)->Apply([](benchmark::internal::Benchmark* b) {
  gemm_args(b, {{8, 0, 1}, {4, 0, 1}, {8, 0, 0}, {4, 128, 0}});
})->UseManualTime()->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_quantize_per_token_s8)->ArgNames({"M", "K", "clip_pct"})->Args({1, 4096, 100})
    ->Args({2048, 4096, 100})->Args({2048, 4096, 90})->Args({2048, 11008, 100})->Args({2048, 11008, 90})
    ->UseManualTime()->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_fwht_rows)->Args({2048, 4096})->Args({2048, 16384})->UseManualTime()->Unit(benchmark::kMicrosecond);

BENCHMARK_MAIN();
