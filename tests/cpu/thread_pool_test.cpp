// ThreadPool: every index runs exactly once (also when workers wake late and the caller claims their
// indices), the pool is reusable, exceptions reach the caller.
#include <doctest/doctest.h>

#include <atomic>
#include <chrono>
#include <memory>
#include <thread>
#include <stdexcept>
#include <vector>

#include "sasq/cpu/thread_pool.hpp"

TEST_CASE("run calls each index once, repeatedly, with n clamped to the pool") {
  sasq::cpu::ThreadPool pool(3);
  CHECK(pool.max_threads() == 4);
  for (int rep = 0; rep < 200; ++rep) {
    const int n = 1 + rep % 6;
    std::vector<std::atomic<int>> hits(4);
    pool.run(n, [&](int t) { hits[static_cast<std::size_t>(t)].fetch_add(1); });
    for (int t = 0; t < 4; ++t) CHECK(hits[static_cast<std::size_t>(t)].load() == (t < std::min(n, 4) ? 1 : 0));
  }
}

TEST_CASE("runs after the workers went to sleep: each index once, none of an earlier run's late") {
  // Pauses longer than kSpinMicros put the workers to sleep, so the caller claims indices while they
  // wake; every run has its own counters (freed after the run), so a late worker calling an old run's fn
  // would count in the wrong place (or touch freed memory under ASan).
  sasq::cpu::ThreadPool pool(3);
  for (int rep = 0; rep < 60; ++rep) {
    const int n = 2 + rep % 3;
    auto hits = std::make_unique<std::vector<std::atomic<int>>>(4);
    pool.run(n, [&, h = hits.get()](int t) {
      if (t == 0 && rep % 2 == 1) std::this_thread::sleep_for(std::chrono::microseconds(300));
      (*h)[static_cast<std::size_t>(t)].fetch_add(1);
    });
    for (int t = 0; t < 4; ++t) CHECK((*hits)[static_cast<std::size_t>(t)].load() == (t < n ? 1 : 0));
    hits.reset();
    if (rep % 3 != 0) std::this_thread::sleep_for(std::chrono::microseconds(rep % 3 == 1 ? 50 : 500));
  }
}

TEST_CASE("an exception in a worker is rethrown by run, and the pool stays usable") {
  sasq::cpu::ThreadPool pool(2);
  CHECK_THROWS_AS(pool.run(3, [](int t) {
    if (t == 2) throw std::runtime_error("worker failed");
  }), std::runtime_error);
  std::atomic<int> sum{0};
  pool.run(3, [&](int t) { sum += t; });
  CHECK(sum.load() == 3);
}

TEST_CASE("the process-wide pool exists and has at least the caller") {
  CHECK(sasq::cpu::ThreadPool::instance().max_threads() >= 1);
}
