// gemm() against gemm_reference: bit-exact for the ISA selected by SASQ_ISA (ctest runs this binary once
// per ISA), over s8/u8 activations x int8 / int4 per-channel / int4 per-group weights x epilogues, shapes
// with tails, extreme values, K at the int32 bound, threads, and rejected arguments.
#include <doctest/doctest.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "sasq/gemm/gemm.hpp"
#include "sasq/gemm/reference.hpp"

namespace {

using sasq::ActivationQuant;
using sasq::Epilogue;
using sasq::MatrixView;
using sasq::WeightFormat;

/// True when the ISA that SASQ_ISA selects runs here; otherwise reports the skip.
bool isa_available() {
  try {
    const std::string msg = std::string("testing ISA ") + sasq::to_string(sasq::cpu::default_isa());
    MESSAGE(msg);
    return true;
  } catch (const sasq::Error& e) {
    const std::string msg = std::string("skipped: ") + e.what();
    MESSAGE(msg);
    return false;
  }
}

struct Case {
  std::ptrdiff_t m, n, k;
  bool signed_act;
  WeightFormat fmt;
  int epilogue;  // 0: f32, 1: bias + SiLU f32, 2: bias + requantize int8, 3: SwiGLU pair f32, 4: SiLU + int8,
                // 5: bias f32 (kernels that store C directly)
  bool per_token;
  int fill = 0;  // 0 random, 1 activations and weights at their minimum, 2 at their maximum
  int threads = 1;
};

template <class T>
bool bits_equal(const std::vector<T>& x, const std::vector<T>& y) {
  return x.size() == y.size() && std::memcmp(x.data(), y.data(), x.size() * sizeof(T)) == 0;
}

template <class TA, class TC>
void run_case(const Case& c, std::mt19937& rng) {
  const std::ptrdiff_t w_rows = c.fmt.gate_up_pair ? 2 * c.n : c.n;
  const int wlo = c.fmt.bits == 8 ? -128 : -8, whi = c.fmt.bits == 8 ? 127 : 7;
  const int alo = std::is_same_v<TA, std::int8_t> ? -128 : 0, ahi = std::is_same_v<TA, std::int8_t> ? 127 : 255;
  std::uniform_int_distribution<int> wd(wlo, whi), ad(alo, ahi), zd(0, 255);
  std::uniform_real_distribution<float> sd(0.001f, 0.05f), bd(-2.0f, 2.0f);
  auto pick = [&](std::uniform_int_distribution<int>& d, int lo, int hi) {
    return c.fill == 1 ? lo : c.fill == 2 ? hi : d(rng);
  };
  const std::ptrdiff_t lda = c.k + 3;  // non-contiguous A exercises the leading dimension
  std::vector<TA> a(static_cast<std::size_t>(c.m * lda));
  for (auto& v : a) v = static_cast<TA>(pick(ad, alo, ahi));
  std::vector<std::int8_t> w(static_cast<std::size_t>(w_rows * c.k));
  for (auto& v : w) v = static_cast<std::int8_t>(pick(wd, wlo, whi));
  const std::ptrdiff_t spr = sasq::detail::scales_per_row(c.fmt, c.k);
  std::vector<float> ws(static_cast<std::size_t>(w_rows * spr)), bias(static_cast<std::size_t>(w_rows));
  for (auto& v : ws) v = sd(rng);
  for (auto& v : bias) v = bd(rng);
  std::vector<float> row_scales(static_cast<std::size_t>(c.m));
  for (auto& v : row_scales) v = sd(rng);
  std::vector<std::int32_t> zps(static_cast<std::size_t>(c.m));
  for (auto& v : zps) v = zd(rng);
  ActivationQuant act = c.per_token ? ActivationQuant::per_token(row_scales) : ActivationQuant::per_tensor(0.02f);
  if (std::is_same_v<TA, std::uint8_t>) {
    if (c.per_token) act.row_zero_points = zps;
    else act.zero_point = 77;
  }
  Epilogue ep;
  if (c.epilogue == 1 || c.epilogue == 2 || c.epilogue == 5) ep.bias = bias;
  if (c.epilogue == 1 || c.epilogue == 4) ep.activation = sasq::Activation::kSilu;
  if (c.epilogue == 3) ep.activation = sasq::Activation::kSwiGlu;
  ep.output_scale = 0.05f;

  MatrixView<const TA> av(a.data(), c.m, c.k, lda);
  MatrixView<const std::int8_t> wv(w.data(), w_rows, c.k);
  std::vector<TC> ref(static_cast<std::size_t>(c.m * c.n)), out(ref.size(), TC(99));
  sasq::gemm_reference(av, act, wv, sasq::Span<const float>(ws), c.fmt, ep, MatrixView<TC>(ref.data(), c.m, c.n));
  const sasq::PackedWeights pw = sasq::pack_weights(wv, ws, c.fmt);
  sasq::gemm(av, act, pw, ep, MatrixView<TC>(out.data(), c.m, c.n), sasq::GemmOptions{c.threads});
  INFO("M=", c.m, " N=", c.n, " K=", c.k, " s8 act=", c.signed_act, " bits=", c.fmt.bits, " group=",
       c.fmt.group_size, " epilogue=", c.epilogue, " per_token=", c.per_token, " fill=", c.fill);
  CHECK(bits_equal(ref, out));
}

void run(const Case& c, std::mt19937& rng) {
  const bool int8_out = c.epilogue == 2 || c.epilogue == 4;
  if (c.signed_act) {
    int8_out ? run_case<std::int8_t, std::int8_t>(c, rng) : run_case<std::int8_t, float>(c, rng);
  } else {
    int8_out ? run_case<std::uint8_t, std::int8_t>(c, rng) : run_case<std::uint8_t, float>(c, rng);
  }
}

const WeightFormat kFormats[] = {{8, 0, false}, {4, 0, false}, {4, 32, false}, {4, 128, false}, {8, 64, false}};

}  // namespace

