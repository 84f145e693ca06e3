// Backward pass of the minimal LLaMA vs central finite differences in double: every op, then the
// whole model (tiny random model; stories260K for a few tokens when the data is present).
#include <doctest/doctest.h>

#include "sasq/transform/rotation.hpp"

#include <cmath>
#include <fstream>
#include <functional>
#include <random>
#include <vector>

#include "llama/backward.hpp"
#include "llama/checkpoint.hpp"
#include "sasq/quant/affine.hpp"
#include "tiny_model.hpp"

namespace g = sasq::llama::grad;
using Mat = g::RowMatrix<double>;

namespace {

Mat random_matrix(Eigen::Index r, Eigen::Index c, std::mt19937& rng, double sd = 1.0) {
  std::normal_distribution<double> nd(0.0, sd);
  Mat m(r, c);
  for (Eigen::Index i = 0; i < m.size(); ++i) m.data()[i] = nd(rng);
  return m;
}

/// Central difference of f w.r.t. the variable x (perturbed in place and restored).
double central_difference(double& x, const std::function<double()>& f, double h = 1e-6) {
  const double x0 = x;
  x = x0 + h;
  const double fp = f();
  x = x0 - h;
  const double fm = f();
  x = x0;
  return (fp - fm) / (2 * h);
}

void check_close(double analytic, double numeric, const char* what, double rel = 1e-6) {
  INFO(what << ": analytic " << analytic << " vs finite difference " << numeric);
  CHECK(std::fabs(analytic - numeric) <= rel * std::max(1.0, std::fabs(numeric)));
}

double dot(const Mat& a, const Mat& b) { return a.cwiseProduct(b).sum(); }

}  // namespace

TEST_CASE("rmsnorm backward matches finite differences") {
  std::mt19937 rng(1);
  Mat x = random_matrix(3, 7, rng), dy = random_matrix(3, 7, rng);
  std::vector<double> gw(7);
  for (auto& v : gw) v = 1.0 + 0.3 * std::normal_distribution<double>()(rng);
  auto loss = [&] {
    Mat y;
    std::vector<double> r;
    g::rmsnorm_forward(x, gw.data(), 1e-5, y, r);
    return dot(y, dy);
  };
  Mat y;
  std::vector<double> r;
  g::rmsnorm_forward(x, gw.data(), 1e-5, y, r);
  Mat dx = Mat::Zero(3, 7);
  g::rmsnorm_backward(x, gw.data(), r, dy, dx);
  for (Eigen::Index i = 0; i < x.size(); ++i) check_close(dx.data()[i], central_difference(x.data()[i], loss), "dx");
}

TEST_CASE("rope backward is the transpose of the rotation") {
  std::mt19937 rng(2);
  Mat x = random_matrix(6, 8, rng), dy = random_matrix(6, 8, rng);
  auto loss = [&] {
    Mat y = x;
    g::rope_rotate(y, 4, false);
    return dot(y, dy);
  };
  Mat dx = dy;
  g::rope_backward(dx, 4);
  for (Eigen::Index i = 0; i < x.size(); ++i) check_close(dx.data()[i], central_difference(x.data()[i], loss), "dx");
  Mat back = x;
  g::rope_rotate(back, 4, false);
  g::rope_rotate(back, 4, true);
  CHECK((back - x).cwiseAbs().maxCoeff() < 1e-12);
}

