// Build check, no test: the inline-asm prefill kernels (cpu/avx512_vnni/prefill_pass.hpp) compile where
// general registers are fewest, -O0 with -fPIC (a Debug shared library): the s8 and u8 gemm instantiate them all.
#include "sasq/gemm/gemm.hpp"

void sasq_pic_debug_gemm(sasq::MatrixView<const std::int8_t> a, const sasq::ActivationQuant& act,
                         const sasq::PackedWeights& w, sasq::MatrixView<float> c) {
  sasq::gemm(a, act, w, sasq::Epilogue{}, c);
}

void sasq_pic_debug_gemm_u8(sasq::MatrixView<const std::uint8_t> a, const sasq::ActivationQuant& act,
                            const sasq::PackedWeights& w, sasq::MatrixView<float> c) {
  sasq::gemm(a, act, w, sasq::Epilogue{}, c);
}
