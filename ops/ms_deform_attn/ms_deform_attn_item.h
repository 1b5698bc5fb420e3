// Multi-scale deformable attention (Deformable DETR, Zhu et al. 2021, eq. 3) for one work item: one batch
// element b, one query q and one head h. The CPU kernel (ms_deform_attn_cpu.cpp) calls these functions with all
// channels of the head in one thread; the CUDA kernel (ms_deform_attn_cuda.cu) calls the same functions from the
// 32 lanes of a warp, lane c taking channels c, c + 32, ... . Corner handling and indexing exist only here.
//
// Layouts (all contiguous):
//   value            (batch, tokens, heads, channels)      tokens = sum over levels of height * width
//   spatial_shapes   (levels, 2) int64, rows (height, width)
//   level_start      (levels,) int64, first token of each level
//   sampling_loc     (batch, queries, heads, levels, points, 2), (x, y) normalised to [0, 1]
//   attention        (batch, queries, heads, levels, points)
//   output           (batch, queries, heads * channels)
// Sampling is bilinear with zero padding and the pixel-centre convention of
// grid_sample(align_corners=False): pixel (i, j) of a (height, width) map has its centre at
// ((j + 0.5) / width, (i + 0.5) / height).
#pragma once

#include <cstdint>

#include "../common/host_device.h"

