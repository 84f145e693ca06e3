// BPE tokenizers of LLaMA models: llama2.c files (tok512.bin / tokenizer.bin) and ranked-merge BPE
// vocabularies (Hugging Face tokenizer.json, parsed by tokenizer_json.hpp into a BpeSpec).
//   llama2.c file: int32 max_token_length, then per id: float32 score, int32 len, len bytes
//   llama2.c encode: [BOS] + [" " dummy prefix] + UTF-8 code points (bytes -> id byte+3 when absent),
//           then repeatedly merge the adjacent pair whose concatenation has the highest score
//           (leftmost on ties, only scores > -1e10), as run.c encode() does.
//   ranked encode (tokenizers' BPE model): split the text on added tokens; per other segment:
//           normalize (prepend, then replacements), UTF-8 code points (absent: byte-fallback pieces
//           <0xHH>, else unk, consecutive unks fused), then repeatedly merge the adjacent pair
//           (left id, right id) of lowest merge rank (leftmost on ties); [BOS] from the post-processor.
#pragma once

#include <algorithm>
#include <array>
#include <cmath>
#include <cstddef>
#include <cstdio>
#include <cstdint>
#include <cstring>
#include <queue>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "llama/checkpoint.hpp"
#include "llama/config.hpp"
#include "sasq/core/status.hpp"

namespace sasq::llama {

/// Largest token length accepted in a tokenizer file (the 32k LLaMA vocabulary uses 27).
inline constexpr int kMaxTokenLength = 1 << 10;

/// A ranked-merge BPE vocabulary (what tokenizer.json holds for LLaMA-style models).
struct BpeSpec {
  std::vector<std::string> pieces;              ///< token text by id (model vocabulary and added tokens)
  std::vector<std::pair<int, int>> merges;      ///< by rank: (left id, right id); merged = concatenation
  std::vector<int> added;                       ///< ids matched verbatim in the raw text before normalizing
  std::vector<int> special;                     ///< ids that decoding skips (BOS, EOS, unk, ...)
  std::string prepend;                          ///< normalizer: prepended to every non-empty segment
  std::vector<std::pair<std::string, std::string>> replace;         ///< normalizer: (pattern, content)
  std::vector<std::pair<std::string, std::string>> decode_replace;  ///< decoder: (pattern, content)
  bool byte_fallback = false;                   ///< absent code points become <0xHH> pieces
  bool fuse_unk = false;                        ///< consecutive unknown code points give one unk
  bool decode_bytes = false;                    ///< decoder: <0xHH> pieces become the raw byte
  bool decode_strip_space = false;              ///< decoder: drop one leading space of the text
  int unk_id = -1;                              ///< -1: no unk token (absent pieces are an error)
  std::vector<int> bos;                         ///< post-processor ids before the sequence
  std::vector<int> eos;                         ///< post-processor ids after it (encode eos = true)
};

/// A loaded vocabulary. Immutable after loading; encode/decode are const and thread-safe.
class Tokenizer {
 public:
  Tokenizer() = default;

  /// Parses a tokenizer held in memory. vocab_size > 0 reads exactly that many entries and
  /// requires the data to end there; vocab_size = 0 reads entries until the end of the data.
  /// Throws sasq::Error(kCorruptData) naming `source` and the entry on truncation, negative or
  /// oversized lengths, non-finite scores, trailing bytes or a missing " " piece; a well-formed
  /// tokenizer whose entry count differs from vocab_size is reported as such.
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
      if (size - off == 0 && vocab_size > 0 && id > 258)
        fail(ErrorCode::kCorruptData, source, ": the tokenizer has ", id, " entries but the model's vocabulary has ",
             vocab_size, " tokens: tokenizer and model belong to different models");
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
    if (off != size) {
      // A whole tokenizer with more entries is one of another model: say so, not "trailing bytes".
      std::size_t entries = 0;
      try {
        entries = parse(data, size, source, 0).pieces_.size();
      } catch (const Error&) {
      }
      if (entries > 0)
        fail(ErrorCode::kCorruptData, source, ": the tokenizer has ", entries, " entries but the model's vocabulary has ",
             vocab_size, " tokens: tokenizer and model belong to different models");
      fail(ErrorCode::kCorruptData, source, ": oversized tokenizer: ", size - off,
           " trailing bytes after ", vocab_size, " entries");
    }
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

