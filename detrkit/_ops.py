"""What the compiler stack needs to know about ``torch.ops.detrkit.*`` (loaded by :mod:`detrkit._extension`).

- Fake kernels (``torch.library.register_fake``): the output shapes, dtypes and devices of each op,
  computed from its inputs' metadata alone, so that ``torch.compile`` and ``torch.export`` trace the ops
  without running them. They check what metadata can tell (ranks, sizes, dtypes, devices); the values of
  ``spatial_shapes`` and ``level_start_index`` are checked by the compiled kernels when they run.
  ``batched_nms`` keeps a data-dependent number of boxes: its output size is a new unbacked symbolic size.
- Autograd of ``ms_deform_attn_forward`` (``torch.library.register_autograd``): its backward is the
  ``ms_deform_attn_backward`` op, so any caller of the forward op, traced or not, gets gradients for
  ``value``, ``sampling_loc`` and ``attn_weight``. The backward op itself is not differentiable: double
  backward raises.
"""

import torch

__all__: list[str] = []

_FLOATS = (torch.float32, torch.float64)


def _check_rank(name: str, tensor: torch.Tensor, rank: int, layout: str) -> None:
    torch._check(
        tensor.dim() == rank,
        lambda: f"ms_deform_attn: {name} must have shape {layout}, got {tuple(tensor.shape)}",
    )


def _check_size(name: str, tensor: torch.Tensor, dim: int, expected, what: str) -> None:
    torch._check(
        tensor.shape[dim] == expected,
        lambda: (
            f"ms_deform_attn: {name}.size({dim}) must equal {what} = {expected}, got {tuple(tensor.shape)}"
        ),
    )


def _check_same_device(op: str, tensors: dict[str, torch.Tensor]) -> None:
    (first, reference), *others = tensors.items()
    for name, tensor in others:
        torch._check(
            tensor.device == reference.device,
            lambda name=name, tensor=tensor: (
                f"{op}: {name} must be on {first}'s device {reference.device}, got {tensor.device}"
            ),
        )


def _check_ms_deform_attn_inputs(
    value, spatial_shapes, level_start_index, sampling_loc, attn_weight, im2col_step
):
    """The metadata checks of ``check_ms_deform_attn_inputs`` (ops/ms_deform_attn/ms_deform_attn_checks.cpp);
    the C++ check also reads the values of ``spatial_shapes`` and ``level_start_index``."""
    _check_rank("value", value, 4, "(batch, tokens, heads, channels)")
    _check_rank("spatial_shapes", spatial_shapes, 2, "(levels, 2)")
    _check_rank("level_start_index", level_start_index, 1, "(levels,)")
    _check_rank("sampling_loc", sampling_loc, 6, "(batch, queries, heads, levels, points, 2)")
    _check_rank("attn_weight", attn_weight, 5, "(batch, queries, heads, levels, points)")
    torch._check(im2col_step > 0, lambda: f"ms_deform_attn: im2col_step must be positive, got {im2col_step}")
    batch, _, heads, _ = value.shape
    levels = spatial_shapes.shape[0]
    _check_size("spatial_shapes", spatial_shapes, 1, 2, "2 (height, width)")
    _check_size("level_start_index", level_start_index, 0, levels, "levels")
    for dim, expected, what in [
        (0, batch, "batch"),
        (2, heads, "heads"),
        (3, levels, "levels"),
        (5, 2, "2 (x, y)"),
    ]:
        _check_size("sampling_loc", sampling_loc, dim, expected, what)
    for dim, what in enumerate(["batch", "queries", "heads", "levels", "points"]):
        _check_size("attn_weight", attn_weight, dim, sampling_loc.shape[dim if dim < 4 else 4], what)
    torch._check(
        value.dtype in _FLOATS, lambda: f"ms_deform_attn: value must be float32 or float64, got {value.dtype}"
    )
    torch._check(
        sampling_loc.dtype == value.dtype and attn_weight.dtype == value.dtype,
        lambda: (
            "ms_deform_attn: value, sampling_loc and attn_weight must share one dtype, got "
            f"{value.dtype}, {sampling_loc.dtype} and {attn_weight.dtype}"
        ),
    )
    torch._check(
        spatial_shapes.dtype == torch.int64 and level_start_index.dtype == torch.int64,
        lambda: (
            "ms_deform_attn: spatial_shapes and level_start_index must be int64, got "
            f"{spatial_shapes.dtype} and {level_start_index.dtype}"
        ),
    )
    _check_same_device(
        "ms_deform_attn",
        {
            "value": value,
            "spatial_shapes": spatial_shapes,
            "level_start_index": level_start_index,
            "sampling_loc": sampling_loc,
            "attn_weight": attn_weight,
        },
    )


