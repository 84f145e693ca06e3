// Writes a llama2.c legacy (v0) checkpoint whose weights are those of the input model rounded to
// BF16 (nearest even): the reference for a BF16 Hugging Face export of the same model
// (docs/evaluation.md, "Hugging Face fixtures"). Not part of the CI build; build it with
//   g++ -std=c++17 -O2 -I include -I examples -I tests/llama $(pkg-config --cflags eigen3)
//       tools/round_bf16.cpp examples/llama/load_model.cpp -o build/round_bf16        (one command line)
// Usage: round_bf16 <model: .bin or Hugging Face folder> <out.bin>
#include <cstring>
#include <fstream>
#include <iostream>

#include "llama/load_model.hpp"
#include "llama/model.hpp"
#include "llama/safetensors.hpp"
#include "safetensors_writer.hpp"
#include "synthetic_model.hpp"

int main(int argc, char** argv) {
  using namespace sasq::llama;
  if (argc != 3) {
    std::cerr << "usage: round_bf16 <model> <out.bin>\n";
    return 2;
  }
  try {
    Weights w = load_model(argv[1]);
    auto round = [](float* p, Eigen::Index n) {
      for (Eigen::Index i = 0; i < n; ++i) p[i] = detail::bf16_to_float(test::float_to_bf16(p[i]));
    };
    round(w.token_embedding.data(), w.token_embedding.size());
    round(w.wcls.data(), w.wcls.size());
    round(w.rms_final.data(), w.rms_final.size());
    for (auto& L : w.layers) {
      round(L.rms_att.data(), L.rms_att.size());
      round(L.rms_ffn.data(), L.rms_ffn.size());
      for (int p = 0; p < kNumProj; ++p) round(proj_weight(L, static_cast<Proj>(p)).data(), proj_weight(L, static_cast<Proj>(p)).size());
    }
    const std::vector<unsigned char> bytes = test::write_v0(w, false);
    std::ofstream(argv[2], std::ios::binary).write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
    std::cout << argv[2] << ": " << bytes.size() << " bytes\n";
  } catch (const std::exception& e) {
    std::cerr << "round_bf16: " << e.what() << "\n";
    return 1;
  }
  return 0;
}
