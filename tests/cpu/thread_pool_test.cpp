// ThreadPool: every index runs exactly once, the pool is reusable, exceptions reach the caller.
#include <doctest/doctest.h>

#include <atomic>
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
