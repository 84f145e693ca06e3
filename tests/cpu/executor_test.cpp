// Executors: gemm on a caller's ParallelFor is bit-exact to the built-in pool; a ParallelFor that skips
// tasks is an error; gemm and run() nested inside a pool task run inline instead of deadlocking.
#include <doctest/doctest.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <future>
#include <random>
#include <thread>
#include <vector>

#include "sasq/cpu/executor.hpp"
#include "sasq/gemm/gemm.hpp"
#include "sasq/gemm/reference.hpp"

namespace {

using sasq::MatrixView;

/// Runs fn on another thread and ends the process with a message if it has not finished within 60 s:
/// a deadlock fails the test instead of hanging ctest.
template <class Fn>
void within_a_minute(const char* what, Fn fn) {
  auto f = std::async(std::launch::async, fn);
  if (f.wait_for(std::chrono::seconds(60)) != std::future_status::ready) {
    std::fprintf(stderr, "FAILED: %s did not finish within 60 s (deadlock)\n", what);
    std::fflush(stderr);
    std::_Exit(1);
  }
  f.get();
}

/// A problem big enough that gemm splits it over every thread (2·M·N·K >= 4 · kMinOpsPerThread).
struct Problem {
  static constexpr std::ptrdiff_t kM = 64, kK = 512, kN = 512;
  std::vector<std::int8_t> a, w;
  std::vector<float> ws, ref;
  sasq::PackedWeights pw;
  Problem() : a(kM * kK), w(kN * kK), ws(kN), ref(kM * kN) {
    std::mt19937 rng(7);
    std::uniform_int_distribution<int> d(-128, 127);
    for (auto& v : a) v = static_cast<std::int8_t>(d(rng));
    for (auto& v : w) v = static_cast<std::int8_t>(d(rng));
    for (std::size_t i = 0; i < ws.size(); ++i) ws[i] = 0.001f * static_cast<float>(1 + i % 13);
    sasq::gemm_reference(av(), act(), MatrixView<const std::int8_t>(w.data(), kN, kK), sasq::Span<const float>(ws),
                         sasq::WeightFormat{8}, sasq::Epilogue{}, MatrixView<float>(ref.data(), kM, kN));
    pw = sasq::pack_weights(MatrixView<const std::int8_t>(w.data(), kN, kK), ws, {8});
  }
  MatrixView<const std::int8_t> av() const { return {a.data(), kM, kK}; }
  static sasq::ActivationQuant act() { return sasq::ActivationQuant::per_tensor(0.02f); }
  /// gemm with opt; true when the output equals the reference bit for bit.
  bool run(const sasq::GemmOptions& opt) const {
    std::vector<float> c(ref.size(), -1.0f);
    sasq::gemm(av(), act(), pw, sasq::Epilogue{}, MatrixView<float>(c.data(), kM, kN), opt);
    return c == ref;
  }
};

const Problem& problem() {
  static const Problem p;
  return p;
}

/// A caller-owned executor: one std::thread per task.
void threads_per_task(int n, const std::function<void(int)>& task) {
  std::vector<std::thread> ts;
  for (int i = 1; i < n; ++i) ts.emplace_back(task, i);
  task(0);
  for (auto& t : ts) t.join();
}

}  // namespace

TEST_CASE("gemm on a caller's ParallelFor equals the reference, whatever the order and thread count") {
  for (int threads : {0, 1, 2, 3, 4}) {
    sasq::GemmOptions opt;
    opt.threads = threads;
    opt.parallel_for = threads_per_task;
    CHECK(problem().run(opt));
    std::atomic<int> calls{0};
    opt.parallel_for = [&](int n, const std::function<void(int)>& task) {  // sequential, last index first
      ++calls;
      for (int i = n - 1; i >= 0; --i) task(i);
    };
    CHECK(problem().run(opt));
    if (threads >= 2) CHECK(calls.load() == 1);
  }
}

TEST_CASE("a ParallelFor that skips or repeats tasks is a sasq::Error") {
  sasq::GemmOptions opt;
  opt.threads = 4;
  opt.parallel_for = [](int, const std::function<void(int)>& task) { task(0); };
  CHECK_THROWS_AS(problem().run(opt), sasq::Error);
  opt.parallel_for = [](int n, const std::function<void(int)>& task) {
    for (int i = 0; i <= n; ++i) task(i);
  };
  CHECK_THROWS_AS(problem().run(opt), sasq::Error);
}

TEST_CASE("gemm called from inside tasks of the built-in pool runs inline (deadlocked before)") {
  sasq::cpu::ThreadPool& pool = sasq::cpu::ThreadPool::instance();
  within_a_minute("gemm inside ThreadPool::instance() tasks", [&] {
    for (int rep = 0; rep < 20; ++rep) {
      std::atomic<int> ok{0};
      pool.run(pool.max_threads(), [&](int) {
        CHECK(pool.in_task());
        if (problem().run({})) ++ok;
      });
      CHECK(ok.load() == pool.max_threads());
    }
  });
  CHECK_FALSE(pool.in_task());
}

TEST_CASE("ThreadPool::run nested in its own task runs every index inline, exceptions included") {
  sasq::cpu::ThreadPool pool(2);
  within_a_minute("nested ThreadPool::run", [&] {
    std::vector<std::atomic<int>> hits(9);
    pool.run(3, [&](int outer) {
      pool.run(3, [&](int inner) { hits[static_cast<std::size_t>(outer * 3 + inner)].fetch_add(1); });
    });
    for (auto& h : hits) CHECK(h.load() == 1);
    std::atomic<int> thrown{0};
    pool.run(3, [&](int) {
      try {
        pool.run(2, [](int t) {
          if (t == 1) throw std::runtime_error("inner");
        });
      } catch (const std::runtime_error&) {
        ++thrown;
      }
    });
    CHECK(thrown.load() == 3);
  });
}