TEST_CASE("gemm is bit-exact to the reference over shapes with tails") {
  if (!isa_available()) return;
  std::mt19937 rng(1234);
  const std::ptrdiff_t sizes[] = {1, 3, 31, 64, 65, 172, 257};
  int i = 0;
  for (std::ptrdiff_t m : sizes)
    for (std::ptrdiff_t n : sizes)
      for (std::ptrdiff_t k : sizes) {
        Case c{m, n, k, i % 2 == 0, kFormats[(i / 2) % 5], (i / 10) % 6, (i / 3) % 2 == 0};
        if (c.epilogue == 3) c.fmt.gate_up_pair = true;
        run(c, rng);
        ++i;
      }
}

TEST_CASE("every activation type x weight format x epilogue on one tail shape") {
  if (!isa_available()) return;
  std::mt19937 rng(99);
  for (bool s : {true, false})
    for (WeightFormat f : kFormats)
      for (int e = 0; e < 6; ++e)
        for (bool pt : {false, true}) {
          Case c{7, 37, 200, s, f, e, pt};
          if (e == 3) c.fmt.gate_up_pair = true;
          run(c, rng);
        }
}

TEST_CASE("decode tiles (1 and 2 rows: split accumulators, fused group loop) over every format") {
  if (!isa_available()) return;
  std::mt19937 rng(11);
  const WeightFormat formats[] = {{8, 0}, {4, 0}, {4, 32}, {4, 64}, {4, 128}, {8, 32}, {8, 64}, {8, 128}};
  int i = 0;
  for (std::ptrdiff_t m : {1, 2, 8, 14})
    for (WeightFormat f : formats)
      for (std::ptrdiff_t k : {8, 24, 130, 1000, 1031})
        for (bool s : {true, false}) {
          Case c{m, k == 130 ? 16 : 130, k, s, f, i % 6, i % 3 == 0};
          if (c.epilogue == 3) c.fmt.gate_up_pair = true;
          run(c, rng);
          ++i;
        }
  // Extremes through every group: s8 and u8 activations at their minimum and maximum.
  for (WeightFormat f : formats)
    for (int fill : {1, 2})
      for (bool s : {true, false}) run(Case{2, 9, 2048, s, f, 0, false, fill}, rng);
}