@torch.library.register_fake("detrkit::ms_deform_attn_forward")
def _ms_deform_attn_forward_fake(
    value, spatial_shapes, level_start_index, sampling_loc, attn_weight, im2col_step
):
    _check_ms_deform_attn_inputs(
        value, spatial_shapes, level_start_index, sampling_loc, attn_weight, im2col_step
    )
    batch, _, heads, channels = value.shape
    return value.new_empty((batch, sampling_loc.shape[1], heads * channels))


@torch.library.register_fake("detrkit::ms_deform_attn_backward")
def _ms_deform_attn_backward_fake(
    value, spatial_shapes, level_start_index, sampling_loc, attn_weight, grad_output, im2col_step
):
    _check_ms_deform_attn_inputs(
        value, spatial_shapes, level_start_index, sampling_loc, attn_weight, im2col_step
    )
    batch, _, heads, channels = value.shape
    expected = (batch, sampling_loc.shape[1], heads * channels)
    torch._check(
        grad_output.dtype == value.dtype and grad_output.device == value.device,
        lambda: (
            f"ms_deform_attn: grad_output must match value's dtype and device ({value.dtype}, "
            f"{value.device}), got {grad_output.dtype} on {grad_output.device}"
        ),
    )
    torch._check(
        grad_output.dim() == 3 and all(a == b for a, b in zip(grad_output.shape, expected, strict=False)),
        lambda: f"ms_deform_attn: grad_output must have shape {expected}, got {tuple(grad_output.shape)}",
    )
    return tuple(
        torch.empty_like(t, memory_format=torch.contiguous_format) for t in (value, sampling_loc, attn_weight)
    )


def _ms_deform_attn_setup_context(ctx, inputs, output):
    value, spatial_shapes, level_start_index, sampling_loc, attn_weight, im2col_step = inputs
    ctx.save_for_backward(value, spatial_shapes, level_start_index, sampling_loc, attn_weight)
    ctx.im2col_step = im2col_step


def _ms_deform_attn_backward(ctx, grad_output):
    value, spatial_shapes, level_start_index, sampling_loc, attn_weight = ctx.saved_tensors
    grad_value, grad_loc, grad_weight = torch.ops.detrkit.ms_deform_attn_backward(
        value,
        spatial_shapes,
        level_start_index,
        sampling_loc,
        attn_weight,
        grad_output.contiguous(),
        ctx.im2col_step,
    )
    return grad_value, None, None, grad_loc, grad_weight, None


torch.library.register_autograd(
    "detrkit::ms_deform_attn_forward", _ms_deform_attn_backward, setup_context=_ms_deform_attn_setup_context
)


def _ms_deform_attn_double_backward(ctx, *grads):
    raise RuntimeError(
        "ms_deform_attn: the backward op is not differentiable; double backward through the deformable "
        "attention is not supported"
    )


# Registered so that differentiating the backward (create_graph=True) fails instead of silently giving zeros.
torch.library.register_autograd(
    "detrkit::ms_deform_attn_backward",
    _ms_deform_attn_double_backward,
    setup_context=lambda ctx, inputs, output: None,
)


@torch.library.register_fake("detrkit::batched_nms")
def _batched_nms_fake(boxes, scores, groups, iou_threshold):
    count = boxes.shape[0]
    torch._check(
        boxes.dim() == 2 and boxes.shape[-1] == 4,
        lambda: f"batched_nms: boxes must have shape (N, 4), got {tuple(boxes.shape)}",
    )
    for name, tensor in (("scores", scores), ("groups", groups)):
        torch._check(
            tensor.dim() == 1 and tensor.shape[0] == count,
            lambda name=name, tensor=tensor: (
                f"batched_nms: {name} must have shape ({count},) to match boxes, got {tuple(tensor.shape)}"
            ),
        )
    torch._check(
        boxes.dtype in _FLOATS, lambda: f"batched_nms: boxes must be float32 or float64, got {boxes.dtype}"
    )
    torch._check(
        scores.dtype == boxes.dtype,
        lambda: f"batched_nms: scores must have the dtype of boxes ({boxes.dtype}), got {scores.dtype}",
    )
    torch._check(
        not groups.dtype.is_floating_point and not groups.dtype.is_complex and groups.dtype != torch.bool,
        lambda: f"batched_nms: groups must be an integer tensor, got {groups.dtype}",
    )
    _check_same_device("batched_nms", {"boxes": boxes, "scores": scores, "groups": groups})
    torch._check(
        iou_threshold == iou_threshold, lambda: "batched_nms: iou_threshold must be a number, got NaN"
    )
    kept = torch.library.get_ctx().new_dynamic_size()
    return boxes.new_empty((kept,), dtype=torch.int64)
