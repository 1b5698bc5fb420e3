// Batched (grouped) greedy box NMS. Boxes are (x1, y1, x2, y2); boxes of different groups never suppress each
// other. The suppression test is the one of torchvision.ops.nms, written once for the CPU and CUDA kernels.
#pragma once

#include <ATen/core/Tensor.h>

#include "../common/host_device.h"

namespace detrkit {

// Correctly rounded arithmetic for the IoU: every operation rounds on its own, never fused into a multiply-add,
// so that the CPU and CUDA kernels compute the same IoU bit for bit and keep the same boxes. Only this code
// needs it; nvcc contracts a * b + c into an FMA elsewhere (the x86-64 baseline build of nms_cpu.cpp has no
// FMA instructions to contract into).
#if defined(__CUDA_ARCH__)
__device__ __forceinline__ float exact_add(float a, float b) { return __fadd_rn(a, b); }
__device__ __forceinline__ float exact_sub(float a, float b) { return __fsub_rn(a, b); }
__device__ __forceinline__ float exact_mul(float a, float b) { return __fmul_rn(a, b); }
__device__ __forceinline__ float exact_div(float a, float b) { return __fdiv_rn(a, b); }
__device__ __forceinline__ double exact_add(double a, double b) { return __dadd_rn(a, b); }
__device__ __forceinline__ double exact_sub(double a, double b) { return __dsub_rn(a, b); }
__device__ __forceinline__ double exact_mul(double a, double b) { return __dmul_rn(a, b); }
__device__ __forceinline__ double exact_div(double a, double b) { return __ddiv_rn(a, b); }
#else
template <typename T>
inline T exact_add(T a, T b) { return a + b; }
template <typename T>
inline T exact_sub(T a, T b) { return a - b; }
template <typename T>
inline T exact_mul(T a, T b) { return a * b; }
template <typename T>
inline T exact_div(T a, T b) { return a / b; }
#endif

template <typename scalar_t>
DETRKIT_INLINE scalar_t box_area(const scalar_t* box) {
  return exact_mul(exact_sub(box[2], box[0]), exact_sub(box[3], box[1]));
}

// True when `other` overlaps the kept box with IoU > iou_threshold. A zero-area pair gives 0/0 = NaN, which
// suppresses nothing.
template <typename scalar_t>
DETRKIT_INLINE bool nms_suppresses(
    const scalar_t* kept, scalar_t kept_area, const scalar_t* other, scalar_t other_area, double iou_threshold) {
  const scalar_t zero = static_cast<scalar_t>(0);
  const scalar_t w = max_of(zero, exact_sub(min_of(kept[2], other[2]), max_of(kept[0], other[0])));
  const scalar_t h = max_of(zero, exact_sub(min_of(kept[3], other[3]), max_of(kept[1], other[1])));
  const scalar_t inter = exact_mul(w, h);
  return exact_div(inter, exact_sub(exact_add(kept_area, other_area), inter)) > iou_threshold;
}

// Checks boxes (N, 4) floating, scores (N,) of the same dtype, groups (N,) integer, one device, a finite
// threshold. Errors name the argument and the offending value.
void check_batched_nms_inputs(
    const at::Tensor& boxes, const at::Tensor& scores, const at::Tensor& groups, double iou_threshold);

}  // namespace detrkit