TEST_CASE("decode with grouped weights: u8 zero point 128 in one row and not in the other") {
  if (!isa_available()) return;
  std::mt19937 rng(12);
  for (WeightFormat f : {WeightFormat{4, 32}, WeightFormat{4, 128}, WeightFormat{8, 64}})
    for (std::ptrdiff_t k : {100, 1031})
      for (std::int32_t z0 : {128, 0})
        for (std::int32_t z1 : {128, 255}) {
          const std::ptrdiff_t m = 2, n = 70;
          std::uniform_int_distribution<int> wd(f.bits == 8 ? -128 : -8, f.bits == 8 ? 127 : 7), ad(0, 255);
          std::vector<std::uint8_t> a(static_cast<std::size_t>(m * k));
          for (auto& v : a) v = static_cast<std::uint8_t>(ad(rng));
          std::vector<std::int8_t> w(static_cast<std::size_t>(n * k));
          for (auto& v : w) v = static_cast<std::int8_t>(wd(rng));
          std::vector<float> ws(static_cast<std::size_t>(n * sasq::detail::scales_per_row(f, k)), 0.01f);
          std::vector<float> row_scales(m, 0.02f);
          ActivationQuant act = ActivationQuant::per_token(row_scales);
          const std::vector<std::int32_t> zps{z0, z1};
          act.row_zero_points = zps;
          MatrixView<const std::uint8_t> av(a.data(), m, k);
          MatrixView<const std::int8_t> wv(w.data(), n, k);
          std::vector<float> ref(static_cast<std::size_t>(m * n)), out(ref.size(), 99.0f);
          sasq::gemm_reference(av, act, wv, sasq::Span<const float>(ws), f, Epilogue{}, MatrixView<float>(ref.data(), m, n));
          sasq::gemm(av, act, sasq::pack_weights(wv, ws, f), Epilogue{}, MatrixView<float>(out.data(), m, n));
          INFO("bits=", f.bits, " group=", f.group_size, " K=", k, " zero points ", z0, ", ", z1);
          CHECK(bits_equal(ref, out));
        }
}

TEST_CASE("prefill tiles (3-6 rows: one pass per group, uniform and per-row shifts) over every format") {
  if (!isa_available()) return;
  std::mt19937 rng(13);
  int i = 0;
  for (std::ptrdiff_t m : {3, 4, 5, 6, 9, 16, 23})
    for (WeightFormat f : kFormats)
      for (std::ptrdiff_t k : {8, 20, 136, 1031})
        for (std::ptrdiff_t n : {64, 100}) {
          // s8 (uniform +128 shift), u8 per-tensor (uniform zero point), u8 per-token (a shift per row)
          Case c{m, n, k, i % 3 == 0, f, i % 6, i % 3 == 2};
          if (c.epilogue == 3) c.fmt.gate_up_pair = true;
          run(c, rng);
          ++i;
        }
  for (WeightFormat f : kFormats)
    for (int fill : {1, 2}) run(Case{6, 64, 1000, fill == 1, f, 0, true, fill}, rng);  // extremes through every group
}

TEST_CASE("prefill tiles with groups of 128, every group full (K a multiple of 128) and not") {
  if (!isa_available()) return;
  std::mt19937 rng(17);
  const WeightFormat formats[] = {{4, 128, false}, {8, 128, false}};
  int i = 0;
  for (std::ptrdiff_t m : {3, 5, 6, 12, 16, 23})
    for (WeightFormat f : formats)
      for (std::ptrdiff_t k : {128, 256, 1024, 1016})
        for (std::ptrdiff_t n : {64, 72}) {
          // s8 and u8 per-tensor (one shift: the whole group loop in one statement), u8 per-token (a
          // shift per row: one pass per group)
          const int epilogues[] = {0, 5, 2};  // f32, bias f32 (C direct), bias + requantize
          run(Case{m, n, k, i % 3 == 0, f, epilogues[(i / 3) % 3], i % 3 == 2}, rng);
          ++i;
        }
  for (WeightFormat f : formats)
    for (int fill : {1, 2}) run(Case{12, 64, 1024, fill == 1, f, 0, false, fill}, rng);  // extremes, every group
}

