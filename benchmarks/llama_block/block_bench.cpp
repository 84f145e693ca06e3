// block_bench: one LLaMA-7B-shaped decoder block (dim 4096, 32 heads of 128, hidden 11008; random
// weights, an input with a few heavy channels): prefill of 512 tokens and decode of one token against a
// 512-token KV cache, 1 and 2 threads, tokens/s for
//   fp32_eigen        FP32 linear layers with Eigen;
//   w8a8_dynamic      sasq INT8 weights (per channel), per-token int8 activations quantized in a pass of
//                     their own before each linear layer;
//   w8a8_static       static activation scales (SASQ's) with the quantize fused into its producer:
//                     RMSNorm emits int8 row by row, attention output is quantized as each head writes it,
//                     and the gate/up gemm's SwiGLU epilogue emits int8 for down_proj;
//   w4a8_static       as w8a8_static with int4 weights, per channel;
//   w4a8g128_static   as w8a8_static with int4 weights, group size 128 (6.25 % more bytes read in
//                     decode: its scales; the column sums are packed, but decode with s8 activations
//                     does not read them);
//   onednn_w8a8_dynamic  the peer: oneDNN s8s8 matmuls (int32 out) composed with the same per-token
//                     quantize, a dequantize pass and a separate SwiGLU pass.
// Shared by all: FP32 RMSNorm, RoPE, causal attention, residual adds (fp32_ops.cpp). q, k, v are one
// fused projection; gate and up are one (sasq: a gate/up pair with the SwiGLU epilogue).
// Static scales are calibrated (abs-max / 127) on the FP32 block's own activations.
// Before timing, each quantized variant's rows 0 and M-1 of its v projection, its gate/up output (int8
// for static) and its down projection are compared with the same epilogue applied to exact integer dot
// products (bit-equal); counter rel_err = ||y - y_fp32|| / ||y_fp32|| of the block output.
#include <benchmark/benchmark.h>

#include <cmath>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "fp32_ops.hpp"
#include "sasq/cpu/executor.hpp"
#include "sasq/gemm/gemm.hpp"
#include "sasq/gemm/quantize_activations.hpp"

#if SASQ_BENCH_ONEDNN
#include <omp.h>

#include <oneapi/dnnl/dnnl.hpp>
#endif