TEST_CASE("causal GQA attention backward matches finite differences") {
  std::mt19937 rng(3);
  g::Shape sh{16, 0, 1, 4, 2, 0};
  const Eigen::Index n = 5;
  Mat q = random_matrix(n, 16, rng), k = random_matrix(n, 8, rng), v = random_matrix(n, 8, rng);
  Mat dout = random_matrix(n, 16, rng);
  auto loss = [&] {
    Mat out;
    std::vector<Mat> p;
    g::attention_forward(q, k, v, sh, out, p);
    return dot(out, dout);
  };
  Mat out;
  std::vector<Mat> p;
  g::attention_forward(q, k, v, sh, out, p);
  for (const Mat& ph : p) {  // causal rows sum to 1, future positions are 0
    for (Eigen::Index t = 0; t < n; ++t) {
      CHECK(ph.row(t).sum() == doctest::Approx(1.0).epsilon(1e-12));
      for (Eigen::Index u = t + 1; u < n; ++u) CHECK(ph(t, u) == 0.0);
    }
  }
  Mat dq, dk, dv;
  g::attention_backward(q, k, v, p, dout, sh, dq, dk, dv);
  for (Eigen::Index i = 0; i < q.size(); ++i) check_close(dq.data()[i], central_difference(q.data()[i], loss), "dq");
  for (Eigen::Index i = 0; i < k.size(); ++i) check_close(dk.data()[i], central_difference(k.data()[i], loss), "dk");
  for (Eigen::Index i = 0; i < v.size(); ++i) check_close(dv.data()[i], central_difference(v.data()[i], loss), "dv");
}

TEST_CASE("blocked causal attention: long sequences match an unblocked reference and finite differences") {
  std::mt19937 rng(13);
  g::Shape sh{16, 0, 1, 4, 2, 0};
  const Eigen::Index n = 2 * g::kAttentionBlock + 7;
  Mat q = random_matrix(n, 16, rng), k = random_matrix(n, 8, rng), v = random_matrix(n, 8, rng);
  Mat dout = random_matrix(n, 16, rng);
  Mat out;
  std::vector<Mat> p;
  g::attention_forward(q, k, v, sh, out, p);
  for (int h = 0; h < 4; ++h) {  // reference: full scores, masked softmax
    Mat s = q.middleCols(h * 4, 4) * k.middleCols((h / 2) * 4, 4).transpose() / 2.0;
    for (Eigen::Index t = 0; t < n; ++t) {
      const double mx = s.row(t).head(t + 1).maxCoeff();
      Eigen::RowVectorXd e = (s.row(t).head(t + 1).array() - mx).exp();
      e /= e.sum();
      CHECK((p[static_cast<std::size_t>(h)].row(t).head(t + 1) - e).cwiseAbs().maxCoeff() < 1e-14);
      if (t + 1 < n) CHECK(p[static_cast<std::size_t>(h)].row(t).tail(n - t - 1).cwiseAbs().maxCoeff() == 0.0);
    }
    const Mat ref = p[static_cast<std::size_t>(h)] * v.middleCols((h / 2) * 4, 4);
    CHECK((out.middleCols(h * 4, 4) - ref).cwiseAbs().maxCoeff() < 1e-13);
  }
  auto loss = [&] {
    Mat o;
    std::vector<Mat> pp;
    g::attention_forward(q, k, v, sh, o, pp);
    return dot(o, dout);
  };
  Mat dq, dk, dv;
  g::attention_backward(q, k, v, p, dout, sh, dq, dk, dv);
  for (Eigen::Index i = 0; i < q.size(); i += 37) check_close(dq.data()[i], central_difference(q.data()[i], loss), "dq");
  for (Eigen::Index i = 0; i < k.size(); i += 23) check_close(dk.data()[i], central_difference(k.data()[i], loss), "dk");
  for (Eigen::Index i = 0; i < v.size(); i += 23) check_close(dv.data()[i], central_difference(v.data()[i], loss), "dv");
}

TEST_CASE("swiglu backward matches finite differences") {
  std::mt19937 rng(4);
  Mat a = random_matrix(3, 5, rng, 2.0), b = random_matrix(3, 5, rng), dh = random_matrix(3, 5, rng);
  auto loss = [&] {
    double s = 0;
    for (Eigen::Index i = 0; i < a.size(); ++i) {
      const double x = a.data()[i];
      s += dh.data()[i] * x / (1 + std::exp(-x)) * b.data()[i];
    }
    return s;
  };
  Mat da, db;
  g::swiglu_backward(a, b, dh, da, db);
  for (Eigen::Index i = 0; i < a.size(); ++i) {
    check_close(da.data()[i], central_difference(a.data()[i], loss), "da");
    check_close(db.data()[i], central_difference(b.data()[i], loss), "db");
  }
}

