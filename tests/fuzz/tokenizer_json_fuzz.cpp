// libFuzzer target: tokenizer.json parsing and the ranked-merge BPE must never crash. Byte 0 selects
// raw tokenizer.json text, or a valid LLaMA-style vocabulary (specials, 256 byte pieces, U+2581)
// plus pieces cut from the input with every two-piece split of each as a merge (in input order);
// the input's tail is then encoded, ids checked and, unless it holds text that cannot round-trip
// (U+2581, an added token), decoded back to itself (byte fallback covers every byte).
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <set>
#include <string>
#include <vector>

#include "llama/tokenizer_json.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace sasq::llama;
  if (size == 0) return 0;
  if (data[0] % 2 == 0) {
    try {
      const Tokenizer t = parse_tokenizer_json(std::string(reinterpret_cast<const char*>(data) + 1, size - 1), "fuzz.json");
      const std::vector<int> ids = t.encode("Hello, world \xC3\xA9 <s> \xF0\x9F\x98\x80", true, false);
      for (const int id : ids)
        if (id < 0 || id >= t.vocab_size()) __builtin_trap();
      (void)t.decode(ids, -1);
    } catch (const sasq::Error&) {
    }
    return 0;
  }
  const std::string sp = "\xE2\x96\x81";
  BpeSpec s;
  s.pieces = {"<unk>", "<s>", "</s>"};
  for (int b = 0; b < 256; ++b) {
    char name[8];
    std::snprintf(name, sizeof name, "<0x%02X>", b);
    s.pieces.push_back(name);
  }
  s.pieces.push_back(sp);
  std::set<std::string> seen(s.pieces.begin(), s.pieces.end());
  std::vector<std::string> cut;
  const std::size_t split = 1 + (size - 1) / 2;
  for (std::size_t i = 1; i < split;) {
    std::string piece;
    while (i < split && data[i] != 0xFF && piece.size() < 8) piece.push_back(static_cast<char>(data[i++]));
    ++i;
    if (!piece.empty() && seen.insert(piece).second) {
      s.pieces.push_back(piece);
      cut.push_back(piece);
    }
  }
  auto id_of = [&](const std::string& p) {
    for (std::size_t i = 3; i < s.pieces.size(); ++i)
      if (s.pieces[i] == p) return static_cast<int>(i);
    return -1;
  };
  for (const auto& p : cut)
    for (std::size_t c = 1; c < p.size(); ++c) {
      const int a = id_of(p.substr(0, c)), b = id_of(p.substr(c));
      if (a >= 0 && b >= 0) s.merges.emplace_back(a, b);
    }
  s.added = s.special = {0, 1, 2};
  s.prepend = sp;
  s.replace = {{" ", sp}};
  s.decode_replace = {{sp, " "}};
  s.byte_fallback = s.fuse_unk = s.decode_bytes = s.decode_strip_space = true;
  s.unk_id = 0;
  s.bos = {1};
  s.eos = {2};
  const std::string text(reinterpret_cast<const char*>(data) + split, size - split);
  try {
    const Tokenizer t = Tokenizer::from_bpe(s, "fuzz");
    const std::vector<int> ids = t.encode(text, true, true);
    for (const int id : ids)
      if (id < 0 || id >= t.vocab_size()) __builtin_trap();
    const bool lossy = text.find(sp) != std::string::npos || text.find("<s>") != std::string::npos ||
                       text.find("</s>") != std::string::npos || text.find("<unk>") != std::string::npos;
    if (!lossy && t.decode(ids, -1) != text) __builtin_trap();
  } catch (const sasq::Error&) {
  }
  return 0;
}
