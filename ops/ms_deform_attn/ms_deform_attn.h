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

}  // namespace detrkit
