// Integer GEMM on tensor cores, C = epilogue(A · Wᵀ), A[M][K] int8, W[N][K] int8 or packed int4:
//   acc_g[m][n] = Σ_{k in group g} a[m][k] · w[n][k]         mma.sync m16n8k32 s8·s8 -> s32
//   then the stages of sasq/gemm/epilogue.hpp in their order (dequantize with fmaf per group,
//   row scale + bias, SiLU / SwiGLU, store f32 or requantize to int8) -- bit-exact to
//   gemm_reference() wherever the stages are (everything but expf in SiLU / SwiGLU).
// Decode (M <= kDecodeMaxRows) runs a GEMV that streams W with 16-byte loads and dp4a.
#pragma once

#include <cmath>
#include <cstdint>
#include <type_traits>

#include "sasq/core/matrix_view.hpp"
#include "sasq/core/status.hpp"
#include "sasq/cuda/common.cuh"
#include "sasq/cuda/int4_unpack.cuh"
#include "sasq/cuda/tile_layout.cuh"
#include "sasq/gemm/epilogue.hpp"
#include "sasq/gemm/packed_weights.hpp"

namespace sasq::cuda {

/// Weights on the device in the nn.Linear layout, not repacked: row n holds K int8 values, or for
/// bits == 4 K/2 bytes in pack_int4 order (element k in nibble k % 2 of byte k / 2). `scales` has
/// rows · scales_per_row(format, k) floats, row-major (group index fastest). For a gate/up pair
/// (format.gate_up_pair) rows = 2F: gate rows [0, F), then up rows [F, 2F).
struct DeviceWeights {
  const void* data = nullptr;
  std::ptrdiff_t rows = 0;      ///< N (2F for a gate/up pair)
  std::ptrdiff_t k = 0;         ///< K in elements
  std::ptrdiff_t ld_bytes = 0;  ///< bytes between rows, a multiple of 16
  WeightFormat format{};
  const float* scales = nullptr;
};

/// Device-side epilogue operands: the CPU gemm's ActivationQuant (symmetric int8 A only) and
/// Epilogue, with device pointers instead of spans.
struct DeviceEpilogue {
  float act_scale = 1.0f;              ///< per-tensor activation scale, used when row_scales is null
  const float* row_scales = nullptr;   ///< null, or M per-token activation scales
  const float* bias = nullptr;         ///< null, or one float per weight row
  Activation activation = Activation::kNone;
  float output_scale = 1.0f;           ///< static scale of an int8 C
};

/// M up to which gemm() uses the decode GEMV instead of the tensor-core tiles.
inline constexpr std::ptrdiff_t kDecodeMaxRows = 16;

/// Thread-block tile: BM x BN outputs, BK bytes of K per stage, WarpsM x WarpsN warps, each
/// owning a (BM / WarpsM) x (BN / WarpsN) tile of m16n8 accumulators; two cp.async stages.
template <int BM, int BN, int WarpsM, int WarpsN>
struct TileConfig {
  static constexpr int kBM = BM, kBN = BN, kBK = 64, kStages = 2;
  static constexpr int kWarpsM = WarpsM, kWarpsN = WarpsN;
  static constexpr int kThreads = 32 * WarpsM * WarpsN;
  static constexpr int kWarpM = BM / WarpsM, kWarpN = BN / WarpsN;
  static constexpr int kMTiles = kWarpM / 16, kNTiles = kWarpN / 8;
  static_assert(kWarpM % 16 == 0 && kWarpN % 16 == 0, "a warp tile is a multiple of 16 x 16");
};
/// Prefill tile (M > 64): 128 x 128, 8 warps of 64 x 32 (64 int32 accumulators per thread).
using TileLarge = TileConfig<128, 128, 2, 4>;
/// Small-M and per-group tile: 64 x 64, 4 warps of 32 x 32.
using TileSmall = TileConfig<64, 64, 2, 2>;

/// What the kernels store: raw int32 accumulators, or the epilogue's f32 / int8.
enum class GemmOutput { kS32, kF32, kS8 };

namespace detail {

template <class TC>
constexpr GemmOutput output_kind() {
  if constexpr (std::is_same_v<TC, std::int32_t>) return GemmOutput::kS32;
  else if constexpr (std::is_same_v<TC, float>) return GemmOutput::kF32;
  else return GemmOutput::kS8;
}

/// Kernel arguments (plain data, passed by value).
struct GemmArgs {
  const std::int8_t* a;
  std::ptrdiff_t lda;
  const std::uint8_t* w;
  std::ptrdiff_t ldw;  // bytes
  const float* w_scales;
  std::ptrdiff_t groups;      // scales per weight row
  std::ptrdiff_t group_size;  // K for per-channel
  std::ptrdiff_t m, n, k;     // n = output columns (F for a gate/up pair)
  bool gate_up;
  DeviceEpilogue ep;
  float inv_out;
  void* c;
  std::ptrdiff_t ldc;
};

/// Global weight row of local output column j (gate row j, or up row F + j).
__device__ __forceinline__ std::ptrdiff_t weight_row(const GemmArgs& p, std::ptrdiff_t j, bool up) {
  return up ? p.n + j : j;
}

/// Epilogue of one output element from its dequantized value y (before row scale and bias).
__device__ __forceinline__ float finish_row(const GemmArgs& p, float y, std::ptrdiff_t m,
                                            std::ptrdiff_t wrow) {
  const float as = p.ep.row_scales != nullptr ? p.ep.row_scales[m] : p.ep.act_scale;
  const float b = p.ep.bias != nullptr ? p.ep.bias[wrow] : 0.0f;
  return epilogue::Dequantize::apply_row(y, as, b);
}

template <GemmOutput kOut>
__device__ __forceinline__ void store_output(const GemmArgs& p, std::ptrdiff_t m, std::ptrdiff_t j,
                                             float y) {
  if (p.ep.activation == Activation::kSilu) y = epilogue::Silu::apply(y);
  if constexpr (kOut == GemmOutput::kF32) {
    epilogue::StoreF32::apply(y, static_cast<float*>(p.c) + m * p.ldc + j, p.inv_out);
  } else {
    epilogue::StoreS8::apply(y, static_cast<std::int8_t*>(p.c) + m * p.ldc + j, p.inv_out);
  }
}

__device__ __forceinline__ unsigned smem_u32(const void* ptr) {
  return static_cast<unsigned>(__cvta_generic_to_shared(ptr));
}

/// 16-byte global -> shared copy that bypasses L1; src_bytes = 0 zero-fills the destination.
__device__ __forceinline__ void cp_async_16(void* smem, const void* gmem, int src_bytes) {
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(smem_u32(smem)), "l"(gmem),
               "r"(src_bytes));
}
__device__ __forceinline__ void cp_async_commit() { asm volatile("cp.async.commit_group;\n" ::); }
template <int N>
__device__ __forceinline__ void cp_async_wait() {
  asm volatile("cp.async.wait_group %0;\n" ::"n"(N));
}

/// Four 8x8 b16 matrices from shared memory (lanes 8i..8i+7 address the rows of matrix i).
__device__ __forceinline__ void ldmatrix_x4(std::uint32_t (&r)[4], const void* smem) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0, %1, %2, %3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(smem_u32(smem)));
}

