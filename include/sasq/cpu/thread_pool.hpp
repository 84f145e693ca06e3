// ThreadPool: a small reusable pool; run(n, fn) calls fn(0..n-1) on up to n threads (the caller runs 0).
// Workers spin for up to kSpinMicros after a task before sleeping, so back-to-back runs (the layers
// of one decode step) skip the futex wake-up; indices 1..n-1 are claimed from a shared counter, and the
// caller, done with index 0, runs the ones no worker has claimed yet, so a run never waits for a worker
// that is still waking up (a ~100 µs decode GEMV is shorter than a VM's wake-up of a sleeping vCPU can be);
// a run() from inside one of the pool's own tasks executes inline on the calling thread instead of
// waiting for workers that are busy running its parent.
#pragma once

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <exception>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace sasq::cpu {

/// Persistent workers woken per run(); runs from several outside threads are serialized. The first
/// exception thrown by fn is rethrown by run() after every index has run.
class ThreadPool {
 public:
  /// How long an idle worker (and a caller waiting for its workers) polls before blocking.
  static constexpr int kSpinMicros = 100;

  /// Workers a pool holds at most (the run index must fit in claim_'s low kIndexBits bits).
  static constexpr int kMaxWorkers = (1 << 16) - 2;

  /// A pool of min(workers, kMaxWorkers) worker threads.
  explicit ThreadPool(int workers) {
    workers = std::min(workers, kMaxWorkers);
    for (int i = 0; i < workers; ++i) threads_.emplace_back([this] { worker(); });
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

  /// True when the calling thread is running a task of this pool (a nested run() executes inline).
  bool in_task() const { return current() == this; }

  /// Calls fn(t) once for each t in [0, n), n clamped to [1, max_threads()], and waits for all of them:
  /// index 0 on the caller, the others on whichever of the caller and the workers claims them first (fn
  /// must not make one index wait for another). Called from inside one of this pool's tasks, it runs
  /// every index inline on the calling thread.
  void run(int n, const std::function<void(int)>& fn) {
    n = std::clamp(n, 1, max_threads());
    if (n == 1 || in_task()) {
      run_inline(n, fn);
      return;
    }
    std::lock_guard<std::mutex> serial(run_mutex_);
    {
      std::lock_guard<std::mutex> lock(mutex_);
      fn_ = &fn;
      active_ = n;
      pending_.store(n - 1, std::memory_order_relaxed);
      error_ = nullptr;
      const std::uint64_t gen = generation_.load(std::memory_order_relaxed) + 1;
      claim_.store(gen << kIndexBits | 1, std::memory_order_relaxed);
      generation_.store(gen, std::memory_order_release);
    }
    wake_.notify_all();
    std::exception_ptr mine = call(fn, 0);
    const std::uint64_t gen = generation_.load(std::memory_order_relaxed);
    for (int t; (t = claim(gen, n)) > 0;) {
      std::exception_ptr err = call(fn, t);
      if (err && !mine) mine = err;
      pending_.fetch_sub(1, std::memory_order_acq_rel);
    }
    spin_until([this] { return pending_.load(std::memory_order_acquire) == 0; });
    std::unique_lock<std::mutex> lock(mutex_);
    done_.wait(lock, [this] { return pending_.load(std::memory_order_acquire) == 0; });
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
  /// The pool whose task the calling thread is running (nullptr outside any task).
  static const ThreadPool*& current() {
    static thread_local const ThreadPool* pool = nullptr;
    return pool;
  }

  /// Bits of claim_ that hold the next index (the rest: the generation of the run it belongs to).
  static constexpr int kIndexBits = 16;
  static_assert(kMaxWorkers + 1 < (1 << kIndexBits), "run indices must fit in kIndexBits");

  /// Claims the next unclaimed index of run `gen` with n indices: the index, or 0 when every index is
  /// taken or run `gen` is over (a late worker must not take an index of a later run).
  int claim(std::uint64_t gen, int n) {
    std::uint64_t c = claim_.load(std::memory_order_relaxed);
    for (;;) {
      const int t = static_cast<int>(c & ((std::uint64_t{1} << kIndexBits) - 1));
      if (c >> kIndexBits != gen || t >= n) return 0;
      if (claim_.compare_exchange_weak(c, c + 1, std::memory_order_acq_rel, std::memory_order_relaxed)) return t;
    }
  }

  /// Runs fn(t) as a task of this pool and returns what it threw.
  std::exception_ptr call(const std::function<void(int)>& fn, int t) const {
    const ThreadPool* outer = current();
    current() = this;
    std::exception_ptr err;
    try {
      fn(t);
    } catch (...) {
      err = std::current_exception();
    }
    current() = outer;
    return err;
  }

  void run_inline(int n, const std::function<void(int)>& fn) const {
    std::exception_ptr first;
    for (int t = 0; t < n; ++t) {
      std::exception_ptr err = call(fn, t);
      if (err && !first) first = err;
    }
    if (first) std::rethrow_exception(first);
  }

  /// Polls done() with a pause for up to kSpinMicros; returns whether it became true.
  template <class Done>
  static bool spin_until(Done done) {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::microseconds(kSpinMicros);
    for (;;) {
      for (int i = 0; i < 64; ++i) {
        if (done()) return true;
#if defined(__x86_64__) || defined(__i386__)
        __builtin_ia32_pause();
#endif
      }
      if (std::chrono::steady_clock::now() > deadline) return false;
    }
  }

  void worker() {
    std::uint64_t seen = 0;
    for (;;) {
      spin_until([&] { return generation_.load(std::memory_order_acquire) != seen; });
      std::unique_lock<std::mutex> lock(mutex_);
      wake_.wait(lock, [&] { return stop_ || generation_.load(std::memory_order_relaxed) != seen; });
      if (stop_) return;
      seen = generation_.load(std::memory_order_relaxed);
      const int n = active_;
      const std::function<void(int)>* fn = fn_;
      lock.unlock();
      const int t = claim(seen, n);  // fn and n stay valid while an index of run `seen` is unfinished
      if (t == 0) continue;
      const std::exception_ptr err = call(*fn, t);
      if (err) {
        std::lock_guard<std::mutex> guard(mutex_);
        if (!error_) error_ = err;
      }
      if (pending_.fetch_sub(1, std::memory_order_acq_rel) == 1) {
        std::lock_guard<std::mutex> guard(mutex_);  // the caller is spinning or inside done_.wait
        done_.notify_one();
      }
    }
  }

  std::vector<std::thread> threads_;
  std::mutex mutex_, run_mutex_;
  std::condition_variable wake_, done_;
  const std::function<void(int)>* fn_ = nullptr;
  std::exception_ptr error_;
  std::atomic<std::uint64_t> generation_{0};
  std::atomic<std::uint64_t> claim_{0};  // generation << kIndexBits | next index
  std::atomic<int> pending_{0};
  int active_ = 0;
  bool stop_ = false;
};

}  // namespace sasq::cpu
