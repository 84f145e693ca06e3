// gemm_bench: sasq W8A8 / W4A8 GEMMs and activation quantize kernels vs oneDNN (u8s8->s32, s8s8->s32,
// and u8s8->f32 with per-channel output scales: the same work as sasq's f32 epilogue; weights reordered
// to its blocked format outside the timed loop), Eigen FP32, OpenBLAS sgemm and the scalar reference,
// on LLaMA linear-layer shapes. Every implementation is verified once (rows 0 and M-1 against exact
// integer dot products through sasq's epilogue; oneDNN's f32 peer against sasq's whole output, see
// bm_onednn) before timing. Names: <impl>_<types>/M:/K:/N:/threads:, counter
// GOPS = 2·M·N·K / s; quantize kernels report GBps = (4 + 1 bytes) · elements / s. On the model's
// small shapes sasq_pack_a_s8 times gemm's packing of A alone and sasq_s8s8_f32_k8 the same call at K = 8.
#include <benchmark/benchmark.h>

#include <cmath>
#include <cstdint>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <tuple>
#include <vector>

#include "sasq/gemm/gemm.hpp"
#include "sasq/gemm/quantize_activations.hpp"
#include "sasq/gemm/reference.hpp"

#if SASQ_BENCH_ONEDNN
#include <omp.h>

#include <oneapi/dnnl/dnnl.hpp>
#endif
#if SASQ_BENCH_OPENBLAS
#include <cblas.h>
#endif

namespace sasq_bench {
void eigen_gemm(const float* a, const float* w, float* c, int m, int k, int n, int threads);
}

namespace {

using sasq::MatrixView;

/// The activation (row) scale of every sasq call (not 1: the epilogue's second multiply does real work).
constexpr float kActScale = 0.05f;

/// Random operands of one (M, K, N) problem, created once and shared by every implementation.
struct Problem {
  std::int64_t m, k, n;
  std::vector<std::int8_t> a_s8, w8, w4;
  std::vector<std::uint8_t> a_u8;
  std::vector<float> a_f32, w_f32, w8_scales, w4_scales;
  sasq::PackedWeights pw8, pw4;

  Problem(std::int64_t m_, std::int64_t k_, std::int64_t n_) : m(m_), k(k_), n(n_) {
    std::mt19937 rng(static_cast<unsigned>(m * 31 + k * 7 + n));
    std::uniform_int_distribution<int> d8(-128, 127), d4(-8, 7), du(0, 255);
    a_s8.resize(static_cast<std::size_t>(m * k));
    a_u8.resize(a_s8.size());
    a_f32.resize(a_s8.size());
    for (std::size_t i = 0; i < a_s8.size(); ++i) {
      a_s8[i] = static_cast<std::int8_t>(d8(rng));
      a_u8[i] = static_cast<std::uint8_t>(du(rng));
      a_f32[i] = a_s8[i];
    }
    w8.resize(static_cast<std::size_t>(n * k));
    w4.resize(w8.size());
    w_f32.resize(w8.size());
    for (std::size_t i = 0; i < w8.size(); ++i) {
      w8[i] = static_cast<std::int8_t>(d8(rng));
      w4[i] = static_cast<std::int8_t>(d4(rng));
      w_f32[i] = w8[i];
    }
    // Per-channel INT8 scales are not 1, so that sasq's epilogue and oneDNN's output scales multiply by
    // real values and a scale applied to the wrong column is caught; g128 scales stay 1 (see bm_sasq).
    std::uniform_real_distribution<float> ds(0.001f, 0.01f);
    w8_scales.resize(static_cast<std::size_t>(n));
    for (float& v : w8_scales) v = ds(rng);
    w4_scales.assign(static_cast<std::size_t>(n * ((k + 127) / 128)), 1.0f);
    pw8 = sasq::pack_weights(MatrixView<const std::int8_t>(w8.data(), n, k), w8_scales, {8});
    pw4 = sasq::pack_weights(MatrixView<const std::int8_t>(w4.data(), n, k), w4_scales, {4, 128});
  }

