"""Multi-scale deformable attention (Deformable DETR, Zhu et al., ICLR 2021, eq. 3).

Three layers of the same operator:
- :func:`multi_scale_deformable_attn_pytorch`: the pure-PyTorch reference (``F.grid_sample`` per level).
- :func:`multi_scale_deformable_attn`: the compiled op ``torch.ops.detrkit.ms_deform_attn_forward`` (its
  autograd, fake kernel for ``torch.compile``/``torch.export`` and backward op are registered on the op,
  :mod:`detrkit._ops`), or the reference, with one warning, on a device without a compiled kernel.
- :class:`MultiScaleDeformableAttention`: the detrex module (same constructor, forward keywords, parameter
  names and initialisation), so detrex configs and checkpoints use it unchanged.

Shapes: ``bs`` batch, ``S`` value tokens (sum of ``H_l * W_l``), ``Lq`` queries, ``heads``, ``dim`` channels
per head, ``L`` levels, ``P`` points.
"""

import math
import warnings

import torch
import torch.nn.functional as F
from torch import nn

from detrkit._extension import has_kernel, warn_reference_fallback

__all__ = [
    "MultiScaleDeformableAttention",
    "multi_scale_deformable_attn",
    "multi_scale_deformable_attn_pytorch",
]


def multi_scale_deformable_attn_pytorch(
    value: torch.Tensor,
    value_spatial_shapes: torch.Tensor,
    sampling_locations: torch.Tensor,
    attention_weights: torch.Tensor,
) -> torch.Tensor:
    """Reference implementation with ``F.grid_sample`` (bilinear, zero padding, align_corners=False).

    Args:
        value: ``(bs, S, heads, dim)``.
        value_spatial_shapes: ``(L, 2)`` int64, rows ``(H_l, W_l)``.
        sampling_locations: ``(bs, Lq, heads, L, P, 2)``, ``(x, y)`` normalised to [0, 1].
        attention_weights: ``(bs, Lq, heads, L, P)``.

    Returns:
        ``(bs, Lq, heads * dim)``.
    """
    bs, _, num_heads, dim = value.shape
    _, num_queries, _, num_levels, num_points, _ = sampling_locations.shape
    shapes = [(int(h), int(w)) for h, w in value_spatial_shapes.tolist()]
    value_per_level = value.split([h * w for h, w in shapes], dim=1)
    grids = 2 * sampling_locations - 1
    sampled = []
    for level, (h, w) in enumerate(shapes):
        # (bs, H*W, heads, dim) -> (bs*heads, dim, H, W)
        value_l = value_per_level[level].permute(0, 2, 3, 1).reshape(bs * num_heads, dim, h, w)
        # (bs, Lq, heads, P, 2) -> (bs*heads, Lq, P, 2)
        grid_l = grids[:, :, :, level].transpose(1, 2).flatten(0, 1)
        # (bs*heads, dim, Lq, P)
        sampled.append(
            F.grid_sample(value_l, grid_l, mode="bilinear", padding_mode="zeros", align_corners=False)
        )
    # (bs, Lq, heads, L, P) -> (bs*heads, 1, Lq, L*P)
    weights = attention_weights.transpose(1, 2).reshape(
        bs * num_heads, 1, num_queries, num_levels * num_points
    )
    output = (torch.stack(sampled, dim=-2).flatten(-2) * weights).sum(-1)
    return output.view(bs, num_heads * dim, num_queries).transpose(1, 2).contiguous()


def multi_scale_deformable_attn(
    value: torch.Tensor,
    value_spatial_shapes: torch.Tensor,
    value_level_start_index: torch.Tensor,
    sampling_locations: torch.Tensor,
    attention_weights: torch.Tensor,
    im2col_step: int = 64,
) -> torch.Tensor:
    """Multi-scale deformable attention with the compiled kernel where one exists for the device.

    Shapes as in :func:`multi_scale_deformable_attn_pytorch`; ``value_level_start_index`` is ``(L,)`` int64.
    Half and bfloat16 inputs are computed in float32 and returned in ``value``'s dtype. ``im2col_step`` is
    accepted for compatibility with detrex's op signature; the kernels need no im2col buffer. During a
    TorchScript-based ONNX export the reference is used, so the graph holds standard ONNX ops; the
    ``torch.export``-based exporter translates the op itself (:mod:`detrkit.export.onnx_dynamo`).

    Returns:
        ``(bs, Lq, heads * dim)``.
    """
    if torch.onnx.is_in_onnx_export() and torch.jit.is_tracing():
        # The TorchScript-based exporter has no translation of the compiled op; the reference is made of
        # ONNX ops (GridSample). The torch.export-based one keeps the op (detrkit.export.onnx_dynamo).
        return multi_scale_deformable_attn_pytorch(
            value, value_spatial_shapes, sampling_locations, attention_weights
        )
    device_type = value.device.type
    if not has_kernel("ms_deform_attn_forward", device_type):
        warn_reference_fallback("ms_deform_attn", device_type)
        return multi_scale_deformable_attn_pytorch(
            value, value_spatial_shapes, sampling_locations, attention_weights
        )
    compute_dtype = torch.promote_types(
        torch.promote_types(value.dtype, sampling_locations.dtype), attention_weights.dtype
    )
    if compute_dtype in (torch.float16, torch.bfloat16):
        compute_dtype = torch.float32
    output = torch.ops.detrkit.ms_deform_attn_forward(
        value.to(compute_dtype),
        value_spatial_shapes,
        value_level_start_index,
        sampling_locations.to(compute_dtype),
        attention_weights.to(compute_dtype),
        im2col_step,
    )
    return output.to(value.dtype)