/// d += a · b on one m16n8k32 int8 tile (row-major A fragment, column-major B fragment).
__device__ __forceinline__ void mma_s8_16832(std::int32_t (&d)[4], const std::uint32_t (&a)[4],
                                             const std::uint32_t (&b)[2]) {
  asm volatile(
      "mma.sync.aligned.m16n8k32.row.col.s32.s8.s8.s32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, "
      "{%8, %9}, {%0, %1, %2, %3};\n"
      : "+r"(d[0]), "+r"(d[1]), "+r"(d[2]), "+r"(d[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]));
}

/// Tensor-core GEMM. Layout per stage: A tile BM x 64 bytes and, for int8 W, B tile BN x 64 bytes
/// (both swizzle64); for int4 W, B tile BN x 32 bytes (packed, unswizzled). Smem row i of B is
/// output column n0 + i, or for a gate/up pair column n0 + (i / kWarpN) * (kWarpN / 2) + i % (kWarpN / 2)
/// of the gate (first half of each warp's columns) or up rows, so that each thread holds the gate
/// and up accumulators of the same outputs. Per k32 step a warp issues kMTiles ldmatrix.x4 for A,
/// kNTiles / 2 ldmatrix.x4 (int8) or 2 kNTiles 16-bit loads + unpack (int4) for B, and
/// kMTiles · kNTiles mma. Groups: after the step that ends group g, acc is folded into
/// y = fmaf(float(acc), ws[n][g], y) (epilogue::Dequantize::apply_group) and reset.
template <class Cfg, int kWBits, bool kGrouped, GemmOutput kOut>
__global__ void __launch_bounds__(Cfg::kThreads) gemm_tc_kernel(GemmArgs p) {
  constexpr int kBM = Cfg::kBM, kBN = Cfg::kBN, kBK = Cfg::kBK;
  constexpr int kBRow = kWBits == 8 ? kBK : kBK / 2;  // bytes of one B smem row
  constexpr int kMT = Cfg::kMTiles, kNT = Cfg::kNTiles;
  __shared__ alignas(128) std::int8_t smem_a[Cfg::kStages][kBM * kBK];
  __shared__ alignas(128) std::uint8_t smem_b[Cfg::kStages][kBN * kBRow];

  const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
  const int wm = warp / Cfg::kWarpsN, wn = warp % Cfg::kWarpsN;
  const std::ptrdiff_t m0 = static_cast<std::ptrdiff_t>(blockIdx.y) * kBM;
  const std::ptrdiff_t n0 = static_cast<std::ptrdiff_t>(blockIdx.x) * (p.gate_up ? kBN / 2 : kBN);

  // Output column of B smem row i (and whether it reads the up rows of a gate/up pair).
  auto b_column = [&](int i, bool& up) { return tile::b_column(n0, i, p.gate_up, Cfg::kWarpN, up); };

  auto load_stage = [&](int stage, std::ptrdiff_t k0) {
    for (int c = tid; c < kBM * (kBK / 16); c += Cfg::kThreads) {
      const int row = c / (kBK / 16), ch = c % (kBK / 16);
      const std::ptrdiff_t gm = m0 + row, gk = k0 + ch * 16;
      const bool ok = gm < p.m && gk < p.k;
      cp_async_16(smem_a[stage] + tile::swizzle64(row, ch), ok ? p.a + gm * p.lda + gk : p.a, ok ? 16 : 0);
    }
    for (int c = tid; c < kBN * (kBRow / 16); c += Cfg::kThreads) {
      const int row = c / (kBRow / 16), ch = c % (kBRow / 16);
      bool up = false;
      const std::ptrdiff_t col = b_column(row, up);
      const std::ptrdiff_t gk_bytes = (kWBits == 8 ? k0 : k0 / 2) + ch * 16;
      const std::ptrdiff_t k_bytes = kWBits == 8 ? p.k : p.k / 2;
      const bool ok = col < p.n && gk_bytes < k_bytes;
      const std::uint8_t* src = ok ? p.w + weight_row(p, col, up) * p.ldw + gk_bytes : p.w;
      void* dst = kWBits == 8 ? static_cast<void*>(smem_b[stage] + tile::swizzle64(row, ch))
                              : static_cast<void*>(smem_b[stage] + row * kBRow + ch * 16);
      cp_async_16(dst, src, ok ? 16 : 0);
    }
  };

  std::int32_t acc[kMT][kNT][4] = {};
  float yacc[kGrouped ? kMT : 1][kGrouped ? kNT : 1][4] = {};

  // Folds the integer accumulators of group g into yacc (grouped weights only).
  auto fold_group = [&](std::ptrdiff_t g) {
    if constexpr (kGrouped) {
      for (int nt = 0; nt < kNT; ++nt) {
        for (int h = 0; h < 2; ++h) {
          bool up = false;
          const std::ptrdiff_t col = b_column(wn * Cfg::kWarpN + nt * 8 + tile::acc_col(lane, h), up);
          const float ws = col < p.n ? p.w_scales[weight_row(p, col, up) * p.groups + g] : 0.0f;
          for (int mt = 0; mt < kMT; ++mt) {
            for (int half = 0; half < 2; ++half) {
              std::int32_t& a = acc[mt][nt][half * 2 + h];
              yacc[mt][nt][half * 2 + h] =
                  epilogue::Dequantize::apply_group(yacc[mt][nt][half * 2 + h], a, ws);
              a = 0;
            }
          }
        }
      }
    }
  };

  const std::ptrdiff_t k_tiles = ceil_div<std::ptrdiff_t>(p.k, kBK);
  load_stage(0, 0);
  cp_async_commit();
  for (std::ptrdiff_t kt = 0; kt < k_tiles; ++kt) {
    const int stage = static_cast<int>(kt & 1);
    if (kt + 1 < k_tiles) {
      load_stage(stage ^ 1, (kt + 1) * kBK);
      cp_async_commit();
      cp_async_wait<1>();
    } else {
      cp_async_wait<0>();
    }
    __syncthreads();
#pragma unroll
    for (int ks = 0; ks < kBK / 32; ++ks) {
      const std::ptrdiff_t kk = kt * kBK + ks * 32;
      if (kk >= p.k) break;
      std::uint32_t af[kMT][4];
#pragma unroll
      for (int mt = 0; mt < kMT; ++mt) {
        const int row = wm * Cfg::kWarpM + mt * 16 + tile::a_ldsm_row(lane);
        ldmatrix_x4(af[mt], smem_a[stage] + tile::swizzle64(row, tile::a_ldsm_chunk(ks, lane)));
      }
      std::uint32_t bf[kNT][2];
      if constexpr (kWBits == 8) {
#pragma unroll
        for (int np = 0; np < kNT / 2; ++np) {
          const int row = wn * Cfg::kWarpN + np * 16 + tile::b_ldsm_row(lane);
          std::uint32_t r[4];
          ldmatrix_x4(r, smem_b[stage] + tile::swizzle64(row, tile::b_ldsm_chunk(ks, lane)));
          bf[2 * np][0] = r[0];
          bf[2 * np][1] = r[1];
          bf[2 * np + 1][0] = r[2];
          bf[2 * np + 1][1] = r[3];
        }
      } else {
#pragma unroll
        for (int nt = 0; nt < kNT; ++nt) {
          const int row = wn * Cfg::kWarpN + nt * 8 + tile::b4_row(lane);
          const std::uint8_t* src = smem_b[stage] + row * kBRow + tile::b4_byte(ks, lane);
          bf[nt][0] = unpack_int4x4(*reinterpret_cast<const std::uint16_t*>(src));
          bf[nt][1] = unpack_int4x4(*reinterpret_cast<const std::uint16_t*>(src + 8));
        }
      }
#pragma unroll
      for (int mt = 0; mt < kMT; ++mt) {
#pragma unroll
        for (int nt = 0; nt < kNT; ++nt) mma_s8_16832(acc[mt][nt], af[mt], bf[nt]);
      }
      if constexpr (kGrouped) {
        if ((kk + 32) % p.group_size == 0 || kk + 32 >= p.k) fold_group(kk / p.group_size);
      }
    }
    __syncthreads();  // the next iteration's cp.async overwrites this stage
  }

  // Accumulator (mt, nt, e): row wm*kWarpM + mt*16 + acc_row, smem-B row wn*kWarpN + nt*8 + acc_col.
#pragma unroll
  for (int mt = 0; mt < kMT; ++mt) {
#pragma unroll
    for (int nt = 0; nt < kNT; ++nt) {
      if (p.gate_up && nt >= kNT / 2) continue;  // up accumulators are read with their gate
#pragma unroll
      for (int e = 0; e < 4; ++e) {
        const std::ptrdiff_t m = m0 + wm * Cfg::kWarpM + mt * 16 + tile::acc_row(lane, e);
        bool up = false;
        const std::ptrdiff_t j = b_column(wn * Cfg::kWarpN + nt * 8 + tile::acc_col(lane, e), up);
        if (m >= p.m || j >= p.n) continue;
        if constexpr (kOut == GemmOutput::kS32) {
          static_cast<std::int32_t*>(p.c)[m * p.ldc + j] = acc[mt][nt][e];
        } else {
          auto dequantized = [&](int t, bool is_up) {
            const std::ptrdiff_t wrow = weight_row(p, j, is_up);
            float y;
            if constexpr (kGrouped) {
              y = yacc[mt][t][e];
            } else {
              y = epilogue::Dequantize::apply_group(0.0f, acc[mt][t][e], p.w_scales[wrow]);
            }
            return finish_row(p, y, m, wrow);
          };
          float y = dequantized(nt, false);
          if (p.gate_up) y = epilogue::SwiGlu::apply(y, dequantized((nt + kNT / 2) % kNT, true));
          store_output<kOut>(p, m, j, y);
        }
      }
    }
  }
}

