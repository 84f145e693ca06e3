// Channel-magnitude profiles and quantization metrics of linear-layer inputs under the four
// transforms of arXiv 2506.01967 (original, smooth, rotate, smooth_rotate), for the figures and
// tables of docs/transforms.md. Not part of the library or the CI build; build it with
//   g++ -std=c++17 -O2 -I include -I examples -I tests/metrics $(pkg-config --cflags eigen3)
//       tools/channel_profile.cpp examples/llama/load_model.cpp -o build/channel_profile     (one command line)
// Usage:
//   channel_profile synthetic <out_prefix>
//   channel_profile model <checkpoint.bin> <tokenizer.bin> <stories.txt> <n_stories> <out_prefix>
// Writes <out_prefix>_profile.csv (layer,site,transform,channel,magnitude),
//        <out_prefix>_metrics.csv / .json (sasq::write_csv / write_json rows, 4 and 8 bits),
//        <out_prefix>_alpha.csv (layer,site,alpha,error: SmoothRot α sweep at 4 bits).
#include <cstdio>
#include <fstream>
#include <iostream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "llama/load_model.hpp"
#include "llama/model.hpp"
#include "llama/perplexity.hpp"
#include "llama/tokenizer.hpp"
#include "sasq/metrics/difficulty.hpp"
#include "sasq/metrics/report.hpp"
#include "sasq/transform/rotation.hpp"
#include "sasq/transform/smoothing.hpp"
#include "sasq/transform/smoothrot.hpp"
#include "synthetic_activations.hpp"

