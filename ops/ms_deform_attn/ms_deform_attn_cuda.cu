// CUDA kernels of multi-scale deformable attention: the sibling of ms_deform_attn_cpu.cpp. The per-item
// arithmetic is the same code (ms_deform_attn_item.h); here one warp takes one item (b, q, h) and its 32 lanes
// split the channels (lane c takes c, c + 32, ...).
//   forward:  each lane accumulates its channels in shared memory, then writes the output row once.
//   backward: grad_value is shared by all queries, so lanes add into it atomically; the per-sample gradients
//             of locations and attention weights are summed across the warp with shuffles.
#include <ATen/ATen.h>
#include <c10/cuda/CUDAException.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#include <torch/library.h>

#include "ms_deform_attn.h"

namespace detrkit {

namespace {

constexpr int kWarpSize = 32;
constexpr int kWarpsPerBlock = 8;
constexpr size_t kMaxSharedBytes = 48 * 1024;  // available to every kernel without opting in

template <typename scalar_t>
struct AtomicAdd {
  static __device__ inline void add(scalar_t* target, scalar_t v) { atomicAdd(target, v); }
};

struct WarpSum {
  template <typename scalar_t>
  static __device__ inline scalar_t sum(scalar_t v) {
    for (int offset = kWarpSize / 2; offset > 0; offset /= 2) v += __shfl_down_sync(0xffffffffu, v, offset);
    return v;
  }
};

int64_t blocks_for(int64_t items) { return (items + kWarpsPerBlock - 1) / kWarpsPerBlock; }

// The warp's item; whole warps share it, so a warp past the end leaves together.
__device__ inline int64_t warp_item() {
  return static_cast<int64_t>(blockIdx.x) * kWarpsPerBlock + threadIdx.x / kWarpSize;
}

template <typename scalar_t>
__global__ void ms_deform_attn_forward_kernel(MsDeformAttnInputs<scalar_t> in, scalar_t* __restrict__ output) {
  extern __shared__ unsigned char shared_bytes[];
  const int64_t item = warp_item();
  if (item >= in.sizes.batch * in.sizes.queries * in.sizes.heads) return;
  const int64_t lane = threadIdx.x % kWarpSize;
  const int64_t channels = in.sizes.channels;
  scalar_t* row = reinterpret_cast<scalar_t*>(shared_bytes) + (threadIdx.x / kWarpSize) * channels;
  for (int64_t c = lane; c < channels; c += kWarpSize) row[c] = 0;
  ms_deform_attn_forward_item<kWarpSize>(in, item, lane, 0, channels, row);
  scalar_t* out = output + item * channels;
  for (int64_t c = lane; c < channels; c += kWarpSize) out[c] = row[c];
}

template <typename scalar_t>
__global__ void ms_deform_attn_backward_kernel(MsDeformAttnInputs<scalar_t> in, MsDeformAttnGrads<scalar_t> grads) {
  const int64_t item = warp_item();
  if (item >= in.sizes.batch * in.sizes.queries * in.sizes.heads) return;
  const int64_t lane = threadIdx.x % kWarpSize;
  ms_deform_attn_backward_item<kWarpSize, AtomicAdd<scalar_t>, WarpSum>(in, grads, item, lane, 0, in.sizes.channels);
}

at::Tensor ms_deform_attn_forward_cuda(
    const at::Tensor& value,
    const at::Tensor& spatial_shapes,
    const at::Tensor& level_start_index,
    const at::Tensor& sampling_loc,
    const at::Tensor& attn_weight,
    int64_t im2col_step) {
  const MsDeformAttnSizes sizes =
      check_ms_deform_attn_inputs(value, spatial_shapes, level_start_index, sampling_loc, attn_weight, im2col_step);
  const c10::cuda::CUDAGuard device_guard(value.device());
  const ContiguousInputs in(value, spatial_shapes, level_start_index, sampling_loc, attn_weight);
  // Every element is written: each warp writes the whole row of its item.
  at::Tensor output = at::empty({sizes.batch, sizes.queries, sizes.heads * sizes.channels}, value.options());
  if (output.numel() == 0) return output;
  const int64_t items = sizes.batch * sizes.queries * sizes.heads;
  cudaStream_t stream = c10::cuda::getCurrentCUDAStream();
  AT_DISPATCH_FLOATING_TYPES(value.scalar_type(), "ms_deform_attn_forward_cuda", [&] {
    const size_t shared_bytes = sizeof(scalar_t) * kWarpsPerBlock * sizes.channels;
    TORCH_CHECK(shared_bytes <= kMaxSharedBytes, "ms_deform_attn: ", sizes.channels,
                " channels per head need more shared memory than the CUDA kernel may use (", shared_bytes, " > ",
                kMaxSharedBytes, " bytes)");
    ms_deform_attn_forward_kernel<scalar_t><<<blocks_for(items), kWarpsPerBlock * kWarpSize, shared_bytes, stream>>>(
        in.pointers<scalar_t>(sizes), output.data_ptr<scalar_t>());
    C10_CUDA_KERNEL_LAUNCH_CHECK();
  });
  return output;
}

std::tuple<at::Tensor, at::Tensor, at::Tensor> ms_deform_attn_backward_cuda(
    const at::Tensor& value,
    const at::Tensor& spatial_shapes,
    const at::Tensor& level_start_index,
    const at::Tensor& sampling_loc,
    const at::Tensor& attn_weight,
    const at::Tensor& grad_output,
    int64_t im2col_step) {
  const MsDeformAttnSizes sizes =
      check_ms_deform_attn_inputs(value, spatial_shapes, level_start_index, sampling_loc, attn_weight, im2col_step);
  check_ms_deform_attn_grad_output(grad_output, value, sizes);
  const c10::cuda::CUDAGuard device_guard(value.device());
  const ContiguousInputs in(value, spatial_shapes, level_start_index, sampling_loc, attn_weight);
  const at::Tensor grad_out = grad_output.contiguous();
  // Zeros: the kernel adds into all three (atomically into grad_value, which all queries share).
  at::Tensor grad_value = at::zeros_like(in.value);
  at::Tensor grad_loc = at::zeros_like(in.loc);
  at::Tensor grad_attn = at::zeros_like(in.attn);
  // Without samples (no levels or no points) every gradient is zero.
  if (grad_attn.numel() == 0) return {grad_value, grad_loc, grad_attn};
  const int64_t items = sizes.batch * sizes.queries * sizes.heads;
  cudaStream_t stream = c10::cuda::getCurrentCUDAStream();
  AT_DISPATCH_FLOATING_TYPES(value.scalar_type(), "ms_deform_attn_backward_cuda", [&] {
    const MsDeformAttnGrads<scalar_t> grads{grad_out.data_ptr<scalar_t>(), grad_value.data_ptr<scalar_t>(),
                                            grad_loc.data_ptr<scalar_t>(), grad_attn.data_ptr<scalar_t>()};
    ms_deform_attn_backward_kernel<scalar_t><<<blocks_for(items), kWarpsPerBlock * kWarpSize, 0, stream>>>(
        in.pointers<scalar_t>(sizes), grads);
    C10_CUDA_KERNEL_LAUNCH_CHECK();
  });
  return {grad_value, grad_loc, grad_attn};
}

}  // namespace

TORCH_LIBRARY_IMPL(detrkit, CUDA, m) {
  m.impl("ms_deform_attn_forward", &ms_deform_attn_forward_cuda);
  m.impl("ms_deform_attn_backward", &ms_deform_attn_backward_cuda);
}

}  // namespace detrkit