/// Decode GEMV for M <= kDecodeMaxRows: one warp per output column j (its gate and up rows for a
/// gate/up pair). Each lane streams 16 bytes of the weight row per step (16 int8 or 32 int4
/// values, read once through the non-coherent path), unpacks to int8 words and dp4a's them with
/// the M activation rows (L1/L2 resident). Group sums are reduced across the lanes of a group and
/// folded in group order with the same fmaf as the tensor-core kernel.
template <int kWBits, GemmOutput kOut>
__global__ void gemv_decode_kernel(GemmArgs p) {
  constexpr int kElems = kWBits == 8 ? 16 : 32;  // K elements per lane per step
  constexpr int kWords = kElems / 4;
  constexpr int kMaxM = static_cast<int>(kDecodeMaxRows);
  const int lane = threadIdx.x & 31;
  const std::ptrdiff_t j = static_cast<std::ptrdiff_t>(blockIdx.x) * (blockDim.x / 32) + threadIdx.x / 32;
  if (j >= p.n) return;  // warp-uniform
  const int lanes_per_group = static_cast<int>(p.group_size / kElems);  // power of two, <= 32 when grouped
  const int mcount = static_cast<int>(p.m);

  float y[2][kMaxM];
  for (int h = 0; h < 2; ++h)
    for (int m = 0; m < kMaxM; ++m) y[h][m] = 0.0f;

#pragma unroll
  for (int h = 0; h < 2; ++h) {
    if (h == 1 && !p.gate_up) break;
    const std::ptrdiff_t wrow = weight_row(p, j, h == 1);
    const std::uint8_t* wr = p.w + wrow * p.ldw;
    std::int32_t whole[kMaxM] = {};
    for (std::ptrdiff_t base = 0; base < p.k; base += 32 * kElems) {
      const std::ptrdiff_t k0 = base + lane * kElems;
      std::int32_t part[kMaxM] = {};
      if (k0 < p.k) {
        const uint4 raw = __ldg(reinterpret_cast<const uint4*>(wr + (kWBits == 8 ? k0 : k0 / 2)));
        std::uint32_t wq[kWords];
        if constexpr (kWBits == 8) {
          wq[0] = raw.x, wq[1] = raw.y, wq[2] = raw.z, wq[3] = raw.w;
        } else {
          const std::uint32_t v[4] = {raw.x, raw.y, raw.z, raw.w};
#pragma unroll
          for (int i = 0; i < 4; ++i) {
            wq[2 * i] = unpack_int4x4(static_cast<std::uint16_t>(v[i] & 0xFFFFu));
            wq[2 * i + 1] = unpack_int4x4(static_cast<std::uint16_t>(v[i] >> 16));
          }
        }
#pragma unroll
        for (int m = 0; m < kMaxM; ++m) {
          if (m < mcount) {
            const uint4* xa = reinterpret_cast<const uint4*>(p.a + m * p.lda + k0);
#pragma unroll
            for (int q = 0; q < kWords / 4; ++q) {
              const uint4 xv = xa[q];
              part[m] = __dp4a(static_cast<int>(xv.x), static_cast<int>(wq[4 * q + 0]), part[m]);
              part[m] = __dp4a(static_cast<int>(xv.y), static_cast<int>(wq[4 * q + 1]), part[m]);
              part[m] = __dp4a(static_cast<int>(xv.z), static_cast<int>(wq[4 * q + 2]), part[m]);
              part[m] = __dp4a(static_cast<int>(xv.w), static_cast<int>(wq[4 * q + 3]), part[m]);
            }
          }
        }
      }
      if (p.groups == 1) {
#pragma unroll
        for (int m = 0; m < kMaxM; ++m) whole[m] += part[m];
        continue;
      }
      // Exact group sums: butterfly over the lanes of each group, then fold groups in order.
      const std::ptrdiff_t span = p.k - base < 32 * kElems ? p.k - base : 32 * kElems;
      const int groups_here = static_cast<int>(ceil_div<std::ptrdiff_t>(span, p.group_size));
      const std::ptrdiff_t g0 = base / p.group_size;
#pragma unroll
      for (int m = 0; m < kMaxM; ++m) {
        if (m >= mcount) break;
        std::int32_t s = part[m];
        for (int off = 1; off < lanes_per_group; off <<= 1) s += __shfl_xor_sync(0xffffffffu, s, off);
        for (int gi = 0; gi < groups_here; ++gi) {
          const std::int32_t gsum = __shfl_sync(0xffffffffu, s, gi * lanes_per_group);
          y[h][m] = epilogue::Dequantize::apply_group(y[h][m], gsum, p.w_scales[wrow * p.groups + g0 + gi]);
        }
      }
    }
    if (p.groups == 1) {
#pragma unroll
      for (int m = 0; m < kMaxM; ++m) {
        if (m >= mcount) break;
        std::int32_t s = whole[m];
        for (int off = 16; off > 0; off >>= 1) s += __shfl_xor_sync(0xffffffffu, s, off);
        whole[m] = s;
        y[h][m] = epilogue::Dequantize::apply_group(0.0f, s, p.w_scales[wrow]);
      }
    }
    if (lane == 0 && kOut == GemmOutput::kS32) {
#pragma unroll
      for (int m = 0; m < kMaxM; ++m) {
        if (m < mcount) static_cast<std::int32_t*>(p.c)[m * p.ldc + j] = whole[m];
      }
    }
  }
  if constexpr (kOut != GemmOutput::kS32) {
    if (lane == 0) {
#pragma unroll
      for (int m = 0; m < kMaxM; ++m) {
        if (m >= mcount) break;
        float v = finish_row(p, y[0][m], m, weight_row(p, j, false));
        if (p.gate_up) v = epilogue::SwiGlu::apply(v, finish_row(p, y[1][m], m, weight_row(p, j, true)));
        store_output<kOut>(p, m, j, v);
      }
    }
  }
}

