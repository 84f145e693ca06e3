// GPU kernels against the CPU references: quantize (bit-exact), LSQ fake quant, GEMM vs gemm_reference
// (bit-exact for int8 / int32 outputs and f32 without SiLU), FWHT vs sasq::fwht / Rotation.
// Skips with a message when no CUDA device is present.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "kernels.hpp"
#include "sasq/core/int4.hpp"
#include "sasq/gemm/quantize_activations.hpp"
#include "sasq/gemm/reference.hpp"
#include "sasq/quant/params.hpp"
#include "sasq/quant/ste.hpp"
#include "sasq/transform/hadamard.hpp"
#include "sasq/transform/rotation.hpp"

using namespace sasq;
using cuda_test::TestGrid;

namespace {

bool have_gpu() {
  if (cuda_test::device_count() > 0) return true;
  MESSAGE("no CUDA device: GPU kernel test skipped");
  return false;
}

std::vector<float> random_floats(std::size_t n, float scale, std::uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> d(0.0f, scale);
  std::vector<float> v(n);
  for (float& x : v) x = d(rng);
  return v;
}

/// Reference quantization of row-major x with one parameter per (row, group of `group` columns).
template <class GridT>
std::vector<std::uint8_t> reference_quantize(const std::vector<float>& x, int rows, int cols,
                                             const std::vector<QuantParam>& params, int group,
                                             int params_per_row) {
  const int qcols = GridT::kBits == 4 ? (cols + 1) / 2 : cols;
  std::vector<std::uint8_t> q(static_cast<std::size_t>(rows) * qcols, 0);
  for (int r = 0; r < rows; ++r) {
    for (int c = 0; c < cols; ++c) {
      const QuantParam p = params[static_cast<std::size_t>(r * params_per_row + c / group)];
      const int v = quantize_value<GridT>(x[static_cast<std::size_t>(r) * cols + c], p);
      if (GridT::kBits == 4) {
        q[static_cast<std::size_t>(r) * qcols + c / 2] |= static_cast<std::uint8_t>((v & 0xF) << (4 * (c % 2)));
      } else {
        q[static_cast<std::size_t>(r) * qcols + c] = static_cast<std::uint8_t>(v);
      }
    }
  }
  return q;
}

/// Host parameters of the dynamic kernels: param_from_range(c · min, c · max) per group. NaN is left
/// out of min/max (std::min/max keep the left operand, as fminf/fmaxf drop NaN); groups holding an
/// infinity take the unchecked formula (param_from_range rejects them), giving an infinite scale.
template <class GridT>
std::vector<QuantParam> range_params(const std::vector<float>& x, int rows, int cols, int group,
                                     float clip_ratio) {
  std::vector<QuantParam> p;
  for (int r = 0; r < rows; ++r) {
    for (int g = 0; g < cols / group; ++g) {
      float lo = 0.0f, hi = 0.0f;
      for (int c = g * group; c < (g + 1) * group; ++c) {
        lo = std::min(lo, x[static_cast<std::size_t>(r) * cols + c]);
        hi = std::max(hi, x[static_cast<std::size_t>(r) * cols + c]);
      }
      const float clo = clip_ratio * lo, chi = clip_ratio * hi;
      p.push_back(std::isfinite(lo) && std::isfinite(hi) ? param_from_range<GridT>(clo, chi)
                                                         : param_from_range_unchecked<GridT>(clo, chi));
    }
  }
  return p;
}

/// N(0, 3) rows with a rounding tie in row 0 and, where the rows exist, the cases of the dynamic scale
/// contract: row 1 all zero (scale 1); row 2 in {-1, 0, 1} · 2^-149 (c = 0.25: c · abs-max rounds to 0,
/// scale 1; c >= 0.9: abs-max / 127 underflows, scale FLT_MIN; fails under flush-to-zero); row 3 holds a
/// NaN (left out of the range, quantizes to the zero point); row 4 holds +Inf (infinite scale: every
/// element quantizes to the zero point). No row holds both infinities (an asymmetric zero point would
/// be -Inf / Inf).
template <class GridT>
std::vector<float> dynamic_input(int rows, int cols) {
  std::vector<float> x = random_floats(static_cast<std::size_t>(rows) * cols, 3.0f, 7u + rows + cols);
  if (!x.empty()) x[0] = 0.5f * param_from_range<GridT>(-3.0f, 3.0f).scale;  // a tie case
  const auto row = [&](int r) { return x.begin() + static_cast<std::ptrdiff_t>(r) * cols; };
  if (rows > 1) std::fill(row(1), row(2), 0.0f);
  if (rows > 2) {
    const float tiny = std::numeric_limits<float>::denorm_min();
    for (int c = 0; c < cols; ++c) *(row(2) + c) = static_cast<float>(c % 3 - 1) * tiny;
  }
  if (rows > 3) *(row(3) + cols / 2) = std::numeric_limits<float>::quiet_NaN();
  if (rows > 4) *(row(4) + cols - 1) = std::numeric_limits<float>::infinity();
  return x;
}

template <class GridT>
void check_dynamic(TestGrid tg, int rows, int cols, int group, float clip_ratio) {
  CAPTURE(rows);
  CAPTURE(cols);
  CAPTURE(group);
  CAPTURE(clip_ratio);
  const std::vector<float> x = dynamic_input<GridT>(rows, cols);
  cuda_test::Quantized got;
  const bool per_token = group == cols;
  const Status s = per_token ? cuda_test::quantize_per_token(tg, x, rows, cols, got, clip_ratio)
                             : cuda_test::quantize_per_group(tg, x, rows, cols, group, got, clip_ratio);
  REQUIRE_MESSAGE(s.is_ok(), s.message());
  const auto params = range_params<GridT>(x, rows, cols, group, clip_ratio);
  CHECK(got.q == reference_quantize<GridT>(x, rows, cols, params, group, cols / group));
  for (std::size_t i = 0; i < params.size(); ++i) {
    CAPTURE(i);
    CHECK(got.scales[i] == params[i].scale);
    if (!GridT::kSymmetric) CHECK(got.zero_points[i] == params[i].zero_point);
  }
}

}  // namespace