  /// sasq's f32 epilogue without bias (docs/numerics.md): fmaf(fmaf(float(acc), ws, 0), kActScale, 0).
  /// For W4A8 g128 (ws = 1 per group) the f32 sum of the group dots is float(acc) exactly while
  /// |acc| < 2^24 (every shape here: K · 8 · 128 ≤ 11.3M), so one formula serves all three kinds.
  static float epilogue(std::int64_t acc, float ws) {
    return std::fmaf(std::fmaf(static_cast<float>(acc), ws, 0.0f), kActScale, 0.0f);
  }

  /// Exact Σ_k (a[row][k] - z) · w[col][k].
  template <class TA>
  std::int64_t dot(const std::vector<TA>& a, const std::vector<std::int8_t>& w, std::int64_t row, std::int64_t col,
                   std::int64_t z) const {
    std::int64_t s = 0;
    for (std::int64_t j = 0; j < k; ++j)
      s += (static_cast<std::int64_t>(a[static_cast<std::size_t>(row * k + j)]) - z) * w[static_cast<std::size_t>(col * k + j)];
    return s;
  }
};

Problem& problem(std::int64_t m, std::int64_t k, std::int64_t n) {
  static std::map<std::tuple<std::int64_t, std::int64_t, std::int64_t>, std::unique_ptr<Problem>> cache;
  auto& p = cache[{m, k, n}];
  if (!p) p = std::make_unique<Problem>(m, k, n);
  return *p;
}

/// Checks rows 0 and M-1 of an output against exact dot products: bit-equal when tol == 0, else within
/// tol · K · 128² (a bound relative to the sum of |products|, for the float peers).
template <class Out, class Exact>
bool verify(const Problem& p, const Out& out, const Exact& exact, double tol) {
  const double bound = tol * static_cast<double>(p.k) * 128.0 * 128.0;
  for (std::int64_t r : {std::int64_t{0}, p.m - 1})
    for (std::int64_t c = 0; c < p.n; ++c) {
      const double e = static_cast<double>(exact(r, c)), o = static_cast<double>(out[static_cast<std::size_t>(r * p.n + c)]);
      if (tol == 0.0 ? o != e : std::fabs(o - e) > bound) return false;
    }
  return true;
}

void set_counters(benchmark::State& state, const Problem& p) {
  state.counters["GOPS"] = benchmark::Counter(2e-9 * static_cast<double>(p.m * p.n * p.k),
                                              benchmark::Counter::kIsIterationInvariantRate);
}

enum class SasqKind { kS8S8, kU8S8, kW4A8G128 };

void bm_sasq(benchmark::State& state, SasqKind kind) {
  Problem& p = problem(state.range(0), state.range(1), state.range(2));
  const sasq::GemmOptions opt{static_cast<int>(state.range(3))};
  // C 64-byte aligned, as oneDNN allocates its destination (a malloc'd vector is 16-byte aligned, so
  // every 64-byte store of a row would straddle two cache lines).
  sasq::AlignedBuffer<float> c(static_cast<std::size_t>(p.m * p.n));
  const sasq::PackedWeights& pw = kind == SasqKind::kW4A8G128 ? p.pw4 : p.pw8;
  const auto& w = kind == SasqKind::kW4A8G128 ? p.w4 : p.w8;
  const std::int32_t z = kind == SasqKind::kU8S8 ? 100 : 0;
  auto run = [&] {
    if (kind == SasqKind::kU8S8) {
      sasq::gemm(MatrixView<const std::uint8_t>(p.a_u8.data(), p.m, p.k), sasq::ActivationQuant::per_tensor(kActScale, z), pw,
                 sasq::Epilogue{}, MatrixView<float>(c.data(), p.m, p.n), opt);
    } else {
      sasq::gemm(MatrixView<const std::int8_t>(p.a_s8.data(), p.m, p.k), sasq::ActivationQuant::per_tensor(kActScale), pw,
                 sasq::Epilogue{}, MatrixView<float>(c.data(), p.m, p.n), opt);
    }
  };
  run();
  // Bit-equal to the epilogue applied to the exact int32 dot (W4A8: per-group dots summed with fmaf).
  const auto ws = [&](std::int64_t col) { return kind == SasqKind::kW4A8G128 ? 1.0f : p.w8_scales[static_cast<std::size_t>(col)]; };
  const bool ok = verify(p, c, [&](std::int64_t r, std::int64_t col) {
    return Problem::epilogue(kind == SasqKind::kU8S8 ? p.dot(p.a_u8, w, r, col, z) : p.dot(p.a_s8, w, r, col, 0), ws(col));
  }, 0.0);
  if (!ok) {
    state.SkipWithError("sasq result differs from the exact integer product");
    return;
  }
  for (auto _ : state) {
    run();
    benchmark::DoNotOptimize(c.data());
    benchmark::ClobberMemory();
  }
  set_counters(state, p);
}

void bm_reference(benchmark::State& state) {
  Problem& p = problem(state.range(0), state.range(1), state.range(2));
  std::vector<float> c(static_cast<std::size_t>(p.m * p.n));
  auto run = [&] {
    sasq::gemm_reference(MatrixView<const std::int8_t>(p.a_s8.data(), p.m, p.k), sasq::ActivationQuant::per_tensor(kActScale),
                         MatrixView<const std::int8_t>(p.w8.data(), p.n, p.k), sasq::Span<const float>(p.w8_scales),
                         sasq::WeightFormat{8}, sasq::Epilogue{}, MatrixView<float>(c.data(), p.m, p.n));
  };
  run();
  if (!verify(p, c, [&](std::int64_t r, std::int64_t col) {
        return Problem::epilogue(p.dot(p.a_s8, p.w8, r, col, 0), p.w8_scales[static_cast<std::size_t>(col)]);
      }, 0.0)) {
    state.SkipWithError("reference differs from the exact integer product");
    return;
  }
  for (auto _ : state) {
    run();
    benchmark::DoNotOptimize(c.data());
  }
  set_counters(state, p);
}

#if SASQ_BENCH_ONEDNN
/// What oneDNN's matmul writes: raw int32 (u8s8 or s8s8; no epilogue work, the issue-12 baseline), or
/// f32 through per-output-channel output scales w8_scales[n] · kActScale (u8s8): the same work as
/// sasq's f32 epilogue (two multiplies per element there, one here; sasq's benchmarked call has no bias).
enum class DnnlKind { kU8S8S32, kS8S8S32, kU8S8F32 };

void bm_onednn(benchmark::State& state, DnnlKind kind) {
  using dt = dnnl::memory::data_type;
  using tag = dnnl::memory::format_tag;
  Problem& p = problem(state.range(0), state.range(1), state.range(2));
  omp_set_num_threads(static_cast<int>(state.range(3)));
  const bool u8 = kind != DnnlKind::kS8S8S32, f32 = kind == DnnlKind::kU8S8F32;
  dnnl::engine eng(dnnl::engine::kind::cpu, 0);
  dnnl::stream strm(eng);
  const dnnl::memory::desc src_md({p.m, p.k}, u8 ? dt::u8 : dt::s8, tag::ab);
  const dnnl::memory::desc wei_any({p.k, p.n}, dt::s8, tag::any);
  const dnnl::memory::desc dst_md({p.m, p.n}, f32 ? dt::f32 : dt::s32, tag::ab);
  dnnl::primitive_attr attr;
  if (f32) {  // oneDNN 2.6: one scale per column of dst (mask bit 1), fixed at primitive creation
    std::vector<float> scales(p.w8_scales.size());
    for (std::size_t i = 0; i < scales.size(); ++i) scales[i] = p.w8_scales[i] * kActScale;
    attr.set_output_scales(1 << 1, scales);
  }
  const dnnl::matmul::primitive_desc pd(dnnl::matmul::desc(src_md, wei_any, dst_md), attr, eng);
  // W[N][K] row-major is the K x N weights matrix in format "ba"; reorder once to the blocked format.
  dnnl::memory wei_user({{p.k, p.n}, dt::s8, tag::ba}, eng, p.w8.data());
  dnnl::memory wei(pd.weights_desc(), eng);
  dnnl::reorder(wei_user, wei).execute(strm, wei_user, wei);
  void* a = u8 ? static_cast<void*>(p.a_u8.data()) : static_cast<void*>(p.a_s8.data());
  dnnl::memory src(src_md, eng, a), dst(dst_md, eng);
  const dnnl::matmul prim(pd);
  auto run = [&] {
    prim.execute(strm, {{DNNL_ARG_SRC, src}, {DNNL_ARG_WEIGHTS, wei}, {DNNL_ARG_DST, dst}});
    strm.wait();
  };
  run();
  bool ok = true;
  if (f32) {
    // Against sasq's whole output for the same operands (u8 A, zero point 0, the same scales). oneDNN
    // rounds float(acc) · (ws · as) once with the scale product rounded in float; sasq rounds
    // fmaf(fmaf(float(acc), ws, 0), as, 0) twice: both within 1.5 ulp of the exact product, so they
    // may differ by up to ~3 ulp. Tolerance: |dnnl - sasq| <= 1e-6 · |sasq| (8 ulp), exact for 0.
    sasq::AlignedBuffer<float> ref(static_cast<std::size_t>(p.m * p.n));
    sasq::gemm(MatrixView<const std::uint8_t>(p.a_u8.data(), p.m, p.k), sasq::ActivationQuant::per_tensor(kActScale), p.pw8,
               sasq::Epilogue{}, MatrixView<float>(ref.data(), p.m, p.n));
    const auto* c = static_cast<const float*>(dst.get_data_handle());
    for (std::size_t i = 0; ok && i < static_cast<std::size_t>(p.m * p.n); ++i)
      ok = std::fabs(c[i] - ref.data()[i]) <= 1e-6f * std::fabs(ref.data()[i]);
  } else {
    const auto* c = static_cast<const std::int32_t*>(dst.get_data_handle());
    std::vector<std::int32_t> out(c, c + p.m * p.n);
    ok = u8 ? verify(p, out, [&](std::int64_t r, std::int64_t col) { return p.dot(p.a_u8, p.w8, r, col, 0); }, 0.0)
            : verify(p, out, [&](std::int64_t r, std::int64_t col) { return p.dot(p.a_s8, p.w8, r, col, 0); }, 0.0);
  }
  if (!ok) {
    state.SkipWithError(f32 ? "oneDNN f32 result differs from sasq's beyond 1e-6 relative"
                            : "oneDNN result differs from the exact integer product");
    return;
  }
  for (auto _ : state) run();
  set_counters(state, p);
}
#endif

#if SASQ_BENCH_EIGEN
void bm_eigen(benchmark::State& state) {
  Problem& p = problem(state.range(0), state.range(1), state.range(2));
  const int t = static_cast<int>(state.range(3));
  std::vector<float> c(static_cast<std::size_t>(p.m * p.n));
  auto run = [&] { sasq_bench::eigen_gemm(p.a_f32.data(), p.w_f32.data(), c.data(), static_cast<int>(p.m), static_cast<int>(p.k), static_cast<int>(p.n), t); };
  run();
  if (!verify(p, c, [&](std::int64_t r, std::int64_t col) { return p.dot(p.a_s8, p.w8, r, col, 0); }, 1e-5)) {
    state.SkipWithError("Eigen result differs from the exact integer product");
    return;
  }
  for (auto _ : state) {
    run();
    benchmark::DoNotOptimize(c.data());
  }
  set_counters(state, p);
}
#endif

#if SASQ_BENCH_OPENBLAS
void bm_openblas(benchmark::State& state) {
  Problem& p = problem(state.range(0), state.range(1), state.range(2));
  openblas_set_num_threads(static_cast<int>(state.range(3)));
  std::vector<float> c(static_cast<std::size_t>(p.m * p.n));
  const int m = static_cast<int>(p.m), k = static_cast<int>(p.k), n = static_cast<int>(p.n);
  auto run = [&] {
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, m, n, k, 1.0f, p.a_f32.data(), k, p.w_f32.data(), k, 0.0f,
                c.data(), n);
  };
  run();
  if (!verify(p, c, [&](std::int64_t r, std::int64_t col) { return p.dot(p.a_s8, p.w8, r, col, 0); }, 1e-5)) {
    state.SkipWithError("OpenBLAS result differs from the exact integer product");
    return;
  }
  for (auto _ : state) {
    run();
    benchmark::DoNotOptimize(c.data());
  }
  set_counters(state, p);
}
#endif