template <class Cfg, int kWBits, bool kGrouped, GemmOutput kOut>
Status launch_tc(const GemmArgs& p, cudaStream_t stream) {
  const std::ptrdiff_t cols_per_block = p.gate_up ? Cfg::kBN / 2 : Cfg::kBN;
  const dim3 grid(static_cast<unsigned>(ceil_div<std::ptrdiff_t>(p.n, cols_per_block)),
                  static_cast<unsigned>(ceil_div<std::ptrdiff_t>(p.m, Cfg::kBM)));
  gemm_tc_kernel<Cfg, kWBits, kGrouped, kOut><<<grid, Cfg::kThreads, 0, stream>>>(p);
  return launch_status("sasq::cuda::gemm (tensor-core kernel)");
}

template <int kWBits, GemmOutput kOut>
Status launch_gemm(const GemmArgs& p, cudaStream_t stream) {
  if (p.m <= kDecodeMaxRows) {
    const unsigned blocks = static_cast<unsigned>(ceil_div<std::ptrdiff_t>(p.n, 4));
    gemv_decode_kernel<kWBits, kOut><<<blocks, 128, 0, stream>>>(p);
    return launch_status("sasq::cuda::gemm (decode kernel)");
  }
  if constexpr (kOut != GemmOutput::kS32) {
    if (p.groups > 1) return launch_tc<TileSmall, kWBits, true, kOut>(p, stream);
  }
  if (p.m > 64) return launch_tc<TileLarge, kWBits, false, kOut>(p, stream);
  return launch_tc<TileSmall, kWBits, false, kOut>(p, stream);
}