TEST_CASE("runs of full 6-row tiles (multi-tile pass: 1-4 panels in the last block, A in place or packed)") {
  if (!isa_available()) return;
  std::mt19937 rng(19);
  const WeightFormat formats[] = {{8, 0, false}, {4, 0, false}, {4, 128, false}};
  int i = 0;
  for (std::ptrdiff_t m : {12, 14, 18, 61, 63, 64, 173})  // M % 6 = 0, 2, 0, 1, 3, 4, 5
    for (std::ptrdiff_t n : {16, 44, 64, 100, 172, 200})
      for (std::ptrdiff_t k : {4, 8, 12, 64, 172, 174}) {
        // s8 or u8 (A read in place when K % 4 == 0 and, u8, a per-tensor zero point: every row through
        // the multi-tile pass, the last M % 6 in one shorter tile; otherwise packed, per-token zero points
        // a shift per row), per-tensor or per-token scales; f32 output direct (none, bias) and through
        // the tile buffer (bias + requantize)
        const int epilogues[] = {0, 5, 2};
        Case c{m, n, k, i % 2 == 0, formats[(i / 2) % 3], epilogues[(i / 6) % 3], (i / 18) % 2 == 0};
        run(c, rng);
        ++i;
      }
  run(Case{512, 172, 64, true, {8, 0, false}, 5, false}, rng);  // the model's own prefill shape
  run(Case{512, 64, 172, false, {4, 0, false}, 0, false}, rng);
  for (WeightFormat f : formats)  // extremes at K = 1000 with A in place (per-tensor u8 zero point; s8)
    for (int fill : {1, 2})
      for (bool s : {true, false}) run(Case{16, 64, 1000, s, f, 5, false, fill}, rng);
}

TEST_CASE("extreme values: all minimum and all maximum activations and weights") {
  if (!isa_available()) return;
  std::mt19937 rng(5);
  for (int fill : {1, 2})
    for (bool s : {true, false})
      for (WeightFormat f : {kFormats[0], kFormats[1], kFormats[2]}) run(Case{5, 19, 1000, s, f, 0, true, fill}, rng);
}

TEST_CASE("overflowing epilogues (inf, and NaN from SiLU(-inf)) requantize like the reference") {
  if (!isa_available()) return;
  const std::ptrdiff_t m = 3, n = 37, k = 24;
  std::vector<std::int8_t> a(static_cast<std::size_t>(m * k)), w(static_cast<std::size_t>(n * k));
  for (std::size_t i = 0; i < a.size(); ++i) a[i] = static_cast<std::int8_t>(static_cast<int>(i * 37 % 255) - 127);
  for (std::size_t i = 0; i < w.size(); ++i) w[i] = static_cast<std::int8_t>(static_cast<int>(i * 91 % 255) - 127);
  std::vector<float> ws(static_cast<std::size_t>(n), 3e38f);
  const auto act = ActivationQuant::per_tensor(3e38f);
  const auto pw = sasq::pack_weights(MatrixView<const std::int8_t>(w.data(), n, k), ws, {8});
  for (auto activation : {sasq::Activation::kNone, sasq::Activation::kSilu}) {
    Epilogue ep;
    ep.activation = activation;
    std::vector<std::int8_t> ref(static_cast<std::size_t>(m * n)), out(ref.size(), 99);
    sasq::gemm_reference(MatrixView<const std::int8_t>(a.data(), m, k), act, MatrixView<const std::int8_t>(w.data(), n, k),
                         sasq::Span<const float>(ws), WeightFormat{8}, ep, MatrixView<std::int8_t>(ref.data(), m, n));
    sasq::gemm(MatrixView<const std::int8_t>(a.data(), m, k), act, pw, ep, MatrixView<std::int8_t>(out.data(), m, n));
    CHECK(ref == out);
    const auto zeros = std::count(ref.begin(), ref.end(), std::int8_t{0});
    if (activation == sasq::Activation::kSilu) CHECK(zeros > 0);  // SiLU(-inf) = -inf / inf = NaN -> 0
  }
}