  /// Builds a ranked-merge tokenizer. Throws sasq::Error(kCorruptData) naming `source` for an empty
  /// vocabulary, duplicate pieces among the non-added ids, ids out of range, a merge whose
  /// concatenation is not a piece, an added token with empty text, or a missing byte piece under
  /// byte_fallback.
  static Tokenizer from_bpe(BpeSpec spec, const std::string& source) {
    Tokenizer tok;
    const int n = static_cast<int>(spec.pieces.size());
    if (n == 0 || n > kMaxVocab) fail(ErrorCode::kCorruptData, source, ": vocabulary of ", n, " pieces");
    auto check_id = [&](int id, const char* what) {
      if (id < 0 || id >= n) fail(ErrorCode::kCorruptData, source, ": ", what, " id ", id, " outside [0, ", n, ")");
    };
    tok.pieces_ = std::move(spec.pieces);
    tok.scores_.assign(static_cast<std::size_t>(n), 0.0f);
    tok.is_added_.assign(static_cast<std::size_t>(n), 0);
    tok.is_special_.assign(static_cast<std::size_t>(n), 0);
    for (const int id : spec.added) {
      check_id(id, "added token");
      if (tok.pieces_[static_cast<std::size_t>(id)].empty()) fail(ErrorCode::kCorruptData, source, ": added token ", id, " is empty");
      tok.is_added_[static_cast<std::size_t>(id)] = 1;
      tok.added_.push_back(id);
    }
    for (const int id : spec.special) {
      check_id(id, "special token");
      tok.is_special_[static_cast<std::size_t>(id)] = 1;
    }
    for (int id = n; id-- > 0;) {
      const std::string& p = tok.pieces_[static_cast<std::size_t>(id)];
      tok.max_token_length_ = std::max(tok.max_token_length_, static_cast<int>(p.size()));
      if (tok.is_added_[static_cast<std::size_t>(id)]) continue;
      if (!tok.lookup_.emplace(p, id).second && tok.lookup_[p] != id)
        fail(ErrorCode::kCorruptData, source, ": piece '", p, "' has two ids");
    }
    for (std::size_t r = 0; r < spec.merges.size(); ++r) {
      const auto [a, b] = spec.merges[r];
      check_id(a, "merge");
      check_id(b, "merge");
      const int m = tok.find(tok.pieces_[static_cast<std::size_t>(a)] + tok.pieces_[static_cast<std::size_t>(b)]);
      if (m < 0)
        fail(ErrorCode::kCorruptData, source, ": merge ", r, " ('", tok.pieces_[static_cast<std::size_t>(a)], "' + '",
             tok.pieces_[static_cast<std::size_t>(b)], "') makes a piece that is not in the vocabulary");
      tok.ranks_.emplace(pair_key(a, b), std::make_pair(static_cast<int>(r), m));  // first (lowest) rank wins
    }
    if (spec.unk_id >= 0) check_id(spec.unk_id, "unk");
    for (const int id : spec.bos) check_id(id, "BOS");
    for (const int id : spec.eos) check_id(id, "EOS");
    if (spec.byte_fallback)
      for (int b = 0; b < 256; ++b) {
        char name[8];
        std::snprintf(name, sizeof name, "<0x%02X>", b);
        tok.byte_ids_[static_cast<std::size_t>(b)] = tok.find(name);
        if (tok.byte_ids_[static_cast<std::size_t>(b)] < 0)
          fail(ErrorCode::kCorruptData, source, ": byte_fallback without the piece ", name);
      }
    tok.ranked_ = true;
    tok.byte_fallback_ = spec.byte_fallback;
    tok.fuse_unk_ = spec.fuse_unk;
    tok.unk_id_ = spec.unk_id;
    tok.prepend_ = std::move(spec.prepend);
    tok.replace_ = std::move(spec.replace);
    tok.decode_replace_ = std::move(spec.decode_replace);
    tok.decode_bytes_ = spec.decode_bytes;
    tok.decode_strip_space_ = spec.decode_strip_space;
    tok.bos_ = std::move(spec.bos);
    tok.eos_ = std::move(spec.eos);
    return tok;
  }