/// Checks shapes, alignment and formats; fills `p` on success.
template <class TC>
Status prepare_gemm(MatrixView<const std::int8_t> a, const DeviceWeights& w, const DeviceEpilogue& ep,
                    MatrixView<TC> c, GemmArgs& p) {
  constexpr const char* kWhere = "sasq::cuda::gemm";
  if (Status s = check_view(a, kWhere, "A"); !s) return s;
  if (Status s = check_view(c, kWhere, "C"); !s) return s;
  const WeightFormat& f = w.format;
  if (f.bits != 8 && f.bits != 4) return invalid(kWhere, "weight bits must be 8 or 4, got ", f.bits);
  if (f.group_size != 0 && f.group_size != 32 && f.group_size != 64 && f.group_size != 128) {
    return invalid(kWhere, "weight group size must be 0, 32, 64 or 128, got ", f.group_size);
  }
  if (w.k != a.cols()) return invalid(kWhere, "A has ", a.cols(), " columns but W has K = ", w.k);
  if (w.k < 1 || w.k > kMaxK) return invalid(kWhere, "K = ", w.k, " is outside [1, ", kMaxK, "]");
  const int k_align = f.bits == 8 ? 16 : 32;
  if (w.k % k_align != 0) {
    return invalid(kWhere, "K = ", w.k, " must be a multiple of ", k_align, " for ", f.bits,
                   "-bit weights (16-byte rows)");
  }
  if (a.rows() > 0 && (a.ld() % 16 != 0 || !aligned_to(a.data(), 16))) {
    return invalid(kWhere, "A must be 16-byte aligned with ld a multiple of 16, got ld ", a.ld());
  }
  if (w.rows < 0 || (f.gate_up_pair && w.rows % 2 != 0)) {
    return invalid(kWhere, "weight rows ", w.rows, f.gate_up_pair ? " must be even for a gate/up pair" : " < 0");
  }
  const std::ptrdiff_t row_bytes = f.bits == 8 ? w.k : w.k / 2;
  if (w.rows > 0 && (w.data == nullptr || !aligned_to(w.data, 16) || w.ld_bytes < row_bytes ||
                     w.ld_bytes % 16 != 0)) {
    return invalid(kWhere, "W must be non-null and 16-byte aligned with ld_bytes >= ", row_bytes,
                   " and a multiple of 16, got ld_bytes ", w.ld_bytes);
  }
  const std::ptrdiff_t n = f.gate_up_pair ? w.rows / 2 : w.rows;
  if (c.rows() != a.rows() || c.cols() != n) {
    return invalid(kWhere, "C is ", c.rows(), " x ", c.cols(), ", expected ", a.rows(), " x ", n);
  }
  const GemmOutput out = output_kind<TC>();
  if (out == GemmOutput::kS32 && (f.group_size != 0 || f.gate_up_pair)) {
    return invalid(kWhere, "int32 output holds one accumulator per output: per-channel weights only, "
                           "no gate/up pair");
  }
  if ((ep.activation == Activation::kSwiGlu) != f.gate_up_pair) {
    return invalid(kWhere, "Activation::kSwiGlu needs a gate/up pair and a gate/up pair needs kSwiGlu");
  }
  if (out != GemmOutput::kS32) {
    if (w.rows > 0 && w.scales == nullptr) return invalid(kWhere, "weight scales are null");
    if (ep.row_scales == nullptr && !(std::isfinite(ep.act_scale) && ep.act_scale > 0.0f)) {
      return invalid(kWhere, "activation scale ", ep.act_scale, " is not finite and positive");
    }
  }
  if (out == GemmOutput::kS8 && !(std::isfinite(ep.output_scale) && ep.output_scale > 0.0f &&
                                  std::isfinite(1.0f / ep.output_scale))) {
    return invalid(kWhere, "output scale ", ep.output_scale, " is not a finite positive scale");
  }
  p = GemmArgs{a.data(), a.ld(), static_cast<const std::uint8_t*>(w.data), w.ld_bytes, w.scales,
               sasq::detail::scales_per_row(f, w.k), f.group_size == 0 ? w.k : f.group_size, a.rows(), n, w.k,
               f.gate_up_pair, ep, 1.0f / ep.output_scale, c.data(), c.ld()};
  return Status::ok();
}

}  // namespace detail

