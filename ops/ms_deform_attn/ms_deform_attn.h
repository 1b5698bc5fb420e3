// Entry points of the multi-scale deformable attention op. Shapes: see ms_deform_attn_item.h.
#pragma once

#include <ATen/core/Tensor.h>

#include <tuple>

#include "ms_deform_attn_item.h"

namespace detrkit {

// Checks every argument (ranks, sizes, dtypes, devices, that the levels tile `value`) and returns the sizes.
// Errors name the argument and the offending value.
MsDeformAttnSizes check_ms_deform_attn_inputs(
    const at::Tensor& value,
    const at::Tensor& spatial_shapes,
    const at::Tensor& level_start_index,
    const at::Tensor& sampling_loc,
    const at::Tensor& attn_weight,
    int64_t im2col_step);

void check_ms_deform_attn_grad_output(
    const at::Tensor& grad_output, const at::Tensor& value, const MsDeformAttnSizes& sizes);

// The op's input tensors made contiguous (held here for the kernel's lifetime) and their pointers.
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
  MsDeformAttnInputs<scalar_t> pointers(const MsDeformAttnSizes& sizes) const {
    return {sizes,
            value.data_ptr<scalar_t>(),
            shapes.data_ptr<int64_t>(),
            starts.data_ptr<int64_t>(),
            loc.data_ptr<scalar_t>(),
            attn.data_ptr<scalar_t>()};
  }
};

}  // namespace detrkit
