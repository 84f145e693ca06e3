// Integer GEMM for LLM linear layers: C[M][N] = epilogue(A[M][K] · W[N][K]ᵀ), int32 accumulation.
//   A: int8 (symmetric) or uint8 (asymmetric, zero points) activations, per-tensor or per-token scales;
//   W: int8 or int4 weights packed once by pack_weights (per-channel or per-group scales);
//   C: float, or int8 requantized with a static output scale; epilogue stages in gemm/epilogue.hpp.
// Result: bit-exact to gemm_reference (gemm/reference.hpp) for every ISA and thread count.
//
// Example (LLaMA W8A8 layer with a static SASQ activation scale s_x, f32 output):
//   PackedWeights w = pack_weights(w_int8, w_scales, {8});                 // once, at load time
//   quantize_static_s8(x, s_x, x_q);                                       // f32 -> int8
//   gemm(x_q, ActivationQuant::per_tensor(s_x), w, Epilogue{}, y);         // y = x_q·Wᵀ·s_x·s_w
#pragma once

#include <algorithm>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <thread>
#include <type_traits>

#include "sasq/core/buffer.hpp"
#include "sasq/core/matrix_view.hpp"
#include "sasq/core/status.hpp"
#include "sasq/cpu/avx2/gemm_kernel.hpp"
#include "sasq/cpu/avx512_vnni/gemm_kernel.hpp"
#include "sasq/cpu/executor.hpp"
#include "sasq/cpu/gemm_tile.hpp"
#include "sasq/cpu/isa.hpp"
#include "sasq/cpu/scalar/gemm_kernel.hpp"
#include "sasq/gemm/epilogue.hpp"
#include "sasq/gemm/packed_weights.hpp"
#include "sasq/gemm/problem.hpp"

