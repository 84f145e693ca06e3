// GPTQ weight quantization (Frantar et al., arXiv 2210.17323) on the Eigen component (sasq::eigen):
// a streaming Hessian accumulator per linear input and the blocked solver. For W[N][K] (nn.Linear
// layout) and inputs X[T][K], GPTQ minimises ‖X Wᵀ − X Ŵᵀ‖² column by column:
//   H = 2/T · Σ_t x_t x_tᵀ  (double),  H += λ I with λ = percdamp · mean(diag H),
//   U = upper Cholesky factor of H⁻¹ (H⁻¹ = UᵀU);  for column j in order:
//   q_j = Q(w_j),  e_j = (w_j − q_j) / U_jj,  w_k −= e_j U_jk for every later column k.
// Columns are processed in lazy blocks (the updates of later blocks applied once per block as one
// matrix product); act-order processes columns by descending H_jj. The codes and scales are the
// symmetric restricted grid of RTN (q in [−qmax, qmax], s = clip / qmax) in the layout pack_weights takes.
#pragma once

#include <Eigen/Cholesky>
#include <Eigen/Core>

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <numeric>
#include <vector>

#include "sasq/core/matrix_view.hpp"
#include "sasq/core/span.hpp"
#include "sasq/core/status.hpp"
#include "sasq/gemm/packed_weights.hpp"
#include "sasq/quant/affine.hpp"
#include "sasq/quant/observer_histogram.hpp"
#include "sasq/quant/params.hpp"
#include "sasq/quant/scheme.hpp"

namespace sasq {

/// Streaming GPTQ Hessian of one linear input site: accumulates S = Σ x xᵀ in double over
/// calibration batches X[T][K]; hessian() = 2/T · S. Accumulators of the same K merge (threads).
class HessianAccumulator {
 public:
  explicit HessianAccumulator(std::ptrdiff_t k) : sum_(Eigen::MatrixXd::Zero(check_k(k), k)) {}

  std::ptrdiff_t k() const { return sum_.rows(); }
  /// Rows (tokens) accumulated so far.
  std::int64_t samples() const { return samples_; }

  /// Adds the rows of x (T x K, finite). Throws on a column mismatch or a non-finite value.
  void observe(MatrixView<const float> x) {
    SASQ_REQUIRE(x.cols() == k() && x.rows() >= 0 && (x.rows() == 0 || x.data() != nullptr),
                 "HessianAccumulator: batch has ", x.cols(), " columns, expected K = ", k());
    Eigen::MatrixXd xd(x.rows(), x.cols());
    for (std::ptrdiff_t r = 0; r < x.rows(); ++r)
      for (std::ptrdiff_t c = 0; c < x.cols(); ++c) {
        const float v = x(r, c);
        if (!std::isfinite(v)) fail(ErrorCode::kInvalidArgument, "HessianAccumulator: x(", r, ", ", c, ") = ", v, " is not finite");
        xd(r, c) = v;
      }
    sum_.noalias() += xd.transpose() * xd;
    samples_ += x.rows();
  }

  /// Adds another accumulator's sums (same K).
  void merge(const HessianAccumulator& other) {
    SASQ_REQUIRE(other.k() == k(), "HessianAccumulator::merge: K ", other.k(), " != ", k());
    sum_ += other.sum_;
    samples_ += other.samples_;
  }

  /// H = 2/T · Σ x xᵀ (K x K, symmetric). Throws when nothing was observed.
  Eigen::MatrixXd hessian() const {
    SASQ_REQUIRE(samples_ > 0, "HessianAccumulator: no samples observed");
    return sum_ * (2.0 / static_cast<double>(samples_));
  }