TEST_CASE("fake-quant forward equals sasq's normative fake_quantize_value in float") {
  std::mt19937 rng(5);
  std::normal_distribution<float> nd(0.0f, 3.0f);
  g::RowMatrix<float> x(4, 64);
  for (Eigen::Index i = 0; i < x.size(); ++i) x.data()[i] = nd(rng);
  x(0, 0) = 0.5f * 0.05f;  // a tie at 0.5
  g::SiteQuantizer<float> sq{true, -127, 127, {0.05f}};
  g::RowMatrix<float> y;
  std::int64_t clipped = 0;
  g::fake_quant_forward<float>(x, sq, y, clipped, nullptr, 0);
  std::int64_t expect_clipped = 0;
  for (Eigen::Index i = 0; i < x.size(); ++i) {
    const float ref = sasq::fake_quantize_value<sasq::GridS8>(x.data()[i], sasq::QuantParam::make(0.05f));
    CHECK(y.data()[i] == ref);
    expect_clipped += std::fabs(x.data()[i] / 0.05f) > 127.0f;
  }
  CHECK(clipped == expect_clipped);
  CHECK(clipped > 0);
}

TEST_CASE("fake-quant backward: STE to x, LSQ to the scale (per tensor and per channel)") {
  std::mt19937 rng(6);
  Mat x = random_matrix(4, 3, rng, 2.0), dy = random_matrix(4, 3, rng);
  for (bool per_channel : {false, true}) {
    g::SiteQuantizer<double> sq{true, -7, 7, per_channel ? std::vector<double>{0.21, 0.33, 0.17}
                                                         : std::vector<double>{0.27}};
    g::FrozenRounding<double> fr;
    fr.residual.resize(1);
    fr.branch.resize(1);
    auto loss = [&] {
      Mat y;
      std::int64_t c = 0;
      g::fake_quant_forward(x, sq, y, c, &fr, 0);
      return dot(y, dy);
    };
    loss();  // records the rounding
    fr.replay = true;
    Mat dx;
    std::vector<double> ds(sq.scale.size(), 0.0);
    g::fake_quant_backward(x, sq, dy, dx, ds);
    std::vector<double> ref_ds(sq.scale.size(), 0.0);
    int outside = 0;
    for (Eigen::Index t = 0; t < x.rows(); ++t) {
      for (Eigen::Index j = 0; j < x.cols(); ++j) {
        const std::size_t c = per_channel ? static_cast<std::size_t>(j) : 0;
        const double v = x(t, j) / sq.scale[c];
        const bool in = v >= -7 && v <= 7;
        outside += !in;
        ref_ds[c] += dy(t, j) * (in ? std::nearbyint(v) - v : (v < 0 ? -7.0 : 7.0));
        CHECK(dx(t, j) == (in ? dy(t, j) : 0.0));
        check_close(dx(t, j), central_difference(x(t, j), loss), "dx");
      }
    }
    CHECK(outside > 0);
    for (std::size_t c = 0; c < ds.size(); ++c) {
      check_close(ds[c], ref_ds[c], "ds vs formula", 1e-12);
      check_close(ds[c], central_difference(sq.scale[c], loss), "ds");
    }
  }
}