void bm_quantize(benchmark::State& state, bool dynamic) {
  const std::int64_t rows = state.range(0), cols = state.range(1);
  std::vector<float> x(static_cast<std::size_t>(rows * cols)), scales(static_cast<std::size_t>(rows));
  std::mt19937 rng(1);
  std::normal_distribution<float> nd(0.0f, 1.0f);
  for (auto& v : x) v = nd(rng);
  std::vector<std::int8_t> q(x.size()), ref(x.size());
  MatrixView<const float> xv(x.data(), rows, cols);
  auto run = [&](MatrixView<std::int8_t> out, sasq::Isa isa) {
    if (dynamic) sasq::quantize_dynamic_per_token_s8(xv, out, scales, isa);
    else sasq::quantize_static_s8(xv, 0.02f, out, isa);
  };
  run(MatrixView<std::int8_t>(ref.data(), rows, cols), sasq::Isa::kScalar);
  run(MatrixView<std::int8_t>(q.data(), rows, cols), sasq::Isa::kAuto);
  if (q != ref) {
    state.SkipWithError("quantize result differs from the scalar kernel");
    return;
  }
  for (auto _ : state) {
    run(MatrixView<std::int8_t>(q.data(), rows, cols), sasq::Isa::kAuto);
    benchmark::DoNotOptimize(q.data());
  }
  state.counters["GBps"] = benchmark::Counter(5e-9 * static_cast<double>(rows * cols), benchmark::Counter::kIsIterationInvariantRate);
}

