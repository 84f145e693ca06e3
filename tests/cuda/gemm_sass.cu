// The GEMM kernels whose SASS and ptxas resource usage tests/cuda/check_kernels.py inspects: the main
// tile configurations for int8 and int4 weights, compiled on their own to one cubin per architecture.
#include "sasq/cuda/gemm.cuh"

namespace sasq::cuda::detail {

template __global__ void gemm_tc_kernel<TileLarge, 8, false, GemmOutput::kS32>(GemmArgs);
template __global__ void gemm_tc_kernel<TileLarge, 8, false, GemmOutput::kS8>(GemmArgs);
template __global__ void gemm_tc_kernel<TileSmall, 8, false, GemmOutput::kF32>(GemmArgs);
template __global__ void gemm_tc_kernel<TileLarge, 4, false, GemmOutput::kF32>(GemmArgs);
template __global__ void gemm_tc_kernel<TileSmall, 4, true, GemmOutput::kF32>(GemmArgs);
template __global__ void gemv_decode_kernel<8, GemmOutput::kF32>(GemmArgs);
template __global__ void gemv_decode_kernel<4, GemmOutput::kF32>(GemmArgs);

}  // namespace sasq::cuda::detail
