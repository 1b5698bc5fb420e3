// Argument checks shared by the CPU and CUDA kernels of the deformable attention op.
#include "ms_deform_attn.h"

#include <ATen/ATen.h>

namespace detrkit {

namespace {

void check_rank(const at::Tensor& t, int64_t rank, const char* name, const char* layout) {
  TORCH_CHECK(t.dim() == rank, "ms_deform_attn: ", name, " must have shape ", layout, ", got ", t.sizes());
}

void check_size(const at::Tensor& t, int64_t dim, int64_t expected, const char* name, const char* what) {
  TORCH_CHECK(t.size(dim) == expected, "ms_deform_attn: ", name, ".size(", dim, ") must equal ", what, " = ",
              expected, ", got ", t.sizes());
}

}  // namespace

MsDeformAttnSizes check_ms_deform_attn_inputs(
    const at::Tensor& value,
    const at::Tensor& spatial_shapes,
    const at::Tensor& level_start_index,
    const at::Tensor& sampling_loc,
    const at::Tensor& attn_weight,
    int64_t im2col_step) {
  check_rank(value, 4, "value", "(batch, tokens, heads, channels)");
  check_rank(spatial_shapes, 2, "spatial_shapes", "(levels, 2)");
  check_rank(level_start_index, 1, "level_start_index", "(levels,)");
  check_rank(sampling_loc, 6, "sampling_loc", "(batch, queries, heads, levels, points, 2)");
  check_rank(attn_weight, 5, "attn_weight", "(batch, queries, heads, levels, points)");
  TORCH_CHECK(im2col_step > 0, "ms_deform_attn: im2col_step must be positive, got ", im2col_step);

  MsDeformAttnSizes sizes;
  sizes.batch = value.size(0);
  sizes.tokens = value.size(1);
  sizes.heads = value.size(2);
  sizes.channels = value.size(3);
  sizes.queries = sampling_loc.size(1);
  sizes.levels = spatial_shapes.size(0);
  sizes.points = sampling_loc.size(4);

  check_size(spatial_shapes, 1, 2, "spatial_shapes", "2 (height, width)");
  check_size(level_start_index, 0, sizes.levels, "level_start_index", "levels");
  check_size(sampling_loc, 0, sizes.batch, "sampling_loc", "batch");
  check_size(sampling_loc, 2, sizes.heads, "sampling_loc", "heads");
  check_size(sampling_loc, 3, sizes.levels, "sampling_loc", "levels");
  check_size(sampling_loc, 5, 2, "sampling_loc", "2 (x, y)");
  check_size(attn_weight, 0, sizes.batch, "attn_weight", "batch");
  check_size(attn_weight, 1, sizes.queries, "attn_weight", "queries");
  check_size(attn_weight, 2, sizes.heads, "attn_weight", "heads");
  check_size(attn_weight, 3, sizes.levels, "attn_weight", "levels");
  check_size(attn_weight, 4, sizes.points, "attn_weight", "points");

  TORCH_CHECK(value.scalar_type() == at::kFloat || value.scalar_type() == at::kDouble,
              "ms_deform_attn: value must be float32 or float64, got ", value.scalar_type());
  TORCH_CHECK(sampling_loc.scalar_type() == value.scalar_type() && attn_weight.scalar_type() == value.scalar_type(),
              "ms_deform_attn: value, sampling_loc and attn_weight must share one dtype, got ", value.scalar_type(),
              ", ", sampling_loc.scalar_type(), " and ", attn_weight.scalar_type());
  TORCH_CHECK(spatial_shapes.scalar_type() == at::kLong && level_start_index.scalar_type() == at::kLong,
              "ms_deform_attn: spatial_shapes and level_start_index must be int64, got ",
              spatial_shapes.scalar_type(), " and ", level_start_index.scalar_type());
  for (const at::Tensor* t : {&spatial_shapes, &level_start_index, &sampling_loc, &attn_weight}) {
    TORCH_CHECK(t->device() == value.device(), "ms_deform_attn: all tensors must be on value's device ",
                value.device(), ", got one on ", t->device());
  }

  // The levels must tile the token axis exactly: level l covers [start_l, start_l + height_l * width_l). Each
  // level is checked against the tokens left before its area is added, so no product or sum can overflow (an
  // overflowed area would let a level pass with fewer tokens than the kernel reads).
  const at::Tensor shapes = spatial_shapes.to(at::kCPU).contiguous();
  const at::Tensor starts = level_start_index.to(at::kCPU).contiguous();
  const int64_t* shape = shapes.data_ptr<int64_t>();
  const int64_t* start = starts.data_ptr<int64_t>();
  int64_t expected_start = 0;
  for (int64_t l = 0; l < sizes.levels; ++l) {
    const int64_t height = shape[2 * l];
    const int64_t width = shape[2 * l + 1];
    TORCH_CHECK(height > 0 && width > 0, "ms_deform_attn: spatial_shapes[", l, "] must be positive, got (",
                height, ", ", width, ")");
    TORCH_CHECK(start[l] == expected_start, "ms_deform_attn: level_start_index[", l, "] must be ",
                expected_start, " (the sum of the earlier levels' height * width), got ", start[l]);
    int64_t area = 0;
    TORCH_CHECK(!__builtin_mul_overflow(height, width, &area) && area <= sizes.tokens - expected_start,
                "ms_deform_attn: spatial_shapes[", l, "] = (", height, ", ", width, ") holds more tokens than the ",
                sizes.tokens - expected_start, " of value (", sizes.tokens, " tokens) left from level_start_index[",
                l, "] = ", expected_start);
    expected_start += area;
  }
  TORCH_CHECK(expected_start == sizes.tokens, "ms_deform_attn: the levels hold ", expected_start,
              " tokens (sum of height * width over spatial_shapes) but value has ", sizes.tokens);
  // The output (batch, queries, heads * channels) combines sizes of different tensors: its element count must
  // be representable.
  int64_t items = 0, output_numel = 0;
  TORCH_CHECK(!__builtin_mul_overflow(sizes.batch * sizes.queries, sizes.heads, &items) &&
                  !__builtin_mul_overflow(items, sizes.channels, &output_numel),
              "ms_deform_attn: the output (batch, queries, heads * channels) = (", sizes.batch, ", ", sizes.queries,
              ", ", sizes.heads, " * ", sizes.channels, ") has more elements than int64 can count");
  return sizes;
}

void check_ms_deform_attn_grad_output(
    const at::Tensor& grad_output, const at::Tensor& value, const MsDeformAttnSizes& sizes) {
  TORCH_CHECK(grad_output.scalar_type() == value.scalar_type() && grad_output.device() == value.device(),
              "ms_deform_attn: grad_output must match value's dtype and device (", value.scalar_type(), ", ",
              value.device(), "), got ", grad_output.scalar_type(), " on ", grad_output.device());
  TORCH_CHECK(grad_output.dim() == 3 && grad_output.size(0) == sizes.batch && grad_output.size(1) == sizes.queries &&
                  grad_output.size(2) == sizes.heads * sizes.channels,
              "ms_deform_attn: grad_output must have shape (", sizes.batch, ", ", sizes.queries, ", ",
              sizes.heads * sizes.channels, "), got ", grad_output.sizes());
}

}  // namespace detrkit
