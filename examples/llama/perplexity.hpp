// Perplexity protocols and evaluator: PPL = exp(sum NLL / N) in double, NLL_t = logsumexp(z_t) - z_t[x_{t+1}].
//   TinyStories: split on "<|endoftext|>", strip each story, BOS + encode(story), at most seq_len
//                predictions per story, each from position 0 (evaluation 1-500, calibration 501-1000).
//   WikiText-2:  BOS + encode(whole file) cut into non-overlapping 512-token windows (the partial
//                tail dropped), each from a fresh context, scoring tokens 1..511 of each window.
#pragma once

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstddef>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "llama/model.hpp"
#include "llama/parallel.hpp"
#include "llama/tokenizer.hpp"
#include "sasq/core/span.hpp"
#include "sasq/core/status.hpp"

namespace sasq::llama {

/// Window length of the WikiText-2 protocol.
inline constexpr int kWikiWindow = 512;

/// Splits TinyStories text on "<|endoftext|>" and strips ASCII whitespace (Python str.strip) from
/// each story; empty pieces (the tail after the last separator) are dropped.
inline std::vector<std::string> split_stories(const std::string& text) {
  static const std::string sep = "<|endoftext|>";
  static const char* ws = " \t\n\r\v\f";
  std::vector<std::string> out;
  std::size_t start = 0;
  while (start <= text.size()) {
    std::size_t end = text.find(sep, start);
    if (end == std::string::npos) end = text.size();
    const std::string piece = text.substr(start, end - start);
    const std::size_t b = piece.find_first_not_of(ws);
    if (b != std::string::npos) out.push_back(piece.substr(b, piece.find_last_not_of(ws) - b + 1));
    start = end + sep.size();
  }
  return out;
}

/// Token sequences of stories first..last (1-based, inclusive): BOS + encode(story), cut to
/// seq_len + 1 tokens (seq_len predictions).
inline std::vector<std::vector<int>> story_sequences(const Tokenizer& tok, const std::vector<std::string>& stories,
                                                     int first, int last, int seq_len) {
  SASQ_REQUIRE(first >= 1 && first <= last && last <= static_cast<int>(stories.size()), "stories ", first,
               "..", last, " outside 1..", stories.size());
  std::vector<std::vector<int>> out;
  for (int i = first; i <= last; ++i) {
    std::vector<int> ids = tok.encode(stories[static_cast<std::size_t>(i - 1)], true);
    if (static_cast<int>(ids.size()) > seq_len + 1) ids.resize(static_cast<std::size_t>(seq_len) + 1);
    out.push_back(std::move(ids));
  }
  return out;
}

/// Non-overlapping windows of `window` tokens of BOS + encode(text); the partial tail is dropped.
inline std::vector<std::vector<int>> stream_windows(const Tokenizer& tok, const std::string& text, int window) {
  SASQ_REQUIRE(window >= 2, "window ", window, " < 2");
  const std::vector<int> ids = tok.encode(text, true);
  std::vector<std::vector<int>> out;
  for (std::size_t s = 0; s + static_cast<std::size_t>(window) <= ids.size(); s += static_cast<std::size_t>(window))
    out.emplace_back(ids.begin() + static_cast<std::ptrdiff_t>(s),
                     ids.begin() + static_cast<std::ptrdiff_t>(s) + window);
  return out;
}

/// Keeps sequences in order until `max_tokens` predictions (0 = all); the last one is cut.
inline std::vector<std::vector<int>> limit_predictions(std::vector<std::vector<int>> seqs, long max_tokens) {
  if (max_tokens <= 0) return seqs;
  long left = max_tokens;
  std::vector<std::vector<int>> out;
  for (auto& s : seqs) {
    if (left <= 0 || s.size() < 2) break;
    const long n = std::min<long>(left, static_cast<long>(s.size()) - 1);
    s.resize(static_cast<std::size_t>(n) + 1);
    left -= n;
    out.push_back(std::move(s));
  }
  return out;
}

/// Result of a perplexity run.
struct PplResult {
  double nll_sum = 0.0;   ///< sum of natural-log NLLs
  long tokens = 0;        ///< scored predictions
  long sequences = 0;
  double seconds = 0.0;   ///< wall time of the forward passes
  double ppl() const { return tokens > 0 ? std::exp(nll_sum / static_cast<double>(tokens)) : 0.0; }
  /// Processed tokens per second (every input position of every forward).
  double tokens_per_second() const { return seconds > 0 ? static_cast<double>(tokens) / seconds : 0.0; }
};

/// r.ppl() when it is finite; else throws sasq::Error(kCorruptData) naming `what` (a NaN or infinite
/// perplexity means the forward pass overflowed: out-of-range weights or scales).
inline double finite_ppl(const PplResult& r, const std::string& what) {
  const double p = r.ppl();
  if (!std::isfinite(p))
    fail(ErrorCode::kCorruptData, "the perplexity of ", what, " is ", p, " (NLL sum ", r.nll_sum,
         "): the forward pass produced non-finite values (out-of-range weights or scales?)");
  return p;
}

/// Sum of NLLs of tokens[1..] given their prefixes, from logits [T-1][vocab] of tokens[0..T-2].
inline double sequence_nll(const Matrix& logits, Span<const int> tokens) {
  double nll = 0.0;
  for (Eigen::Index t = 0; t < logits.rows(); ++t) {
    const float* z = logits.row(t).data();
    const double m = static_cast<double>(logits.row(t).maxCoeff());
    double sum = 0.0;
    for (Eigen::Index v = 0; v < logits.cols(); ++v) sum += std::exp(static_cast<double>(z[v]) - m);
    nll += std::log(sum) + m - static_cast<double>(z[tokens[static_cast<std::size_t>(t) + 1]]);
  }
  return nll;
}

/// Evaluates every sequence (each from position 0) on `threads` threads (llama::parallel_for: an
/// error in any worker is rethrown here). make_exec() builds one executor per worker. Sums are taken
/// in sequence order, so results do not depend on threads. progress(done, total) is called from the
/// worker threads (may be empty).
template <class MakeExec>
PplResult evaluate_ppl(const Weights& w, const RopeTable& rope, const std::vector<std::vector<int>>& seqs,
                       int threads, MakeExec make_exec,
                       const std::function<void(std::size_t, std::size_t)>& progress = {}) {
  SASQ_REQUIRE(threads >= 1, "threads = ", threads);
  for (std::size_t i = 0; i < seqs.size(); ++i)
    SASQ_REQUIRE(seqs[i].size() >= 2 && seqs[i].size() <= static_cast<std::size_t>(w.config.seq_len) + 1,
                 "sequence ", i, " has ", seqs[i].size(), " tokens (need 2..seq_len+1)");
  std::vector<double> nll(seqs.size(), 0.0);
  std::atomic<std::size_t> done{0};
  std::vector<std::optional<decltype(make_exec())>> execs(static_cast<std::size_t>(parallel_workers(seqs.size(), threads)));
  const auto t0 = std::chrono::steady_clock::now();
  parallel_for(seqs.size(), threads, [&](std::size_t i, int worker) {
    auto& exec = execs[static_cast<std::size_t>(worker)];
    if (!exec) exec.emplace(make_exec());
    const Span<const int> all(seqs[i]);
    const Matrix logits = forward(w, rope, all.subspan(0, all.size() - 1), 0, nullptr, *exec);
    nll[i] = sequence_nll(logits, all);
    const std::size_t d = done.fetch_add(1) + 1;
    if (progress) progress(d, seqs.size());
  });
  PplResult r;
  r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  for (std::size_t i = 0; i < seqs.size(); ++i) {
    r.nll_sum += nll[i];
    r.tokens += static_cast<long>(seqs[i].size()) - 1;
  }
  r.sequences = static_cast<long>(seqs.size());
  return r;
}

}  // namespace sasq::llama
