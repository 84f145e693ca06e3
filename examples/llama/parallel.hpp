// The one parallel loop of the examples: fn(i, worker) for i in [0, n) on up to `threads` threads
// (the caller is worker 0), item i on worker i % workers. The fixed assignment makes per-worker
// partial results merged in worker order reproducible. An exception thrown by any item stops every
// worker before its next item and is rethrown to the caller once all have stopped (never
// std::terminate).
#pragma once

#include <algorithm>
#include <atomic>
#include <cstddef>
#include <exception>
#include <mutex>
#include <thread>
#include <vector>

namespace sasq::llama {

/// Number of workers parallel_for(n, threads, ...) uses: min(threads, n), at least 1.
inline int parallel_workers(std::size_t n, int threads) {
  return static_cast<int>(std::max<std::size_t>(1, std::min<std::size_t>(static_cast<std::size_t>(std::max(threads, 1)), n)));
}

/// Runs fn(i, worker) for every i in [0, n); see the file comment. Rethrows the first exception.
template <class Fn>
void parallel_for(std::size_t n, int threads, Fn&& fn) {
  const int workers = parallel_workers(n, threads);
  const auto stride = static_cast<std::size_t>(workers);
  std::atomic<bool> failed{false};
  std::exception_ptr first;
  std::mutex mu;
  auto work = [&](int w) {
    try {
      for (std::size_t i = static_cast<std::size_t>(w); i < n && !failed.load(std::memory_order_relaxed); i += stride)
        fn(i, w);
    } catch (...) {
      std::lock_guard<std::mutex> lock(mu);
      if (!first) first = std::current_exception();
      failed = true;
    }
  };
  std::vector<std::thread> pool;
  pool.reserve(stride - 1);
  for (int w = 1; w < workers; ++w) pool.emplace_back(work, w);
  work(0);
  for (auto& t : pool) t.join();
  if (first) std::rethrow_exception(first);
}

}  // namespace sasq::llama