namespace detrkit {

struct MsDeformAttnSizes {
  int64_t batch;
  int64_t tokens;
  int64_t heads;
  int64_t channels;
  int64_t queries;
  int64_t levels;
  int64_t points;
};

// The four pixels around one sampling location and their bilinear weights. A corner outside the map has
// token -1 and contributes nothing (zero padding).
template <typename scalar_t>
struct BilinearCorners {
  int64_t token[4];         // top-left, top-right, bottom-left, bottom-right
  scalar_t weight[4];       // bilinear weight of each corner
  scalar_t dweight_dx[4];   // derivative of the weight with respect to x in pixels
  scalar_t dweight_dy[4];   // derivative of the weight with respect to y in pixels
};

template <typename scalar_t>
DETRKIT_INLINE BilinearCorners<scalar_t> bilinear_corners(
    scalar_t loc_x, scalar_t loc_y, int64_t height, int64_t width, int64_t level_start) {
  BilinearCorners<scalar_t> corners;
  const scalar_t x = loc_x * static_cast<scalar_t>(width) - static_cast<scalar_t>(0.5);
  const scalar_t y = loc_y * static_cast<scalar_t>(height) - static_cast<scalar_t>(0.5);
  // Only points in (-1, size) reach a pixel. At exactly -1 the point is the centre of the virtual pixel above
  // or left of the map: its sample is 0 and, as grid_sample does, it gets the zero one-sided derivative. The
  // test also rejects NaN before the integer casts.
  const bool near_map = x > static_cast<scalar_t>(-1) && x < static_cast<scalar_t>(width) &&
                        y > static_cast<scalar_t>(-1) && y < static_cast<scalar_t>(height);
  if (!near_map) {
    for (int k = 0; k < 4; ++k) {
      corners.token[k] = -1;
      corners.weight[k] = corners.dweight_dx[k] = corners.dweight_dy[k] = static_cast<scalar_t>(0);
    }
    return corners;
  }
  const scalar_t x0f = floor_of(x);
  const scalar_t y0f = floor_of(y);
  const int64_t x0 = static_cast<int64_t>(x0f);
  const int64_t y0 = static_cast<int64_t>(y0f);
  const scalar_t lx = x - x0f;  // distance to the left column
  const scalar_t ly = y - y0f;  // distance to the top row
  const scalar_t hx = static_cast<scalar_t>(1) - lx;
  const scalar_t hy = static_cast<scalar_t>(1) - ly;

  const int64_t xs[4] = {x0, x0 + 1, x0, x0 + 1};
  const int64_t ys[4] = {y0, y0, y0 + 1, y0 + 1};
  corners.weight[0] = hy * hx;
  corners.weight[1] = hy * lx;
  corners.weight[2] = ly * hx;
  corners.weight[3] = ly * lx;
  corners.dweight_dx[0] = -hy;
  corners.dweight_dx[1] = hy;
  corners.dweight_dx[2] = -ly;
  corners.dweight_dx[3] = ly;
  corners.dweight_dy[0] = -hx;
  corners.dweight_dy[1] = -lx;
  corners.dweight_dy[2] = hx;
  corners.dweight_dy[3] = lx;
  for (int k = 0; k < 4; ++k) {
    const bool inside = xs[k] >= 0 && xs[k] < width && ys[k] >= 0 && ys[k] < height;
    corners.token[k] = inside ? level_start + ys[k] * width + xs[k] : -1;
  }
  return corners;
}

// Pointers into the contiguous input tensors (shapes in the header comment).
template <typename scalar_t>
struct MsDeformAttnInputs {
  MsDeformAttnSizes sizes;
  const scalar_t* value;
  const int64_t* spatial_shapes;
  const int64_t* level_start;
  const scalar_t* sampling_loc;
  const scalar_t* attention;
};

// Pointers into the backward's incoming gradient and its three outputs (shaped like output, value,
// sampling_loc and attention).
template <typename scalar_t>
struct MsDeformAttnGrads {
  const scalar_t* grad_out;
  scalar_t* grad_value;
  scalar_t* grad_loc;
  scalar_t* grad_attention;
};

// Offset of value[b, 0, h, c0] for the item (b, q, h) = item index (b * queries + q) * heads + h.
DETRKIT_INLINE int64_t value_head_offset(const MsDeformAttnSizes& sizes, int64_t item, int64_t c0) {
  const int64_t b = item / (sizes.queries * sizes.heads);
  const int64_t h = item % sizes.heads;
  return (b * sizes.tokens * sizes.heads + h) * sizes.channels + c0;
}

// Calls visit(s, corners, height, width) for each sample s = l * points + p of one item: its location's
// bilinear corners in level l, of size (height, width).
template <typename scalar_t, typename Visit>
DETRKIT_INLINE void for_each_sample(const MsDeformAttnInputs<scalar_t>& in, int64_t item, Visit&& visit) {
  const MsDeformAttnSizes& sizes = in.sizes;
  const scalar_t* loc = in.sampling_loc + item * sizes.levels * sizes.points * 2;
  for (int64_t l = 0; l < sizes.levels; ++l) {
    const int64_t height = in.spatial_shapes[2 * l];
    const int64_t width = in.spatial_shapes[2 * l + 1];
    for (int64_t p = 0; p < sizes.points; ++p) {
      const int64_t s = l * sizes.points + p;
      visit(s, bilinear_corners(loc[2 * s], loc[2 * s + 1], height, width, in.level_start[l]), height, width);
    }
  }
}

// Forward of one item for the channel block [c0, c0 + count):
//   acc[c] += sum over samples s of attention[s] * bilinear(value, loc[s])[c0 + c]
// for c = lane, lane + kChannelStep, ... < count. `Count` is int64_t, or std::integral_constant when the block
// width is known at compile time so that the CPU kernel keeps `acc` in vector registers.
template <int kChannelStep, typename scalar_t, typename Count>
DETRKIT_INLINE void ms_deform_attn_forward_item(
    const MsDeformAttnInputs<scalar_t>& in, int64_t item, int64_t lane, int64_t c0, Count count, scalar_t* acc) {
  const int64_t token_stride = in.sizes.heads * in.sizes.channels;
  const scalar_t* value_head = in.value + value_head_offset(in.sizes, item, c0);
  const scalar_t* weights = in.attention + item * in.sizes.levels * in.sizes.points;
  for_each_sample(in, item, [&](int64_t s, const BilinearCorners<scalar_t>& corners, int64_t, int64_t) {
    scalar_t* __restrict__ out = acc;
    for (int k = 0; k < 4; ++k) {
      if (corners.token[k] < 0) continue;
      const scalar_t w = weights[s] * corners.weight[k];
      const scalar_t* __restrict__ v = value_head + corners.token[k] * token_stride;
      for (int64_t c = lane; c < static_cast<int64_t>(count); c += kChannelStep) out[c] += w * v[c];
    }
  });
}

// Backward of one item for the channel block [c0, c0 + count), channels c = lane, lane + kChannelStep, ...:
//   grad_value[token, c]  += attention * weight_k * grad_out[c]                   (through Accumulate::add)
//   grad_attention[s]     += sum_c grad_out[c] * bilinear(value, loc[s])[c]
//   grad_loc[s]           += attention * sum_k d weight_k / d loc * <grad_out, value[token_k]>
// The three per-sample sums are partial over the lane's channels; LaneSum::sum adds them across lanes (the
// identity on the CPU) and lane 0 adds them to grad_attention and grad_loc, which start at zero.
template <int kChannelStep, typename Accumulate, typename LaneSum, typename scalar_t, typename Count>
DETRKIT_INLINE void ms_deform_attn_backward_item(
    const MsDeformAttnInputs<scalar_t>& in,
    const MsDeformAttnGrads<scalar_t>& grads,
    int64_t item,
    int64_t lane,
    int64_t c0,
    Count count) {
  const int64_t token_stride = in.sizes.heads * in.sizes.channels;
  const int64_t head = value_head_offset(in.sizes, item, c0);
  const int64_t first_sample = item * in.sizes.levels * in.sizes.points;
  const scalar_t* weights = in.attention + first_sample;
  const scalar_t* g = grads.grad_out + item * in.sizes.channels + c0;
  for_each_sample(in, item, [&](int64_t s, const BilinearCorners<scalar_t>& corners, int64_t height, int64_t width) {
    const scalar_t a = weights[s];
    scalar_t grad_a = 0, grad_x = 0, grad_y = 0;
    for (int k = 0; k < 4; ++k) {
      if (corners.token[k] < 0) continue;
      const scalar_t* __restrict__ v = in.value + head + corners.token[k] * token_stride;
      scalar_t* __restrict__ gv = grads.grad_value + head + corners.token[k] * token_stride;
      const scalar_t* __restrict__ go = g;
      const scalar_t w = a * corners.weight[k];
      scalar_t dot = 0;
      DETRKIT_SIMD_SUM(dot)
      for (int64_t c = lane; c < static_cast<int64_t>(count); c += kChannelStep) {
        dot += go[c] * v[c];
        Accumulate::add(gv + c, w * go[c]);
      }
      grad_a += corners.weight[k] * dot;
      grad_x += corners.dweight_dx[k] * dot;
      grad_y += corners.dweight_dy[k] * dot;
    }
    grad_a = LaneSum::sum(grad_a);
    grad_x = LaneSum::sum(grad_x);
    grad_y = LaneSum::sum(grad_y);
    if (lane == 0) {
      // x = loc_x * width - 0.5, so d/d loc_x = width * d/dx (same for y).
      grads.grad_attention[first_sample + s] += grad_a;
      grads.grad_loc[(first_sample + s) * 2] += a * grad_x * static_cast<scalar_t>(width);
      grads.grad_loc[(first_sample + s) * 2 + 1] += a * grad_y * static_cast<scalar_t>(height);
    }
  });
}

}  // namespace detrkit
