// Per layer/site metric rows (difficulty, layer error E and estimate Ê, SQNR, kurtosis, max/median
// channel-norm ratio) and their CSV / JSON writers; plus the per-channel magnitude CSV for plots.
#pragma once

#include <cmath>
#include <cstddef>
#include <ostream>
#include <string>
#include <vector>

#include "sasq/core/matrix_view.hpp"
#include "sasq/core/span.hpp"
#include "sasq/core/status.hpp"
#include "sasq/metrics/difficulty.hpp"
#include "sasq/metrics/layer_error.hpp"

namespace sasq {

/// One row: the metrics of one linear layer's input ("site") under one transform.
struct SiteMetrics {
  int layer = 0;                ///< decoder layer index
  std::string site;             ///< e.g. "attn_in" (q/k/v input), "o_in", "ffn_in" (gate/up), "down_in"
  std::string transform;        ///< e.g. "original", "smooth", "rotate", "smooth_rotate"
  int bits = 4;                 ///< bit width of E / Ê / SQNR
  double difficulty_x = 0.0;    ///< QD(X): unbiased std of the activation channel norms
  double difficulty_w = 0.0;    ///< QD(W): the same over the weight's input-channel norms
  double max_median_x = 0.0;    ///< max/median activation channel norm
  double kurtosis_x = 0.0;      ///< Pearson kurtosis of all activation elements
  double error = 0.0;           ///< E = ‖X Wᵀ − Q(X) Q(W)ᵀ‖_F²
  double error_estimate = 0.0;  ///< Ê, closed form
  double sqnr_db = 0.0;         ///< 10 log10(‖X Wᵀ‖² / E)
};

/// Computes every field of a SiteMetrics for X[T][C] and W[O][C] at `bits`.
inline SiteMetrics measure_site(int layer, std::string site, std::string transform, MatrixView<const float> x,
                                MatrixView<const float> w, int bits) {
  SiteMetrics m;
  m.layer = layer;
  m.site = std::move(site);
  m.transform = std::move(transform);
  m.bits = bits;
  const std::vector<float> mx = channel_magnitudes(x);
  m.difficulty_x = unbiased_std(mx);
  m.difficulty_w = quant_difficulty(w);
  m.max_median_x = max_median_ratio(mx);
  m.kurtosis_x = kurtosis(x);
  const LayerError e = layer_quant_error(x, w, bits);
  m.error = e.error;
  m.error_estimate = e.estimate;
  m.sqnr_db = e.sqnr_db;
  return m;
}

namespace detail {
/// Labels go into CSV and JSON unquoted-safe: letters, digits, '_', '.', '-' only.
inline void check_label(const std::string& s, const char* what) {
  for (char c : s) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
                    c == '.' || c == '-';
    SASQ_REQUIRE(ok, what, " '", s, "' may only hold letters, digits, '_', '.' and '-'");
  }
}
/// JSON has no inf/nan: non-finite numbers are written as null.
inline void write_json_number(std::ostream& os, double v) {
  if (std::isfinite(v)) {
    os << v;
  } else {
    os << "null";
  }
}
}  // namespace detail

/// CSV with header
/// layer,site,transform,bits,difficulty_x,difficulty_w,max_median_x,kurtosis_x,error,error_estimate,sqnr_db
/// (numbers with 9 significant digits; an infinite SQNR is written as inf).
inline void write_csv(std::ostream& os, Span<const SiteMetrics> rows) {
  os << "layer,site,transform,bits,difficulty_x,difficulty_w,max_median_x,kurtosis_x,error,error_estimate,sqnr_db\n";
  const auto old = os.precision(9);
  for (const SiteMetrics& r : rows) {
    detail::check_label(r.site, "site");
    detail::check_label(r.transform, "transform");
    os << r.layer << ',' << r.site << ',' << r.transform << ',' << r.bits << ',' << r.difficulty_x << ','
       << r.difficulty_w << ',' << r.max_median_x << ',' << r.kurtosis_x << ',' << r.error << ','
       << r.error_estimate << ',' << r.sqnr_db << '\n';
  }
  os.precision(old);
}

/// JSON array of objects with the CSV's keys (non-finite numbers as null).
inline void write_json(std::ostream& os, Span<const SiteMetrics> rows) {
  const auto old = os.precision(9);
  os << "[";
  for (std::size_t i = 0; i < rows.size(); ++i) {
    const SiteMetrics& r = rows[i];
    detail::check_label(r.site, "site");
    detail::check_label(r.transform, "transform");
    os << (i ? ",\n " : "\n ") << "{\"layer\": " << r.layer << ", \"site\": \"" << r.site << "\", \"transform\": \""
       << r.transform << "\", \"bits\": " << r.bits;
    const std::pair<const char*, double> nums[] = {
        {"difficulty_x", r.difficulty_x}, {"difficulty_w", r.difficulty_w}, {"max_median_x", r.max_median_x},
        {"kurtosis_x", r.kurtosis_x},     {"error", r.error},               {"error_estimate", r.error_estimate},
        {"sqnr_db", r.sqnr_db}};
    for (const auto& [k, v] : nums) {
      os << ", \"" << k << "\": ";
      detail::write_json_number(os, v);
    }
    os << "}";
  }
  os << (rows.empty() ? "]\n" : "\n]\n");
  os.precision(old);
}

/// Per-channel magnitude profile CSV, the input of tools/plot_channel_profile.py. Header
/// layer,site,transform,channel,magnitude — one row per channel j with m_j = ‖X[:, j]‖₂.
/// Call with header = true once, then append further sites/transforms with header = false.
inline void write_channel_profile_csv(std::ostream& os, int layer, const std::string& site,
                                      const std::string& transform, Span<const float> magnitudes, bool header) {
  detail::check_label(site, "site");
  detail::check_label(transform, "transform");
  if (header) os << "layer,site,transform,channel,magnitude\n";
  const auto old = os.precision(9);
  for (std::size_t j = 0; j < magnitudes.size(); ++j) {
    os << layer << ',' << site << ',' << transform << ',' << j << ',' << magnitudes[j] << '\n';
  }
  os.precision(old);
}

}  // namespace sasq