TEST_CASE("cuda quantize_per_tensor matches quantize_value bit-exactly (int8, uint8, packed int4)") {
  if (!have_gpu()) return;
  for (int cols : {1, 31, 32, 33, 4103}) {
    const int rows = 3;
    std::vector<float> x = random_floats(static_cast<std::size_t>(rows) * cols, 2.0f, 11u + cols);
    x[0] = 2.5f * 0.02f;  // tie at .5 after scaling by 1/0.02 in float
    x.back() = 1e30f;     // saturates
    const QuantParam ps = QuantParam::make(0.02f), pu = QuantParam::make(0.02f, 128), p4 = QuantParam::make(0.5f);
    cuda_test::Quantized got;
    REQUIRE(cuda_test::quantize_per_tensor(TestGrid::kS8, x, rows, cols, ps, got).is_ok());
    CHECK(got.q == reference_quantize<GridS8>(x, rows, cols, {ps}, cols, 0));
    REQUIRE(cuda_test::quantize_per_tensor(TestGrid::kU8, x, rows, cols, pu, got).is_ok());
    CHECK(got.q == reference_quantize<GridU8>(x, rows, cols, {pu}, cols, 0));
    REQUIRE(cuda_test::quantize_per_tensor(TestGrid::kS4, x, rows, cols, p4, got).is_ok());
    CHECK(got.q == reference_quantize<GridS4Full>(x, rows, cols, {p4}, cols, 0));
  }
}

