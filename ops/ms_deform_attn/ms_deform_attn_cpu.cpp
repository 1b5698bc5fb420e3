// CPU kernels of multi-scale deformable attention. The per-item arithmetic is ms_deform_attn_item.h, shared
// with the CUDA kernels; this file only distributes the items over threads (and over instruction sets, see
// cpu_dispatch.h).
//   forward:  parallel over batch x queries x heads; each item writes its own output row.
//   backward: parallel over batch x heads; an item of (b, h) only adds into grad_value[b, :, h, :], so the
//             threads never write the same element and no atomics or per-thread copies are needed.
// Channels go in blocks of kChannelBlock, a compile-time count, so the compiler unrolls the channel loops and
// keeps the forward's accumulators and the backward's grad_out slice in vector registers; a remainder block
// has a run-time count.
#include <ATen/ATen.h>
#include <torch/library.h>

#include <algorithm>
#include <type_traits>

#include "../common/cpu_dispatch.h"
#include "ms_deform_attn.h"

namespace detrkit {

namespace {

template <typename scalar_t>
struct PlainAdd {
  static DETRKIT_INLINE void add(scalar_t* target, scalar_t v) { *target += v; }
};

struct SingleLane {
  template <typename scalar_t>
  static DETRKIT_INLINE scalar_t sum(scalar_t v) {
    return v;
  }
};

constexpr int64_t kChannelBlock = 32;
using FullBlock = std::integral_constant<int64_t, kChannelBlock>;
// Items per task: one item costs levels * points * 4 * channels multiply-adds.
constexpr int64_t kForwardGrain = 16;

template <typename scalar_t>
struct ForwardArgs {
  MsDeformAttnInputs<scalar_t> in;
  scalar_t* out;
};

template <typename scalar_t>
struct BackwardArgs {
  MsDeformAttnInputs<scalar_t> in;
  MsDeformAttnGrads<scalar_t> grads;
};

// Items [begin, end) of the forward.
struct ForwardItems {
  template <typename scalar_t>
  static DETRKIT_INLINE void run(const ForwardArgs<scalar_t>& a, int64_t begin, int64_t end) {
    const int64_t channels = a.in.sizes.channels;
    for (int64_t item = begin; item < end; ++item) {
      scalar_t* out = a.out + item * channels;
      int64_t c0 = 0;
      for (; c0 + kChannelBlock <= channels; c0 += kChannelBlock) {
        scalar_t acc[kChannelBlock] = {};
        ms_deform_attn_forward_item<1>(a.in, item, 0, c0, FullBlock{}, acc);
        std::copy(acc, acc + kChannelBlock, out + c0);
      }
      if (c0 < channels) {
        std::fill(out + c0, out + channels, scalar_t(0));
        ms_deform_attn_forward_item<1>(a.in, item, 0, c0, channels - c0, out + c0);
      }
    }
  }
};

// (b, h) pairs [begin, end) of the backward, every query.
struct BackwardItems {
  template <typename scalar_t>
  static DETRKIT_INLINE void run(const BackwardArgs<scalar_t>& a, int64_t begin, int64_t end) {
    const MsDeformAttnSizes& sizes = a.in.sizes;
    for (int64_t bh = begin; bh < end; ++bh) {
      const int64_t b = bh / sizes.heads;
      const int64_t h = bh % sizes.heads;
      for (int64_t q = 0; q < sizes.queries; ++q) {
        const int64_t item = (b * sizes.queries + q) * sizes.heads + h;
        int64_t c0 = 0;
        for (; c0 + kChannelBlock <= sizes.channels; c0 += kChannelBlock) {
          ms_deform_attn_backward_item<1, PlainAdd<scalar_t>, SingleLane>(a.in, a.grads, item, 0, c0, FullBlock{});
        }
        if (c0 < sizes.channels) {
          ms_deform_attn_backward_item<1, PlainAdd<scalar_t>, SingleLane>(a.in, a.grads, item, 0, c0,
                                                                          sizes.channels - c0);
        }
      }
    }
  }
};

at::Tensor ms_deform_attn_forward_cpu(
    const at::Tensor& value,
    const at::Tensor& spatial_shapes,
    const at::Tensor& level_start_index,
    const at::Tensor& sampling_loc,
    const at::Tensor& attn_weight,
    int64_t im2col_step) {
  const MsDeformAttnSizes sizes =
      check_ms_deform_attn_inputs(value, spatial_shapes, level_start_index, sampling_loc, attn_weight, im2col_step);
  const ContiguousInputs in(value, spatial_shapes, level_start_index, sampling_loc, attn_weight);
  at::Tensor output = at::empty({sizes.batch, sizes.queries, sizes.heads * sizes.channels}, value.options());
  if (output.numel() == 0) return output;
  AT_DISPATCH_FLOATING_TYPES(value.scalar_type(), "ms_deform_attn_forward_cpu", [&] {
    const ForwardArgs<scalar_t> args{in.pointers<scalar_t>(sizes), output.data_ptr<scalar_t>()};
    parallel_run<ForwardItems>(sizes.batch * sizes.queries * sizes.heads, kForwardGrain, args);
  });
  return output;
}

std::tuple<at::Tensor, at::Tensor, at::Tensor> ms_deform_attn_backward_cpu(
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
  const ContiguousInputs in(value, spatial_shapes, level_start_index, sampling_loc, attn_weight);
  const at::Tensor grad_out = grad_output.contiguous();
  at::Tensor grad_value = at::zeros_like(in.value);
  at::Tensor grad_loc = at::zeros_like(in.loc);
  at::Tensor grad_attn = at::zeros_like(in.attn);
  // Without samples (no levels or no points) every gradient is zero; (batch, heads) pairs need not be visited.
  if (grad_attn.numel() == 0) return {grad_value, grad_loc, grad_attn};
  AT_DISPATCH_FLOATING_TYPES(value.scalar_type(), "ms_deform_attn_backward_cpu", [&] {
    const BackwardArgs<scalar_t> args{
        in.pointers<scalar_t>(sizes),
        {grad_out.data_ptr<scalar_t>(), grad_value.data_ptr<scalar_t>(), grad_loc.data_ptr<scalar_t>(),
         grad_attn.data_ptr<scalar_t>()}};
    parallel_run<BackwardItems>(sizes.batch * sizes.heads, 1, args);
  });
  return {grad_value, grad_loc, grad_attn};
}

}  // namespace

TORCH_LIBRARY_IMPL(detrkit, CPU, m) {
  m.impl("ms_deform_attn_forward", &ms_deform_attn_forward_cpu);
  m.impl("ms_deform_attn_backward", &ms_deform_attn_backward_cpu);
}

}  // namespace detrkit
