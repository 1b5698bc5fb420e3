// Batched (grouped) greedy box NMS. Boxes are (x1, y1, x2, y2); boxes of different groups never suppress each
// other. The suppression test is the one of torchvision.ops.nms, written once for the CPU and CUDA kernels.
#pragma once

#include <ATen/core/Tensor.h>

#include "../common/host_device.h"

namespace detrkit {

template <typename scalar_t>
DETRKIT_INLINE scalar_t box_area(const scalar_t* box) {
  return (box[2] - box[0]) * (box[3] - box[1]);
}

// True when `other` overlaps the kept box with IoU > iou_threshold. A zero-area pair gives 0/0 = NaN, which
// suppresses nothing.
template <typename scalar_t>
DETRKIT_INLINE bool nms_suppresses(
    const scalar_t* kept, scalar_t kept_area, const scalar_t* other, scalar_t other_area, double iou_threshold) {
  const scalar_t zero = static_cast<scalar_t>(0);
  const scalar_t w = max_of(zero, min_of(kept[2], other[2]) - max_of(kept[0], other[0]));
  const scalar_t h = max_of(zero, min_of(kept[3], other[3]) - max_of(kept[1], other[1]));
  const scalar_t inter = w * h;
  return inter / (kept_area + other_area - inter) > iou_threshold;
}

// Checks boxes (N, 4) floating, scores (N,) of the same dtype, groups (N,) integer, one device, a finite
// threshold. Errors name the argument and the offending value.
void check_batched_nms_inputs(
    const at::Tensor& boxes, const at::Tensor& scores, const at::Tensor& groups, double iou_threshold);

}  // namespace detrkit
