// Per-input-channel static activation factors after the rotation (held-out prototype): for a site
// with per-channel abs-max a_c of its (rotated) input, m_c = a_c^α normalised to geometric mean 1;
// the input is divided by m and the reading linears' columns multiplied by m, folded exactly into
// the model so that the per-tensor static quantizer (SASQ's s) sees x_c / m_c and the integer GEMM
// stays per-tensor: attention and FFN inputs through the RMSNorm weight, o_proj's input through
// wv's rows (the factor of a query-head channel is its kv head's).
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <string>
#include <utility>
#include <vector>

#include "experiment/variants.hpp"
#include "train/scales_file.hpp"

namespace sasq::experiment {

/// m_c = max(a_c, ε)^α / geometric mean.
inline std::vector<float> channel_factors(const std::vector<float>& absmax, float alpha) {
  std::vector<float> m(absmax.size());
  double log_sum = 0.0;
  for (std::size_t c = 0; c < m.size(); ++c) {
    m[c] = std::pow(std::max(absmax[c], kSmoothEpsilon), alpha);
    log_sum += std::log(static_cast<double>(m[c]));
  }
  const float g = static_cast<float>(std::exp(log_sum / static_cast<double>(m.size())));
  for (float& v : m) v /= g;
  return m;
}

/// Folds factors m of one site of layer l into `tm` (exact in float): attention / FFN input:
/// norm <- norm / m, reading linears' columns <- · m ([dim]); o_proj input: m per kv channel
/// ([kv_dim]), wv rows <- / m, wo columns of every query head of that kv head <- · m.
inline void fold_site(TransformedModel& tm, std::size_t l, Site site, const std::vector<float>& m) {
  llama::LayerWeights& L = tm.weights.layers[l];
  const llama::Config& c = tm.weights.config;
  auto fold_norm = [&](llama::Vector& norm, std::initializer_list<Matrix*> ws) {
    for (std::size_t j = 0; j < m.size(); ++j) norm[static_cast<Eigen::Index>(j)] /= m[j];
    for (Matrix* w : ws)
      for (std::size_t j = 0; j < m.size(); ++j) w->col(static_cast<Eigen::Index>(j)) *= m[j];
  };
  if (site == Site::kAttnIn) fold_norm(L.rms_att, {&L.wq, &L.wk, &L.wv});
  if (site == Site::kFfnIn) fold_norm(L.rms_ffn, {&L.w1, &L.w3});
  if (site == Site::kOprojIn) {
    const int hs = c.head_size();
    for (std::size_t j = 0; j < m.size(); ++j) L.wv.row(static_cast<Eigen::Index>(j)) /= m[j];
    for (int h = 0; h < c.n_heads; ++h)
      for (int d = 0; d < hs; ++d) L.wo.col(h * hs + d) *= m[static_cast<std::size_t>((h / c.kv_mul()) * hs + d)];
  }
}

/// The sites that take folded factors (the down_proj input cannot: its online rotation mixes
/// channels after up_proj).
inline constexpr const char* kChannelFactorSites = "aof";

/// The sites named by letters: a attention input, o o_proj input, f FFN input.
inline std::vector<Site> foldable_sites(const std::string& sites) {
  std::vector<Site> out;
  for (auto [ch, s] : {std::pair{'a', Site::kAttnIn}, std::pair{'o', Site::kOprojIn}, std::pair{'f', Site::kFfnIn}})
    if (sites.find(ch) != std::string::npos) out.push_back(s);
  return out;
}

/// Folds absmax^α factors of the sites named in `sites` into `tm` (a rotated model: its norm
/// weights are 1), from its own statistics on `calib` (o_proj: abs-max over the query heads of a
/// kv head).
inline void fold_channel_factors(TransformedModel& tm, const llama::RopeTable& rope,
                                 const std::vector<std::vector<int>>& calib, int threads, float alpha,
                                 const std::string& sites) {
  const AbsMaxExec st = collect_absmax(tm.weights, rope, calib, threads, tm.down ? &*tm.down : nullptr);
  const llama::Config& c = tm.weights.config;
  const int hs = c.head_size();
  for (std::size_t l = 0; l < tm.weights.layers.size(); ++l)
    for (Site s : foldable_sites(sites)) {
      std::vector<float> a = st.site[static_cast<int>(s)][l];
      if (s == Site::kOprojIn) {
        std::vector<float> kv(static_cast<std::size_t>(c.kv_dim()), 0.0f);
        for (int h = 0; h < c.n_heads; ++h)
          for (int d = 0; d < hs; ++d) {
            float& k = kv[static_cast<std::size_t>((h / c.kv_mul()) * hs + d)];
            k = std::max(k, a[static_cast<std::size_t>(h * hs + d)]);
          }
        a = kv;
      }
      fold_site(tm, l, s, channel_factors(a, alpha));
    }
}

/// Folds learned per-channel steps s_c (per-channel SASQ scales of the sites named in `sites`) into
/// `tm` as m_c = s_c / geometric mean (o_proj: geometric mean over the query heads of a kv head).
inline void fold_learned_factors(TransformedModel& tm, const train::ScalesFile& f, const std::string& sites) {
  SASQ_REQUIRE(f.granularity == train::Granularity::kPerChannel, "learned factors need per-channel scales");
  const llama::Config& c = tm.weights.config;
  const int hs = c.head_size();
  for (std::size_t l = 0; l < tm.weights.layers.size(); ++l)
    for (Site s : foldable_sites(sites)) {
      const train::SiteScales* ss = f.find(static_cast<int>(l), s);
      SASQ_REQUIRE(ss != nullptr, "no scales for layer ", l, " site ", llama::site_name(s));
      std::vector<float> a = ss->scale;
      if (s == Site::kOprojIn) {
        std::vector<double> lg(static_cast<std::size_t>(c.kv_dim()), 0.0);
        for (int h = 0; h < c.n_heads; ++h)
          for (int d = 0; d < hs; ++d)
            lg[static_cast<std::size_t>((h / c.kv_mul()) * hs + d)] += std::log(static_cast<double>(a[static_cast<std::size_t>(h * hs + d)]));
        a.assign(lg.size(), 0.0f);
        for (std::size_t j = 0; j < lg.size(); ++j) a[j] = static_cast<float>(std::exp(lg[j] / c.kv_mul()));
      }
      fold_site(tm, l, s, channel_factors(a, 1.0f));
    }
}

}  // namespace sasq::experiment
