// Launchers behind tests/cuda/kernels.hpp: the only translation unit of the GPU tests.
#include "kernels.hpp"

#include <thrust/device_vector.h>
#include <thrust/host_vector.h>

#include "sasq/core/int4.hpp"
#include "sasq/cuda/fake_quant.cuh"
#include "sasq/cuda/fwht.cuh"
#include "sasq/cuda/gemm.cuh"
#include "sasq/cuda/quantize.cuh"

namespace sasq::cuda_test {
namespace {

template <class T>
T* ptr(thrust::device_vector<T>& v) {
  return v.empty() ? nullptr : thrust::raw_pointer_cast(v.data());
}
template <class T>
const T* ptr(const thrust::device_vector<T>& v) {
  return v.empty() ? nullptr : thrust::raw_pointer_cast(v.data());
}

Status finish(Status launched) {
  if (!launched) return launched;
  return cuda::cuda_status(cudaDeviceSynchronize(), "cuda_test synchronize");
}

template <class T>
std::vector<T> to_host(const thrust::device_vector<T>& d) {
  thrust::host_vector<T> h = d;
  return std::vector<T>(h.begin(), h.end());
}

template <class GridT, class Fn>
Status quantize_with(const std::vector<float>& x, int rows, int cols, std::size_t params, Quantized& out,
                     Fn&& launch) {
  using Q = cuda::quantized_t<GridT>;
  const thrust::device_vector<float> dx(x.begin(), x.end());
  const std::ptrdiff_t qcols = cuda::quantized_row_bytes<GridT>(cols);
  thrust::device_vector<Q> dq(static_cast<std::size_t>(rows * qcols));
  thrust::device_vector<float> ds(params);
  thrust::device_vector<std::int32_t> dz(params);
  const Status s = finish(launch(MatrixView<const float>(ptr(dx), rows, cols),
                                 MatrixView<Q>(ptr(dq), rows, qcols), ptr(ds), ptr(dz)));
  if (!s) return s;
  const std::vector<Q> q = to_host(dq);
  out.q.assign(q.begin(), q.end());
  out.scales = to_host(ds);
  out.zero_points = to_host(dz);
  return s;
}

template <class Fn>
Status with_grid(TestGrid g, Fn&& fn) {
  switch (g) {
    case TestGrid::kS8: return fn(GridS8{});
    case TestGrid::kU8: return fn(GridU8{});
    case TestGrid::kS4: return fn(GridS4Full{});
  }
  return Status(ErrorCode::kInvalidArgument, "unknown grid");
}

template <class TC>
Status gemm_impl(const GemmCase& g, std::vector<TC>& c) {
  const thrust::device_vector<std::int8_t> da(g.a.begin(), g.a.end());
  std::vector<std::uint8_t> wbytes;
  std::ptrdiff_t ld = g.k;
  if (g.format.bits == 4) {
    ld = g.k / 2;
    wbytes.resize(static_cast<std::size_t>(g.rows) * static_cast<std::size_t>(ld));
    for (int r = 0; r < g.rows; ++r) {
      pack_int4<Int4>(Span<const std::int8_t>(g.w.data() + static_cast<std::size_t>(r) * g.k, g.k),
                      Span<std::uint8_t>(wbytes.data() + static_cast<std::size_t>(r) * ld, ld));
    }
  } else {
    wbytes.assign(reinterpret_cast<const std::uint8_t*>(g.w.data()),
                  reinterpret_cast<const std::uint8_t*>(g.w.data()) + g.w.size());
  }
  const thrust::device_vector<std::uint8_t> dw(wbytes.begin(), wbytes.end());
  const thrust::device_vector<float> dws(g.w_scales.begin(), g.w_scales.end());
  const thrust::device_vector<float> drs(g.row_scales.begin(), g.row_scales.end());
  const thrust::device_vector<float> db(g.bias.begin(), g.bias.end());
  const int n = g.format.gate_up_pair ? g.rows / 2 : g.rows;
  thrust::device_vector<TC> dc(static_cast<std::size_t>(g.m) * n);
  cuda::DeviceWeights w{ptr(dw), g.rows, g.k, ld, g.format, ptr(dws)};
  cuda::DeviceEpilogue ep{g.act_scale, ptr(drs), ptr(db), g.activation, g.output_scale};
  const Status s = finish(cuda::gemm(MatrixView<const std::int8_t>(ptr(da), g.m, g.k), w, ep,
                                     MatrixView<TC>(ptr(dc), g.m, n), nullptr));
  if (s) c = to_host(dc);
  return s;
}

}  // namespace

int device_count() { return cuda::device_count(); }

Status quantize_per_tensor(TestGrid grid, const std::vector<float>& x, int rows, int cols, QuantParam p,
                           Quantized& out) {
  return with_grid(grid, [&](auto g) {
    using G = decltype(g);
    return quantize_with<G>(x, rows, cols, 0, out, [&](auto xv, auto qv, float*, std::int32_t*) {
      return cuda::quantize_per_tensor<G>(xv, p, qv, nullptr);
    });
  });
}

Status quantize_per_token(TestGrid grid, const std::vector<float>& x, int rows, int cols, Quantized& out,
                          float clip_ratio) {
  return with_grid(grid, [&](auto g) {
    using G = decltype(g);
    return quantize_with<G>(x, rows, cols, static_cast<std::size_t>(rows), out,
                            [&](auto xv, auto qv, float* s, std::int32_t* z) {
                              return cuda::quantize_per_token<G>(xv, qv, s, z, nullptr, clip_ratio);
                            });
  });
}

Status quantize_per_group(TestGrid grid, const std::vector<float>& x, int rows, int cols, int group_size,
                          Quantized& out, float clip_ratio) {
  return with_grid(grid, [&](auto g) {
    using G = decltype(g);
    const std::size_t params = group_size > 0 ? static_cast<std::size_t>(rows) * (cols / group_size) : 0;
    return quantize_with<G>(x, rows, cols, params, out, [&](auto xv, auto qv, float* s, std::int32_t* z) {
      return cuda::quantize_per_group<G>(xv, group_size, qv, s, z, nullptr, clip_ratio);
    });
  });
}

Status quantize_dynamic_empty(bool per_group, float clip_ratio) {
  const MatrixView<const float> x(nullptr, 0, 0);
  const MatrixView<std::int8_t> q(nullptr, 0, 0);
  return per_group ? cuda::quantize_per_group<GridS8>(x, 1, q, nullptr, nullptr, nullptr, clip_ratio)
                   : cuda::quantize_per_token<GridS8>(x, q, nullptr, nullptr, nullptr, clip_ratio);
}

Status dequantize_per_group(TestGrid grid, const Quantized& in, int rows, int cols, int group_size,
                            std::vector<float>& x) {
  return with_grid(grid, [&](auto g) {
    using G = decltype(g);
    using Q = cuda::quantized_t<G>;
    const std::vector<Q> qh(in.q.begin(), in.q.end());
    const thrust::device_vector<Q> dq(qh.begin(), qh.end());
    const thrust::device_vector<float> ds(in.scales.begin(), in.scales.end());
    const thrust::device_vector<std::int32_t> dz(in.zero_points.begin(), in.zero_points.end());
    thrust::device_vector<float> dx(static_cast<std::size_t>(rows) * cols);
    const cuda::ScaleLayout layout{cols / group_size, group_size};
    const Status s = finish(cuda::dequantize<G>(
        MatrixView<const Q>(ptr(dq), rows, cuda::quantized_row_bytes<G>(cols)), ptr(ds), ptr(dz), layout,
        MatrixView<float>(ptr(dx), rows, cols), nullptr));
    if (s) x = to_host(dx);
    return s;
  });
}

Status fake_quant_s8(const std::vector<float>& x, const std::vector<float>& dy, float scale,
                     float grad_scale, std::vector<float>& y, std::vector<float>& dx, float& dscale) {
  const thrust::device_vector<float> dxin(x.begin(), x.end()), ddy(dy.begin(), dy.end());
  thrust::device_vector<float> dyout(x.size()), ddx(x.size()), dds(1);
  thrust::device_vector<double> work(cuda::kFakeQuantPartials);
  if (Status s = cuda::fake_quant_forward<GridS8>(ptr(dxin), x.size(), scale, ptr(dyout), nullptr); !s) {
    return s;
  }
  const Status s = finish(cuda::fake_quant_backward<GridS8>(ptr(dxin), ptr(ddy), x.size(), scale, grad_scale,
                                                            ptr(ddx), ptr(dds), ptr(work), nullptr));
  if (!s) return s;
  y = to_host(dyout);
  dx = to_host(ddx);
  dscale = to_host(dds)[0];
  return s;
}

Status run_gemm(const GemmCase& g, std::vector<float>& c) { return gemm_impl(g, c); }
Status run_gemm(const GemmCase& g, std::vector<std::int8_t>& c) { return gemm_impl(g, c); }
Status run_gemm(const GemmCase& g, std::vector<std::int32_t>& c) { return gemm_impl(g, c); }

Status fwht_rows(std::vector<float>& x, int rows, int n, int m, const std::vector<float>& base) {
  thrust::device_vector<float> dx(x.begin(), x.end());
  const thrust::device_vector<float> db(base.begin(), base.end());
  const Status s = finish(cuda::fwht_rows(MatrixView<float>(ptr(dx), rows, n), m, ptr(db), nullptr));
  if (s) x = to_host(dx);
  return s;
}

}  // namespace sasq::cuda_test