/// C = epilogue(A · Wᵀ) on the stream: A int8 (symmetric) [M][K] row-major, 16-byte aligned rows;
/// W int8 or packed int4 (DeviceWeights); TC = float or int8_t (requantized with output_scale),
/// bit-exact to gemm_reference() except for expf inside SiLU/SwiGLU; TC = int32_t stores the raw
/// accumulators (per-channel weights, scales and epilogue ignored). K must be a multiple of 16
/// (int8 W) or 32 (int4 W). All pointers are device memory; nothing is allocated or synchronized.
template <class TC>
Status gemm(MatrixView<const std::int8_t> a, const DeviceWeights& w, const DeviceEpilogue& ep,
            MatrixView<TC> c, cudaStream_t stream) {
  static_assert(std::is_same_v<TC, float> || std::is_same_v<TC, std::int8_t> ||
                    std::is_same_v<TC, std::int32_t>,
                "gemm output is float, int8_t (requantized) or int32_t (raw accumulators)");
  detail::GemmArgs p{};
  if (Status s = detail::prepare_gemm(a, w, ep, c, p); !s) return s;
  if (p.m == 0 || p.n == 0) return Status::ok();
  constexpr GemmOutput kOut = detail::output_kind<TC>();
  return w.format.bits == 8 ? detail::launch_gemm<8, kOut>(p, stream)
                            : detail::launch_gemm<4, kOut>(p, stream);
}

}  // namespace sasq::cuda
