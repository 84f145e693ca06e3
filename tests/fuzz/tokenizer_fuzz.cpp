// libFuzzer target: the llama2.c tokenizer file parser, encode and decode must never crash.
// Byte 0 selects raw tokenizer-file bytes, or a valid 259-entry base vocabulary (with " ") plus
// pieces cut from the input, after which the input's tail is encoded and decoded (exercising the
// merge queue, UTF-8 handling and byte fallback).
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "llama/tokenizer.hpp"

namespace {

void put_entry(std::vector<unsigned char>& b, float score, const std::string& piece) {
  const auto len = static_cast<std::int32_t>(piece.size());
  unsigned char h[8];
  std::memcpy(h, &score, 4);
  std::memcpy(h + 4, &len, 4);
  b.insert(b.end(), h, h + 8);
  b.insert(b.end(), piece.begin(), piece.end());
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  std::vector<unsigned char> b;
  std::string text;
  if (data[0] % 2 == 0) {
    b.assign(data + 1, data + size);
  } else {
    const std::int32_t max_len = 8;
    b.resize(4);
    std::memcpy(b.data(), &max_len, 4);
    put_entry(b, 0.0f, "<unk>");
    put_entry(b, 0.0f, "\n<s>\n");
    put_entry(b, 0.0f, "\n</s>\n");
    for (int i = 0; i < 256; ++i) {
      char p[8];
      std::snprintf(p, sizeof p, "<0x%02X>", i);
      put_entry(b, 0.0f, p);
    }
    put_entry(b, 0.0f, " ");
    // Pieces: runs of up to 8 input bytes separated by 0xFF; the score comes from the first byte.
    std::size_t i = 1;
    const std::size_t split = 1 + (size - 1) / 2;
    while (i < split) {
      std::string piece;
      while (i < split && data[i] != 0xFF && piece.size() < 8) piece.push_back(static_cast<char>(data[i++]));
      ++i;
      if (!piece.empty()) put_entry(b, -static_cast<float>(static_cast<unsigned char>(piece[0]) % 7), piece);
    }
    text.assign(reinterpret_cast<const char*>(data) + split, size - split);
  }
  try {
    const sasq::llama::Tokenizer tok = sasq::llama::Tokenizer::parse(b.data(), b.size(), "fuzz.bin");
    const std::vector<int> ids = tok.encode(text, true, true);
    for (int id : ids)
      if (id < 0 || id >= tok.vocab_size()) __builtin_trap();
    const std::string back = tok.decode(std::vector<int>(ids.begin() + 1, ids.end() - 1), sasq::llama::kBosToken);
    // Encoding loses nothing: decoding gives the text back (byte fallback covers every byte).
    if (back != text) __builtin_trap();
  } catch (const sasq::Error&) {
  }
  return 0;
}