def _check_spatial_shapes(spatial_shapes: torch.Tensor, num_values: int) -> None:
    """Raises ValueError unless the levels ``(H_l, W_l)`` are positive and hold ``num_values`` tokens in all
    (summed with Python integers: no int64 product can overflow past the check)."""
    if spatial_shapes.dim() != 2 or spatial_shapes.shape[1] != 2:
        raise ValueError(f"spatial_shapes must have shape (levels, 2), got {tuple(spatial_shapes.shape)}")
    shapes = spatial_shapes.tolist()
    if any(h <= 0 or w <= 0 for h, w in shapes):
        raise ValueError(f"spatial_shapes must be positive, got {shapes}")
    num_tokens = sum(h * w for h, w in shapes)
    if num_tokens != num_values:
        raise ValueError(
            f"spatial_shapes {shapes} cover {num_tokens} tokens (sum of H*W) but value has {num_values}"
        )


class MultiScaleDeformableAttention(nn.Module):
    """Multi-scale deformable attention module with detrex's constructor, forward and parameter names.

    Args:
        embed_dim: model width ``C``. Default 256.
        num_heads: attention heads; ``C`` must divide by it. Default 8.
        num_levels: feature levels ``L``. Default 4.
        num_points: sampling points per head and level ``P``. Default 4.
        img2col_step: kept for detrex compatibility (passed to the op, which needs no im2col buffer).
        dropout: dropout on the output projection. Default 0.1.
        batch_first: tensors are ``(bs, n, C)`` when True, ``(n, bs, C)`` otherwise. Default False.
    """

    def __init__(
        self,
        embed_dim: int = 256,
        num_heads: int = 8,
        num_levels: int = 4,
        num_points: int = 4,
        img2col_step: int = 64,
        dropout: float = 0.1,
        batch_first: bool = False,
    ):
        super().__init__()
        if embed_dim % num_heads != 0:
            raise ValueError(f"embed_dim ({embed_dim}) must be divisible by num_heads ({num_heads})")
        head_dim = embed_dim // num_heads
        if head_dim & (head_dim - 1) != 0:
            warnings.warn(
                f"MultiScaleDeformableAttention: {head_dim} channels per head is not a power of 2; the "
                "kernels are fastest with a power of 2",
                stacklevel=2,
            )
        self.embed_dim = embed_dim
        self.num_heads = num_heads
        self.num_levels = num_levels
        self.num_points = num_points
        self.im2col_step = img2col_step
        self.batch_first = batch_first
        self.dropout = nn.Dropout(dropout)
        self.sampling_offsets = nn.Linear(embed_dim, num_heads * num_levels * num_points * 2)
        self.attention_weights = nn.Linear(embed_dim, num_heads * num_levels * num_points)
        self.value_proj = nn.Linear(embed_dim, embed_dim)
        self.output_proj = nn.Linear(embed_dim, embed_dim)
        self.init_weights()

    def init_weights(self) -> None:
        """Deformable DETR's initialisation: head h starts sampling along direction 2*pi*h/heads, point p at
        distance p + 1 (in cells of each level), uniform attention, Xavier value/output projections."""
        nn.init.constant_(self.sampling_offsets.weight, 0.0)
        thetas = torch.arange(self.num_heads, dtype=torch.float32) * (2.0 * math.pi / self.num_heads)
        directions = torch.stack([thetas.cos(), thetas.sin()], -1)
        directions = directions / directions.abs().max(-1, keepdim=True)[0]
        grid = directions.view(self.num_heads, 1, 1, 2).repeat(1, self.num_levels, self.num_points, 1)
        grid = grid * torch.arange(1, self.num_points + 1, dtype=torch.float32).view(1, 1, -1, 1)
        with torch.no_grad():
            self.sampling_offsets.bias.copy_(grid.flatten())
        nn.init.constant_(self.attention_weights.weight, 0.0)
        nn.init.constant_(self.attention_weights.bias, 0.0)
        nn.init.xavier_uniform_(self.value_proj.weight)
        nn.init.constant_(self.value_proj.bias, 0.0)
        nn.init.xavier_uniform_(self.output_proj.weight)
        nn.init.constant_(self.output_proj.bias, 0.0)

    def forward(
        self,
        query: torch.Tensor,
        key: torch.Tensor | None = None,
        value: torch.Tensor | None = None,
        identity: torch.Tensor | None = None,
        query_pos: torch.Tensor | None = None,
        key_padding_mask: torch.Tensor | None = None,
        reference_points: torch.Tensor | None = None,
        spatial_shapes: torch.Tensor | None = None,
        level_start_index: torch.Tensor | None = None,
        **kwargs,
    ) -> torch.Tensor:
        """Deformable attention of ``query`` over the multi-scale ``value`` (``key`` is unused, as in detrex).

        Args:
            query: ``(Lq, bs, C)``, or ``(bs, Lq, C)`` with ``batch_first``.
            value: ``(S, bs, C)`` / ``(bs, S, C)``; defaults to ``query``.
            identity: residual added to the output; defaults to ``query`` (before ``query_pos``).
            query_pos: positional embedding added to ``query``, same shape.
            key_padding_mask: ``(bs, S)`` bool, True where ``value`` is padding (set to zero).
            reference_points: ``(bs, Lq, L, 2)`` points ``(x, y)`` in [0, 1], or ``(bs, Lq, L, 4)`` boxes
                ``(cx, cy, w, h)``.
            spatial_shapes: ``(L, 2)`` int64 ``(H_l, W_l)``.
            level_start_index: ``(L,)`` int64.

        Returns:
            Same shape as ``query``.
        """
        if value is None:
            value = query
        if identity is None:
            identity = query
        if query_pos is not None:
            query = query + query_pos
        if not self.batch_first:
            query = query.transpose(0, 1)
            value = value.transpose(0, 1)
        bs, num_queries, _ = query.shape
        _, num_values, _ = value.shape
        if not torch.compiler.is_compiling():
            # Eager only: reading the shapes' values would break a compiled graph, where the op's kernel
            # checks them.
            _check_spatial_shapes(spatial_shapes, num_values)

        value = self.value_proj(value)
        if key_padding_mask is not None:
            # in place on the projection's fresh output (whose backward does not read it): no copy
            value = value.masked_fill_(key_padding_mask[..., None], 0.0)
        value = value.view(bs, num_values, self.num_heads, -1)
        sampling_offsets = self.sampling_offsets(query).view(
            bs, num_queries, self.num_heads, self.num_levels, self.num_points, 2
        )
        attention_weights = self.attention_weights(query).view(
            bs, num_queries, self.num_heads, self.num_levels * self.num_points
        )
        attention_weights = attention_weights.softmax(-1).view(
            bs, num_queries, self.num_heads, self.num_levels, self.num_points
        )
        sampling_locations = self._sampling_locations(reference_points, sampling_offsets, spatial_shapes)
        output = multi_scale_deformable_attn(
            value, spatial_shapes, level_start_index, sampling_locations, attention_weights, self.im2col_step
        )
        output = self.output_proj(output)
        if not self.batch_first:
            output = output.transpose(0, 1)
        return self.dropout(output) + identity

    def _sampling_locations(
        self, reference_points: torch.Tensor, offsets: torch.Tensor, spatial_shapes: torch.Tensor
    ) -> torch.Tensor:
        """``(bs, Lq, heads, L, P, 2)`` locations: points move by offsets in cells of each level; boxes by
        offsets scaled to half the box size over ``P``."""
        if reference_points.shape[-1] == 2:
            # Deformable DETR eq. (3): p_l + offset / (W_l, H_l). The divisor is a contiguous (L, P, 2) block,
            # so the division runs over the offsets' contiguous trailing dims (twice as fast as broadcasting
            # an int64 (L, 1, 2) one); the sum is the same, bit for bit.
            normalizer = torch.stack([spatial_shapes[..., 1], spatial_shapes[..., 0]], -1)
            normalizer = normalizer.to(reference_points.dtype)[:, None, :].repeat(1, self.num_points, 1)
            return (offsets / normalizer).add_(reference_points[:, :, None, :, None, :])
        if reference_points.shape[-1] == 4:
            return (
                reference_points[:, :, None, :, None, :2]
                + offsets / self.num_points * reference_points[:, :, None, :, None, 2:] * 0.5
            )
        raise ValueError(
            f"reference_points must end in 2 (points) or 4 (boxes), got shape {tuple(reference_points.shape)}"
        )