namespace {

/// Site quantizers with scales at `ratio` · absmax / qmax of an unquantized pass (so some clip).
std::vector<g::SiteQuantizer<double>> tiny_sites(const g::ModelView<double>& m, const std::vector<int>& tok,
                                                 int qmax, bool per_channel, double ratio) {
  std::vector<g::SiteQuantizer<double>> sites(static_cast<std::size_t>(m.shape.n_sites()));
  g::Tape<double> tape;
  g::forward(m, sites, sasq::Span<const int>(tok), 1.0, tape);
  for (int l = 0; l < m.shape.n_layers; ++l) {
    const auto& lt = tape.layers[static_cast<std::size_t>(l)];
    const Mat* in[4] = {&lt.n1, &lt.att, &lt.n2, &lt.h};
    for (int s = 0; s < 4; ++s) {
      auto& sq = sites[static_cast<std::size_t>(l * 4 + s)];
      sq.enabled = true;
      sq.qmin = -qmax;
      sq.qmax = qmax;
      if (per_channel) {
        for (Eigen::Index c = 0; c < in[s]->cols(); ++c)
          sq.scale.push_back(ratio * in[s]->col(c).cwiseAbs().maxCoeff() / qmax);
      } else {
        sq.scale.push_back(ratio * in[s]->cwiseAbs().maxCoeff() / qmax);
      }
    }
  }
  return sites;
}

/// Checks d loss / d scale for every site and d loss / d embedded input against central differences.
void check_model_gradients(g::ModelView<double> m, std::vector<double>& embedding,
                           std::vector<g::SiteQuantizer<double>> sites, const std::vector<int>& tok,
                           std::size_t max_scales_per_site, double rel, g::Distillation<double> kd = {}) {
  g::FrozenRounding<double> fr;
  g::Tape<double> tape;
  const double w = 1.0 / static_cast<double>(tok.size() - 1);
  g::forward(m, sites, sasq::Span<const int>(tok), w, tape, &fr, kd);
  fr.replay = true;
  g::Gradients<double> grads;
  grads.reset(sites);
  g::backward(m, sites, tape, grads);
  g::Tape<double> scratch;
  auto loss = [&] { return g::forward(m, sites, sasq::Span<const int>(tok), w, scratch, &fr, kd); };
  CHECK(loss() == doctest::Approx(tape.loss).epsilon(1e-12));  // replay = the base point
  double max_grad = 0;
  for (std::size_t i = 0; i < sites.size(); ++i) {
    for (std::size_t c = 0; c < std::min(max_scales_per_site, sites[i].scale.size()); ++c) {
      double& s = sites[i].scale[c];
      INFO("site " << i << " channel " << c);
      check_close(grads.scale[i][c], central_difference(s, loss, 1e-5 * s), "d loss / d scale", rel);
      max_grad = std::max(max_grad, std::fabs(grads.scale[i][c]));
    }
  }
  CHECK(max_grad > 1e-4);  // the check is not vacuous
  // Embedding: perturb the table entry of the first input token (summed over its positions).
  const int id = tok[0];
  Eigen::VectorXd d_row = Eigen::VectorXd::Zero(m.shape.dim);
  for (std::size_t t = 0; t + 1 < tok.size(); ++t)
    if (tok[t] == id) d_row += grads.embedded.row(static_cast<Eigen::Index>(t)).transpose();
  for (int j = 0; j < m.shape.dim; ++j) {
    double& e = embedding[static_cast<std::size_t>(id * m.shape.dim + j)];
    check_close(d_row(j), central_difference(e, loss, 1e-6), "d loss / d embedded input", rel);
  }
}

}  // namespace

TEST_CASE("full-model scale and input gradients match finite differences (tiny random model)") {
  sasq::test::ModelCopy<double> model(sasq::test::random_weights(7));
  const std::vector<int> tok = {1, 5, 9, 3, 5, 17, 2, 11, 0, 19, 4};
  for (int qmax : {7, 127}) {
    for (bool per_channel : {false, true}) {
      CAPTURE(qmax);
      CAPTURE(per_channel);
      auto m = model.view();
      auto sites = tiny_sites(m, tok, qmax, per_channel, 0.7);
      check_model_gradients(m, model.embedding, sites, tok, 64, 1e-5);
    }
  }
  // Rotated model: the online down_proj rotation (h <- h R before the kDownIn quantizer) is
  // differentiated as well (R orthogonal, random; backward applies Rᵀ).
  {
    auto m = model.view();
    const sasq::Rotation r = sasq::Rotation::random_orthogonal(static_cast<std::size_t>(m.shape.hidden_dim), 5);
    const std::vector<float> dense = r.dense();
    m.down_rotation = Eigen::Map<const Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>>(
                          dense.data(), m.shape.hidden_dim, m.shape.hidden_dim)
                          .cast<double>();
    auto sites = tiny_sites(m, tok, 7, false, 0.7);
    check_model_gradients(m, model.embedding, sites, tok, 64, 1e-5);
  }
  // Unquantized model: pure backpropagation to the input.
  auto m = model.view();
  std::vector<g::SiteQuantizer<double>> off(static_cast<std::size_t>(m.shape.n_sites()));
  for (auto& s : off) s.scale = {1.0};
  g::FrozenRounding<double> fr;
  g::Tape<double> tape;
  g::forward(m, off, sasq::Span<const int>(tok), 1.0, tape);
  g::Gradients<double> grads;
  grads.reset(off);
  g::backward(m, off, tape, grads);
  g::Tape<double> scratch;
  auto loss = [&] { return g::forward(m, off, sasq::Span<const int>(tok), 1.0, scratch); };
  for (int j = 0; j < m.shape.dim; ++j) {
    double& e = model.embedding[static_cast<std::size_t>(tok[1] * m.shape.dim + j)];
    double d = 0;
    for (std::size_t t = 0; t + 1 < tok.size(); ++t)
      if (tok[t] == tok[1]) d += grads.embedded(static_cast<Eigen::Index>(t), j);
    check_close(d, central_difference(e, loss), "FP32 d loss / d embedded input");
  }
}

