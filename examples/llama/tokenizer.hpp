// llama2.c tokenizer (tok512.bin / tokenizer.bin): SentencePiece BPE with byte fallback.
//   file: int32 max_token_length, then per id: float32 score, int32 len, len bytes
//   encode: [BOS] + [" " dummy prefix] + UTF-8 code points (bytes -> id byte+3 when absent),
//           then repeatedly merge the adjacent pair whose concatenation has the highest score
//           (leftmost on ties, only scores > -1e10), as run.c encode() does.
#pragma once

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <queue>
#include <string>
#include <unordered_map>
#include <vector>

#include "llama/checkpoint.hpp"
#include "llama/config.hpp"
#include "sasq/core/status.hpp"

namespace sasq::llama {

/// Largest token length accepted in a tokenizer file (the 32k LLaMA vocabulary uses 27).
inline constexpr int kMaxTokenLength = 1 << 10;

/// A loaded vocabulary. Immutable after loading; encode/decode are const and thread-safe.
class Tokenizer {
 public:
  Tokenizer() = default;

  /// Parses a tokenizer held in memory. vocab_size > 0 reads exactly that many entries and
  /// requires the data to end there; vocab_size = 0 reads entries until the end of the data.
  /// Throws sasq::Error(kCorruptData) naming `source` and the entry on truncation, negative or
  /// oversized lengths, non-finite scores, trailing bytes or a missing " " piece.
  static Tokenizer parse(const unsigned char* data, std::size_t size, const std::string& source,
                         int vocab_size = 0) {
    Tokenizer tok;
    if (size < 4) fail(ErrorCode::kCorruptData, source, ": truncated tokenizer: no max_token_length");
    std::int32_t max_len;
    std::memcpy(&max_len, data, 4);
    if (max_len <= 0 || max_len > kMaxTokenLength)
      fail(ErrorCode::kCorruptData, source, ": field max_token_length = ", max_len,
           " is outside [1, ", kMaxTokenLength, "]");
    tok.max_token_length_ = max_len;
    std::size_t off = 4;
    if (vocab_size < 0 || vocab_size > kMaxVocab)
      fail(ErrorCode::kInvalidArgument, source, ": vocab_size = ", vocab_size, " outside [0, ", kMaxVocab, "]");
    for (int id = 0; vocab_size == 0 ? off < size : id < vocab_size; ++id) {
      if (id >= kMaxVocab) fail(ErrorCode::kCorruptData, source, ": more than ", kMaxVocab, " entries");
      if (size - off < 8)
        fail(ErrorCode::kCorruptData, source, ": truncated tokenizer: entry ", id, " header at byte ",
             off, " needs 8 bytes, ", size - off, " left");
      float score;
      std::int32_t len;
      std::memcpy(&score, data + off, 4);
      std::memcpy(&len, data + off + 4, 4);
      off += 8;
      if (!std::isfinite(score))
        fail(ErrorCode::kCorruptData, source, ": entry ", id, " has a non-finite score");
      if (len < 0 || len > max_len)
        fail(ErrorCode::kCorruptData, source, ": entry ", id, " has length ", len,
             " outside [0, max_token_length = ", max_len, "]");
      if (size - off < static_cast<std::size_t>(len))
        fail(ErrorCode::kCorruptData, source, ": truncated tokenizer: entry ", id, " needs ", len,
             " bytes at byte ", off, ", ", size - off, " left");
      tok.pieces_.emplace_back(reinterpret_cast<const char*>(data + off), static_cast<std::size_t>(len));
      tok.scores_.push_back(score);
      off += static_cast<std::size_t>(len);
    }
    if (off != size)
      fail(ErrorCode::kCorruptData, source, ": oversized tokenizer: ", size - off,
           " trailing bytes after ", vocab_size, " entries");
    if (tok.pieces_.size() <= 258)
      fail(ErrorCode::kCorruptData, source, ": ", tok.pieces_.size(),
           " entries, fewer than the 259 of <unk>, BOS, EOS and the 256 byte pieces");
    for (std::size_t id = tok.pieces_.size(); id-- > 0;) tok.lookup_[tok.pieces_[id]] = static_cast<int>(id);
    tok.space_id_ = tok.find(" ");
    if (tok.space_id_ < 0) fail(ErrorCode::kCorruptData, source, ": no \" \" piece (needed as the dummy prefix)");
    return tok;
  }

  /// Loads a tokenizer file (see parse).
  static Tokenizer load(const std::string& path, int vocab_size = 0) {
    const std::vector<unsigned char> bytes = read_file_bytes(path);
    return parse(bytes.data(), bytes.size(), path, vocab_size);
  }

  int vocab_size() const { return static_cast<int>(pieces_.size()); }
  int max_token_length() const { return max_token_length_; }
  const std::string& piece(int id) const { return pieces_.at(static_cast<std::size_t>(id)); }
  float score(int id) const { return scores_.at(static_cast<std::size_t>(id)); }
  /// Id of an exact piece, or -1.
  int find(const std::string& s) const {
    const auto it = lookup_.find(s);
    return it == lookup_.end() ? -1 : it->second;
  }

