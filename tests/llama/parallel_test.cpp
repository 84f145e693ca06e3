// llama::parallel_for (examples/llama/parallel.hpp) and evaluate_ppl on top of it: every item runs on
// worker i % workers, and an error in a worker reaches the caller as the exception (never
// std::terminate, which is what evaluate_ppl's bare std::threads did); a non-finite perplexity is an
// error (finite_ppl), not a "-nan" result.
#include <doctest/doctest.h>

#include <atomic>
#include <limits>
#include <stdexcept>
#include <vector>

#include "llama/forward_instances.hpp"
#include "llama/model.hpp"
#include "llama/parallel.hpp"
#include "llama/perplexity.hpp"
#include "synthetic_model.hpp"

using namespace sasq::llama;

TEST_CASE("parallel_for runs every item once, item i on worker i % workers") {
  for (const int threads : {1, 2, 3, 8}) {
    for (const std::size_t n : {std::size_t{0}, std::size_t{1}, std::size_t{2}, std::size_t{7}, std::size_t{33}}) {
      CAPTURE(threads);
      CAPTURE(n);
      const int workers = parallel_workers(n, threads);
      CHECK(workers >= 1);
      CHECK(workers <= std::max<int>(1, static_cast<int>(n)));
      std::vector<int> ran(n, -1);
      std::vector<std::atomic<int>> count(n);
      parallel_for(n, threads, [&](std::size_t i, int w) {
        ran[i] = w;
        count[i].fetch_add(1);
      });
      for (std::size_t i = 0; i < n; ++i) {
        CHECK(count[i].load() == 1);
        CHECK(ran[i] == static_cast<int>(i % static_cast<std::size_t>(workers)));
      }
    }
  }
}

TEST_CASE("parallel_for rethrows a worker's exception and stops the others") {
  for (const int threads : {1, 2, 4}) {
    CAPTURE(threads);
    std::atomic<int> after{0};
    CHECK_THROWS_WITH_AS(parallel_for(1000, threads,
                                      [&](std::size_t i, int) {
                                        if (i == 5) throw sasq::Error(sasq::ErrorCode::kInvalidArgument, "item 5 failed");
                                        if (i > 500) after.fetch_add(1);
                                      }),
                         "item 5 failed", sasq::Error);
    CHECK(after.load() < 495);  // the workers stopped long before the end
  }
}

namespace {
/// An executor whose linear layers fail on the second sequence it sees.
struct FailingExec {
  int* calls;
  void on_site(int, Site, Matrix&) {}
  void linear(int layer, Proj p, const Matrix& x, const Matrix& w, Matrix& y) {
    if (layer == 0 && p == Proj::kQ && ++*calls == 2) throw sasq::Error(sasq::ErrorCode::kInvalidArgument, "bad scale");
    sasq::llama::linear(x, w, y);
  }
};
}  // namespace

TEST_CASE("evaluate_ppl: an error inside a worker thread is an exception of the caller") {
  const Config c = test::tiny_config();
  const Weights w = test::random_weights(c);
  const RopeTable rope = make_rope_table(c.seq_len, c.head_size());
  const std::vector<std::vector<int>> seqs(8, std::vector<int>{1, 2, 3, 4, 5});
  for (const int threads : {1, 2, 3}) {
    CAPTURE(threads);
    std::vector<int> calls(8, 0);
    std::atomic<int> made{0};
    CHECK_THROWS_WITH_AS(evaluate_ppl(w, rope, seqs, threads, [&] { return FailingExec{&calls[static_cast<std::size_t>(made++)]}; }),
                         "bad scale", sasq::Error);
  }
}

TEST_CASE("finite_ppl: a NaN or infinite perplexity is an error naming what was evaluated") {
  const Config c = test::tiny_config();
  const Weights w = test::random_weights(c);
  const RopeTable rope = make_rope_table(c.seq_len, c.head_size());
  const std::vector<std::vector<int>> seqs(3, std::vector<int>{1, 2, 3, 4, 5});
  struct NanExec {
    void on_site(int, Site, Matrix&) {}
    void linear(int, Proj, const Matrix& x, const Matrix& wt, Matrix& y) {
      sasq::llama::linear(x, wt, y);
      y(0, 0) = std::numeric_limits<float>::quiet_NaN();
    }
  };
  const PplResult bad = evaluate_ppl(w, rope, seqs, 2, [] { return NanExec{}; });
  CHECK_THROWS_WITH_AS(finite_ppl(bad, "W8A8 test"), doctest::Contains("the perplexity of W8A8 test is"), sasq::Error);
  const PplResult good = evaluate_ppl(w, rope, seqs, 2, [] { return Fp32Exec{}; });
  CHECK(finite_ppl(good, "FP32") == good.ppl());
}
