// decode_bench: the decode step's linear layers (M = 1) where weights come from DRAM or L3, in GB/s of
// packed weight bytes against the machine's stream read bandwidth measured in the same run.
//   layer7b: q, k, v, o (4096 x 4096), gate, up (11008 x 4096), down (4096 x 11008) of LLaMA-7B, one
//            gemm each per iteration: 202 MB int8 / 101 MB int4, far beyond the LLC;
//   l3:      one 4096 x 4096 projection repeated (16 MB int8 / 8 MB int4), L3-resident;
//   l2:      one 128 x 4096 projection (512 KB int8 / 256 KB int4): the kernels' own ceiling (int4
//            unpacking included), to compare with the L3 and DRAM rates.
// Implementations: sasq INT8 (per-channel), W4A8 per-channel and g128 (int8 activations, f32 out),
// oneDNN s8s8 / u8s8 matmul with int32 output (weights reordered once, outside the timing).
// Before timing, every output column of every projection is compared with the exact integer dot
// product (weight and activation scales are 1, so the f32 output must equal float(exact)).
// Names: decode_<set>/<impl>/threads:<t>; counters GBps (packed weights + scales + column sums read per
// second); the time is per layer (all its projections). Two read-bandwidth probes over a 16 MiB (L3) or
// 1 GiB (DRAM) buffer, GBps: stream_read/bytes:<b>/threads:<t> is the abs-max reduction of the dynamic
// quantizer (a real kernel, but one dependent max chain per vector), read_xor/... the plain reader:
// eight independent XOR accumulators over 512 bytes per step, the most a core's loads can stream.
#include <benchmark/benchmark.h>

#include <cstdint>
#include <cstdio>
#include <cstring>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "sasq/core/config.hpp"
#include "sasq/cpu/executor.hpp"
#include "sasq/gemm/gemm.hpp"
#include "sasq/gemm/quantize_activations.hpp"

#if SASQ_HAS_X86_KERNELS
#include <immintrin.h>
#endif

#if SASQ_BENCH_ONEDNN
#include <omp.h>

#include <oneapi/dnnl/dnnl.hpp>
#endif