namespace sasq {

/// Execution options of one gemm call.
struct GemmOptions {
  /// Threads to use at most (0 = every thread of the executor: see cpu::executor_threads); problems with
  /// fewer than kMinOpsPerThread operations per thread use fewer threads (down to 1).
  int threads = 0;
  /// Kernel ISA; kAuto = SASQ_ISA or the best supported. A named unsupported ISA throws kUnsupported.
  Isa isa = Isa::kAuto;
  /// The caller's executor (cpu/executor.hpp); empty = cpu::ThreadPool::instance(). gemm may be called
  /// from inside a task of either: the built-in pool runs such a nested call inline.
  ParallelFor parallel_for = nullptr;
};

/// Work (2·M·N·K) below which one more thread costs more than it saves (thread wake-up is ~10 µs).
inline constexpr std::int64_t kMinOpsPerThread = std::int64_t{1} << 23;

namespace detail {

/// The packed-A buffer (uint8, K zero-padded, s8 stored + 128) with per-row shifts and scales. Rows are
/// lda = round_up(Kp, 64) + 64 bytes apart so that the rows of a tile do not alias in the L1 sets.
struct PackedActivations {
  std::ptrdiff_t lda = 0;
  AlignedBuffer<std::uint8_t> data;
  AlignedBuffer<std::int32_t> shift;
  AlignedBuffer<float> row_scale;
  /// Per row and weight group, Σ (a - 128) (TileArgs::group_sums), when `summed` (decode with int4 groups).
  AlignedBuffer<std::int32_t> group_sums;
  bool summed = false;
};

/// Whether kernel K computes per-group A sums for its decode tiles (K::group_sums).
template <class K, class = void>
struct HasGroupSums : std::false_type {};
template <class K>
struct HasGroupSums<K, std::void_t<decltype(&K::group_sums)>> : std::true_type {};

/// Whether a call sums A per weight group once (pa.summed): decode rows (M <= 2, every tile a decode tile)
/// on int4 weights with group scales, on a kernel with group_sums.
template <class Kernel>
bool wants_group_sums(const PackedWeights& w, std::ptrdiff_t m) {
  return HasGroupSums<Kernel>::value && m <= 2 && w.format().bits == 4 && w.groups() > 1;
}

/// Fills pa.group_sums for rows [r0, r0 + rows) (packed already) when pa.summed.
template <class Kernel>
void sum_groups(const PackedWeights& w, PackedActivations& pa, std::ptrdiff_t r0, std::ptrdiff_t rows) {
  if constexpr (HasGroupSums<Kernel>::value) {
    if (!pa.summed) return;
    for (std::ptrdiff_t r = r0; r < r0 + rows; ++r)
      Kernel::group_sums(pa.data.data() + r * pa.lda, w.k_padded(), w.group_size(),
                         pa.group_sums.data() + r * w.groups());
  }
}

/// Sizes `out` for A[M][K] (rows lda = round_up(kp, 64) + 64 bytes apart, so a kernel may write whole
/// 64-byte chunks) and fills the per-row shifts and scales; pack_activation_rows packs the rows.
template <class TA>
void prepare_activations(MatrixView<const TA> a, const ActivationQuant& act, std::ptrdiff_t kp,
                         PackedActivations& out) {
  const std::ptrdiff_t m = a.rows(), lda = (kp + 63) / 64 * 64 + 64;
  out.lda = lda;
  const std::size_t need = static_cast<std::size_t>(m * lda);
  if (out.data.size() < need) out.data = AlignedBuffer<std::uint8_t>(need);
  if (out.shift.size() < static_cast<std::size_t>(m)) {
    out.shift = AlignedBuffer<std::int32_t>(static_cast<std::size_t>(m));
    out.row_scale = AlignedBuffer<float>(static_cast<std::size_t>(m));
  }
  constexpr bool kSigned = std::is_same_v<TA, std::int8_t>;
  for (std::ptrdiff_t r = 0; r < m; ++r) {
    out.shift[static_cast<std::size_t>(r)] = kSigned ? 128 : act.zero_point_of(r);
    out.row_scale[static_cast<std::size_t>(r)] = act.scale_of(r);
  }
}

/// Packs rows [r0, r0 + rows) of A into `out` (sized by prepare_activations) with the row copy of kernel IsaT.
template <class IsaT, class TA>
void pack_activation_rows(MatrixView<const TA> a, std::ptrdiff_t kp, PackedActivations& out, std::ptrdiff_t r0,
                          std::ptrdiff_t rows) {
  constexpr bool kSigned = std::is_same_v<TA, std::int8_t>;
  if (rows > 0)
    cpu::GemmKernel<IsaT>::pack_rows(reinterpret_cast<const std::uint8_t*>(a.row_ptr(r0)), a.ld(), rows, a.cols(), kp,
                                     kSigned ? 0x80 : 0, out.data.data() + r0 * out.lda, out.lda);
}

/// Packs A[M][K] into `out`: prepare_activations, then every row.
template <class IsaT, class TA>
void pack_activations(MatrixView<const TA> a, const ActivationQuant& act, std::ptrdiff_t kp, PackedActivations& out) {
  prepare_activations(a, act, kp, out);
  pack_activation_rows<IsaT>(a, kp, out, 0, a.rows());
}

/// A's rows packed in units of `unit_rows` by every thread of a parallel run: each thread packs the units
/// no other has claimed, then waits until all are packed (only on units that a running thread is packing,
/// so an executor that runs the tasks one after another, or a worker that starts late, cannot block it).
class CooperativePack {
 public:
  CooperativePack(std::ptrdiff_t rows, std::ptrdiff_t unit_rows)
      : rows_(rows), unit_rows_(unit_rows), units_((rows + unit_rows - 1) / unit_rows) {}