  /// Encodes text as run.c encode(): optional BOS, dummy-prefix space (non-empty text only),
  /// code points with byte fallback, greedy highest-score merges (leftmost on ties), optional EOS.
  /// O(n log n) with a priority queue; the result equals run.c's O(n^2) loop.
  std::vector<int> encode(const std::string& text, bool bos, bool eos = false) const {
    std::vector<int> ids;
    if (bos) ids.push_back(kBosToken);
    if (!text.empty()) ids.push_back(space_id_);
    std::string buf;
    for (std::size_t i = 0; i < text.size(); ++i) {
      const auto c = static_cast<unsigned char>(text[i]);
      if ((c & 0xC0) != 0x80) buf.clear();
      buf.push_back(static_cast<char>(c));
      const bool next_is_cont = i + 1 < text.size() && (static_cast<unsigned char>(text[i + 1]) & 0xC0) == 0x80;
      if (next_is_cont && buf.size() < 4) continue;
      const int id = find(buf);
      if (id >= 0) {
        ids.push_back(id);
      } else {
        for (const char b : buf) ids.push_back(static_cast<unsigned char>(b) + 3);
      }
      buf.clear();
    }
    merge(ids);  // run.c merges over the whole list, BOS included
    if (eos) ids.push_back(kEosToken);
    return ids;
  }

  /// The text of `token` following `prev` (run.c decode): the leading space is dropped after
  /// BOS, and byte pieces "<0xHH>" become the raw byte.
  std::string decode(int prev, int token) const {
    const std::string& p = piece(token);
    std::size_t start = (prev == kBosToken && !p.empty() && p[0] == ' ') ? 1 : 0;
    const std::string s = p.substr(start);
    if (s.size() >= 4 && s.compare(0, 3, "<0x") == 0) {
      int v = 0, digits = 0;
      for (std::size_t i = 3; i < s.size() && digits < 2; ++i, ++digits) {
        const int d = hex_digit(s[i]);
        if (d < 0) break;
        v = v * 16 + d;
      }
      if (digits > 0) return std::string(1, static_cast<char>(v));
    }
    return s;
  }

  /// Decodes a token sequence; `prev` is the token before the first one (BOS for a prompt start).
  std::string decode(const std::vector<int>& tokens, int prev = kBosToken) const {
    std::string out;
    for (const int t : tokens) {
      out += decode(prev, t);
      prev = t;
    }
    return out;
  }

 private:
  static int hex_digit(char ch) {
    if (ch >= '0' && ch <= '9') return ch - '0';
    if (ch >= 'a' && ch <= 'f') return ch - 'a' + 10;
    if (ch >= 'A' && ch <= 'F') return ch - 'A' + 10;
    return -1;
  }

  /// Merges ids in place: pops the best (score desc, left position asc) candidate pair,
  /// skipping stale entries, over a doubly linked list of the current tokens.
  void merge(std::vector<int>& ids) const {
    const int n = static_cast<int>(ids.size());
    if (n < 2) return;
    std::vector<int> tok = ids;
    std::vector<int> prev(static_cast<std::size_t>(n)), next(static_cast<std::size_t>(n));
    for (int i = 0; i < n; ++i) {
      prev[static_cast<std::size_t>(i)] = i - 1;
      next[static_cast<std::size_t>(i)] = i + 1 < n ? i + 1 : -1;
    }
    struct Cand {
      float score;
      int left, right, left_tok, right_tok, merged;
    };
    auto worse = [](const Cand& a, const Cand& b) {
      return a.score != b.score ? a.score < b.score : a.left > b.left;
    };
    std::priority_queue<Cand, std::vector<Cand>, decltype(worse)> heap(worse);
    std::string cat;
    auto push = [&](int l, int r) {
      if (l < 0 || r < 0) return;
      const int tl = tok[static_cast<std::size_t>(l)], tr = tok[static_cast<std::size_t>(r)];
      cat = pieces_[static_cast<std::size_t>(tl)];
      cat += pieces_[static_cast<std::size_t>(tr)];
      const int id = find(cat);
      if (id < 0 || !(scores_[static_cast<std::size_t>(id)] > -1e10f)) return;
      heap.push({scores_[static_cast<std::size_t>(id)], l, r, tl, tr, id});
    };
    for (int i = 0; i + 1 < n; ++i) push(i, i + 1);
    std::vector<char> alive(static_cast<std::size_t>(n), 1);
    while (!heap.empty()) {
      const Cand c = heap.top();
      heap.pop();
      const auto l = static_cast<std::size_t>(c.left), r = static_cast<std::size_t>(c.right);
      if (!alive[l] || !alive[r] || next[l] != c.right || tok[l] != c.left_tok || tok[r] != c.right_tok)
        continue;
      tok[l] = c.merged;
      alive[r] = 0;
      next[l] = next[r];
      if (next[r] >= 0) prev[static_cast<std::size_t>(next[r])] = c.left;
      push(prev[l], c.left);
      push(c.left, next[l]);
    }
    ids.clear();
    for (int i = 0; i >= 0; i = next[static_cast<std::size_t>(i)]) ids.push_back(tok[static_cast<std::size_t>(i)]);
  }

  std::vector<std::string> pieces_;
  std::vector<float> scores_;
  std::unordered_map<std::string, int> lookup_;
  int max_token_length_ = 0;
  int space_id_ = -1;
};

}  // namespace sasq::llama
