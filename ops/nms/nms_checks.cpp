// Argument checks shared by the CPU and CUDA kernels of batched NMS.
#include "nms.h"

#include <ATen/ATen.h>

#include <cmath>

namespace detrkit {

void check_batched_nms_inputs(
    const at::Tensor& boxes, const at::Tensor& scores, const at::Tensor& groups, double iou_threshold) {
  TORCH_CHECK(boxes.dim() == 2 && boxes.size(1) == 4, "batched_nms: boxes must have shape (N, 4), got ",
              boxes.sizes());
  TORCH_CHECK(scores.dim() == 1 && scores.size(0) == boxes.size(0), "batched_nms: scores must have shape (",
              boxes.size(0), ",) to match boxes, got ", scores.sizes());
  TORCH_CHECK(groups.dim() == 1 && groups.size(0) == boxes.size(0), "batched_nms: groups must have shape (",
              boxes.size(0), ",) to match boxes, got ", groups.sizes());
  TORCH_CHECK(boxes.scalar_type() == at::kFloat || boxes.scalar_type() == at::kDouble,
              "batched_nms: boxes must be float32 or float64, got ", boxes.scalar_type());
  TORCH_CHECK(scores.scalar_type() == boxes.scalar_type(), "batched_nms: scores must have the dtype of boxes (",
              boxes.scalar_type(), "), got ", scores.scalar_type());
  TORCH_CHECK(!at::isFloatingType(groups.scalar_type()) && !at::isComplexType(groups.scalar_type()) &&
                  groups.scalar_type() != at::kBool,
              "batched_nms: groups must be an integer tensor, got ", groups.scalar_type());
  TORCH_CHECK(scores.device() == boxes.device() && groups.device() == boxes.device(),
              "batched_nms: boxes, scores and groups must be on one device, got ", boxes.device(), ", ",
              scores.device(), " and ", groups.device());
  TORCH_CHECK(!std::isnan(iou_threshold), "batched_nms: iou_threshold must be a number, got NaN");
}

}  // namespace detrkit