 private:
  static std::ptrdiff_t check_k(std::ptrdiff_t k) {
    SASQ_REQUIRE(k >= 1, "HessianAccumulator: K must be >= 1, got ", k);
    return k;
  }
  Eigen::MatrixXd sum_;
  std::int64_t samples_ = 0;
};

/// GPTQ settings. Scales are computed after dead inputs are zeroed: per channel and with static
/// groups from the original weights, otherwise each group's scale from its columns as updated when
/// the solver reaches the group's first column.
struct GptqConfig {
  int bits = 4;             ///< 4 or 8 (symmetric restricted grid [−qmax, qmax])
  int group_size = 0;       ///< 0 = one scale per output row; else 32, 64 or 128 along K
  double percdamp = 0.01;   ///< λ = percdamp · mean(diag H), >= 0
  bool act_order = false;   ///< process columns by descending diag H (ties: lower index first)
  bool static_groups = false;  ///< group scales from the original W (required with act_order and groups)
  bool mse_clip = false;    ///< per row/group clip = mse_optimal_absmax with `clip` (else max |w|), QuaRot's w_clip
  ClipSearch clip;          ///< used when mse_clip
  std::ptrdiff_t block = 128;  ///< lazy-batch block size (columns), >= 1; does not change the math
};

/// Codes and scales of a quantized W[N][K] in the layout of pack_weights(codes view, scales, format).
struct GptqResult {
  std::ptrdiff_t rows = 0, cols = 0;
  std::vector<std::int8_t> codes;  ///< [N][K] row-major, in [−qmax, qmax]
  std::vector<float> scales;       ///< [N][groups] row-major (groups = 1 per channel)
  WeightFormat format;             ///< bits and group size (no gate/up pairing)

