// ThreadPool: a small reusable pool; run(n, fn) calls fn(0..n-1) on n threads (the caller is thread 0).
#pragma once

#include <algorithm>
#include <condition_variable>
#include <cstdint>
#include <exception>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace sasq::cpu {

/// Persistent workers woken per run(); calls from several threads are serialized. fn must not call
/// run() on the same pool (no nesting). The first exception thrown by fn is rethrown by run().
class ThreadPool {
 public:
  explicit ThreadPool(int workers) {
    for (int i = 0; i < workers; ++i) threads_.emplace_back([this, i] { worker(i + 1); });
  }
  ~ThreadPool() {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      stop_ = true;
    }
    wake_.notify_all();
    for (std::thread& t : threads_) t.join();
  }
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  /// Threads a run() can use: workers + the caller.
  int max_threads() const { return static_cast<int>(threads_.size()) + 1; }

  /// Calls fn(t) for t in [0, n), n clamped to [1, max_threads()], and waits for all of them.
  void run(int n, const std::function<void(int)>& fn) {
    n = std::clamp(n, 1, max_threads());
    if (n == 1) {
      fn(0);
      return;
    }
    std::lock_guard<std::mutex> serial(run_mutex_);
    {
      std::lock_guard<std::mutex> lock(mutex_);
      fn_ = &fn;
      active_ = n;
      pending_ = n - 1;
      error_ = nullptr;
      ++generation_;
    }
    wake_.notify_all();
    std::exception_ptr mine;
    try {
      fn(0);
    } catch (...) {
      mine = std::current_exception();
    }
    std::unique_lock<std::mutex> lock(mutex_);
    done_.wait(lock, [this] { return pending_ == 0; });
    fn_ = nullptr;
    if (!mine) mine = error_;
    lock.unlock();
    if (mine) std::rethrow_exception(mine);
  }

  /// The process-wide pool, with hardware_concurrency() - 1 workers, created on first use.
  static ThreadPool& instance() {
    static ThreadPool pool(static_cast<int>(std::max(1u, std::thread::hardware_concurrency())) - 1);
    return pool;
  }

 private:
  void worker(int index) {
    std::uint64_t seen = 0;
    std::unique_lock<std::mutex> lock(mutex_);
    for (;;) {
      wake_.wait(lock, [&] { return stop_ || generation_ != seen; });
      if (stop_) return;
      seen = generation_;
      if (index >= active_) continue;
      const std::function<void(int)>* fn = fn_;
      lock.unlock();
      std::exception_ptr err;
      try {
        (*fn)(index);
      } catch (...) {
        err = std::current_exception();
      }
      lock.lock();
      if (err && !error_) error_ = err;
      if (--pending_ == 0) done_.notify_one();
    }
  }

  std::vector<std::thread> threads_;
  std::mutex mutex_, run_mutex_;
  std::condition_variable wake_, done_;
  const std::function<void(int)>* fn_ = nullptr;
  std::exception_ptr error_;
  std::uint64_t generation_ = 0;
  int active_ = 0, pending_ = 0;
  bool stop_ = false;
};

}  // namespace sasq::cpu
