// Bring your own threads: sasq::gemm on an engine's own thread pool (as llama.cpp or ONNX Runtime own
// theirs), through a ParallelFor adapter of a few lines; then gemm called from inside the engine's tasks.
#include <condition_variable>
#include <cstdio>
#include <functional>
#include <mutex>
#include <queue>
#include <random>
#include <thread>
#include <vector>

#include <sasq/sasq.hpp>

namespace {

/// The engine's pool: a plain task queue with a fixed set of workers (not sasq's).
class EnginePool {
 public:
  explicit EnginePool(int n) {
    for (int i = 0; i < n; ++i) workers_.emplace_back([this] { loop(); });
  }
  ~EnginePool() {
    {
      std::lock_guard<std::mutex> l(m_);
      stop_ = true;
    }
    cv_.notify_all();
    for (auto& w : workers_) w.join();
  }
  int size() const { return static_cast<int>(workers_.size()); }
  void submit(std::function<void()> job) {
    {
      std::lock_guard<std::mutex> l(m_);
      jobs_.push(std::move(job));
    }
    cv_.notify_one();
  }

 private:
  void loop() {
    for (;;) {
      std::function<void()> job;
      {
        std::unique_lock<std::mutex> l(m_);
        cv_.wait(l, [this] { return stop_ || !jobs_.empty(); });
        if (stop_ && jobs_.empty()) return;
        job = std::move(jobs_.front());
        jobs_.pop();
      }
      job();
    }
  }
  std::vector<std::thread> workers_;
  std::queue<std::function<void()>> jobs_;
  std::mutex m_;
  std::condition_variable cv_;
  bool stop_ = false;
};

/// The adapter: a sasq::ParallelFor that runs task(1..n-1) on the engine's pool and task(0) on the caller,
/// waits for all, and passes on the first exception.
sasq::ParallelFor parallel_for_on(EnginePool& pool) {
  return [&pool](int n, const std::function<void(int)>& task) {
    std::mutex m;
    std::condition_variable done;
    int left = n - 1;
    std::exception_ptr error;
    for (int i = 1; i < n; ++i)
      pool.submit([&, i] {
        std::exception_ptr e;
        try {
          task(i);
        } catch (...) {
          e = std::current_exception();
        }
        std::lock_guard<std::mutex> l(m);
        if (e && !error) error = e;
        if (--left == 0) done.notify_one();
      });
    try {
      task(0);
    } catch (...) {
      std::lock_guard<std::mutex> l(m);
      if (!error) error = std::current_exception();
    }
    std::unique_lock<std::mutex> l(m);
    done.wait(l, [&] { return left == 0; });
    if (error) std::rethrow_exception(error);
  };
}

}  // namespace

int main() {
  // One W8A8 linear layer (64 tokens, K = N = 512) with a static activation scale.
  const std::ptrdiff_t m = 64, k = 512, n = 512;
  std::mt19937 rng(3);
  std::uniform_int_distribution<int> d(-128, 127);
  std::vector<std::int8_t> a(m * k), w(n * k);
  for (auto& v : a) v = static_cast<std::int8_t>(d(rng));
  for (auto& v : w) v = static_cast<std::int8_t>(d(rng));
  const std::vector<float> w_scales(n, 0.01f);
  const sasq::MatrixView<const std::int8_t> av(a.data(), m, k), wv(w.data(), n, k);
  const auto act = sasq::ActivationQuant::per_tensor(0.05f);
  const sasq::PackedWeights pw = sasq::pack_weights(wv, w_scales, {8});
  std::vector<float> ref(m * n), y(m * n);
  sasq::gemm_reference(av, act, wv, sasq::Span<const float>(w_scales), {8}, {}, sasq::MatrixView<float>(ref.data(), m, n));

  EnginePool pool(3);
  sasq::GemmOptions opt;
  opt.parallel_for = parallel_for_on(pool);  // the layer's tiles run on the engine's threads
  opt.threads = pool.size() + 1;
  sasq::gemm(av, act, pw, {}, sasq::MatrixView<float>(y.data(), m, n), opt);
  const bool on_pool = y == ref;

  // The engine parallelizes over requests itself and calls gemm from its tasks: one row block each,
  // with the default executor (sasq's own pool), which is safe from any thread.
  std::vector<float> y2(m * n);
  parallel_for_on(pool)(4, [&](int t) {
    const std::ptrdiff_t r0 = t * m / 4, r1 = (t + 1) * m / 4;
    sasq::gemm(sasq::MatrixView<const std::int8_t>(a.data() + r0 * k, r1 - r0, k), act, pw, {},
               sasq::MatrixView<float>(y2.data() + r0 * n, r1 - r0, n));
  });
  const bool nested = y2 == ref;
  std::printf("gemm %td x %td x %td on a caller-owned pool of %d threads + caller; bit-exact: %s, %s\n", m, k, n,
              pool.size(), on_pool ? "yes" : "NO", nested ? "yes" : "NO");
  return on_pool && nested ? 0 : 1;
}