  int vocab_size() const { return static_cast<int>(pieces_.size()); }
  /// True for a ranked-merge (tokenizer.json) vocabulary, false for a llama2.c file.
  bool ranked() const { return ranked_; }
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
  /// A ranked vocabulary encodes as tokenizers' BPE model (see the file comment); `bos`/`eos` add
  /// the post-processor's leading/trailing ids.
  std::vector<int> encode(const std::string& text, bool bos, bool eos = false) const {
    if (ranked_) return encode_ranked(text, bos, eos);
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
  /// BOS, and byte pieces "<0xHH>" become the raw byte. A ranked vocabulary decodes as its
  /// decoder: special tokens give nothing, replacements (U+2581 -> " "), byte pieces -> the raw
  /// byte, and (with the Strip decoder) one leading space dropped at the start (prev = BOS).
  std::string decode(int prev, int token) const {
    if (ranked_) return decode_ranked(prev, token);
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
  static std::uint64_t pair_key(int a, int b) {
    return (static_cast<std::uint64_t>(static_cast<std::uint32_t>(a)) << 32) | static_cast<std::uint32_t>(b);
  }

  static void replace_all(std::string& s, const std::string& pattern, const std::string& content) {
    if (pattern.empty()) return;
    std::string out;
    std::size_t i = 0;
    for (std::size_t j; (j = s.find(pattern, i)) != std::string::npos; i = j + pattern.size()) {
      out.append(s, i, j - i);
      out += content;
    }
    out.append(s, i, std::string::npos);
    s.swap(out);
  }

  /// Byte pieces "<0xHH>" -> the byte value, else -1.
  static int byte_piece(const std::string& s) {
    if (s.size() != 6 || s.compare(0, 3, "<0x") != 0 || s[5] != '>') return -1;
    const int hi = hex_digit(s[3]), lo = hex_digit(s[4]);
    return hi < 0 || lo < 0 ? -1 : hi * 16 + lo;
  }

  std::vector<int> encode_ranked(const std::string& text, bool bos, bool eos) const {
    std::vector<int> ids = bos ? bos_ : std::vector<int>{};
    // Split on added tokens (leftmost, then longest), encoding the text between them.
    std::size_t start = 0;
    while (start < text.size()) {
      std::size_t best = std::string::npos;
      int best_id = -1;
      for (const int id : added_) {
        const std::string& p = pieces_[static_cast<std::size_t>(id)];
        const std::size_t at = text.find(p, start);
        if (at != std::string::npos &&
            (at < best || (at == best && p.size() > pieces_[static_cast<std::size_t>(best_id)].size()))) {
          best = at;
          best_id = id;
        }
      }
      const std::size_t end = best == std::string::npos ? text.size() : best;
      if (end > start) encode_segment(text.substr(start, end - start), ids);
      if (best_id < 0) break;
      ids.push_back(best_id);
      start = end + pieces_[static_cast<std::size_t>(best_id)].size();
    }
    if (eos) {
      if (eos_.empty()) fail(ErrorCode::kInvalidArgument, "encode with eos: the tokenizer defines no EOS");
      ids.insert(ids.end(), eos_.begin(), eos_.end());
    }
    return ids;
  }

  /// Normalizes one segment between added tokens and appends its BPE ids.
  void encode_segment(std::string s, std::vector<int>& out) const {
    s.insert(0, prepend_);
    for (const auto& [pattern, content] : replace_) replace_all(s, pattern, content);
    std::vector<int> ids;
    bool last_unk = false;
    for (std::size_t i = 0; i < s.size();) {
      std::size_t len = 1;  // one UTF-8 code point (a stray byte on its own)
      const auto c = static_cast<unsigned char>(s[i]);
      const std::size_t want = c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : c >= 0xC0 ? 2 : 1;
      while (len < want && i + len < s.size() && (static_cast<unsigned char>(s[i + len]) & 0xC0) == 0x80) ++len;
      const std::string ch = s.substr(i, len);
      i += len;
      const int id = find(ch);
      if (id >= 0) {
        ids.push_back(id);
        last_unk = false;
      } else if (byte_fallback_) {
        for (const char b : ch) ids.push_back(byte_ids_[static_cast<unsigned char>(b)]);
        last_unk = false;
      } else {
        if (unk_id_ < 0) fail(ErrorCode::kInvalidArgument, "text holds '", ch, "', which has no piece and no unk token");
        if (!(fuse_unk_ && last_unk)) ids.push_back(unk_id_);
        last_unk = true;
      }
    }
    merge(ids);
    out.insert(out.end(), ids.begin(), ids.end());
  }

  std::string decode_ranked(int prev, int token) const {
    if (is_special_.at(static_cast<std::size_t>(token))) return {};
    std::string s = piece(token);
    if (!is_added_[static_cast<std::size_t>(token)]) {
      for (const auto& [pattern, content] : decode_replace_) replace_all(s, pattern, content);
      const int b = decode_bytes_ ? byte_piece(s) : -1;
      if (b >= 0) s = std::string(1, static_cast<char>(b));
    }
    const bool at_start = prev < 0 || (!bos_.empty() && prev == bos_.back());
    if (decode_strip_space_ && at_start && !s.empty() && s[0] == ' ') s.erase(0, 1);
    return s;
  }

  static int hex_digit(char ch) {
    if (ch >= '0' && ch <= '9') return ch - '0';
    if (ch >= 'a' && ch <= 'f') return ch - 'a' + 10;
    if (ch >= 'A' && ch <= 'F') return ch - 'A' + 10;
    return -1;
  }

  /// Merges ids in place: pops the best candidate pair (llama2.c: highest score of the
  /// concatenation; ranked: lowest merge rank; then leftmost), skipping stale entries, over a
  /// doubly linked list of the current tokens.
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
      double score;  // higher is better: the piece score, or minus the merge rank
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
      if (ranked_) {
        const auto it = ranks_.find(pair_key(tl, tr));
        if (it != ranks_.end()) heap.push({-static_cast<double>(it->second.first), l, r, tl, tr, it->second.second});
        return;
      }
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
  // Ranked-merge vocabularies only (from_bpe).
  bool ranked_ = false;
  std::unordered_map<std::uint64_t, std::pair<int, int>> ranks_;  // (left, right) -> (rank, merged id)
  std::vector<int> added_;
  std::vector<char> is_added_, is_special_;
  std::array<int, 256> byte_ids_{};
  bool byte_fallback_ = false, fuse_unk_ = false, decode_bytes_ = false, decode_strip_space_ = false;
  int unk_id_ = -1;
  std::string prepend_;
  std::vector<std::pair<std::string, std::string>> replace_, decode_replace_;
  std::vector<int> bos_, eos_;
};

}  // namespace sasq::llama