namespace {

constexpr float kAlpha = 0.5f;          // SmoothQuant / SmoothRot default
constexpr std::uint64_t kSeed = 2025;   // seed of the fallback rotation for orders without a Hadamard

struct Outputs {
  std::ofstream profile, metrics_csv, metrics_json, alpha;
  std::vector<sasq::SiteMetrics> rows;
  bool profile_header = true;
};

/// Measures one site (activation X, the weights W reading it, stacked) under all four transforms.
void measure(Outputs& out, int layer, const std::string& site, sasq::MatrixView<const float> x,
             sasq::MatrixView<const float> w) {
  const auto h = sasq::Rotation::hadamard_or_orthogonal(static_cast<std::size_t>(x.cols()), kSeed);
  const auto s = sasq::smooth_scales(sasq::column_absmax(x), {w}, kAlpha);
  const std::pair<const char*, sasq::TransformedPair> variants[] = {
      {"original", sasq::smooth_rotate(x, w, {}, nullptr)},
      {"smooth", sasq::smooth_rotate(x, w, s, nullptr)},
      {"rotate", sasq::smooth_rotate(x, w, {}, &h)},
      {"smooth_rotate", sasq::smooth_rotate(x, w, s, &h)},
  };
  for (const auto& [name, p] : variants) {
    const auto mags = sasq::channel_magnitudes(p.x_view());
    sasq::write_channel_profile_csv(out.profile, layer, site, name, mags, out.profile_header);
    out.profile_header = false;
    for (int bits : {4, 8}) out.rows.push_back(sasq::measure_site(layer, site, name, p.x_view(), p.w_view(), bits));
  }
  std::vector<float> alphas;
  for (int i = 0; i <= 20; ++i) alphas.push_back(0.05f * static_cast<float>(i));
  const auto sweep = sasq::search_smoothrot_alpha(x, w, h, alphas, 4);
  for (std::size_t i = 0; i < sweep.alphas.size(); ++i) {
    out.alpha << layer << ',' << site << ',' << sweep.alphas[i] << ',' << sweep.errors[i] << '\n';
  }
}

/// Stacks matrices with the same column count row-wise (all linears reading one input).
sasq::llama::Matrix stack(std::initializer_list<const sasq::llama::Matrix*> ms) {
  Eigen::Index rows = 0;
  for (const auto* m : ms) rows += m->rows();
  sasq::llama::Matrix out(rows, (*ms.begin())->cols());
  Eigen::Index r = 0;
  for (const auto* m : ms) {
    out.middleRows(r, m->rows()) = *m;
    r += m->rows();
  }
  return out;
}

sasq::MatrixView<const float> view(const sasq::llama::Matrix& m) {
  return {m.data(), static_cast<std::ptrdiff_t>(m.rows()), static_cast<std::ptrdiff_t>(m.cols())};
}

/// Collects every linear-input site of every layer over several sequences (rows appended).
struct CaptureExec {
  std::map<std::pair<int, int>, std::vector<sasq::llama::Matrix>> acts;
  void on_site(int layer, sasq::llama::Site s, sasq::llama::Matrix& x) {
    if (static_cast<int>(s) < sasq::llama::kNumLinearSites) acts[{layer, static_cast<int>(s)}].push_back(x);
  }
  void linear(int, sasq::llama::Proj, const sasq::llama::Matrix& x, const sasq::llama::Matrix& w,
              sasq::llama::Matrix& y) {
    sasq::llama::linear(x, w, y);
  }
};

int run_model(Outputs& out, const std::string& ckpt, const std::string& tok_path, const std::string& text_path,
              int n_stories) {
  using namespace sasq::llama;
  const Weights w = load_model(ckpt);
  const Tokenizer tok = load_tokenizer_for(ckpt, w, tok_path, "");
  std::ifstream in(text_path);
  std::stringstream ss;
  ss << in.rdbuf();
  const auto stories = split_stories(ss.str());
  auto seqs = story_sequences(tok, stories, 1, n_stories, w.config.seq_len);
  for (auto& seq : seqs) {  // story_sequences keeps seq_len + 1 tokens (for next-token targets)
    if (static_cast<int>(seq.size()) > w.config.seq_len) seq.resize(static_cast<std::size_t>(w.config.seq_len));
  }
  const RopeTable rope = make_rope_table(w.config);
  CaptureExec exec;
  long tokens = 0;
  for (const auto& seq : seqs) {
    forward(w, rope, sasq::Span<const int>(seq.data(), seq.size()), 0, nullptr, exec);
    tokens += static_cast<long>(seq.size());
  }
  std::cerr << "captured " << tokens << " tokens from " << seqs.size() << " stories\n";
  for (const auto& [key, parts] : exec.acts) {
    Eigen::Index rows = 0;
    for (const auto& p : parts) rows += p.rows();
    Matrix x(rows, parts[0].cols());
    Eigen::Index r = 0;
    for (const auto& p : parts) {
      x.middleRows(r, p.rows()) = p;
      r += p.rows();
    }
    const auto& L = w.layers[static_cast<std::size_t>(key.first)];
    const auto site = static_cast<Site>(key.second);
    Matrix wt;
    switch (site) {
      case Site::kAttnIn: wt = stack({&L.wq, &L.wk, &L.wv}); break;
      case Site::kOprojIn: wt = L.wo; break;
      case Site::kFfnIn: wt = stack({&L.w1, &L.w3}); break;
      default: wt = L.w2; break;
    }
    measure(out, key.first, site_name(site), view(x), view(wt));
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    const std::string mode = argc > 1 ? argv[1] : "";
    const bool synthetic = mode == "synthetic" && argc == 3;
    const bool model = mode == "model" && argc == 7;
    if (!synthetic && !model) {
      std::cerr << "usage: channel_profile synthetic <out_prefix>\n"
                   "       channel_profile model <checkpoint> <tokenizer> <stories.txt> <n_stories> <out_prefix>\n";
      return 2;
    }
    const std::string prefix = argv[argc - 1];
    Outputs out;
    out.profile.open(prefix + "_profile.csv");
    out.metrics_csv.open(prefix + "_metrics.csv");
    out.metrics_json.open(prefix + "_metrics.json");
    out.alpha.open(prefix + "_alpha.csv");
    out.alpha << "layer,site,alpha,error\n";
    if (synthetic) {
      const auto l = sasq::test::make_outlier_layer(128, 256, 256, 1);
      measure(out, 0, "synthetic", l.xv(), l.wv());
    } else {
      run_model(out, argv[2], argv[3], argv[4], std::stoi(argv[5]));
    }
    sasq::write_csv(out.metrics_csv, out.rows);
    sasq::write_json(out.metrics_json, out.rows);
    sasq::write_csv(std::cout, out.rows);
    return 0;
  } catch (const std::exception& e) {
    std::cerr << "channel_profile: " << e.what() << '\n';
    return 1;
  }
}