  /// Packs unclaimed units with pack(r0, rows), then returns once every unit is packed.
  template <class Pack>
  void run(Pack pack) {
    for (std::ptrdiff_t u; (u = next_.fetch_add(1, std::memory_order_relaxed)) < units_;) {
      const std::ptrdiff_t r0 = u * unit_rows_;
      pack(r0, std::min(unit_rows_, rows_ - r0));
      done_.fetch_add(1, std::memory_order_acq_rel);
    }
    for (int spins = 0; done_.load(std::memory_order_acquire) < units_; ++spins) {
      if (spins < 4096) {
#if defined(__x86_64__) || defined(__i386__)
        __builtin_ia32_pause();
#endif
      } else {
        std::this_thread::yield();  // the thread packing the last unit was descheduled
      }
    }
  }

 private:
  std::atomic<std::ptrdiff_t> next_{0}, done_{0};
  const std::ptrdiff_t rows_, unit_rows_, units_;
};

/// Whether kernel K runs several full row tiles of a block per call (K::full_tiles).
template <class K, class = void>
struct HasFullTiles : std::false_type {};
template <class K>
struct HasFullTiles<K, std::void_t<decltype(&K::full_tiles)>> : std::true_type {};

/// Whether kernel K reads A in place (K::rows_in_place).
template <class K, class = void>
struct HasRowsInPlace : std::false_type {};
template <class K>
struct HasRowsInPlace<K, std::void_t<decltype(&K::template rows_in_place<true>)>> : std::true_type {};

/// The epilogue bias of panel block `block`'s kTileCols columns in packed column order (0 for padding
/// columns and without a bias).
inline void block_bias(const PackedWeights& w, const Epilogue& ep, std::ptrdiff_t block, float* bias) {
  for (int v = 0; v < kPanelsPerBlock; ++v)
    for (int col = 0; col < kPanelCols; ++col) {
      const std::ptrdiff_t row = w.weight_row(block * kPanelsPerBlock + v, col);
      bias[v * kPanelCols + col] = (row >= 0 && !ep.bias.empty()) ? ep.bias[static_cast<std::size_t>(row)] : 0.0f;
    }
}

/// Runs tile tasks [begin, end) of the (panel block, row tile) grid, block-major, with kernel Isa.
template <class IsaT, class TC>
void run_tiles(const PackedWeights& w, const PackedActivations& pa, std::ptrdiff_t m, const Epilogue& ep,
               MatrixView<TC> c, std::ptrdiff_t begin, std::ptrdiff_t end) {
  using Kernel = cpu::GemmKernel<IsaT>;
  constexpr int kRows = Kernel::kTileRows;
  const std::ptrdiff_t row_tiles = (m + kRows - 1) / kRows;
  const float inv_out = 1.0f / ep.output_scale;
  // f32 C without activation: kernels that can write the finished tile straight into C (no y copy).
  const bool direct = Kernel::kStoresC && std::is_same_v<TC, float> && ep.activation == Activation::kNone &&
                      !w.format().gate_up_pair;
  alignas(64) float bias[cpu::kTileCols];
  alignas(64) float y[cpu::kMaxTileRows * cpu::kTileCols];
  std::ptrdiff_t bias_block = -1;
  std::ptrdiff_t block = begin / row_tiles, r0 = (begin % row_tiles) * kRows;
  for (std::ptrdiff_t task = begin; task < end; ++task, r0 += kRows) {
    if (r0 >= m) {  // next panel block (tasks are block-major)
      ++block;
      r0 = 0;
    }
    const int rows = static_cast<int>(std::min<std::ptrdiff_t>(kRows, m - r0));
    if (block != bias_block) {
      block_bias(w, ep, block, bias);
      bias_block = block;
    }
    cpu::TileArgs t;
    t.a = pa.data.data() + r0 * pa.lda;
    t.lda = pa.lda;
    t.shift = pa.shift.data() + r0;
    t.row_scale = pa.row_scale.data() + r0;
    t.p0 = block * kPanelsPerBlock;
    t.bias = bias;
    if (pa.summed) t.group_sums = pa.group_sums.data() + r0 * w.groups();
    if (direct) {
      t.c = reinterpret_cast<float*>(c.row_ptr(r0)) + block * cpu::kTileCols;
      t.ldc = c.ld();
      t.c_cols = static_cast<int>(std::min<std::ptrdiff_t>(cpu::kTileCols, c.cols() - block * cpu::kTileCols));
    }
    if constexpr (HasFullTiles<Kernel>::value) {
      // The block's remaining full tiles within [task, end) in one kernel call.
      const std::ptrdiff_t full = std::min<std::ptrdiff_t>(end - task, (m - r0) / kRows);
      if (direct && full > 1) {
        Kernel::full_tiles(w, t, full, y);
        task += full - 1;
        r0 += (full - 1) * kRows;
        continue;
      }
    }
    Kernel::tile(w, t, rows, y);
    if (!direct) cpu::finish_tile(y, rows, block, w, ep, inv_out, c.row_ptr(r0), c.ld(), c.cols(), &Kernel::requantize_row);
  }
}

/// K up to which one-thread GEMMs read A in place (run_in_place): rows that short do not alias in L1.
inline constexpr std::ptrdiff_t kInPlaceMaxK = 1024;

/// A GEMM on the calling thread with A read in place (Kernel::rows_in_place): s8 A, or u8 A with a
/// per-tensor zero point; per-channel scales, f32 C without activation.
template <class Kernel, class TA>
void run_in_place(MatrixView<const TA> a, const ActivationQuant& act, const PackedWeights& w, const Epilogue& ep,
                  MatrixView<float> c) {
  constexpr int kRows = Kernel::kTileRows;
  constexpr bool kSigned = std::is_same_v<TA, std::int8_t>;
  alignas(64) float bias[cpu::kTileCols];
  float scale[kRows];
  std::fill_n(scale, kRows, act.scale);
  const bool per_row = !act.row_scales.empty();
  for (std::ptrdiff_t block = 0; block < w.panels() / kPanelsPerBlock; ++block) {
    block_bias(w, ep, block, bias);
    cpu::TileArgs t;
    t.a = reinterpret_cast<const std::uint8_t*>(a.data());
    t.lda = a.ld();
    t.row_scale = per_row ? act.row_scales.data() : scale;
    t.p0 = block * kPanelsPerBlock;
    t.bias = bias;
    t.c = c.data() + block * cpu::kTileCols;
    t.ldc = c.ld();
    t.c_cols = static_cast<int>(std::min<std::ptrdiff_t>(cpu::kTileCols, c.cols() - block * cpu::kTileCols));
    Kernel::template rows_in_place<kSigned>(w, t, a.rows(), a.cols(), per_row ? 4 * kRows : 0,
                                            kSigned ? 128 : act.zero_point);
  }
}

/// Tile tasks handed out in chunks from a shared counter (guided self-scheduling): a thread that takes the
/// next chunk gets max(min_chunk, remaining / (2·threads)) tasks, so the first chunks are long contiguous
/// weight streams and the last ones short, and a thread that starts late (a worker woken from sleep) or is
/// descheduled by the OS leaves its share to the others instead of holding up the call. Chunks of at least
/// one panel block end on a block boundary (whole blocks per kernel call). Which thread computes a task
/// does not change its result: each task computes its outputs over the full K.
class GuidedSchedule {
 public:
  GuidedSchedule(std::ptrdiff_t tasks, int threads, std::ptrdiff_t block_tasks, std::ptrdiff_t min_chunk)
      : tasks_(tasks), divisor_(2 * std::ptrdiff_t{threads}), block_tasks_(block_tasks), min_chunk_(min_chunk) {}