  MatrixView<const std::int8_t> codes_view() const { return {codes.data(), rows, cols}; }
  /// Dequantized weight s · q at (n, k).
  float dequantized(std::ptrdiff_t n, std::ptrdiff_t k) const {
    const std::ptrdiff_t g = format.group_size == 0 ? 0 : k / format.group_size;
    const std::ptrdiff_t groups = detail::scales_per_row(format, cols);
    return scales[static_cast<std::size_t>(n * groups + g)] * static_cast<float>(codes[static_cast<std::size_t>(n * cols + k)]);
  }
};

namespace detail {

/// Clip value of a row or group of weights: max |w| (RTN) or the MSE-optimal clip.
template <class GridT>
float gptq_clip(const std::vector<float>& w, const GptqConfig& cfg) {
  if (cfg.mse_clip)
    return mse_optimal_absmax<GridT>(Span<const float>(w.data(), w.size()), cfg.clip.grid, cfg.clip.min_ratio, cfg.clip.norm);
  float c = 0.0f;
  for (const float v : w) c = std::max(c, std::fabs(v));
  return c;
}

/// Scale parameter of rows [0, N) for columns [c0, c0 + len) of W (double, current values).
template <class GridT>
void gptq_group_params(const Eigen::MatrixXd& w, Eigen::Index c0, Eigen::Index len, const GptqConfig& cfg,
                       std::vector<QuantParam>& out) {
  std::vector<float> vals(static_cast<std::size_t>(len));
  out.resize(static_cast<std::size_t>(w.rows()));
  for (Eigen::Index r = 0; r < w.rows(); ++r) {
    for (Eigen::Index c = 0; c < len; ++c) vals[static_cast<std::size_t>(c)] = static_cast<float>(w(r, c0 + c));
    out[static_cast<std::size_t>(r)] = param_from_absmax<GridT>(gptq_clip<GridT>(vals, cfg));
  }
}

template <class GridT>
GptqResult gptq_solve(MatrixView<const float> w_in, Eigen::MatrixXd h, const GptqConfig& cfg) {
  const Eigen::Index n = w_in.rows(), k = w_in.cols();
  const Eigen::Index gs = cfg.group_size == 0 ? k : cfg.group_size;
  const Eigen::Index groups = (k + gs - 1) / gs;
  Eigen::MatrixXd w(n, k);
  for (Eigen::Index r = 0; r < n; ++r)
    for (Eigen::Index c = 0; c < k; ++c) w(r, c) = w_in(r, c);

  // Dead inputs (never active in calibration): weight zeroed, H_jj = 1 keeps H invertible.
  for (Eigen::Index j = 0; j < k; ++j)
    if (h(j, j) == 0.0) {
      h(j, j) = 1.0;
      w.col(j).setZero();
    }
  // Static scales: all groups (or the per-channel scale) from the original weights.
  const bool fixed_scales = cfg.group_size == 0 || cfg.static_groups;
  std::vector<std::vector<QuantParam>> params(static_cast<std::size_t>(groups));
  if (fixed_scales)
    for (Eigen::Index g = 0; g < groups; ++g)
      gptq_group_params<GridT>(w, g * gs, std::min(gs, k - g * gs), cfg, params[static_cast<std::size_t>(g)]);

  // Column order: natural, or descending diag H (stable: lower index first on ties).
  std::vector<Eigen::Index> perm(static_cast<std::size_t>(k));
  std::iota(perm.begin(), perm.end(), Eigen::Index{0});
  if (cfg.act_order)
    std::stable_sort(perm.begin(), perm.end(), [&](Eigen::Index a, Eigen::Index b) { return h(a, a) > h(b, b); });
  Eigen::MatrixXd wp(n, k), hp(k, k);
  for (Eigen::Index j = 0; j < k; ++j) wp.col(j) = w.col(perm[static_cast<std::size_t>(j)]);
  for (Eigen::Index i = 0; i < k; ++i)
    for (Eigen::Index j = 0; j < k; ++j) hp(i, j) = h(perm[static_cast<std::size_t>(i)], perm[static_cast<std::size_t>(j)]);

  const double damp = cfg.percdamp * hp.diagonal().mean();
  hp.diagonal().array() += damp;
  Eigen::LLT<Eigen::MatrixXd> llt(hp);
  SASQ_REQUIRE(llt.info() == Eigen::Success, "gptq: H + λI is not positive definite (λ = ", damp,
               "); raise percdamp");
  const Eigen::MatrixXd hinv = llt.solve(Eigen::MatrixXd::Identity(k, k));
  Eigen::LLT<Eigen::MatrixXd> llt_inv(hinv);
  SASQ_REQUIRE(llt_inv.info() == Eigen::Success, "gptq: H⁻¹ is not numerically positive definite; raise percdamp");
  const Eigen::MatrixXd u = llt_inv.matrixU();

  GptqResult out;
  out.rows = n;
  out.cols = k;
  out.format = WeightFormat{cfg.bits, cfg.group_size, false};
  out.codes.assign(static_cast<std::size_t>(n * k), 0);
  out.scales.assign(static_cast<std::size_t>(n * groups), 0.0f);
  for (Eigen::Index g = 0; g < groups && fixed_scales; ++g)
    for (Eigen::Index r = 0; r < n; ++r)
      out.scales[static_cast<std::size_t>(r * groups + g)] = params[static_cast<std::size_t>(g)][static_cast<std::size_t>(r)].scale;

  Eigen::MatrixXd err;
  for (Eigen::Index b0 = 0; b0 < k; b0 += cfg.block) {
    const Eigen::Index b1 = std::min(k, b0 + cfg.block), count = b1 - b0;
    err.resize(n, count);
    for (Eigen::Index i = 0; i < count; ++i) {
      const Eigen::Index j = b0 + i, orig = perm[static_cast<std::size_t>(j)], g = orig / gs;
      if (!fixed_scales && orig % gs == 0) {  // natural order here: the group starts at this column
        const Eigen::Index len = std::min(gs, k - orig);
        gptq_group_params<GridT>(wp, j, len, cfg, params[static_cast<std::size_t>(g)]);
        for (Eigen::Index r = 0; r < n; ++r)
          out.scales[static_cast<std::size_t>(r * groups + g)] = params[static_cast<std::size_t>(g)][static_cast<std::size_t>(r)].scale;
      }
      const double d = u(j, j);
      for (Eigen::Index r = 0; r < n; ++r) {
        const QuantParam p = params[static_cast<std::size_t>(g)][static_cast<std::size_t>(r)];
        const int q = quantize_value<GridT>(static_cast<float>(wp(r, j)), p);
        out.codes[static_cast<std::size_t>(r * k + orig)] = static_cast<std::int8_t>(q);
        err(r, i) = (wp(r, j) - static_cast<double>(dequantize_value(q, p))) / d;
      }
      // Within the block: update the remaining columns right away.
      if (i + 1 < count)
        wp.middleCols(j + 1, count - i - 1).noalias() -= err.col(i) * u.row(j).segment(j + 1, count - i - 1);
    }
    // Later blocks: one product per block (lazy batch).
    if (b1 < k) wp.rightCols(k - b1).noalias() -= err * u.block(b0, b1, count, k - b1);
  }
  return out;
}

}  // namespace detail

/// GPTQ-quantizes W[N][K] (finite floats) with the Hessian H (K x K, symmetric positive semi-definite,
/// e.g. HessianAccumulator::hessian()). Returns codes and scales for pack_weights(result.codes_view(),
/// result.scales, result.format). Throws sasq::Error on bad shapes, settings (bits, group size,
/// act-order without static groups when grouped, percdamp, block) or a non-finite input, and when
/// H + λI is not positive definite.
inline GptqResult gptq_quantize(MatrixView<const float> w, const Eigen::MatrixXd& h, const GptqConfig& cfg) {
  detail::require_weight_format(WeightFormat{cfg.bits, cfg.group_size, false}, w.cols());
  SASQ_REQUIRE(w.rows() >= 1 && w.data() != nullptr && w.ld() >= w.cols(), "gptq: W view is invalid (", w.rows(),
               " x ", w.cols(), ", ld ", w.ld(), ")");
  SASQ_REQUIRE(h.rows() == w.cols() && h.cols() == w.cols(), "gptq: H is ", h.rows(), " x ", h.cols(),
               ", expected K x K with K = ", w.cols());
  SASQ_REQUIRE(std::isfinite(cfg.percdamp) && cfg.percdamp >= 0.0, "gptq: percdamp ", cfg.percdamp,
               " must be finite and >= 0");
  SASQ_REQUIRE(cfg.block >= 1, "gptq: block ", cfg.block, " must be >= 1");
  if (cfg.mse_clip) {
    SASQ_REQUIRE(cfg.clip.grid >= 1 && cfg.clip.min_ratio > 0.0f && cfg.clip.min_ratio <= 1.0f,
                 "gptq: clip search grid ", cfg.clip.grid, " / min_ratio ", cfg.clip.min_ratio, " is invalid");
    SASQ_REQUIRE(std::isfinite(cfg.clip.norm) && cfg.clip.norm > 0.0f, "gptq: clip search norm ", cfg.clip.norm,
                 " is not finite and positive");
  }
  SASQ_REQUIRE(!(cfg.act_order && cfg.group_size != 0 && !cfg.static_groups),
               "gptq: act_order with groups needs static_groups (scales contiguous along K)");
  SASQ_REQUIRE(cfg.group_size == 0 || cfg.static_groups || cfg.block % cfg.group_size == 0 ||
                   cfg.group_size % cfg.block == 0,
               "gptq: block ", cfg.block, " and group size ", cfg.group_size,
               " must divide one another (a group's scale is taken from fully updated columns)");
  for (Eigen::Index i = 0; i < h.rows(); ++i)
    for (Eigen::Index j = 0; j < h.cols(); ++j)
      if (!std::isfinite(h(i, j))) fail(ErrorCode::kInvalidArgument, "gptq: H(", i, ", ", j, ") = ", h(i, j), " is not finite");
  for (std::ptrdiff_t r = 0; r < w.rows(); ++r)
    for (std::ptrdiff_t c = 0; c < w.cols(); ++c)
      if (!std::isfinite(w(r, c))) fail(ErrorCode::kInvalidArgument, "gptq: W(", r, ", ", c, ") = ", w(r, c), " is not finite");
  if (cfg.bits == 8) return detail::gptq_solve<GridS8>(w, h, cfg);
  return detail::gptq_solve<GridS4>(w, h, cfg);
}

}  // namespace sasq
