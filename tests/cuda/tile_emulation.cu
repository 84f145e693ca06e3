// Host replay of gemm_tc_kernel's data movement: shared-memory fill (cp.async chunks, swizzle), ldmatrix
// and mma.sync m16n8k32 emulated from their PTX ISA definitions, accumulators mapped to outputs with the
// kernel's own index maps (sasq/cuda/tile_layout.cuh). Compiled by nvcc's host pass; needs no GPU.
#include "host_functors.hpp"

#include <cstdint>
#include <cstring>
#include <random>
#include <vector>

#include "sasq/core/int4.hpp"
#include "sasq/cuda/gemm.cuh"

namespace sasq::cuda_test::nvcc_host {
namespace {

/// ldmatrix .x4 .b16: matrix i's 8 row addresses come from lanes 8i..8i+7; lane t receives the
/// 32-bit word (t % 4) of row (t / 4) of every matrix.
void ldmatrix_x4(const std::uint8_t* const (&row_addr)[32], std::uint32_t (&out)[32][4]) {
  for (int t = 0; t < 32; ++t) {
    for (int i = 0; i < 4; ++i) std::memcpy(&out[t][i], row_addr[8 * i + t / 4] + 4 * (t % 4), 4);
  }
}

std::int8_t byte_of(std::uint32_t w, int i) { return static_cast<std::int8_t>(static_cast<std::uint8_t>(w >> (8 * i))); }

/// mma.sync.m16n8k32.row.col.s32.s8.s8.s32 on the fragments of 32 lanes (PTX ISA fragment layout).
void mma_16832(const std::uint32_t (&a)[32][4], const std::uint32_t (&b)[32][2], std::int64_t (&c)[32][4]) {
  std::int64_t am[16][32], bm[32][8];
  for (int t = 0; t < 32; ++t) {
    const int g = t / 4, q = t % 4;
    for (int i = 0; i < 4; ++i) {
      am[g][4 * q + i] = byte_of(a[t][0], i);
      am[g + 8][4 * q + i] = byte_of(a[t][1], i);
      am[g][16 + 4 * q + i] = byte_of(a[t][2], i);
      am[g + 8][16 + 4 * q + i] = byte_of(a[t][3], i);
      bm[4 * q + i][g] = byte_of(b[t][0], i);
      bm[16 + 4 * q + i][g] = byte_of(b[t][1], i);
    }
  }
  for (int t = 0; t < 32; ++t) {
    const int g = t / 4, q = t % 4;
    for (int e = 0; e < 4; ++e) {
      const int r = g + 8 * (e / 2), col = 2 * q + e % 2;
      for (int kk = 0; kk < 32; ++kk) c[t][e] += am[r][kk] * bm[kk][col];
    }
  }
}

template <class Cfg, int kBits>
long replay(int m, int rows, int k, bool gate_up, unsigned seed) {
  using cuda::tile::swizzle64;
  constexpr int kBK = Cfg::kBK, kBRow = kBits == 8 ? kBK : kBK / 2;
  constexpr int kMT = Cfg::kMTiles, kNT = Cfg::kNTiles;
  std::mt19937 rng(seed);
  std::uniform_int_distribution<int> da(-128, 127), dw(kBits == 8 ? -128 : -8, kBits == 8 ? 127 : 7);
  std::vector<std::int8_t> a(static_cast<std::size_t>(m) * k), w(static_cast<std::size_t>(rows) * k);
  for (auto& v : a) v = static_cast<std::int8_t>(da(rng));
  for (auto& v : w) v = static_cast<std::int8_t>(dw(rng));
  const int ldw = kBits == 8 ? k : k / 2;
  std::vector<std::uint8_t> wb(static_cast<std::size_t>(rows) * ldw);
  if (kBits == 8) {
    std::memcpy(wb.data(), w.data(), w.size());
  } else {
    for (int r = 0; r < rows; ++r)
      pack_int4<Int4>(Span<const std::int8_t>(w.data() + static_cast<std::size_t>(r) * k, k),
                      Span<std::uint8_t>(wb.data() + static_cast<std::size_t>(r) * ldw, ldw));
  }
  const int n = gate_up ? rows / 2 : rows;
  std::vector<std::int64_t> got(2 * static_cast<std::size_t>(m) * n, 0);
  std::vector<int> writes(got.size(), 0);
  const int cols_per_block = gate_up ? Cfg::kBN / 2 : Cfg::kBN;
  std::vector<std::uint8_t> sa(Cfg::kBM * kBK), sb(Cfg::kBN * kBRow);

  for (int by = 0; by * Cfg::kBM < m; ++by) {
    for (int bx = 0; bx * cols_per_block < n; ++bx) {
      const std::ptrdiff_t m0 = static_cast<std::ptrdiff_t>(by) * Cfg::kBM, n0 = static_cast<std::ptrdiff_t>(bx) * cols_per_block;
      std::vector<std::int64_t> acc(static_cast<std::size_t>(Cfg::kWarpsM * Cfg::kWarpsN) * kMT * kNT * 32 * 4, 0);
      auto acc_at = [&](int warp, int mt, int nt) { return &acc[((static_cast<std::size_t>(warp) * kMT + mt) * kNT + nt) * 128]; };
      for (int k0 = 0; k0 < k; k0 += kBK) {
        // shared-memory fill, chunk by chunk as load_stage issues its cp.async (zero fill outside)
        for (int c = 0; c < Cfg::kBM * (kBK / 16); ++c) {
          const int row = c / (kBK / 16), ch = c % (kBK / 16);
          const bool ok = m0 + row < m && k0 + ch * 16 < k;
          for (int i = 0; i < 16; ++i)
            sa[swizzle64(row, ch) + i] = ok ? static_cast<std::uint8_t>(a[(m0 + row) * k + k0 + ch * 16 + i]) : 0;
        }
        for (int c = 0; c < Cfg::kBN * (kBRow / 16); ++c) {
          const int row = c / (kBRow / 16), ch = c % (kBRow / 16);
          bool up = false;
          const std::ptrdiff_t col = cuda::tile::b_column(n0, row, gate_up, Cfg::kWarpN, up);
          const int gk = (kBits == 8 ? k0 : k0 / 2) + ch * 16;
          const bool ok = col < n && gk < ldw;
          const int dst = kBits == 8 ? swizzle64(row, ch) : row * kBRow + ch * 16;
          for (int i = 0; i < 16; ++i)
            sb[dst + i] = ok ? wb[(up ? n + col : col) * ldw + gk + i] : 0;
        }
        for (int ks = 0; ks < kBK / 32 && k0 + ks * 32 < k; ++ks) {
          for (int warp = 0; warp < Cfg::kWarpsM * Cfg::kWarpsN; ++warp) {
            const int wm = warp / Cfg::kWarpsN, wn = warp % Cfg::kWarpsN;
            std::uint32_t af[kMT][32][4], bf[kNT][32][2];
            for (int mt = 0; mt < kMT; ++mt) {
              const std::uint8_t* addr[32];
              for (int l = 0; l < 32; ++l)
                addr[l] = sa.data() + swizzle64(wm * Cfg::kWarpM + mt * 16 + cuda::tile::a_ldsm_row(l),
                                                cuda::tile::a_ldsm_chunk(ks, l));
              ldmatrix_x4(addr, af[mt]);
            }
            if (kBits == 8) {
              for (int np = 0; np < kNT / 2; ++np) {
                const std::uint8_t* addr[32];
                for (int l = 0; l < 32; ++l)
                  addr[l] = sb.data() + swizzle64(wn * Cfg::kWarpN + np * 16 + cuda::tile::b_ldsm_row(l),
                                                  cuda::tile::b_ldsm_chunk(ks, l));
                std::uint32_t r[32][4];
                ldmatrix_x4(addr, r);
                for (int t = 0; t < 32; ++t) {
                  bf[2 * np][t][0] = r[t][0], bf[2 * np][t][1] = r[t][1];
                  bf[2 * np + 1][t][0] = r[t][2], bf[2 * np + 1][t][1] = r[t][3];
                }
              }
            } else {
              for (int nt = 0; nt < kNT; ++nt) {
                for (int t = 0; t < 32; ++t) {
                  const std::uint8_t* src =
                      sb.data() + (wn * Cfg::kWarpN + nt * 8 + cuda::tile::b4_row(t)) * kBRow + cuda::tile::b4_byte(ks, t);
                  bf[nt][t][0] = cuda::unpack_int4x4(static_cast<std::uint16_t>(src[0] | (src[1] << 8)));
                  bf[nt][t][1] = cuda::unpack_int4x4(static_cast<std::uint16_t>(src[8] | (src[9] << 8)));
                }
              }
            }
            for (int mt = 0; mt < kMT; ++mt) {
              for (int nt = 0; nt < kNT; ++nt) {
                std::int64_t c[32][4];
                std::memcpy(c, acc_at(warp, mt, nt), sizeof c);
                mma_16832(af[mt], bf[nt], c);
                std::memcpy(acc_at(warp, mt, nt), c, sizeof c);
              }
            }
          }
        }
      }
      // epilogue mapping: every accumulator to its output (gate or up), with the kernel's index maps
      for (int warp = 0; warp < Cfg::kWarpsM * Cfg::kWarpsN; ++warp) {
        const int wm = warp / Cfg::kWarpsN, wn = warp % Cfg::kWarpsN;
        for (int mt = 0; mt < kMT; ++mt)
          for (int nt = 0; nt < kNT; ++nt)
            for (int t = 0; t < 32; ++t)
              for (int e = 0; e < 4; ++e) {
                const std::ptrdiff_t mm = m0 + wm * Cfg::kWarpM + mt * 16 + cuda::tile::acc_row(t, e);
                bool up = false;
                const std::ptrdiff_t j =
                    cuda::tile::b_column(n0, wn * Cfg::kWarpN + nt * 8 + cuda::tile::acc_col(t, e), gate_up, Cfg::kWarpN, up);
                if (gate_up && (nt >= kNT / 2) != up) return -1;  // the gate/up split the epilogue relies on
                if (mm >= m || j >= n) continue;
                const std::size_t i = (up ? static_cast<std::size_t>(m) * n : 0) + mm * n + j;
                got[i] = acc_at(warp, mt, nt)[t * 4 + e];
                ++writes[i];
              }
      }
    }
  }
  long bad = 0;
  for (int h = 0; h < (gate_up ? 2 : 1); ++h)
    for (int i = 0; i < m; ++i)
      for (int j = 0; j < n; ++j) {
        std::int64_t want = 0;
        for (int kk = 0; kk < k; ++kk) want += std::int64_t{a[i * k + kk]} * w[(h * n + j) * k + kk];
        const std::size_t idx = static_cast<std::size_t>(h) * m * n + i * n + j;
        bad += (got[idx] != want) + (writes[idx] != 1);
      }
  return bad;
}

}  // namespace

long replay_tile_gemm(bool large, int bits, bool gate_up, int m, int rows, int k, unsigned seed) {
  if (large) return bits == 8 ? replay<cuda::TileLarge, 8>(m, rows, k, gate_up, seed)
                              : replay<cuda::TileLarge, 4>(m, rows, k, gate_up, seed);
  return bits == 8 ? replay<cuda::TileSmall, 8>(m, rows, k, gate_up, seed)
                   : replay<cuda::TileSmall, 4>(m, rows, k, gate_up, seed);
}

}  // namespace sasq::cuda_test::nvcc_host