  /// Takes the next chunk [begin, end); false when every task has been taken.
  bool take(std::ptrdiff_t& begin, std::ptrdiff_t& end) {
    std::ptrdiff_t cur = next_.load(std::memory_order_relaxed);
    for (;;) {
      if (cur >= tasks_) return false;
      std::ptrdiff_t chunk = std::max(min_chunk_, (tasks_ - cur) / divisor_);
      std::ptrdiff_t stop = cur + chunk;
      if (chunk >= block_tasks_) stop = (stop + block_tasks_ - 1) / block_tasks_ * block_tasks_;
      stop = std::min(stop, tasks_);
      if (next_.compare_exchange_weak(cur, stop, std::memory_order_relaxed)) {
        begin = cur;
        end = stop;
        return true;
      }
    }
  }

 private:
  std::atomic<std::ptrdiff_t> next_{0};
  const std::ptrdiff_t tasks_, divisor_, block_tasks_, min_chunk_;
};

/// Work per thread (2·M·N·K / threads) up to which a prefill call (M > one row tile) splits its panel
/// blocks evenly, one contiguous range per thread, instead of the guided schedule: there a call is short
/// (~0.7 ms of VNNI work per thread at most) and the guided schedule's ~14 chunks, each a new weight
/// stream, cost more than a late worker (median wake-up 4–7 µs) does.
inline constexpr std::int64_t kEvenSplitMaxOpsPerThread = std::int64_t{1} << 29;

/// Panel blocks [first, last) of share `i` of an even split of `blocks` blocks into `n` shares: contiguous,
/// in order, sizes differing by at most one, every block in exactly one share.
inline void even_share(std::ptrdiff_t blocks, int n, int i, std::ptrdiff_t& first, std::ptrdiff_t& last) {
  first = blocks * i / n;
  last = blocks * (i + 1) / n;
}

/// The shortest chunk of the guided schedule in tile tasks: one task for decode (rows <= a tile: one panel
/// block, a 64-column weight stream of K · bits / 8 · 64 bytes), else about 2^24 operations (~20 µs, so
/// that taking a chunk and its block set-up stay negligible), at most one block.
inline std::ptrdiff_t min_chunk(std::ptrdiff_t block_tasks, std::ptrdiff_t tile_rows, std::ptrdiff_t k) {
  if (block_tasks == 1) return 1;
  const std::int64_t task_ops = 2 * std::int64_t{tile_rows} * kPanelsPerBlock * kPanelCols * k;
  return std::clamp<std::ptrdiff_t>(static_cast<std::ptrdiff_t>((std::int64_t{1} << 24) / task_ops), 1, block_tasks);
}

template <class IsaT, class TA, class TC>
void run_gemm(MatrixView<const TA> a, const ActivationQuant& act, const PackedWeights& w, const Epilogue& ep,
              MatrixView<TC> c, int threads, const ParallelFor& pf) {
  using Kernel = cpu::GemmKernel<IsaT>;
  const std::ptrdiff_t m = a.rows();
  constexpr int kRows = Kernel::kTileRows;
  const std::ptrdiff_t tasks = (w.panels() / kPanelsPerBlock) * ((m + kRows - 1) / kRows);
  const std::int64_t ops = 2 * std::int64_t{m} * w.output_cols() * w.k();
  const std::int64_t useful = std::max<std::int64_t>(1, ops / kMinOpsPerThread);
  const int n = static_cast<int>(std::min<std::int64_t>({threads, useful, tasks}));
  if constexpr (HasRowsInPlace<Kernel>::value && std::is_same_v<TC, float>) {
    if (n == 1 && w.groups() == 1 && a.cols() % 4 == 0 && a.cols() <= kInPlaceMaxK && m >= kRows &&
        act.row_zero_points.empty() && Kernel::kStoresC && ep.activation == Activation::kNone &&
        !w.format().gate_up_pair) {
      run_in_place<Kernel>(a, act, w, ep, c);
      return;
    }
  }
  static thread_local PackedActivations buffer;
  PackedActivations& pa = buffer;  // the caller's buffer: tasks on other threads must not name the thread_local
  pa.summed = wants_group_sums<Kernel>(w, m);
  if (pa.summed && pa.group_sums.size() < static_cast<std::size_t>(m * w.groups()))
    pa.group_sums = AlignedBuffer<std::int32_t>(static_cast<std::size_t>(m * w.groups()));
  if (n == 1) {
    pack_activations<IsaT>(a, act, w.k_padded(), pa);
    sum_groups<Kernel>(w, pa, 0, m);
    run_tiles<IsaT>(w, pa, m, ep, c, 0, tasks);
    return;
  }
  prepare_activations(a, act, w.k_padded(), pa);
  const std::ptrdiff_t row_tiles = (m + kRows - 1) / kRows;
  CooperativePack pack(m, kRows);
  GuidedSchedule schedule(tasks, n, row_tiles, min_chunk(row_tiles, std::min<std::ptrdiff_t>(m, kRows), w.k()));
  const bool even = row_tiles > 1 && tasks / row_tiles >= n && ops / n <= kEvenSplitMaxOpsPerThread;
  cpu::parallel_run(pf, n, [&](int i) {
    pack.run([&](std::ptrdiff_t r0, std::ptrdiff_t rows) {
      pack_activation_rows<IsaT>(a, w.k_padded(), pa, r0, rows);
      sum_groups<Kernel>(w, pa, r0, rows);
    });
    std::ptrdiff_t begin, end;
    if (even) {
      even_share(tasks / row_tiles, n, i, begin, end);
      run_tiles<IsaT>(w, pa, m, ep, c, begin * row_tiles, end * row_tiles);
    } else {
      while (schedule.take(begin, end)) run_tiles<IsaT>(w, pa, m, ep, c, begin, end);
    }
  });
}

}  // namespace detail

/// C = epilogue(A · Wᵀ): A[M][K] int8_t (symmetric, act.zero_point 0) or uint8_t (zero points in
/// [0, 255]), act = per-tensor (static) or per-token scales; W packed by pack_weights; C[M][N] float, or
/// int8_t requantized with ep.output_scale (N = F for a gate/up pair with Activation::kSwiGlu).
/// Throws sasq::Error for shape / scale / zero-point mismatches, K > kMaxK, or an unsupported ISA.
template <class TA, class TC>
void gemm(MatrixView<const TA> a, const ActivationQuant& act, const PackedWeights& w, const Epilogue& ep,
          MatrixView<TC> c, GemmOptions opt = {}) {
  SASQ_REQUIRE(w.panels() > 0, "W is empty (not built by pack_weights)");
  detail::require_gemm_problem(a, act, w.weight_rows(), w.k(), w.format(), ep, c);
  SASQ_REQUIRE(opt.threads >= 0, "GemmOptions::threads must be >= 0, got ", opt.threads);
  const Isa isa = cpu::resolve_isa(opt.isa);
  if (a.rows() == 0) return;
  const int threads = cpu::executor_threads(opt.parallel_for, opt.threads);
  switch (isa) {
#if SASQ_HAS_X86_KERNELS
    case Isa::kAvx512Vnni: detail::run_gemm<isa::avx512_vnni>(a, act, w, ep, c, threads, opt.parallel_for); return;
    case Isa::kAvx2: detail::run_gemm<isa::avx2>(a, act, w, ep, c, threads, opt.parallel_for); return;
#endif
    default: detail::run_gemm<isa::scalar>(a, act, w, ep, c, threads, opt.parallel_for); return;
  }
}

/// Overload for mutable views.
template <class TA, class TC>
void gemm(MatrixView<TA> a, const ActivationQuant& act, const PackedWeights& w, const Epilogue& ep,
          MatrixView<TC> c, GemmOptions opt = {}) {
  gemm(MatrixView<const TA>(a), act, w, ep, c, opt);
}

}  // namespace sasq
