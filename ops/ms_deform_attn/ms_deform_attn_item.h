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

// Forward of one (b, q, h) for the channel block [c0, c0 + count):
//   acc[c] += sum over levels l and points p of attention[l, p] * bilinear(value[level l], loc[l, p])[c0 + c]
// for c = lane, lane + kChannelStep, ... < count. `Count` is int64_t, or std::integral_constant when the block
// width is known at compile time so that the CPU kernel keeps `acc` in vector registers.
template <int kChannelStep, typename scalar_t, typename Count>
DETRKIT_INLINE void ms_deform_attn_forward_item(
    const MsDeformAttnSizes& sizes,
    int64_t b,
    int64_t item,  // (b * queries + q) * heads + h
    int64_t h,
    int64_t lane,
    int64_t c0,
    Count count,
    const scalar_t* __restrict__ value,
    const int64_t* __restrict__ spatial_shapes,
    const int64_t* __restrict__ level_start,
    const scalar_t* __restrict__ sampling_loc,
    const scalar_t* __restrict__ attention,
    scalar_t* __restrict__ acc) {
  const int64_t token_stride = sizes.heads * sizes.channels;
  const scalar_t* value_head = value + b * sizes.tokens * token_stride + h * sizes.channels + c0;
  const int64_t samples = sizes.levels * sizes.points;
  const scalar_t* loc = sampling_loc + item * samples * 2;
  const scalar_t* weights = attention + item * samples;
  for (int64_t l = 0; l < sizes.levels; ++l) {
    const int64_t height = spatial_shapes[2 * l];
    const int64_t width = spatial_shapes[2 * l + 1];
    for (int64_t p = 0; p < sizes.points; ++p) {
      const int64_t s = l * sizes.points + p;
      const BilinearCorners<scalar_t> corners =
          bilinear_corners(loc[2 * s], loc[2 * s + 1], height, width, level_start[l]);
      for (int k = 0; k < 4; ++k) {
        if (corners.token[k] < 0) continue;
        const scalar_t w = weights[s] * corners.weight[k];
        const scalar_t* v = value_head + corners.token[k] * token_stride;
        for (int64_t c = lane; c < static_cast<int64_t>(count); c += kChannelStep) acc[c] += w * v[c];
      }
    }
  }
}

// Backward of one (b, q, h) for the channel block [c0, c0 + count), channels c = lane, lane + kChannelStep, ...:
//   grad_value[token, c]  += attention * weight_k * grad_out[c]                   (through Accumulate::add)
//   grad_attention[l, p]  += sum_c grad_out[c] * bilinear(value)[c]
//   grad_loc[l, p]        += attention * sum_k d weight_k / d loc * <grad_out, value[token_k]>
// The three per-sample sums are partial over the lane's channels; LaneSum::sum adds them across lanes (the
// identity on the CPU) and lane 0 adds them to grad_attention and grad_loc, which start at zero.
template <int kChannelStep, typename Accumulate, typename LaneSum, typename scalar_t, typename Count>
DETRKIT_INLINE void ms_deform_attn_backward_item(
    const MsDeformAttnSizes& sizes,
    int64_t b,
    int64_t item,
    int64_t h,
    int64_t lane,
    int64_t c0,
    Count count,
    const scalar_t* __restrict__ value,
    const int64_t* __restrict__ spatial_shapes,
    const int64_t* __restrict__ level_start,
    const scalar_t* __restrict__ sampling_loc,
    const scalar_t* __restrict__ attention,
    const scalar_t* __restrict__ grad_out,
    scalar_t* __restrict__ grad_value,
    scalar_t* __restrict__ grad_loc,
    scalar_t* __restrict__ grad_attention) {
  const int64_t token_stride = sizes.heads * sizes.channels;
  const int64_t head_offset = b * sizes.tokens * token_stride + h * sizes.channels + c0;
  const scalar_t* value_head = value + head_offset;
  scalar_t* grad_value_head = grad_value + head_offset;
  const int64_t samples = sizes.levels * sizes.points;
  const scalar_t* loc = sampling_loc + item * samples * 2;
  const scalar_t* weights = attention + item * samples;
  const scalar_t* g = grad_out + item * sizes.channels + c0;
  for (int64_t l = 0; l < sizes.levels; ++l) {
    const int64_t height = spatial_shapes[2 * l];
    const int64_t width = spatial_shapes[2 * l + 1];
    for (int64_t p = 0; p < sizes.points; ++p) {
      const int64_t s = l * sizes.points + p;
      const BilinearCorners<scalar_t> corners =
          bilinear_corners(loc[2 * s], loc[2 * s + 1], height, width, level_start[l]);
      const scalar_t a = weights[s];
      scalar_t grad_a = 0, grad_x = 0, grad_y = 0;
      for (int k = 0; k < 4; ++k) {
        if (corners.token[k] < 0) continue;
        const scalar_t* v = value_head + corners.token[k] * token_stride;
        scalar_t* gv = grad_value_head + corners.token[k] * token_stride;
        const scalar_t w = a * corners.weight[k];
        scalar_t dot = 0;
        DETRKIT_SIMD_SUM(dot)
        for (int64_t c = lane; c < static_cast<int64_t>(count); c += kChannelStep) {
          dot += g[c] * v[c];
          Accumulate::add(gv + c, w * g[c]);
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
        grad_attention[item * samples + s] += grad_a;
        grad_loc[(item * samples + s) * 2] += a * grad_x * static_cast<scalar_t>(width);
        grad_loc[(item * samples + s) * 2 + 1] += a * grad_y * static_cast<scalar_t>(height);
      }
    }
  }
}

}  // namespace detrkit