TEST_CASE("cuda quantize_per_tensor rejects bad parameters and shapes") {
  if (!have_gpu()) return;
  cuda_test::Quantized got;
  const std::vector<float> x(8, 1.0f);
  QuantParam bad = QuantParam::make(0.0f);
  Status s = cuda_test::quantize_per_tensor(TestGrid::kS8, x, 2, 4, bad, got);
  CHECK(s.code() == ErrorCode::kInvalidArgument);
  CHECK(s.message().find("scale is zero") != std::string::npos);
  s = cuda_test::quantize_per_tensor(TestGrid::kS8, x, 2, 4, QuantParam::make(1.0f, 3), got);
  CHECK(s.message().find("zero point 3 on a symmetric grid") != std::string::npos);
}

TEST_CASE("cuda dynamic per-token and per-group quantization match the CPU range formulas (clip 1, 0.9, 0.25)") {
  if (!have_gpu()) return;
  for (float c : {1.0f, 0.9f, 0.25f}) {
    check_dynamic<GridS8>(TestGrid::kS8, 6, 33, 33, c);
    check_dynamic<GridS8>(TestGrid::kS8, 5, 4096, 4096, c);
    check_dynamic<GridU8>(TestGrid::kU8, 5, 1000, 1000, c);
    check_dynamic<GridS4Full>(TestGrid::kS4, 6, 131, 131, c);
    check_dynamic<GridS8>(TestGrid::kS8, 5, 256, 32, c);
    check_dynamic<GridU8>(TestGrid::kU8, 6, 256, 64, c);
    check_dynamic<GridS4Full>(TestGrid::kS4, 7, 384, 128, c);
  }
  // an all-zero row gets scale 1
  cuda_test::Quantized got;
  REQUIRE(cuda_test::quantize_per_token(TestGrid::kS8, std::vector<float>(64, 0.0f), 2, 32, got).is_ok());
  CHECK(got.scales == std::vector<float>{1.0f, 1.0f});
  const Status s = cuda_test::quantize_per_group(TestGrid::kS8, std::vector<float>(60, 1.0f), 2, 30, 32, got);
  CHECK(s.message().find("not a multiple of the group size 32") != std::string::npos);
}

TEST_CASE("cuda per-token scales with a clip ratio equal quantize_dynamic_per_token_s8's") {
  if (!have_gpu()) return;
  // GridS8 and the CPU's GridS8Full share qmax = 127 and so the scale; rows 0-2 of dynamic_input are finite.
  const int rows = 3, cols = 4096;
  const std::vector<float> x = dynamic_input<GridS8>(rows, cols);
  for (float c : {1.0f, 0.9f, 0.25f}) {
    CAPTURE(c);
    cuda_test::Quantized got;
    const Status s = cuda_test::quantize_per_token(TestGrid::kS8, x, rows, cols, got, c);
    REQUIRE_MESSAGE(s.is_ok(), s.message());
    std::vector<std::int8_t> q(x.size());
    std::vector<float> want(rows);
    quantize_dynamic_per_token_s8(MatrixView<const float>(x.data(), rows, cols),
                                  MatrixView<std::int8_t>(q.data(), rows, cols), Span<float>(want), Isa::kAuto, c);
    CHECK(got.scales == want);
  }
}

TEST_CASE("cuda dynamic quantization rejects clip ratios outside (0, 1] like the CPU path (no GPU needed)") {
  for (bool per_group : {false, true}) {
    CAPTURE(per_group);
    for (float c : {0.0f, -0.5f, 1.0001f, 2.0f, std::numeric_limits<float>::quiet_NaN(),
                    std::numeric_limits<float>::infinity()}) {
      CAPTURE(c);
      const Status s = cuda_test::quantize_dynamic_empty(per_group, c);
      CHECK(s.code() == ErrorCode::kInvalidArgument);
      std::string cpu;
      try {
        std::vector<float> scales;
        quantize_dynamic_per_token_s8(MatrixView<const float>(nullptr, 0, 0),
                                      MatrixView<std::int8_t>(nullptr, 0, 0), Span<float>(scales), Isa::kScalar, c);
      } catch (const Error& e) {
        cpu = e.what();
      }
      REQUIRE(cpu.find(": clip ratio") != std::string::npos);
      const std::string where = per_group ? "sasq::cuda::quantize_per_group" : "sasq::cuda::quantize_per_token";
      CHECK(s.message() == where + cpu.substr(cpu.find(": clip ratio")));
    }
    for (float c : {1.0f, 0.9f, 0.25f, std::numeric_limits<float>::min()}) {
      CAPTURE(c);
      CHECK(cuda_test::quantize_dynamic_empty(per_group, c).is_ok());
    }
  }
}