namespace {

using sasq::MatrixView;

struct Shape {
  std::int64_t n, k;
};
constexpr Shape kLayer7b[] = {{4096, 4096}, {4096, 4096}, {4096, 4096}, {4096, 4096},
                              {11008, 4096}, {11008, 4096}, {4096, 11008}};

/// splitmix64: fast reproducible random bytes for 200 MB of weights.
std::uint64_t next(std::uint64_t& s) {
  std::uint64_t z = (s += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

enum Impl { kInt8, kW4A8, kW4A8G128, kImpls };
const char* const kImplNames[] = {"sasq_int8", "sasq_w4a8", "sasq_w4a8g128"};

/// One projection: raw int8 weights (int4 weights are w8 >> 4, in [-8, 7]), an int8 activation row,
/// exact dot products, and the packed forms.
struct Projection {
  std::int64_t n, k;
  std::vector<std::int8_t> w8, a;
  std::vector<std::int64_t> exact8, exact4;
  sasq::PackedWeights packed[kImpls];

  Projection(Shape s, std::uint64_t seed) : n(s.n), k(s.k), w8(static_cast<std::size_t>(n * k)), a(static_cast<std::size_t>(k)) {
    for (std::size_t i = 0; i < w8.size(); i += 8) {
      const std::uint64_t r = next(seed);
      for (int j = 0; j < 8 && i + j < w8.size(); ++j) w8[i + j] = static_cast<std::int8_t>(r >> (8 * j));
    }
    for (auto& v : a) v = static_cast<std::int8_t>(next(seed));
    std::vector<std::int8_t> w4(w8.size());
    for (std::size_t i = 0; i < w8.size(); ++i) w4[i] = static_cast<std::int8_t>(w8[i] >> 4);
    exact8.resize(static_cast<std::size_t>(n));
    exact4.resize(static_cast<std::size_t>(n));
    for (std::int64_t c = 0; c < n; ++c) {
      std::int64_t s8 = 0, s4 = 0;
      for (std::int64_t j = 0; j < k; ++j) {
        s8 += std::int64_t{a[static_cast<std::size_t>(j)]} * w8[static_cast<std::size_t>(c * k + j)];
        s4 += std::int64_t{a[static_cast<std::size_t>(j)]} * w4[static_cast<std::size_t>(c * k + j)];
      }
      exact8[static_cast<std::size_t>(c)] = s8;
      exact4[static_cast<std::size_t>(c)] = s4;
    }
    const std::vector<float> pc(static_cast<std::size_t>(n), 1.0f), g(static_cast<std::size_t>(n * ((k + 127) / 128)), 1.0f);
    packed[kInt8] = sasq::pack_weights(MatrixView<const std::int8_t>(w8.data(), n, k), pc, {8});
    packed[kW4A8] = sasq::pack_weights(MatrixView<const std::int8_t>(w4.data(), n, k), pc, {4});
    packed[kW4A8G128] = sasq::pack_weights(MatrixView<const std::int8_t>(w4.data(), n, k), g, {4, 128});
  }
  /// Bytes a decode gemm streams: packed weights, scales and column sums (int4 with groups and s8
  /// activations reads no column sums: its group loop starts from the activations' sums).
  double bytes(Impl i) const {
    const sasq::PackedWeights& p = packed[i];
    const int per_group = i == kW4A8G128 ? 4 : 8;  // bytes per column and group: scale (+ column sum)
    return static_cast<double>(p.panels() / sasq::kPanelsPerBlock * p.block_bytes() +
                               p.panels() * p.groups() * sasq::kPanelCols * per_group);
  }
};

/// The weight sets, built on first use: "layer7b" (7 projections), "l3" (one 4096²), "l2" (128 x 4096).
std::vector<std::unique_ptr<Projection>>& weight_set(const std::string& set) {
  static std::vector<std::unique_ptr<Projection>> layer, l3, l2;
  auto& v = set == "l3" ? l3 : set == "l2" ? l2 : layer;
  if (v.empty()) {
    if (set == "l3") {
      v.push_back(std::make_unique<Projection>(Shape{4096, 4096}, 99));
    } else if (set == "l2") {
      v.push_back(std::make_unique<Projection>(Shape{128, 4096}, 77));
    } else {
      std::uint64_t seed = 1;
      for (const Shape& s : kLayer7b) v.push_back(std::make_unique<Projection>(s, seed++ * 1000003));
    }
  }
  return v;
}

void report(benchmark::State& state, double bytes) {
  state.counters["GBps"] = benchmark::Counter(bytes * 1e-9, benchmark::Counter::kIsIterationInvariantRate);
}

void bm_sasq(benchmark::State& state, const std::string& set, Impl impl) {
  auto& ps = weight_set(set);
  sasq::GemmOptions opt;
  opt.threads = static_cast<int>(state.range(0));
  std::vector<std::vector<float>> y(ps.size());
  double bytes = 0;
  auto run = [&] {
    for (std::size_t i = 0; i < ps.size(); ++i) {
      const Projection& p = *ps[i];
      sasq::gemm(MatrixView<const std::int8_t>(p.a.data(), 1, p.k), sasq::ActivationQuant::per_tensor(1.0f), p.packed[impl],
                 sasq::Epilogue{}, MatrixView<float>(y[i].data(), 1, p.n), opt);
    }
  };
  for (std::size_t i = 0; i < ps.size(); ++i) {
    y[i].assign(static_cast<std::size_t>(ps[i]->n), -1.0f);
    bytes += ps[i]->bytes(impl);
  }
  run();
  for (std::size_t i = 0; i < ps.size(); ++i) {
    const auto& exact = impl == kInt8 ? ps[i]->exact8 : ps[i]->exact4;
    for (std::size_t c = 0; c < exact.size(); ++c)
      if (y[i][c] != static_cast<float>(exact[c])) {
        state.SkipWithError("sasq output differs from the exact integer dot product");
        return;
      }
  }
  for (auto _ : state) {
    run();
    benchmark::ClobberMemory();
  }
  report(state, bytes);
}

#if SASQ_BENCH_ONEDNN
void bm_onednn(benchmark::State& state, const std::string& set, bool u8) {
  using dt = dnnl::memory::data_type;
  using tag = dnnl::memory::format_tag;
  auto& ps = weight_set(set);
  omp_set_num_threads(static_cast<int>(state.range(0)));
  dnnl::engine eng(dnnl::engine::kind::cpu, 0);
  dnnl::stream strm(eng);
  struct Layer {
    dnnl::matmul prim;
    dnnl::memory src, wei, dst;
    std::vector<std::uint8_t> a_u8;
  };
  std::vector<Layer> layers(ps.size());
  double bytes = 0;
  for (std::size_t i = 0; i < ps.size(); ++i) {
    Projection& p = *ps[i];
    Layer& l = layers[i];
    const dnnl::memory::desc src_md({1, p.k}, u8 ? dt::u8 : dt::s8, tag::ab), dst_md({1, p.n}, dt::s32, tag::ab);
    const dnnl::matmul::primitive_desc pd(dnnl::matmul::desc(src_md, dnnl::memory::desc({p.k, p.n}, dt::s8, tag::any), dst_md), eng);
    dnnl::memory user({{p.k, p.n}, dt::s8, tag::ba}, eng, p.w8.data());
    l.wei = dnnl::memory(pd.weights_desc(), eng);
    dnnl::reorder(user, l.wei).execute(strm, user, l.wei);
    if (u8) {  // a + 128 as u8 (zero point 128 is not applied: the exact result is then Σ (a + 128) w)
      l.a_u8.resize(p.a.size());
      for (std::size_t j = 0; j < p.a.size(); ++j) l.a_u8[j] = static_cast<std::uint8_t>(p.a[j] + 128);
      l.src = dnnl::memory(src_md, eng, l.a_u8.data());
    } else {
      l.src = dnnl::memory(src_md, eng, p.a.data());
    }
    l.dst = dnnl::memory(dst_md, eng);
    l.prim = dnnl::matmul(pd);
    bytes += static_cast<double>(pd.weights_desc().get_size());
  }
  strm.wait();
  auto run = [&] {
    for (Layer& l : layers) l.prim.execute(strm, {{DNNL_ARG_SRC, l.src}, {DNNL_ARG_WEIGHTS, l.wei}, {DNNL_ARG_DST, l.dst}});
    strm.wait();
  };
  run();
  for (std::size_t i = 0; i < ps.size(); ++i) {
    const Projection& p = *ps[i];
    const auto* c = static_cast<const std::int32_t*>(layers[i].dst.get_data_handle());
    for (std::int64_t col = 0; col < p.n; ++col) {
      std::int64_t e = p.exact8[static_cast<std::size_t>(col)];
      if (u8)
        for (std::int64_t j = 0; j < p.k; ++j) e += 128 * std::int64_t{p.w8[static_cast<std::size_t>(col * p.k + j)]};
      if (c[col] != e) {
        state.SkipWithError("oneDNN output differs from the exact integer dot product");
        return;
      }
    }
  }
  for (auto _ : state) run();
  report(state, bytes);
}
#endif

/// The 16 MiB or 1 GiB probe buffer of `n` floats (all 1.0f), built once per size.
sasq::AlignedBuffer<float>& probe_buffer(std::int64_t n) {
  static std::map<std::int64_t, sasq::AlignedBuffer<float>> buffers;
  sasq::AlignedBuffer<float>& x = buffers[n];
  if (x.empty()) {
    x = sasq::AlignedBuffer<float>(static_cast<std::size_t>(n));
    for (std::int64_t i = 0; i < n; ++i) x[static_cast<std::size_t>(i)] = 1.0f;
  }
  return x;
}

/// XOR of `bytes` bytes (a multiple of 512) read as 64-bit words: eight independent accumulators, so
/// nothing but the loads limits the rate.
std::uint64_t xor_read_scalar(const std::uint8_t* p, std::int64_t bytes) {
  std::uint64_t x[8] = {};
  for (std::int64_t i = 0; i < bytes; i += 64)
    for (int j = 0; j < 8; ++j) {
      std::uint64_t v;
      std::memcpy(&v, p + i + 8 * j, 8);
      x[j] ^= v;
    }
  return x[0] ^ x[1] ^ x[2] ^ x[3] ^ x[4] ^ x[5] ^ x[6] ^ x[7];
}

#if SASQ_HAS_X86_KERNELS
SASQ_TARGET("avx2") std::uint64_t xor_read_avx2(const std::uint8_t* p, std::int64_t bytes) {
  __m256i x[8];
  for (auto& v : x) v = _mm256_setzero_si256();
  for (std::int64_t i = 0; i < bytes; i += 256)
    for (int j = 0; j < 8; ++j)
      x[j] = _mm256_xor_si256(x[j], _mm256_load_si256(reinterpret_cast<const __m256i*>(p + i + 32 * j)));
  for (int j = 1; j < 8; ++j) x[0] = _mm256_xor_si256(x[0], x[j]);
  return static_cast<std::uint64_t>(_mm256_extract_epi64(x[0], 0) ^ _mm256_extract_epi64(x[0], 3));
}

SASQ_TARGET("avx512f") std::uint64_t xor_read_avx512(const std::uint8_t* p, std::int64_t bytes) {
  __m512i x[8];
  for (auto& v : x) v = _mm512_setzero_si512();
  for (std::int64_t i = 0; i < bytes; i += 512)
    for (int j = 0; j < 8; ++j) x[j] = _mm512_xor_si512(x[j], _mm512_load_si512(p + i + 64 * j));
  for (int j = 1; j < 8; ++j) x[0] = _mm512_xor_si512(x[0], x[j]);
  return static_cast<std::uint64_t>(_mm512_reduce_or_epi64(x[0]));
}
#endif

/// Read bandwidth, the plain reader: xor_read_* over a buffer of `bytes` (16 MiB: L3; 1 GiB: DRAM), split
/// in contiguous 512-byte aligned parts over `threads` threads of the pool.
void bm_read_xor(benchmark::State& state) {
  const std::int64_t bytes = state.range(0), blocks = bytes / 512;
  const int threads = static_cast<int>(state.range(1));
  const auto* data = reinterpret_cast<const std::uint8_t*>(probe_buffer(bytes / 4).data());
  std::vector<std::uint64_t> partial(static_cast<std::size_t>(threads));
  auto read = [&](int t) {
    const std::uint8_t* p = data + blocks * t / threads * 512;
    const std::int64_t n = (blocks * (t + 1) / threads - blocks * t / threads) * 512;
    std::uint64_t& r = partial[static_cast<std::size_t>(t)];
    switch (sasq::cpu::default_isa()) {
#if SASQ_HAS_X86_KERNELS
      case sasq::Isa::kAvx512Vnni: r = xor_read_avx512(p, n); break;
      case sasq::Isa::kAvx2: r = xor_read_avx2(p, n); break;
#endif
      default: r = xor_read_scalar(p, n); break;
    }
  };
  for (auto _ : state) {
    sasq::cpu::parallel_run({}, threads, read);
    benchmark::DoNotOptimize(partial.data());
  }
  for (std::uint64_t r : partial)  // every float is 1.0f: the XOR of an even count of equal words is 0
    if (r != 0) state.SkipWithError("read_xor: the buffer's XOR is not 0");
  state.counters["GBps"] = benchmark::Counter(1e-9 * static_cast<double>(bytes), benchmark::Counter::kIsIterationInvariantRate);
}

/// Read bandwidth: the AVX-512 / AVX2 abs-max reduction of quantize_dynamic_per_token_s8 over a buffer
/// of `bytes` (16 MiB: L3; 1 GiB: DRAM), split in contiguous parts over `threads` threads of the pool.
void bm_stream_read(benchmark::State& state) {
  const std::int64_t n = state.range(0) / 4;
  const int threads = static_cast<int>(state.range(1));
  sasq::AlignedBuffer<float>& x = probe_buffer(n);
  std::vector<float> partial(static_cast<std::size_t>(threads));
  auto read = [&](int t) {
    const std::int64_t b = n * t / threads, e = n * (t + 1) / threads;
    bool finite = true;
    float& m = partial[static_cast<std::size_t>(t)];
    switch (sasq::cpu::default_isa()) {
#if SASQ_HAS_X86_KERNELS
      case sasq::Isa::kAvx512Vnni: m = sasq::cpu::QuantizeKernel<sasq::isa::avx512_vnni>::abs_max(x.data() + b, e - b, finite); break;
      case sasq::Isa::kAvx2: m = sasq::cpu::QuantizeKernel<sasq::isa::avx2>::abs_max(x.data() + b, e - b, finite); break;
#endif
      default: m = sasq::cpu::QuantizeKernel<sasq::isa::scalar>::abs_max(x.data() + b, e - b, finite); break;
    }
  };
  for (auto _ : state) {
    sasq::cpu::parallel_run({}, threads, read);
    benchmark::DoNotOptimize(partial.data());
  }
  state.counters["GBps"] = benchmark::Counter(4e-9 * static_cast<double>(n), benchmark::Counter::kIsIterationInvariantRate);
}

void register_all() {
  for (int t : {1, 2}) {
    for (std::int64_t bytes : {std::int64_t{1} << 24, std::int64_t{1} << 30}) {
      benchmark::RegisterBenchmark("stream_read", bm_stream_read)->ArgNames({"bytes", "threads"})->Args({bytes, t})->UseRealTime()->Unit(benchmark::kMicrosecond);
      benchmark::RegisterBenchmark("read_xor", bm_read_xor)->ArgNames({"bytes", "threads"})->Args({bytes, t})->UseRealTime()->Unit(benchmark::kMicrosecond);
    }
    for (const std::string set : {"l2", "l3", "layer7b"}) {
      for (Impl i : {kInt8, kW4A8, kW4A8G128})
        benchmark::RegisterBenchmark(("decode_" + set + "/" + kImplNames[i]).c_str(), [set, i](benchmark::State& st) { bm_sasq(st, set, i); })
            ->ArgName("threads")->Arg(t)->UseRealTime()->Unit(benchmark::kMicrosecond);
#if SASQ_BENCH_ONEDNN
      for (bool u8 : {false, true})
        benchmark::RegisterBenchmark(("decode_" + set + (u8 ? "/onednn_u8s8" : "/onednn_s8s8")).c_str(), [set, u8](benchmark::State& st) { bm_onednn(st, set, u8); })
            ->ArgName("threads")->Arg(t)->UseRealTime()->Unit(benchmark::kMicrosecond);
#endif
    }
  }
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