namespace {

using namespace block;
using sasq::MatrixView;

constexpr int kPrefill = 512;
constexpr std::ptrdiff_t kD = kDim, kF = kHidden;

std::uint64_t next(std::uint64_t& s) {
  std::uint64_t z = (s += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}
/// Uniform in [-1, 1).
float uniform(std::uint64_t& s) { return static_cast<float>(static_cast<double>(next(s) >> 11) * 0x1.0p-52 - 1.0); }

/// Weight quantizations of the block: int8 per channel, int4 per channel, int4 with group size 128.
enum Wq { kInt8, kInt4, kInt4G128, kWqCount };

/// One quantization of a weight matrix: values (one per int8), scales [n][groups], packed form.
struct QuantizedWeights {
  std::vector<std::int8_t> q;
  std::vector<float> scales;
  std::ptrdiff_t groups = 1;
  sasq::PackedWeights packed;
};

/// One weight matrix W[n][k]: FP32 and its three quantizations (abs-max per channel or group).
struct Linear {
  std::ptrdiff_t n = 0, k = 0;
  std::vector<float> f32;
  QuantizedWeights wq[kWqCount];

  Linear(std::ptrdiff_t n_, std::ptrdiff_t k_, bool gate_up, std::uint64_t seed) : n(n_), k(k_) {
    f32.resize(static_cast<std::size_t>(n * k));
    for (auto& v : f32) v = 0.035f * uniform(seed);  // std ~0.02
    for (int f = 0; f < kWqCount; ++f) {
      QuantizedWeights& qw = wq[f];
      const int bits = f == kInt8 ? 8 : 4, group = f == kInt4G128 ? 128 : 0;
      const float qmax = bits == 8 ? 127.0f : 7.0f, qmin = bits == 8 ? -127.0f : -8.0f;
      const std::ptrdiff_t gs = group ? group : k;
      qw.groups = k / gs;
      qw.q.resize(f32.size());
      qw.scales.resize(static_cast<std::size_t>(n * qw.groups));
      for (std::ptrdiff_t r = 0; r < n; ++r)
        for (std::ptrdiff_t g = 0; g < qw.groups; ++g) {
          const float* w = f32.data() + r * k + g * gs;
          float mx = 0;
          for (std::ptrdiff_t j = 0; j < gs; ++j) mx = std::max(mx, std::fabs(w[j]));
          const float sc = mx / qmax;
          qw.scales[static_cast<std::size_t>(r * qw.groups + g)] = sc;
          for (std::ptrdiff_t j = 0; j < gs; ++j)
            qw.q[static_cast<std::size_t>(r * k + g * gs + j)] = static_cast<std::int8_t>(std::lrint(std::clamp(w[j] / sc, qmin, qmax)));
        }
      qw.packed = sasq::pack_weights(MatrixView<const std::int8_t>(qw.q.data(), n, k), qw.scales, {bits, group, gate_up});
    }
  }
};

/// The block's weights, input and calibrated static scales, built once.
struct Block {
  Linear qkv{3 * kD, kD, false, 11}, o{kD, kD, false, 12}, gate_up{2 * kF, kD, true, 13}, down{kD, kF, false, 14};
  std::vector<float> g1, g2, x, x_dec;
  /// Static activation scales (abs-max / 127 of the FP32 block's prefill activations).
  float s_attn_in = 0, s_o_in = 0, s_mlp_in = 0, s_down_in = 0;
  /// FP32 outputs (prefill, decode) and the FP32 prefill's q|k|v rows: the KV cache every decode uses.
  std::vector<float> y_fp32_prefill, y_fp32_decode, cache;
  Block() {
    std::uint64_t seed = 5;
    g1.resize(kD);
    g2.resize(kD);
    for (auto& v : g1) v = 1.0f + 0.1f * uniform(seed);
    for (auto& v : g2) v = 1.0f + 0.1f * uniform(seed);
    x.resize(static_cast<std::size_t>(kPrefill * kD));
    x_dec.resize(kD);
    for (auto& v : x) v = uniform(seed);
    for (auto& v : x_dec) v = uniform(seed);
    for (int heavy : {7, 1100, 2345, 4000}) {  // outlier input channels, as LLaMA's residual stream has
      for (int t = 0; t < kPrefill; ++t) x[static_cast<std::size_t>(t * kD + heavy)] *= 10.0f;
      x_dec[static_cast<std::size_t>(heavy)] *= 10.0f;
    }
  }
};

Block& the_block() {
  static Block b;
  return b;
}

float absmax(const float* p, std::size_t n) {
  float m = 0;
  for (std::size_t i = 0; i < n; ++i) m = std::max(m, std::fabs(p[i]));
  return m;
}

/// Activations of one variant: the q|k|v buffer (its k, v columns are the KV cache) and scratch.
struct State {
  std::vector<float> qkv, xn, attn, tmp, h, gu, act, out;
  std::vector<float> sc_qkv, sc_o, sc_mlp, sc_down;  // per-token scales of the dynamic variants
  std::vector<std::int8_t> xq, aq, hq, sq;
  std::vector<std::int32_t> acc;
  State() {
    const std::size_t rows = kPrefill + 1;
    qkv.assign(rows * kQkvCols, 0.0f);
    for (auto* v : {&xn, &attn, &tmp, &h, &out}) v->assign(rows * kD, 0.0f);
    gu.assign(rows * 2 * kF, 0.0f);
    act.assign(rows * kF, 0.0f);
    for (auto* v : {&sc_qkv, &sc_o, &sc_mlp, &sc_down}) v->assign(rows, 1.0f);
    for (auto* v : {&xq, &aq, &hq}) v->assign(rows * kD, 0);
    sq.assign(rows * kF, 0);
    acc.assign(rows * 2 * kF, 0);
  }
};

enum class Variant { kFp32, kW8A8Dynamic, kW8A8Static, kW4A8Static, kW4A8G128Static, kOneDnn };

/// The weight quantization of a sasq variant.
Wq weights_of(Variant v) { return v == Variant::kW4A8Static ? kInt4 : v == Variant::kW4A8G128Static ? kInt4G128 : kInt8; }

/// What a benchmark's run needs: the variant, its thread count and (oneDNN) its primitives.
struct Runner;
void run_block(Runner& r, int pos0, int rows);

#if SASQ_BENCH_ONEDNN
struct OneDnnLinear {
  dnnl::matmul prim;
  dnnl::memory wei;
  const Linear* lin = nullptr;
};
#endif

struct Runner {
  Variant v;
  int threads, rows;
  bool calibrate = false;
  Block& b = the_block();
  State s;
  ParallelFor pf;
#if SASQ_BENCH_ONEDNN
  std::unique_ptr<dnnl::engine> eng;
  std::unique_ptr<dnnl::stream> strm;
  OneDnnLinear d_qkv, d_o, d_gu, d_down;
#endif
  Runner(Variant v_, int t, int rows_) : v(v_), threads(t), rows(rows_) {
    if (v == Variant::kFp32 || v == Variant::kOneDnn) {
      pf = omp_parallel_for();
      set_eigen_threads(t);
    } else {
      pf = [](int n, const std::function<void(int)>& task) { sasq::cpu::parallel_run({}, n, task); };
      set_eigen_threads(1);
    }
#if SASQ_BENCH_ONEDNN
    omp_set_num_threads(t);
    if (v == Variant::kOneDnn) {
      eng = std::make_unique<dnnl::engine>(dnnl::engine::kind::cpu, 0);
      strm = std::make_unique<dnnl::stream>(*eng);
      for (auto [d, lin] : {std::pair{&d_qkv, &b.qkv}, {&d_o, &b.o}, {&d_gu, &b.gate_up}, {&d_down, &b.down}}) {
        using dt = dnnl::memory::data_type;
        using tag = dnnl::memory::format_tag;
        const dnnl::memory::dim rt = rows;
        const dnnl::matmul::primitive_desc pd(
            dnnl::matmul::desc(dnnl::memory::desc({rt, lin->k}, dt::s8, tag::ab),
                               dnnl::memory::desc({lin->k, lin->n}, dt::s8, tag::any),
                               dnnl::memory::desc({rt, lin->n}, dt::s32, tag::ab)),
            *eng);
        dnnl::memory user({{lin->k, lin->n}, dt::s8, tag::ba}, *eng, const_cast<std::int8_t*>(lin->wq[kInt8].q.data()));
        d->wei = dnnl::memory(pd.weights_desc(), *eng);
        dnnl::reorder(user, d->wei).execute(*strm, user, d->wei);
        d->prim = dnnl::matmul(pd);
        d->lin = lin;
      }
      strm->wait();
    }
#endif
  }

  const sasq::PackedWeights& packed(const Linear& l) const { return l.wq[weights_of(v)].packed; }
  sasq::GemmOptions opt() const {
    sasq::GemmOptions o;
    o.threads = threads;
    return o;
  }
};

/// y = x · Wᵀ with per-token dynamic int8 activations (sasq or oneDNN), f32 out.
void linear_dynamic(Runner& r, const Linear& l, const float* x, std::vector<std::int8_t>& xq, std::vector<float>& scales,
                    int rows, float* y, std::ptrdiff_t ldy) {
  const MatrixView<const float> xv(x, rows, l.k);
  const MatrixView<std::int8_t> qv(xq.data(), rows, l.k);
  sasq::Span<float> sc(scales.data(), static_cast<std::size_t>(rows));
  sasq::quantize_dynamic_per_token_s8(xv, qv, sc);
  if (r.v == Variant::kOneDnn) {
#if SASQ_BENCH_ONEDNN
    OneDnnLinear& d = &l == &r.b.qkv ? r.d_qkv : &l == &r.b.o ? r.d_o : &l == &r.b.gate_up ? r.d_gu : r.d_down;
    using dt = dnnl::memory::data_type;
    using tag = dnnl::memory::format_tag;
    dnnl::memory src({{rows, l.k}, dt::s8, tag::ab}, *r.eng, xq.data());
    dnnl::memory dst({{rows, l.n}, dt::s32, tag::ab}, *r.eng, r.s.acc.data());
    d.prim.execute(*r.strm, {{DNNL_ARG_SRC, src}, {DNNL_ARG_WEIGHTS, d.wei}, {DNNL_ARG_DST, dst}});
    r.strm->wait();
    if (ldy == l.n) {
      dequantize(r.s.acc.data(), l.wq[kInt8].scales.data(), scales.data(), y, rows, static_cast<int>(l.n));
    } else {  // rows of the q|k|v buffer
      for (int i = 0; i < rows; ++i)
        dequantize(r.s.acc.data() + i * l.n, l.wq[kInt8].scales.data(), scales.data() + i, y + i * ldy, 1, static_cast<int>(l.n));
    }
#endif
    return;
  }
  sasq::gemm(MatrixView<const std::int8_t>(xq.data(), rows, l.k), sasq::ActivationQuant::per_token(sc), l.wq[kInt8].packed, sasq::Epilogue{},
             MatrixView<float>(y, rows, l.n, ldy), r.opt());
}

void run_block(Runner& r, int pos0, int rows) {
  Block& b = r.b;
  auto calibrate = [&](float& scale, const std::vector<float>& v, std::size_t count) {
    if (r.calibrate) scale = absmax(v.data(), count) / 127.0f;
  };
  State& s = r.s;
  const float* x = pos0 == 0 ? b.x.data() : b.x_dec.data();
  float* qkv_rows = s.qkv.data() + static_cast<std::ptrdiff_t>(pos0) * kQkvCols;
  const std::size_t n = static_cast<std::size_t>(rows) * kD;
  const bool is_static = r.v == Variant::kW8A8Static || r.v == Variant::kW4A8Static || r.v == Variant::kW4A8G128Static;
  // Attention input.
  if (r.v == Variant::kFp32) {
    rmsnorm(x, b.g1.data(), s.xn.data(), rows);
    calibrate(b.s_attn_in, s.xn, n);
    eigen_linear(s.xn.data(), b.qkv.f32.data(), qkv_rows, rows, kDim, kQkvCols);
  } else if (is_static) {  // RMSNorm emits int8: each row is quantized while it is in L1
    for (int i = 0; i < rows; ++i) {
      rmsnorm(x + static_cast<std::ptrdiff_t>(i) * kD, b.g1.data(), s.xn.data(), 1);
      sasq::quantize_static_s8(MatrixView<const float>(s.xn.data(), 1, kD), b.s_attn_in, MatrixView<std::int8_t>(s.xq.data() + i * kD, 1, kD));
    }
    sasq::gemm(MatrixView<const std::int8_t>(s.xq.data(), rows, kD), sasq::ActivationQuant::per_tensor(b.s_attn_in), r.packed(b.qkv),
               sasq::Epilogue{}, MatrixView<float>(qkv_rows, rows, kQkvCols), r.opt());
  } else {
    rmsnorm(x, b.g1.data(), s.xn.data(), rows);
    linear_dynamic(r, b.qkv, s.xn.data(), s.xq, s.sc_qkv, rows, qkv_rows, kQkvCols);
  }
  rope(s.qkv.data(), pos0, rows);
  // Attention; static: each head's output is quantized as it is written.
  if (is_static) {
    attention(s.qkv.data(), pos0, rows, r.pf, r.threads, [&](int i, int h, const float* o) {
      sasq::quantize_static_s8(MatrixView<const float>(o, 1, kHeadDim), b.s_o_in,
                               MatrixView<std::int8_t>(s.aq.data() + i * kD + h * kHeadDim, 1, kHeadDim));
    });
    sasq::gemm(MatrixView<const std::int8_t>(s.aq.data(), rows, kD), sasq::ActivationQuant::per_tensor(b.s_o_in), r.packed(b.o),
               sasq::Epilogue{}, MatrixView<float>(s.tmp.data(), rows, kD), r.opt());
  } else {
    attention(s.qkv.data(), pos0, rows, r.pf, r.threads, [&](int i, int h, const float* o) {
      std::copy(o, o + kHeadDim, s.attn.data() + i * kD + h * kHeadDim);
    });
    calibrate(b.s_o_in, s.attn, n);
    if (r.v == Variant::kFp32) eigen_linear(s.attn.data(), b.o.f32.data(), s.tmp.data(), rows, kDim, kDim);
    else linear_dynamic(r, b.o, s.attn.data(), s.aq, s.sc_o, rows, s.tmp.data(), kD);
  }
  std::copy(x, x + n, s.h.data());
  add(s.h.data(), s.tmp.data(), n);
  // MLP.
  if (r.v == Variant::kFp32) {
    rmsnorm(s.h.data(), b.g2.data(), s.xn.data(), rows);
    calibrate(b.s_mlp_in, s.xn, n);
    eigen_linear(s.xn.data(), b.gate_up.f32.data(), s.gu.data(), rows, kDim, 2 * kHidden);
    swiglu(s.gu.data(), s.act.data(), rows);
    calibrate(b.s_down_in, s.act, static_cast<std::size_t>(rows) * kF);
    eigen_linear(s.act.data(), b.down.f32.data(), s.tmp.data(), rows, kHidden, kDim);
  } else if (is_static) {
    for (int i = 0; i < rows; ++i) {
      rmsnorm(s.h.data() + static_cast<std::ptrdiff_t>(i) * kD, b.g2.data(), s.xn.data(), 1);
      sasq::quantize_static_s8(MatrixView<const float>(s.xn.data(), 1, kD), b.s_mlp_in, MatrixView<std::int8_t>(s.hq.data() + i * kD, 1, kD));
    }
    sasq::Epilogue swiglu_s8;  // SwiGLU epilogue emits down_proj's int8 input
    swiglu_s8.activation = sasq::Activation::kSwiGlu;
    swiglu_s8.output_scale = b.s_down_in;
    sasq::gemm(MatrixView<const std::int8_t>(s.hq.data(), rows, kD), sasq::ActivationQuant::per_tensor(b.s_mlp_in),
               r.packed(b.gate_up), swiglu_s8, MatrixView<std::int8_t>(s.sq.data(), rows, kF), r.opt());
    sasq::gemm(MatrixView<const std::int8_t>(s.sq.data(), rows, kF), sasq::ActivationQuant::per_tensor(b.s_down_in),
               r.packed(b.down), sasq::Epilogue{}, MatrixView<float>(s.tmp.data(), rows, kD), r.opt());
  } else {
    rmsnorm(s.h.data(), b.g2.data(), s.xn.data(), rows);
    if (r.v == Variant::kOneDnn) {
      linear_dynamic(r, b.gate_up, s.xn.data(), s.hq, s.sc_mlp, rows, s.gu.data(), 2 * kF);
      swiglu(s.gu.data(), s.act.data(), rows);
    } else {  // the gate/up pair's SwiGLU epilogue, f32 out
      sasq::Span<float> sc(s.sc_mlp.data(), static_cast<std::size_t>(rows));
      sasq::quantize_dynamic_per_token_s8(MatrixView<const float>(s.xn.data(), rows, kD), MatrixView<std::int8_t>(s.hq.data(), rows, kD), sc);
      sasq::Epilogue swiglu_f32;
      swiglu_f32.activation = sasq::Activation::kSwiGlu;
      sasq::gemm(MatrixView<const std::int8_t>(s.hq.data(), rows, kD), sasq::ActivationQuant::per_token(sc), b.gate_up.wq[kInt8].packed, swiglu_f32,
                 MatrixView<float>(s.act.data(), rows, kF), r.opt());
    }
    linear_dynamic(r, b.down, s.act.data(), s.sq, s.sc_down, rows, s.tmp.data(), kD);
  }
  std::copy(s.h.data(), s.h.data() + n, s.out.data());
  add(s.out.data(), s.tmp.data(), n);
}

/// The FP32 prefill (calibrating the static scales, keeping its KV cache) and decode, once.
Block& prepared_block() {
  Block& b = the_block();
  if (b.cache.empty()) {
    Runner r(Variant::kFp32, 2, kPrefill);
    r.calibrate = true;
    run_block(r, 0, kPrefill);
    b.y_fp32_prefill.assign(r.s.out.begin(), r.s.out.begin() + kPrefill * kD);
    b.cache.assign(r.s.qkv.begin(), r.s.qkv.begin() + kPrefill * kQkvCols);
    r.calibrate = false;
    run_block(r, kPrefill, 1);
    b.y_fp32_decode.assign(r.s.out.begin(), r.s.out.begin() + kD);
  }
  return b;
}

/// Σ_k a[k] · w[k] over [k0, k1), exact.
std::int64_t dot(const std::int8_t* a, const std::int8_t* w, std::ptrdiff_t k0, std::ptrdiff_t k1) {
  std::int64_t s = 0;
  for (std::ptrdiff_t j = k0; j < k1; ++j) s += std::int64_t{a[j]} * w[j];
  return s;
}

/// The gemm epilogue (epilogue.hpp: dequantize per group, then row scale, no bias) on exact dot
/// products of activation row `a` with weight row `row` of quantization f of l.
float expected(const Linear& l, Wq f, const std::int8_t* a, std::ptrdiff_t row, float act_scale) {
  using sasq::epilogue::Dequantize;
  const QuantizedWeights& qw = l.wq[f];
  const std::int8_t* w = qw.q.data() + row * l.k;
  const std::ptrdiff_t gs = l.k / qw.groups;
  float y = 0.0f;
  for (std::ptrdiff_t g = 0; g < qw.groups; ++g)
    y = Dequantize::apply_group(y, static_cast<std::int32_t>(dot(a, w, g * gs, (g + 1) * gs)),
                                qw.scales[static_cast<std::size_t>(row * qw.groups + g)]);
  return Dequantize::apply_row(y, act_scale, 0.0f);
}

/// Rows 0 and rows-1 of the v projection, the gate/up output and down_proj against exact integer dot
/// products; empty when all are bit-equal, else what differed.
std::string check_exact(Runner& r, int pos0, int rows) {
  const Block& b = r.b;
  const State& s = r.s;
  const Wq wq = weights_of(r.v);
  const bool is_static = r.v == Variant::kW8A8Static || r.v == Variant::kW4A8Static || r.v == Variant::kW4A8G128Static;
  for (int i : {0, rows - 1}) {
    if (r.v == Variant::kOneDnn) {  // the last matmul was down_proj; its int32 output is still in acc
      for (std::ptrdiff_t c = 0; c < kD; ++c)
        if (s.acc[static_cast<std::size_t>(i * kD + c)] != dot(s.sq.data() + i * kF, b.down.wq[kInt8].q.data() + c * kF, 0, kF))
          return "oneDNN down_proj differs from the exact integer dot product";
      continue;
    }
    const float as_qkv = is_static ? b.s_attn_in : s.sc_qkv[static_cast<std::size_t>(i)];
    for (std::ptrdiff_t c = 2 * kD; c < 3 * kD; ++c)
      if (s.qkv[static_cast<std::size_t>((pos0 + i) * kQkvCols + c)] != expected(b.qkv, wq, s.xq.data() + i * kD, c, as_qkv))
        return "v_proj differs from the exact integer dot product";
    const float as_mlp = is_static ? b.s_mlp_in : s.sc_mlp[static_cast<std::size_t>(i)];
    for (std::ptrdiff_t c = 0; c < kF; ++c) {
      const float y = sasq::epilogue::SwiGlu::apply(expected(b.gate_up, wq, s.hq.data() + i * kD, c, as_mlp),
                                                    expected(b.gate_up, wq, s.hq.data() + i * kD, kF + c, as_mlp));
      const bool ok = is_static ? s.sq[static_cast<std::size_t>(i * kF + c)] == sasq::epilogue::Requantize::apply(y, 1.0f / b.s_down_in)
                                : s.act[static_cast<std::size_t>(i * kF + c)] == y;
      if (!ok) return "gate/up SwiGLU output differs from the exact integer dot products";
    }
    const float as_down = is_static ? b.s_down_in : s.sc_down[static_cast<std::size_t>(i)];
    for (std::ptrdiff_t c = 0; c < kD; ++c)
      if (s.tmp[static_cast<std::size_t>(i * kD + c)] != expected(b.down, wq, s.sq.data() + i * kF, c, as_down))
        return "down_proj differs from the exact integer dot product";
  }
  return {};
}

void bm_block(benchmark::State& state, Variant v, bool decode) {
  Block& b = prepared_block();
  const int rows = decode ? 1 : kPrefill, pos0 = decode ? kPrefill : 0;
  Runner r(v, static_cast<int>(state.range(0)), rows);
  if (decode) std::copy(b.cache.begin(), b.cache.end(), r.s.qkv.begin());
  run_block(r, pos0, rows);
  if (v != Variant::kFp32) {
    const std::string err = check_exact(r, pos0, rows);
    if (!err.empty()) {
      state.SkipWithError(err.c_str());
      return;
    }
  }
  const std::vector<float>& ref = decode ? b.y_fp32_decode : b.y_fp32_prefill;
  double num = 0, den = 0;
  for (std::size_t i = 0; i < ref.size(); ++i) {
    num += (double{r.s.out[i]} - ref[i]) * (double{r.s.out[i]} - ref[i]);
    den += double{ref[i]} * ref[i];
  }
  for (auto _ : state) {
    run_block(r, pos0, rows);
    benchmark::ClobberMemory();
  }
  state.counters["tokens_per_s"] = benchmark::Counter(rows, benchmark::Counter::kIsIterationInvariantRate);
  state.counters["rel_err"] = std::sqrt(num / den);
}

void register_all() {
  const std::pair<Variant, const char*> variants[] = {
      {Variant::kFp32, "fp32_eigen"},     {Variant::kW8A8Dynamic, "w8a8_dynamic"}, {Variant::kW8A8Static, "w8a8_static"},
      {Variant::kW4A8Static, "w4a8_static"},     {Variant::kW4A8G128Static, "w4a8g128_static"},
#if SASQ_BENCH_ONEDNN
      {Variant::kOneDnn, "onednn_w8a8_dynamic"},
#endif
  };
  for (bool decode : {false, true})
    for (int t : {1, 2})
      for (const auto& [v, name] : variants)
        benchmark::RegisterBenchmark((std::string(decode ? "block_decode/" : "block_prefill/") + name).c_str(),
                                     [v = v, decode](benchmark::State& st) { bm_block(st, v, decode); })
            ->ArgName("threads")
            ->Arg(t)
            ->UseRealTime()
            ->Unit(benchmark::kMillisecond);
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
