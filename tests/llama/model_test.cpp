// Forward pass: batched prefill vs the scalar run.c oracle and vs incremental KV-cache decode, RoPE
// inverse, attention probabilities, argument errors.
#include <doctest/doctest.h>

#include <vector>

#include "llama/forward_instances.hpp"
#include "llama/model.hpp"
#include "reference_forward.hpp"
#include "synthetic_model.hpp"

using namespace sasq::llama;

TEST_CASE("batched forward matches the scalar run.c oracle and incremental decode") {
  for (bool shared : {true, false}) {
    const Weights w = test::random_weights(test::tiny_config(shared), 7);
    const RopeTable rope = make_rope_table(w.config.seq_len, w.config.head_size());
    const std::vector<int> tokens{1, 5, 9, 31, 0, 17, 17, 2, 8, 30, 11, 4};  // seq_len tokens
    const Matrix full = forward(w, rope, tokens);
    test::ReferenceModel ref(w);
    KVCache cache = make_kv_cache(w.config, w.config.seq_len);
    Fp32Exec exec;
    for (std::size_t t = 0; t < tokens.size(); ++t) {
      const std::vector<float> z = ref.step(tokens[t], static_cast<int>(t));
      const int one[1] = {tokens[t]};
      const Matrix inc = forward(w, rope, sasq::Span<const int>(one, 1), static_cast<int>(t), &cache, exec);
      for (int v = 0; v < w.config.vocab_size; ++v) {
        CHECK(full(static_cast<Eigen::Index>(t), v) == doctest::Approx(z[static_cast<std::size_t>(v)]).epsilon(1e-4));
        CHECK(inc(0, v) == doctest::Approx(full(static_cast<Eigen::Index>(t), v)).epsilon(1e-4));
      }
    }
    // A chunked prefill (4 + 8 tokens) equals the one-shot prefill.
    KVCache c2 = make_kv_cache(w.config, w.config.seq_len);
    const sasq::Span<const int> all(tokens);
    forward(w, rope, all.subspan(0, 4), 0, &c2, exec);
    const Matrix tail = forward(w, rope, all.subspan(4, 8), 4, &c2, exec);
    CHECK((tail - full.bottomRows(8)).cwiseAbs().maxCoeff() < 1e-4f);
  }
}

TEST_CASE("RoPE inverse undoes the rotation; attention rows are causal distributions") {
  const Config c = test::tiny_config();
  const RopeTable rope = make_rope_table(c.seq_len, c.head_size());
  Matrix x = Matrix::Random(5, c.dim), y = x;
  apply_rope(y, 3, rope);
  CHECK((y - x).cwiseAbs().maxCoeff() > 1e-3f);
  apply_rope(y, 3, rope, true);
  CHECK((y - x).cwiseAbs().maxCoeff() < 1e-5f);

  const Matrix q = Matrix::Random(6, c.dim), k = Matrix::Random(8, c.kv_dim()), v = Matrix::Random(8, c.kv_dim());
  Matrix out;
  std::vector<Matrix> probs;
  causal_attention(q, k, v, 2, c, out, &probs);
  REQUIRE(probs.size() == static_cast<std::size_t>(c.n_heads));
  for (const Matrix& p : probs) {
    REQUIRE(p.rows() == 6);
    REQUIRE(p.cols() == 8);
    for (Eigen::Index t = 0; t < 6; ++t) {
      CHECK(p.row(t).sum() == doctest::Approx(1.0f).epsilon(1e-5));
      for (Eigen::Index j = 2 + t + 1; j < 8; ++j) CHECK(p(t, j) == 0.0f);
    }
  }
  // Head 3 reads KV head 1 (kv_mul = 2).
  const Eigen::Index hs = c.head_size();
  const Matrix expect = probs[3] * v.middleCols(hs, hs);
  CHECK((out.middleCols(3 * hs, hs) - expect).cwiseAbs().maxCoeff() < 1e-5f);
}

TEST_CASE("forward rejects bad tokens, positions and caches") {
  const Weights w = test::random_weights(test::tiny_config());
  const RopeTable rope = make_rope_table(w.config.seq_len, w.config.head_size());
  Fp32Exec exec;
  const std::vector<int> bad_token{1, 32};
  CHECK_THROWS_WITH_AS(forward(w, rope, bad_token), doctest::Contains("token 32 at index 1"), sasq::Error);
  const std::vector<int> too_long(13, 1);
  CHECK_THROWS_WITH_AS(forward(w, rope, too_long), doctest::Contains("exceed seq_len"), sasq::Error);
  const std::vector<int> one{1};
  CHECK_THROWS_AS(forward(w, rope, one, 3, nullptr, exec), sasq::Error);
  KVCache small = make_kv_cache(w.config, 2);
  CHECK_THROWS_AS(forward(w, rope, one, 2, &small, exec), sasq::Error);
  CHECK_THROWS_AS(make_kv_cache(w.config, 13), sasq::Error);
}
