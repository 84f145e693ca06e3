// ParallelFor: the caller's executor, taken by every parallel sasq entry point (bring your own threads,
// as oneDNN's threadpool interop and ruy's Context), with cpu::ThreadPool::instance() as the default.
#pragma once

#include <algorithm>
#include <atomic>
#include <functional>
#include <thread>

#include "sasq/core/status.hpp"
#include "sasq/cpu/thread_pool.hpp"

namespace sasq {

/// A caller-owned parallel-for: pf(n, task) calls task(i) exactly once for every i in [0, n), on any
/// threads and in any order (sequentially is fine), and returns only after every call has returned,
/// passing on an exception thrown by a task. sasq asks for n <= the thread count it was given.
/// An engine adapts its pool in a few lines (examples/executor/executor.cpp); empty = the built-in pool.
using ParallelFor = std::function<void(int n, const std::function<void(int)>& task)>;

namespace cpu {

/// Tasks an entry point splits into: `threads` if > 0, else every thread of the built-in pool (pf
/// empty) or hardware_concurrency() (a caller's pf).
inline int executor_threads(const ParallelFor& pf, int threads) {
  if (!pf) return threads > 0 ? std::min(threads, ThreadPool::instance().max_threads()) : ThreadPool::instance().max_threads();
  return threads > 0 ? threads : static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
}

/// Runs task(0..n-1) on pf, or on ThreadPool::instance() when pf is empty (inline when called from
/// one of its tasks). Throws sasq::Error(kInvalidArgument) when pf returns without having run each task
/// exactly once.
inline void parallel_run(const ParallelFor& pf, int n, const std::function<void(int)>& task) {
  if (n <= 1) {
    task(0);
    return;
  }
  if (!pf) {
    ThreadPool::instance().run(n, task);
    return;
  }
  std::atomic<int> done{0}, bad{0};
  pf(n, [&](int i) {
    if (i < 0 || i >= n) {
      bad.fetch_add(1, std::memory_order_relaxed);
      return;
    }
    task(i);
    done.fetch_add(1, std::memory_order_release);
  });
  if (bad.load(std::memory_order_relaxed) != 0 || done.load(std::memory_order_acquire) != n)
    fail(ErrorCode::kInvalidArgument, "the caller's ParallelFor ran ", done.load(), " of ", n, " tasks",
         bad.load() != 0 ? " and indices outside [0, n)" : "", " before returning");
}

}  // namespace cpu
}  // namespace sasq