/// Streaming read bandwidth of this machine (abs-max over a buffer), the yardstick for decode and quantize.
void bm_stream_read(benchmark::State& state) {
  const std::int64_t n = state.range(0) / 4;
  std::vector<float> x(static_cast<std::size_t>(n), 1.0f);
  for (auto _ : state) {  // the abs-max kernel of quantize_dynamic_per_token_s8
    bool finite = true;
    float m = 0;
    switch (sasq::cpu::default_isa()) {
#if SASQ_HAS_X86_KERNELS
      case sasq::Isa::kAvx512Vnni: m = sasq::cpu::QuantizeKernel<sasq::isa::avx512_vnni>::abs_max(x.data(), n, finite); break;
      case sasq::Isa::kAvx2: m = sasq::cpu::QuantizeKernel<sasq::isa::avx2>::abs_max(x.data(), n, finite); break;
#endif
      default: m = sasq::cpu::QuantizeKernel<sasq::isa::scalar>::abs_max(x.data(), n, finite); break;
    }
    benchmark::DoNotOptimize(m);
  }
  state.counters["GBps"] = benchmark::Counter(4e-9 * static_cast<double>(n), benchmark::Counter::kIsIterationInvariantRate);
}

/// Where a sasq gemm call's time goes on the model's small shapes, timed apart: packing A alone (s8 ->
/// u8 + 128, K padded, row shifts and scales; the kernel ISA's row copy), and the whole call at K = 8
/// (one K octet: everything but the K loop, i.e. packing, per-tile setup, dequantize, epilogue, store).
/// One-thread calls with K % 4 == 0 (s8, or u8 with a per-tensor zero point) read A in place (AVX-512):
/// packing is what the multi-thread and per-token-zero-point paths pay.
void bm_pack_a(benchmark::State& state) {
  Problem& p = problem(state.range(0), state.range(1), state.range(2));
  sasq::detail::PackedActivations pa;
  const auto act = sasq::ActivationQuant::per_tensor(1.0f);
  const MatrixView<const std::int8_t> a(p.a_s8.data(), p.m, p.k);
  for (auto _ : state) {
    switch (sasq::cpu::default_isa()) {
#if SASQ_HAS_X86_KERNELS
      case sasq::Isa::kAvx512Vnni: sasq::detail::pack_activations<sasq::isa::avx512_vnni>(a, act, p.pw8.k_padded(), pa); break;
      case sasq::Isa::kAvx2: sasq::detail::pack_activations<sasq::isa::avx2>(a, act, p.pw8.k_padded(), pa); break;
#endif
      default: sasq::detail::pack_activations<sasq::isa::scalar>(a, act, p.pw8.k_padded(), pa); break;
    }
    benchmark::DoNotOptimize(pa.data.data());
  }
}

