// Eigen FP32 peer for gemm_bench: C[M][N] = A[M][K] · W[N][K]ᵀ, row-major, compiled with -march=native.
#include <Eigen/Core>

namespace sasq_bench {

void eigen_gemm(const float* a, const float* w, float* c, int m, int k, int n, int threads) {
  using Mat = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
  Eigen::setNbThreads(threads);
  Eigen::Map<const Mat> am(a, m, k), wm(w, n, k);
  Eigen::Map<Mat> cm(c, m, n);
  cm.noalias() = am * wm.transpose();
}

}  // namespace sasq_bench
