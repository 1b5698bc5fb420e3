// CPU kernel of batched NMS: the groups are independent, so they run in parallel. Inside a group the boxes are
// visited by score, descending, ties in ascending index order (torchvision's NMS kernels sort stably too), and
// the kept indices are returned in that same order over all groups.
#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <torch/library.h>

#include <algorithm>
#include <cmath>
#include <numeric>
#include <vector>

#include "nms.h"

namespace detrkit {

namespace {

// Score order for greedy NMS: higher first, NaN first of all (as torch.sort(descending=True) places it).
template <typename scalar_t>
struct HigherScore {
  const scalar_t* score;
  bool operator()(int64_t a, int64_t b) const {
    return (std::isnan(score[a]) && !std::isnan(score[b])) || score[a] > score[b];
  }
};

// Greedy NMS of one group. `members` (box indices) are sorted by HigherScore, ties by ascending index; kept
// boxes get keep = 1.
template <typename scalar_t>
void nms_one_group(
    const std::vector<int64_t>& members,
    const scalar_t* boxes,
    const scalar_t* areas,
    double iou_threshold,
    uint8_t* keep) {
  const int64_t n = static_cast<int64_t>(members.size());
  std::vector<uint8_t> suppressed(n, 0);
  for (int64_t i = 0; i < n; ++i) {
    if (suppressed[i]) continue;
    const int64_t box_i = members[i];
    keep[box_i] = 1;
    for (int64_t j = i + 1; j < n; ++j) {
      if (suppressed[j]) continue;
      const int64_t box_j = members[j];
      if (nms_suppresses(boxes + 4 * box_i, areas[box_i], boxes + 4 * box_j, areas[box_j], iou_threshold)) {
        suppressed[j] = 1;
      }
    }
  }
}

at::Tensor batched_nms_cpu(
    const at::Tensor& boxes, const at::Tensor& scores, const at::Tensor& groups, double iou_threshold) {
  check_batched_nms_inputs(boxes, scores, groups, iou_threshold);
  const int64_t n = boxes.size(0);
  if (n == 0) return at::empty({0}, boxes.options().dtype(at::kLong));
  const at::Tensor boxes_c = boxes.contiguous();
  const at::Tensor scores_c = scores.contiguous();
  const at::Tensor groups_c = groups.to(at::kLong).contiguous();
  const int64_t* group = groups_c.data_ptr<int64_t>();

  at::Tensor result;
  AT_DISPATCH_FLOATING_TYPES(boxes.scalar_type(), "batched_nms_cpu", [&] {
    const scalar_t* box = boxes_c.data_ptr<scalar_t>();
    const HigherScore<scalar_t> higher{scores_c.data_ptr<scalar_t>()};

    // Box indices by group, then score (stable: ties keep ascending indices).
    std::vector<int64_t> order(n);
    std::iota(order.begin(), order.end(), 0);
    std::stable_sort(order.begin(), order.end(), higher);
    std::stable_sort(order.begin(), order.end(), [&](int64_t a, int64_t b) { return group[a] < group[b]; });
    std::vector<std::vector<int64_t>> members;
    for (int64_t k = 0; k < n; ++k) {
      if (k == 0 || group[order[k]] != group[order[k - 1]]) members.emplace_back();
      members.back().push_back(order[k]);
    }

    std::vector<scalar_t> areas(n);
    for (int64_t k = 0; k < n; ++k) areas[k] = box_area(box + 4 * k);
    std::vector<uint8_t> keep(n, 0);
    at::parallel_for(0, static_cast<int64_t>(members.size()), 1, [&](int64_t begin, int64_t end) {
      for (int64_t g = begin; g < end; ++g) nms_one_group(members[g], box, areas.data(), iou_threshold, keep.data());
    });

    std::vector<int64_t> kept;
    for (int64_t k = 0; k < n; ++k) {
      if (keep[k]) kept.push_back(k);
    }
    std::stable_sort(kept.begin(), kept.end(), higher);
    result = at::tensor(kept, boxes.options().dtype(at::kLong));
  });
  return result;
}

}  // namespace

TORCH_LIBRARY_IMPL(detrkit, CPU, m) { m.impl("batched_nms", &batched_nms_cpu); }

}  // namespace detrkit
