// CPU kernels of multi-scale deformable attention. The per-item arithmetic is ms_deform_attn_item.h, shared
// with the CUDA kernels; this file only distributes the items over threads (and over instruction sets, see
// cpu_dispatch.h).
//   forward:  parallel over batch x queries x heads; each item writes its own output row.
//   backward: parallel over batch x heads; an item of (b, h) only adds into grad_value[b, :, h, :], so the
//             threads never write the same element and no atomics or per-thread copies are needed.
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

// Channels are processed in blocks of this many, a compile-time count, so the compiler unrolls the channel loops
// and keeps the forward's accumulators in vector registers; a remainder block has a run-time count.
constexpr int64_t kChannelBlock = 32;
// Items per task: one item costs levels * points * 4 * channels multiply-adds.
constexpr int64_t kForwardGrain = 16;

template <typename scalar_t>
struct Inputs {
  MsDeformAttnSizes sizes;
  const scalar_t* value;
  const int64_t* shapes;
  const int64_t* starts;
  const scalar_t* loc;
  const scalar_t* attn;
};

template <typename scalar_t>
struct ForwardArgs {
  Inputs<scalar_t> in;
  scalar_t* out;
};

template <typename scalar_t>
struct BackwardArgs {
  Inputs<scalar_t> in;
  const scalar_t* grad_out;
  scalar_t* grad_value;
  scalar_t* grad_loc;
  scalar_t* grad_attn;
};

// Items [begin, end) of the forward, all channels: full blocks of kChannelBlock in registers, then the rest.
struct ForwardItems {
  template <typename scalar_t>
  static DETRKIT_INLINE void run(const ForwardArgs<scalar_t>& a, int64_t begin, int64_t end) {
    const MsDeformAttnSizes& sizes = a.in.sizes;
    for (int64_t item = begin; item < end; ++item) {
      const int64_t b = item / (sizes.queries * sizes.heads);
      const int64_t h = item % sizes.heads;
      scalar_t* out = a.out + item * sizes.channels;
      int64_t c0 = 0;
      for (; c0 + kChannelBlock <= sizes.channels; c0 += kChannelBlock) {
        scalar_t acc[kChannelBlock] = {};
        ms_deform_attn_forward_item<1>(sizes, b, item, h, 0, c0, std::integral_constant<int64_t, kChannelBlock>{},
                                       a.in.value, a.in.shapes, a.in.starts, a.in.loc, a.in.attn, acc);
        std::copy(acc, acc + kChannelBlock, out + c0);
      }
      if (c0 < sizes.channels) {
        std::fill(out + c0, out + sizes.channels, scalar_t(0));
        ms_deform_attn_forward_item<1>(sizes, b, item, h, 0, c0, sizes.channels - c0, a.in.value, a.in.shapes,
                                       a.in.starts, a.in.loc, a.in.attn, out + c0);
      }
    }
  }
};

// (b, h) pairs [begin, end) of the backward, every query, channels in blocks as in the forward.
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
          ms_deform_attn_backward_item<1, PlainAdd<scalar_t>, SingleLane>(
              sizes, b, item, h, 0, c0, std::integral_constant<int64_t, kChannelBlock>{}, a.in.value, a.in.shapes,
              a.in.starts, a.in.loc, a.in.attn, a.grad_out, a.grad_value, a.grad_loc, a.grad_attn);
        }
        if (c0 < sizes.channels) {
          ms_deform_attn_backward_item<1, PlainAdd<scalar_t>, SingleLane>(
              sizes, b, item, h, 0, c0, sizes.channels - c0, a.in.value, a.in.shapes, a.in.starts, a.in.loc,
              a.in.attn, a.grad_out, a.grad_value, a.grad_loc, a.grad_attn);
        }
      }
    }
  }
};

struct ContiguousInputs {
  at::Tensor value, shapes, starts, loc, attn;

  ContiguousInputs(const at::Tensor& value_, const at::Tensor& shapes_, const at::Tensor& starts_,
                   const at::Tensor& loc_, const at::Tensor& attn_)
      : value(value_.contiguous()),
        shapes(shapes_.contiguous()),
        starts(starts_.contiguous()),
        loc(loc_.contiguous()),
        attn(attn_.contiguous()) {}

  template <typename scalar_t>
  Inputs<scalar_t> pointers(const MsDeformAttnSizes& sizes) const {
    return {sizes,
            value.data_ptr<scalar_t>(),
            shapes.data_ptr<int64_t>(),
            starts.data_ptr<int64_t>(),
            loc.data_ptr<scalar_t>(),
            attn.data_ptr<scalar_t>()};
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
  AT_DISPATCH_FLOATING_TYPES(value.scalar_type(), "ms_deform_attn_backward_cpu", [&] {
    const BackwardArgs<scalar_t> args{in.pointers<scalar_t>(sizes), grad_out.data_ptr<scalar_t>(),
                                      grad_value.data_ptr<scalar_t>(), grad_loc.data_ptr<scalar_t>(),
                                      grad_attn.data_ptr<scalar_t>()};
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
