// libFuzzer target: the llama2.c checkpoint loader must accept or reject any bytes with a
// sasq::Error, never crash, read out of bounds or allocate beyond the input's size.
// Byte 0 selects how the input is used: raw file bytes, or a well-formed legacy / ak42 header
// with small fuzzed dimensions followed by the rest of the input as the tensor payload (so the
// size, layout and NaN/Inf checks are reached often).
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <vector>

#include "llama/checkpoint.hpp"

namespace {

void put_i32(std::vector<unsigned char>& b, std::int32_t v) {
  const auto* p = reinterpret_cast<const unsigned char*>(&v);
  b.insert(b.end(), p, p + 4);
}

/// Small dimensions from fuzz bytes: dim in {2, 4, ..., 16}, heads dividing it most of the time.
void put_dims(std::vector<unsigned char>& b, const std::uint8_t* d, bool negate_vocab) {
  const int dim = 2 * (1 + d[0] % 8), heads = 1 + d[3] % 4, kv = 1 + d[4] % 4;
  const int vocab = 1 + d[5] % 16;
  put_i32(b, dim);
  put_i32(b, 1 + d[1] % 16);
  put_i32(b, 1 + d[2] % 3);
  put_i32(b, heads);
  put_i32(b, kv);
  put_i32(b, negate_vocab ? -vocab : vocab);
  put_i32(b, 1 + d[6] % 8);
}

void parse(const std::vector<unsigned char>& b) {
  try {
    const sasq::llama::Weights w = sasq::llama::parse_checkpoint(b.data(), b.size(), "fuzz.bin");
    // A successful parse must give consistent shapes.
    if (w.token_embedding.rows() != w.config.vocab_size || w.layers.size() != static_cast<std::size_t>(w.config.n_layers))
      __builtin_trap();
  } catch (const sasq::Error&) {
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 8) {
    parse(std::vector<unsigned char>(data, data + size));
    return 0;
  }
  std::vector<unsigned char> b;
  switch (data[0] % 4) {
    case 0:
      b.assign(data + 1, data + size);
      break;
    case 1:  // legacy v0
      put_dims(b, data + 1, (data[7] & 1) != 0);
      b.insert(b.end(), data + 8, data + size);
      break;
    default: {  // ak42 v1 / v2
      put_i32(b, static_cast<std::int32_t>(0x616b3432u));
      put_i32(b, data[0] % 4 == 2 ? 1 : 2);
      put_dims(b, data + 1, false);
      b.push_back(data[7] & 1);
      put_i32(b, 1 << (data[7] >> 5));  // group size 1 .. 128
      b.resize(256, 0);
      b.insert(b.end(), data + 8, data + size);
      break;
    }
  }
  parse(b);
  return 0;
}