TEST_CASE("K at the int32 bound is exact, K above it is rejected") {
  if (!isa_available()) return;
  std::mt19937 rng(6);
  // u8 255 with zero point 0 against -128: |Σ| = 32640 · kMaxK = 2147483520, the largest exact sum.
  for (bool s : {true, false}) run(Case{2, 3, sasq::kMaxK, s, kFormats[0], 0, false, s ? 1 : 2}, rng);
  // The same bound through the prefill pass (6 rows): one shift for the tile (s8), a shift per row (u8).
  for (bool s : {true, false}) run(Case{6, 3, sasq::kMaxK, s, kFormats[0], 0, !s, s ? 1 : 2}, rng);
  std::vector<std::uint8_t> a(sasq::kMaxK, 255);
  std::vector<std::int8_t> w(3 * sasq::kMaxK, -128);
  std::vector<float> ws(3, 1.0f), out(3);
  const auto pw = sasq::pack_weights(MatrixView<const std::int8_t>(w.data(), 3, sasq::kMaxK), ws, {8});
  sasq::gemm(MatrixView<const std::uint8_t>(a.data(), 1, sasq::kMaxK), ActivationQuant::per_tensor(1.0f), pw,
             Epilogue{}, MatrixView<float>(out.data(), 1, 3));
  CHECK(out[0] == -2147483520.0f);
  // int4 enters the AVX-512 prefill tiles as 16 w: u8 255 against -8 gives 16 |Σ| = 2147483520 there too.
  std::vector<std::uint8_t> a6(static_cast<std::size_t>(6 * sasq::kMaxK), 255);
  std::fill(w.begin(), w.end(), std::int8_t{-8});
  const auto pw4 = sasq::pack_weights(MatrixView<const std::int8_t>(w.data(), 3, sasq::kMaxK), ws, {4});
  std::vector<float> out6(18);
  sasq::gemm(MatrixView<const std::uint8_t>(a6.data(), 6, sasq::kMaxK), ActivationQuant::per_tensor(1.0f), pw4,
             Epilogue{}, MatrixView<float>(out6.data(), 6, 3));
  for (float v : out6) CHECK(v == -134217720.0f);
  std::vector<std::int8_t> big(sasq::kMaxK + 1, 1);
  std::vector<float> one(1, 1.0f);
  try {
    (void)sasq::pack_weights(MatrixView<const std::int8_t>(big.data(), 1, sasq::kMaxK + 1), one, {8});
    FAIL("K above kMaxK was accepted");
  } catch (const sasq::Error& e) {
    CHECK(e.code() == sasq::ErrorCode::kOutOfRange);
  }
}

TEST_CASE("threads split large problems without changing the result") {
  if (!isa_available()) return;
  std::mt19937 rng(7);
  for (int t : {2, 3}) {
    run(Case{70, 520, 1024, true, kFormats[0], 1, true, 0, t}, rng);
    run(Case{1, 2048, 2048, false, kFormats[2], 2, false, 0, t}, rng);
    // Decode big enough to split (2·M·N·K >= 2 · kMinOpsPerThread): guided chunks of one panel block,
    // int4 g128 group sums computed once per call by the thread that packs A.
    run(Case{1, 4096, 4096, true, kFormats[3], 0, false, 0, t}, rng);
    run(Case{2, 4096, 2056, false, kFormats[3], 5, true, 0, t}, rng);
  }
}

TEST_CASE("thread schedules cover every tile task exactly once") {
  // Even split (short prefill calls): contiguous block ranges in share order, sizes within one block.
  for (std::ptrdiff_t blocks = 0; blocks <= 70; ++blocks)
    for (int n = 1; n <= 8; ++n) {
      std::ptrdiff_t expect = 0;
      for (int i = 0; i < n; ++i) {
        std::ptrdiff_t first = -1, last = -1;
        sasq::detail::even_share(blocks, n, i, first, last);
        REQUIRE(first == expect);
        REQUIRE(last >= first);
        CHECK(last - first >= blocks / n);
        CHECK(last - first <= (blocks + n - 1) / n);
        expect = last;
      }
      CHECK(expect == blocks);
    }
  // Guided schedule: chunks taken one after another tile [0, tasks) without gap or overlap, and a chunk
  // of at least one block ends on a block boundary (or at the end).
  for (std::ptrdiff_t block_tasks : {1, 3, 22})
    for (std::ptrdiff_t blocks : {1, 2, 7, 64, 172})
      for (int n : {2, 3}) {
        const std::ptrdiff_t tasks = blocks * block_tasks;
        for (std::ptrdiff_t min_chunk : {std::ptrdiff_t{1}, block_tasks}) {
          sasq::detail::GuidedSchedule schedule(tasks, n, block_tasks, min_chunk);
          std::ptrdiff_t begin = -1, end = -1, next = 0;
          while (schedule.take(begin, end)) {
            REQUIRE(begin == next);
            REQUIRE(end > begin);
            if (end - begin >= block_tasks) CHECK((end % block_tasks == 0 || end == tasks));
            next = end;
          }
          CHECK(next == tasks);
        }
      }
}