TEST_CASE("cuda dequantize inverts per-group int4 quantization within half a step") {
  if (!have_gpu()) return;
  const int rows = 3, cols = 256, group = 64;
  const std::vector<float> x = random_floats(static_cast<std::size_t>(rows) * cols, 1.0f, 5u);
  cuda_test::Quantized q;
  REQUIRE(cuda_test::quantize_per_group(TestGrid::kS4, x, rows, cols, group, q).is_ok());
  std::vector<float> back;
  REQUIRE(cuda_test::dequantize_per_group(TestGrid::kS4, q, rows, cols, group, back).is_ok());
  for (int r = 0; r < rows; ++r) {
    for (int c = 0; c < cols; ++c) {
      const std::size_t i = static_cast<std::size_t>(r) * cols + c;
      const float s = q.scales[static_cast<std::size_t>(r * (cols / group) + c / group)];
      const int v = Int4::from_nibble(static_cast<std::uint8_t>(q.q[i / 2] >> (4 * (c % 2)))).value();
      CHECK(back[i] == dequantize_value(v, QuantParam::make(s)));
      CHECK(std::fabs(back[i] - x[i]) <= 0.5f * s * 1.0001f);
    }
  }
}

TEST_CASE("cuda LSQ fake quant forward/backward match ste::Lsq, scale gradient reduced exactly") {
  if (!have_gpu()) return;
  for (std::size_t n : {std::size_t{1}, std::size_t{1000}, std::size_t{300000}}) {
    CAPTURE(n);
    const std::vector<float> x = random_floats(n, 1.0f, 3u), dy = random_floats(n, 1.0f, 4u);
    const float s = 0.01f, gs = ste::lsq_grad_scale(n, GridS8::kQmax);
    std::vector<float> y, dx;
    float ds = 0.0f;
    const Status st = cuda_test::fake_quant_s8(x, dy, s, gs, y, dx, ds);
    REQUIRE_MESSAGE(st.is_ok(), st.message());
    double want = 0.0;
    for (std::size_t i = 0; i < n; ++i) {
      const ste::Grad g = ste::Lsq<GridS8>::backward(x[i], s);
      CHECK(y[i] == ste::Lsq<GridS8>::forward(x[i], s));
      CHECK(dx[i] == dy[i] * g.dx);
      want += static_cast<double>(dy[i]) * g.dparam;
    }
    CHECK(ds == doctest::Approx(want * gs).epsilon(1e-5));
  }
  std::vector<float> y, dx;
  float ds = 0.0f;
  const Status bad = cuda_test::fake_quant_s8({1.0f}, {1.0f}, -1.0f, 1.0f, y, dx, ds);
  CHECK(bad.message().find("negative") != std::string::npos);
}