struct Shape {
  std::int64_t m, k, n;
};

std::vector<Shape> shapes() {
  std::vector<Shape> s = {{1, 4096, 4096}, {16, 4096, 4096}, {128, 4096, 4096}, {512, 4096, 4096},
                          {128, 4096, 11008}, {128, 11008, 4096}};
  for (std::int64_t m : {1, 64, 512})
    for (Shape kn : {Shape{0, 64, 64}, Shape{0, 64, 172}, Shape{0, 172, 64}}) s.push_back({m, kn.k, kn.n});
  return s;
}

template <class Fn>
void add(const std::string& name, Fn fn, const Shape& s, int threads) {
  benchmark::RegisterBenchmark(name.c_str(), fn)
      ->ArgNames({"M", "K", "N", "threads"})
      ->Args({s.m, s.k, s.n, threads})
      ->UseRealTime()
      ->Unit(benchmark::kMicrosecond);
}

void register_all() {
  for (const Shape& s : shapes()) {
    for (int t : {1, 2}) {
      add("sasq_s8s8_f32", [](benchmark::State& st) { bm_sasq(st, SasqKind::kS8S8); }, s, t);
      add("sasq_u8s8_f32", [](benchmark::State& st) { bm_sasq(st, SasqKind::kU8S8); }, s, t);
      add("sasq_w4a8g128_s8_f32", [](benchmark::State& st) { bm_sasq(st, SasqKind::kW4A8G128); }, s, t);
#if SASQ_BENCH_ONEDNN
      add("onednn_u8s8_s32", [](benchmark::State& st) { bm_onednn(st, DnnlKind::kU8S8S32); }, s, t);
      add("onednn_s8s8_s32", [](benchmark::State& st) { bm_onednn(st, DnnlKind::kS8S8S32); }, s, t);
      add("onednn_u8s8_f32", [](benchmark::State& st) { bm_onednn(st, DnnlKind::kU8S8F32); }, s, t);
#endif
#if SASQ_BENCH_EIGEN
      add("eigen_f32", bm_eigen, s, t);
#endif
#if SASQ_BENCH_OPENBLAS
      add("openblas_f32", bm_openblas, s, t);
#endif
    }
    if (s.k <= 172 && s.n <= 172 && s.m > 1) {  // the model's own shapes: overheads measured apart
      add("sasq_pack_a_s8", bm_pack_a, s, 1);
      if (s.k == 64)  // one K = 8 call per (M, N)
        add("sasq_s8s8_f32_k8", [](benchmark::State& st) { bm_sasq(st, SasqKind::kS8S8); }, Shape{s.m, 8, s.n}, 1);
    }
    // The scalar reference is single-threaded and slow: only shapes up to 2^24 multiply-adds.
    if (s.m * s.k * s.n <= (std::int64_t{1} << 24)) add("reference_s8s8_f32", bm_reference, s, 1);
  }
  for (std::int64_t rows : {1, 128, 2048}) {
    for (bool dyn : {false, true})
      benchmark::RegisterBenchmark(dyn ? "sasq_quantize_dynamic_per_token_s8" : "sasq_quantize_static_s8",
                                   [dyn](benchmark::State& st) { bm_quantize(st, dyn); })
          ->ArgNames({"rows", "cols"})
          ->Args({rows, 4096})
          ->Unit(benchmark::kMicrosecond);
  }
  benchmark::RegisterBenchmark("stream_read_f32", bm_stream_read)->ArgNames({"bytes"})->Arg(std::int64_t{1} << 28)->Unit(benchmark::kMicrosecond);
}

}  // namespace

int main(int argc, char** argv) {
  register_all();
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