TEST_CASE("distillation loss: value and scale/input gradients match finite differences") {
  sasq::test::ModelCopy<double> model(sasq::test::random_weights(7));
  const std::vector<int> tok = {1, 5, 9, 3, 5, 17, 2, 11, 0, 19, 4};
  auto m = model.view();
  // Teacher: the unquantized model's next-token distribution (what the trainer uses).
  std::vector<g::SiteQuantizer<double>> off(static_cast<std::size_t>(m.shape.n_sites()));
  for (auto& s : off) s.scale = {1.0};
  g::Tape<double> teacher;
  g::forward(m, off, sasq::Span<const int>(tok), 1.0, teacher);
  const Mat p_teacher = teacher.probs;
  auto sites = tiny_sites(m, tok, 7, false, 0.7);
  // The loss is (1 − α)·CE + α·(KL(p_teacher ‖ p) + H(p_teacher)), computed here independently.
  g::Tape<double> ce_tape, kd_tape;
  const double ce = g::forward(m, sites, sasq::Span<const int>(tok), 1.0, ce_tape);
  for (double alpha : {0.6, 1.0}) {
    CAPTURE(alpha);
    const double loss = g::forward<double>(m, sites, sasq::Span<const int>(tok), 1.0, kd_tape, nullptr, {&p_teacher, alpha});
    double kl_h = 0;  // Σ_t Σ_j −p_tj log q_tj = KL + H
    for (Eigen::Index t = 0; t < p_teacher.rows(); ++t)
      for (Eigen::Index j = 0; j < p_teacher.cols(); ++j) kl_h -= p_teacher(t, j) * std::log(kd_tape.probs(t, j));
    CHECK(loss == doctest::Approx((1 - alpha) * ce + alpha * kl_h).epsilon(1e-10));
    check_model_gradients(m, model.embedding, sites, tok, 64, 1e-5, {&p_teacher, alpha});
  }
  // The teacher's probabilities must match the sequence, the weight must be in (0, 1].
  const Mat wrong = p_teacher.topRows(3);
  CHECK_THROWS(g::forward<double>(m, sites, sasq::Span<const int>(tok), 1.0, kd_tape, nullptr, {&wrong, 0.5}));
  CHECK_THROWS(g::forward<double>(m, sites, sasq::Span<const int>(tok), 1.0, kd_tape, nullptr, {&p_teacher, 1.5}));
}

TEST_CASE("stories260K: scale and input gradients match finite differences for a few tokens") {
  const std::string path = std::string(SASQ_DATA_DIR) + "/stories260K/stories260K.bin";
  if (!std::ifstream(path).good()) {
    MESSAGE("skipped: " << path << " not found");
    return;
  }
  sasq::test::ModelCopy<double> model(sasq::llama::load_checkpoint(path));
  const std::vector<int> tok = {1, 403, 407, 261, 378, 11, 297, 269};  // BOS "Once upon a time..."
  for (int qmax : {7, 127}) {
    CAPTURE(qmax);
    auto m = model.view();
    auto sites = tiny_sites(m, tok, qmax, false, 0.8);
    check_model_gradients(m, model.embedding, sites, tok, 1, 1e-5);
  }
}