namespace {

cuda_test::GemmCase make_gemm(int m, int rows, int k, WeightFormat f, std::uint32_t seed) {
  std::mt19937 rng(seed);
  const int lo = f.bits == 8 ? -128 : -8, hi = f.bits == 8 ? 127 : 7;
  std::uniform_int_distribution<int> da(-128, 127), dw(lo, hi);
  std::uniform_real_distribution<float> ds(0.001f, 0.02f), db(-1.0f, 1.0f);
  cuda_test::GemmCase g;
  g.m = m, g.rows = rows, g.k = k, g.format = f;
  g.a.resize(static_cast<std::size_t>(m) * k);
  g.w.resize(static_cast<std::size_t>(rows) * k);
  for (auto& v : g.a) v = static_cast<std::int8_t>(da(rng));
  for (auto& v : g.w) v = static_cast<std::int8_t>(dw(rng));
  const std::ptrdiff_t groups = f.group_size == 0 ? 1 : (k + f.group_size - 1) / f.group_size;
  g.w_scales.resize(static_cast<std::size_t>(rows * groups));
  for (auto& v : g.w_scales) v = ds(rng);
  g.row_scales.resize(static_cast<std::size_t>(m));
  for (auto& v : g.row_scales) v = ds(rng);
  g.bias.resize(static_cast<std::size_t>(rows));
  for (auto& v : g.bias) v = db(rng);
  g.output_scale = 0.05f;
  return g;
}

template <class TC>
std::vector<TC> reference(const cuda_test::GemmCase& g) {
  const int n = g.format.gate_up_pair ? g.rows / 2 : g.rows;
  std::vector<TC> c(static_cast<std::size_t>(g.m) * n);
  const ActivationQuant act =
      g.row_scales.empty() ? ActivationQuant::per_tensor(g.act_scale) : ActivationQuant::per_token(g.row_scales);
  Epilogue ep{Span<const float>(g.bias), g.activation, g.output_scale};
  gemm_reference<std::int8_t, TC>(MatrixView<const std::int8_t>(g.a.data(), g.m, g.k), act,
                                  MatrixView<const std::int8_t>(g.w.data(), g.rows, g.k), Span<const float>(g.w_scales),
                                  g.format, ep, MatrixView<TC>(c.data(), g.m, n));
  return c;
}

}  // namespace

TEST_CASE("cuda gemm int32 accumulators equal the int64 dot products (tensor cores and decode)") {
  if (!have_gpu()) return;
  for (int m : {1, 5, 16, 17, 64, 130}) {
    for (int bits : {8, 4}) {
      const int k = bits == 8 ? 16 * 17 : 32 * 9;  // K tails inside a 64-wide stage
      CAPTURE(m);
      CAPTURE(bits);
      const cuda_test::GemmCase g = make_gemm(m, 72, k, WeightFormat{bits, 0, false}, 100u + m + bits);
      std::vector<std::int32_t> c;
      const Status s = cuda_test::run_gemm(g, c);
      REQUIRE_MESSAGE(s.is_ok(), s.message());
      bool all = true;
      for (int i = 0; i < m; ++i) {
        for (int j = 0; j < 72; ++j) {
          std::int64_t acc = 0;
          for (int kk = 0; kk < k; ++kk) acc += std::int64_t{g.a[static_cast<std::size_t>(i) * k + kk]} * g.w[static_cast<std::size_t>(j) * k + kk];
          all = all && acc == c[static_cast<std::size_t>(i) * 72 + j];
        }
      }
      CHECK(all);
    }
  }
}

TEST_CASE("cuda gemm epilogues are bit-exact to gemm_reference (f32, int8, per-group W4A8, SwiGLU)") {
  if (!have_gpu()) return;
  struct Case {
    int bits, group;
    Activation act;
  };
  for (const Case cs : {Case{8, 0, Activation::kNone}, Case{4, 0, Activation::kNone}, Case{4, 128, Activation::kNone},
                        Case{8, 32, Activation::kNone}, Case{4, 64, Activation::kSilu},
                        Case{8, 0, Activation::kSwiGlu}, Case{4, 128, Activation::kSwiGlu}}) {
    for (int m : {1, 7, 16, 33, 200}) {
      CAPTURE(m);
      CAPTURE(cs.bits);
      CAPTURE(cs.group);
      CAPTURE(static_cast<int>(cs.act));
      const bool pair = cs.act == Activation::kSwiGlu;
      cuda_test::GemmCase g = make_gemm(m, pair ? 2 * 80 : 80, 384, WeightFormat{cs.bits, cs.group, pair}, 9u + m);
      g.activation = cs.act;
      std::vector<float> cf;
      std::vector<std::int8_t> cq;
      Status s = cuda_test::run_gemm(g, cf);
      REQUIRE_MESSAGE(s.is_ok(), s.message());
      s = cuda_test::run_gemm(g, cq);
      REQUIRE_MESSAGE(s.is_ok(), s.message());
      const std::vector<float> rf = reference<float>(g);
      const std::vector<std::int8_t> rq = reference<std::int8_t>(g);
      if (cs.act == Activation::kNone) {
        CHECK(cf == rf);
        CHECK(cq == rq);
      } else {  // device expf differs from the host's by a few ulp
        for (std::size_t i = 0; i < rf.size(); ++i) {
          CHECK(cf[i] == doctest::Approx(rf[i]).epsilon(1e-5).scale(1e-3));
          CHECK(std::abs(int{cq[i]} - int{rq[i]}) <= 1);
        }
      }
    }
  }
  // per-tensor activation scale
  cuda_test::GemmCase g = make_gemm(40, 64, 128, WeightFormat{8, 0, false}, 77u);
  g.row_scales.clear();
  g.act_scale = 0.013f;
  std::vector<float> cf;
  REQUIRE(cuda_test::run_gemm(g, cf).is_ok());
  CHECK(cf == reference<float>(g));
}

