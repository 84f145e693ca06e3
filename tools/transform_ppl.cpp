// Perplexity of stories260K under the outlier transforms (none, SmoothQuant, QuaRot, SmoothRot +
// QuaRot) with RTN per-channel weights and dynamic per-token activations (fake quant, the LLaMA
// example's FakeQuantExec), for docs/transforms.md. Not part of the CI build; build it with
//   g++ -std=c++17 -O2 -pthread -I include -I examples $(pkg-config --cflags eigen3)
//       tools/transform_ppl.cpp examples/llama/load_model.cpp -o build/transform_ppl     (one command line)
// Usage: transform_ppl <checkpoint.bin> <tokenizer.bin> <stories.txt> <calib_stories> <eval_first> <eval_last>
// Calibration (per-channel abs-max for the smoothing factors) uses stories 1..calib_stories;
// evaluation uses stories eval_first..eval_last (disjoint when eval_first > calib_stories).
#include <cstdio>
#include <fstream>
#include <iostream>
#include <sstream>
#include <string>
#include <vector>

#include "llama/load_model.hpp"
#include "llama/model.hpp"
#include "llama/perplexity.hpp"
#include "llama/quantized.hpp"
#include "llama/tokenizer.hpp"
#include "llama/transform_views.hpp"
#include "sasq/transform/llama_block.hpp"
#include "sasq/transform/rotation.hpp"
#include "sasq/transform/smoothing.hpp"

namespace {

using namespace sasq::llama;

constexpr float kAlpha = 0.5f;
constexpr std::uint64_t kSeed = 1;

/// Per-channel abs-max of the attention, FFN and down_proj inputs over the calibration sequences.
struct AbsMaxExec {
  std::vector<std::vector<float>> attn, ffn, down;
  void on_site(int layer, Site s, Matrix& x) {
    std::vector<std::vector<float>>* stat = s == Site::kAttnIn ? &attn : s == Site::kFfnIn ? &ffn
                                          : s == Site::kDownIn ? &down : nullptr;
    if (!stat) return;
    const auto l = static_cast<std::size_t>(layer);
    if (stat->size() <= l) stat->resize(l + 1);
    auto& v = (*stat)[l];
    if (v.empty()) v.assign(static_cast<std::size_t>(x.cols()), 0.0f);
    sasq::accumulate_column_absmax(sasq::MatrixView<const float>(x.data(), x.rows(), x.cols()), v);
  }
  void linear(int, Proj, const Matrix& x, const Matrix& w, Matrix& y) { sasq::llama::linear(x, w, y); }
};

/// FakeQuantExec with the online down_proj rotation applied before the site is quantized.
struct RotatedExec {
  FakeQuantExec inner;
  const sasq::Rotation* down;
  void on_site(int layer, Site s, Matrix& x) {
    if (down && s == Site::kDownIn) sasq::apply_rotation(*down, sasq::MatrixView<float>(x.data(), x.rows(), x.cols()));
    inner.on_site(layer, s, x);
  }
  void linear(int layer, Proj p, const Matrix& x, const Matrix& w, Matrix& y) { inner.linear(layer, p, x, w, y); }
};

struct Variant {
  std::string name;
  Weights weights;
  bool rotated = false;
};

}  // namespace

int main(int argc, char** argv) {
  try {
    if (argc != 7) {
      std::cerr << "usage: transform_ppl <checkpoint> <tokenizer> <stories.txt> <calib_stories> <eval_first> <eval_last>\n";
      return 2;
    }
    const Weights base = load_model(argv[1]);
    const Config& c = base.config;
    const Tokenizer tok = load_tokenizer_for(argv[1], base, argv[2], "");
    std::ifstream in(argv[3]);
    std::stringstream ss;
    ss << in.rdbuf();
    const auto stories = split_stories(ss.str());
    const auto calib = story_sequences(tok, stories, 1, std::stoi(argv[4]), c.seq_len);
    const auto eval = story_sequences(tok, stories, std::stoi(argv[5]), std::stoi(argv[6]), c.seq_len);
    const RopeTable rope = make_rope_table(c);

    AbsMaxExec stats;
    for (const auto& s : calib) forward(base, rope, sasq::Span<const int>(s).subspan(0, s.size() - 1), 0, nullptr, stats);

    const auto plan = sasq::make_quarot_plan(static_cast<std::size_t>(c.dim), static_cast<std::size_t>(c.hidden_dim),
                                             static_cast<std::size_t>(c.head_size()), kSeed);
    std::vector<Variant> variants;
    variants.push_back({"none", base, false});
    {
      Variant v{"smoothquant", base, false};
      auto m = sasq::llama::transform_views(v.weights);
      for (std::size_t l = 0; l < m.layers.size(); ++l) {
        sasq::smooth_attn_input(m.layers[l], stats.attn[l], kAlpha);
        sasq::smooth_ffn_input(m.layers[l], stats.ffn[l], kAlpha);
      }
      variants.push_back(std::move(v));
    }
    for (bool smooth_down : {false, true}) {
      Variant v{smooth_down ? "smoothrot" : "quarot", base, true};
      auto m = sasq::llama::transform_views(v.weights);
      if (smooth_down) {
        for (std::size_t l = 0; l < m.layers.size(); ++l) sasq::smooth_down_input(m.layers[l], stats.down[l], kAlpha);
      }
      sasq::apply_quarot(m, plan);
      variants.push_back(std::move(v));
    }

    struct Bits {
      const char* name;
      int w, a;
    };
    const Bits configs[] = {{"fp32", 0, 0}, {"W8A8", 8, 8}, {"W4A8", 4, 8}, {"W8A4", 8, 4}, {"W4A4", 4, 4}};
    long tokens = 0;
    for (const auto& s : eval) tokens += static_cast<long>(s.size()) - 1;
    std::cout << "# " << eval.size() << " eval stories, " << tokens << " predictions; calibration " << calib.size()
              << " stories; weights RTN per channel, activations dynamic per token; alpha " << kAlpha << "\n";
    std::cout << "bits";
    for (const auto& v : variants) std::cout << ',' << v.name;
    std::cout << '\n';
    for (const Bits& b : configs) {
      std::cout << b.name;
      for (const auto& v : variants) {
        WeightQuantConfig wc;
        wc.bits = b.w;
        const QuantizedModel qm = quantize_weights(v.weights, wc);
        ActQuantConfig ac;
        ac.bits = b.a;
        ac.mode = b.a ? ActMode::kDynamicPerToken : ActMode::kNone;
        const sasq::Rotation* down = v.rotated ? &plan.down : nullptr;
        const PplResult r = evaluate_ppl(qm.model, rope, eval, 2, [&] {
          return RotatedExec{FakeQuantExec(ac, nullptr, b.w ? &qm : nullptr), down};
        });
        std::printf(",%.4f", r.ppl());
        std::fflush(stdout);
      }
      std::cout << '\n';
    }
    return 0;
  } catch (const std::exception& e) {
    std::cerr << "transform_ppl: " << e.what() << '\n';
    return 1;
  }
}