TEST_CASE("bad arguments are rejected with sasq::Error") {
  std::vector<std::int8_t> w(8 * 16, 1), a(2 * 16, 1);
  std::vector<float> ws(8, 0.5f), c(2 * 8);
  const auto pw = sasq::pack_weights(MatrixView<const std::int8_t>(w.data(), 8, 16), ws, {8});
  MatrixView<const std::int8_t> av(a.data(), 2, 16);
  MatrixView<float> cv(c.data(), 2, 8);
  const auto s = ActivationQuant::per_tensor(0.1f);
  CHECK_THROWS_AS(sasq::gemm(MatrixView<const std::int8_t>(a.data(), 2, 15), s, pw, Epilogue{}, cv), sasq::Error);
  CHECK_THROWS_AS(sasq::gemm(av, s, pw, Epilogue{}, MatrixView<float>(c.data(), 2, 7)), sasq::Error);
  CHECK_THROWS_AS(sasq::gemm(av, ActivationQuant::per_tensor(0.0f), pw, Epilogue{}, cv), sasq::Error);
  CHECK_THROWS_AS(sasq::gemm(av, ActivationQuant::per_tensor(std::nanf("")), pw, Epilogue{}, cv), sasq::Error);
  CHECK_THROWS_AS(sasq::gemm(av, ActivationQuant::per_tensor(0.1f, 3), pw, Epilogue{}, cv), sasq::Error);
  std::vector<float> short_scales(1, 0.1f);
  CHECK_THROWS_AS(sasq::gemm(av, ActivationQuant::per_token(short_scales), pw, Epilogue{}, cv), sasq::Error);
  std::vector<std::uint8_t> au(2 * 16, 1);
  CHECK_THROWS_AS(sasq::gemm(MatrixView<const std::uint8_t>(au.data(), 2, 16), ActivationQuant::per_tensor(0.1f, 256),
                             pw, Epilogue{}, cv), sasq::Error);
  Epilogue bad_bias;
  bad_bias.bias = sasq::Span<const float>(ws.data(), 3);
  CHECK_THROWS_AS(sasq::gemm(av, s, pw, bad_bias, cv), sasq::Error);
  std::vector<float> nan_bias(8, 0.0f);
  nan_bias[5] = std::nanf("");
  bad_bias.bias = nan_bias;
  CHECK_THROWS_WITH_AS(sasq::gemm(av, s, pw, bad_bias, cv), "bias entry 5 is NaN", sasq::Error);
  nan_bias[5] = INFINITY;
  CHECK_THROWS_WITH_AS(sasq::gemm(av, s, pw, bad_bias, cv), "bias entry 5 is infinite", sasq::Error);
  Epilogue swiglu;
  swiglu.activation = sasq::Activation::kSwiGlu;
  CHECK_THROWS_AS(sasq::gemm(av, s, pw, swiglu, cv), sasq::Error);
  std::vector<std::int8_t> c8(2 * 8);
  Epilogue zero_out;
  zero_out.output_scale = 0.0f;
  CHECK_THROWS_AS(sasq::gemm(av, s, pw, zero_out, MatrixView<std::int8_t>(c8.data(), 2, 8)), sasq::Error);
  // Weight packing: int4 range, scale count, group size, non-finite scale.
  std::vector<std::int8_t> w8(8 * 64, 8);
  std::vector<float> ws2(16, 0.5f);
  CHECK_THROWS_AS(sasq::pack_weights(MatrixView<const std::int8_t>(w8.data(), 8, 64), ws, {4}), sasq::Error);
  CHECK_THROWS_AS(sasq::pack_weights(MatrixView<const std::int8_t>(w.data(), 8, 16), ws2, {8}), sasq::Error);
  CHECK_THROWS_AS(sasq::pack_weights(MatrixView<const std::int8_t>(w.data(), 8, 16), ws, {8, 48}), sasq::Error);
  std::vector<float> inf_scales(8, 0.5f);
  inf_scales[3] = INFINITY;
  CHECK_THROWS_AS(sasq::pack_weights(MatrixView<const std::int8_t>(w.data(), 8, 16), inf_scales, {8}), sasq::Error);
  sasq::GemmOptions unknown;
  unknown.threads = -1;
  CHECK_THROWS_AS(sasq::gemm(av, s, pw, Epilogue{}, cv, unknown), sasq::Error);
}

