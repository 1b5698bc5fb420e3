// CUDA kernel of batched NMS: the sibling of nms_cpu.cpp with the same suppression test (nms.h). Boxes are put
// in (group, score descending) order, a kernel computes for every box which later boxes of its group it
// suppresses (one bit each, 64 boxes per word), and the greedy pass of the CPU kernel then runs over those
// bits. The kept indices are returned sorted by score, descending.
#include <ATen/ATen.h>
#include <c10/cuda/CUDAException.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#include <torch/library.h>

#include <vector>

#include "nms.h"

namespace detrkit {

namespace {

constexpr int kBoxesPerWord = 64;

__host__ __device__ inline int64_t words_for(int64_t n) { return (n + kBoxesPerWord - 1) / kBoxesPerWord; }

// Block (col, row) compares the 64 boxes of word-row `row` with the 64 boxes of word-column `col`.
template <typename scalar_t>
__global__ void nms_mask_kernel(
    int64_t n,
    double iou_threshold,
    const scalar_t* __restrict__ boxes,  // (n, 4) in (group, score descending) order
    const int64_t* __restrict__ groups,  // (n,) in the same order
    unsigned long long* __restrict__ mask) {  // (n, words_for(n))
  const int64_t row = blockIdx.y;
  const int64_t col = blockIdx.x;
  if (row > col) return;  // the greedy pass reads only words at or after a box's own
  const int64_t row_size = min(n - row * kBoxesPerWord, static_cast<int64_t>(kBoxesPerWord));
  const int64_t col_size = min(n - col * kBoxesPerWord, static_cast<int64_t>(kBoxesPerWord));

  __shared__ scalar_t col_boxes[kBoxesPerWord * 4];
  __shared__ scalar_t col_areas[kBoxesPerWord];
  __shared__ int64_t col_groups[kBoxesPerWord];
  if (threadIdx.x < col_size) {
    const int64_t j = col * kBoxesPerWord + threadIdx.x;
    for (int d = 0; d < 4; ++d) col_boxes[threadIdx.x * 4 + d] = boxes[j * 4 + d];
    col_areas[threadIdx.x] = box_area(boxes + j * 4);
    col_groups[threadIdx.x] = groups[j];
  }
  __syncthreads();
  if (threadIdx.x >= row_size) return;

  const int64_t i = row * kBoxesPerWord + threadIdx.x;
  const scalar_t* box_i = boxes + i * 4;
  const scalar_t area_i = box_area(box_i);
  unsigned long long bits = 0;
  for (int64_t k = (row == col) ? threadIdx.x + 1 : 0; k < col_size; ++k) {
    if (col_groups[k] == groups[i] &&
        nms_suppresses(box_i, area_i, col_boxes + k * 4, col_areas[k], iou_threshold)) {
      bits |= 1ULL << k;
    }
  }
  mask[i * words_for(n) + col] = bits;
}

at::Tensor batched_nms_cuda(
    const at::Tensor& boxes, const at::Tensor& scores, const at::Tensor& groups, double iou_threshold) {
  check_batched_nms_inputs(boxes, scores, groups, iou_threshold);
  const c10::cuda::CUDAGuard device_guard(boxes.device());
  const int64_t n = boxes.size(0);
  if (n == 0) return at::empty({0}, boxes.options().dtype(at::kLong));
  const at::Tensor groups_l = groups.to(at::kLong);

  // Order by group, then score descending; stable sorts keep ascending indices on ties.
  const at::Tensor by_score = std::get<1>(scores.sort(/*stable=*/true, 0, /*descending=*/true));
  const at::Tensor by_group = std::get<1>(groups_l.index_select(0, by_score).sort(/*stable=*/true, 0, false));
  const at::Tensor order = by_score.index_select(0, by_group);
  const at::Tensor sorted_boxes = boxes.index_select(0, order).contiguous();
  const at::Tensor sorted_groups = groups_l.index_select(0, order).contiguous();

  const int64_t words = words_for(n);
  at::Tensor mask = at::zeros({n, words}, boxes.options().dtype(at::kLong));
  const dim3 blocks(words, words);
  cudaStream_t stream = c10::cuda::getCurrentCUDAStream();
  AT_DISPATCH_FLOATING_TYPES(boxes.scalar_type(), "batched_nms_cuda", [&] {
    nms_mask_kernel<scalar_t><<<blocks, kBoxesPerWord, 0, stream>>>(
        n, iou_threshold, sorted_boxes.data_ptr<scalar_t>(), sorted_groups.data_ptr<int64_t>(),
        reinterpret_cast<unsigned long long*>(mask.data_ptr<int64_t>()));
    C10_CUDA_KERNEL_LAUNCH_CHECK();
  });

  // The greedy pass: a box is kept unless a kept box before it in the order suppressed it.
  const at::Tensor mask_cpu = mask.to(at::kCPU);
  const auto* bits = reinterpret_cast<const unsigned long long*>(mask_cpu.data_ptr<int64_t>());
  std::vector<unsigned long long> removed(words, 0);
  std::vector<int64_t> kept_positions;
  for (int64_t i = 0; i < n; ++i) {
    const int64_t word = i / kBoxesPerWord;
    if (removed[word] & (1ULL << (i % kBoxesPerWord))) continue;
    kept_positions.push_back(i);
    for (int64_t w = word; w < words; ++w) removed[w] |= bits[i * words + w];
  }
  const at::Tensor positions =
      at::tensor(kept_positions, at::TensorOptions().dtype(at::kLong)).to(boxes.device(), /*non_blocking=*/false);
  const at::Tensor kept = order.index_select(0, positions);
  const at::Tensor final_order =
      std::get<1>(scores.index_select(0, kept).sort(/*stable=*/true, 0, /*descending=*/true));
  return kept.index_select(0, final_order);
}

}  // namespace

TORCH_LIBRARY_IMPL(detrkit, CUDA, m) { m.impl("batched_nms", &batched_nms_cuda); }

}  // namespace detrkit