TEST_CASE("cuda gemm rejects misaligned K, shape mismatches and bad scales") {
  if (!have_gpu()) return;
  std::vector<float> c;
  cuda_test::GemmCase g = make_gemm(4, 8, 48, WeightFormat{4, 0, false}, 1u);
  Status s = cuda_test::run_gemm(g, c);
  CHECK(s.message().find("must be a multiple of 32") != std::string::npos);
  g = make_gemm(4, 8, 64, WeightFormat{8, 0, false}, 1u);
  g.output_scale = 0.0f;
  std::vector<std::int8_t> cq;
  s = cuda_test::run_gemm(g, cq);
  CHECK(s.message().find("output scale 0") != std::string::npos);
  g = make_gemm(4, 8, 64, WeightFormat{8, 0, true}, 1u);
  s = cuda_test::run_gemm(g, c);
  CHECK(s.message().find("kSwiGlu") != std::string::npos);
}

TEST_CASE("cuda fwht_rows: bit-exact to sasq::fwht for 2^k, close to Rotation::hadamard for m * 2^k") {
  if (!have_gpu()) return;
  for (int n : {1, 2, 64, 4096, 16384}) {
    CAPTURE(n);
    const int rows = 3;
    std::vector<float> x = random_floats(static_cast<std::size_t>(rows) * n, 1.0f, 21u + n), want = x;
    REQUIRE(cuda_test::fwht_rows(x, rows, n, 1, {}).is_ok());
    for (int r = 0; r < rows; ++r) fwht(Span<float>(want.data() + static_cast<std::size_t>(r) * n, n));
    CHECK(x == want);
  }
  for (int n : {12 * 64, 20 * 128, 28 * 32}) {
    CAPTURE(n);
    const HadamardFactors f = hadamard_factors(static_cast<std::size_t>(n));
    REQUIRE(f.construction != HadamardConstruction::kNone);
    const std::vector<std::int8_t> hm = hadamard_factor_matrix(f);
    const float norm = static_cast<float>(1.0 / std::sqrt(static_cast<double>(f.m)));
    std::vector<float> base(hm.size());
    for (std::size_t i = 0; i < hm.size(); ++i) base[i] = static_cast<float>(hm[i]) * norm;  // as Rotation::hadamard
    const int rows = 2;
    std::vector<float> x = random_floats(static_cast<std::size_t>(rows) * n, 1.0f, 5u), want = x;
    REQUIRE(cuda_test::fwht_rows(x, rows, n, static_cast<int>(f.m), base).is_ok());
    apply_rotation(Rotation::hadamard(static_cast<std::size_t>(n)), MatrixView<float>(want.data(), rows, n));
    for (std::size_t i = 0; i < x.size(); ++i) CHECK(x[i] == doctest::Approx(want[i]).epsilon(1e-5).scale(1e-4));
  }
  std::vector<float> x(24, 1.0f);
  CHECK(cuda_test::fwht_rows(x, 1, 24, 1, {}).message().find("not a power of two") != std::string::npos);
}