TEST_CASE("C at an unaligned offset with ldc > N: only the M x N view is written, bit-exact") {
  if (!isa_available()) return;
  std::mt19937 rng(17);
  const WeightFormat formats[] = {{8, 0}, {4, 0}, {4, 32}, {4, 64}, {4, 128}, {8, 32}, {8, 64}, {8, 128}};
  for (int i = 0; i < 96; ++i) {
    // M = 3..9 (one tile), or 12..71 (runs of full 6-row tiles: the AVX-512 multi-tile pass).
    const std::ptrdiff_t m = (i / 3) % 2 == 0 ? 3 + i % 7 : 12 + i % 60, n = 1 + static_cast<std::ptrdiff_t>(rng() % 130),
                         k = 1 + static_cast<std::ptrdiff_t>(rng() % 300);
    const std::ptrdiff_t ldc = n + 1 + 2 * static_cast<std::ptrdiff_t>(rng() % 40), off = 1 + static_cast<std::ptrdiff_t>(rng() % 15);
    const WeightFormat f = formats[i % 8];
    const int kind = (i / 8) % 3;  // 0: s8, 1: u8 per-tensor zero point, 2: u8 per-token zero points
    std::uniform_int_distribution<int> wd(f.bits == 8 ? -128 : -8, f.bits == 8 ? 127 : 7), ad(0, 255);
    std::vector<std::uint8_t> a(static_cast<std::size_t>(m * k));
    for (auto& v : a) v = static_cast<std::uint8_t>(ad(rng));
    std::vector<std::int8_t> w(static_cast<std::size_t>(n * k));
    for (auto& v : w) v = static_cast<std::int8_t>(wd(rng));
    std::vector<float> ws(static_cast<std::size_t>(n * sasq::detail::scales_per_row(f, k))), bias(static_cast<std::size_t>(n));
    for (auto& v : ws) v = 0.001f + static_cast<float>(rng() % 1000) * 1e-5f;
    for (auto& v : bias) v = static_cast<float>(static_cast<int>(rng() % 401) - 200) * 0.01f;
    std::vector<float> row_scales(static_cast<std::size_t>(m), 0.02f);
    std::vector<std::int32_t> zps(static_cast<std::size_t>(m));
    for (auto& v : zps) v = static_cast<std::int32_t>(rng() % 256);
    ActivationQuant act = kind == 2 ? ActivationQuant::per_token(row_scales, zps) : ActivationQuant::per_tensor(0.02f, kind == 1 ? 77 : 0);
    Epilogue ep;
    if (i % 2) ep.bias = bias;
    const sasq::PackedWeights pw = sasq::pack_weights(MatrixView<const std::int8_t>(w.data(), n, k), ws, f);
    std::vector<float> ref(static_cast<std::size_t>(m * n)), buf(static_cast<std::size_t>(off + m * ldc + 64), -7.0f);
    MatrixView<const std::int8_t> wv(w.data(), n, k);
    MatrixView<float> cv(buf.data() + off, m, n, ldc);
    if (kind == 0) {
      MatrixView<const std::int8_t> av(reinterpret_cast<const std::int8_t*>(a.data()), m, k);
      sasq::gemm_reference(av, act, wv, sasq::Span<const float>(ws), f, ep, MatrixView<float>(ref.data(), m, n));
      sasq::gemm(av, act, pw, ep, cv);
    } else {
      MatrixView<const std::uint8_t> av(a.data(), m, k);
      sasq::gemm_reference(av, act, wv, sasq::Span<const float>(ws), f, ep, MatrixView<float>(ref.data(), m, n));
      sasq::gemm(av, act, pw, ep, cv);
    }
    INFO("M=", m, " N=", n, " K=", k, " ldc=", ldc, " offset=", off, " bits=", f.bits, " group=", f.group_size,
         " kind=", kind, " bias=", i % 2);
    bool inside = true, outside = true;
    for (std::ptrdiff_t j = 0; j < static_cast<std::ptrdiff_t>(buf.size()); ++j) {
      const std::ptrdiff_t r = (j - off) / ldc, col = (j - off) % ldc;
      if (j >= off && r < m && col < n) {
        inside = inside && std::memcmp(&buf[static_cast<std::size_t>(j)], &ref[static_cast<std::size_t>(r * n + col)], 4) == 0;
      } else {
        outside = outside && buf[static_cast<std::size_t>(j)] == -7.0f;
      }
    }
    CHECK(inside);
    CHECK(outside);
  }
}
