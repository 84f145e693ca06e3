// Links against OpenBLAS: the header and one library symbol.
#include <cblas.h>

int main() {
  const float a = 1.0f, b = 2.0f;
  float c = 0.0f;
  cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, 1, 1, 1, 1.0f, &a, 1, &b, 1, 0.0f, &c, 1);
  return c == 2.0f ? 0 : 1;
}
