"""The grouped adaptive 3-D feature sampler of AdaMixer / StageInteractor (paper Code 2): each query's box
``(x, y, z, r)`` (centre in pixels, ``z = log2 sqrt(wh)``, ``r = log2(h / w)``) spawns ``G`` groups of ``P``
points, each point ``K`` sub-points, by two levels of offsets generated from the query; every point is read
bilinearly on all feature levels and the levels are blended with weights that peak at the level matching the
point's scale ``z``."""

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["AdaptiveSampling3D", "level_weights", "sampling_points"]


def level_weights(z: torch.Tensor, strides: Sequence[int], tau: float = 2.0) -> torch.Tensor:
    """Weights ``(..., L)`` of the ``L`` feature levels for points of scale ``z`` ``(...)``:
    ``softmax_l(-(z - log2(stride_l) - 1)^2 / tau)``. With strides 4, 8, 16, 32 this is the paper's
    ``softmax(-((z - 3) - l)^2 / 2)``: a point of scale ``2^z`` pixels reads mostly the level of stride
    ``2^(z - 1)``."""
    centres = torch.tensor([math.log2(s) + 1.0 for s in strides], dtype=z.dtype, device=z.device)
    return torch.softmax(-((z[..., None] - centres) ** 2) / tau, dim=-1)


def sampling_points(
    xyzr: torch.Tensor, point_offsets: torch.Tensor, subpoint_offsets: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Code 2: the sub-points of every point of every query.

    ``x = x_q + 2^(z_q - r_q / 2) (dx0 + 2^dz0 dx1)``, ``y = y_q + 2^(z_q + r_q / 2) (dy0 + 2^dz0 dy1)``,
    ``z = z_q + dz0 + dz1``.

    Args:
        xyzr: ``(B, N, 4)`` query boxes.
        point_offsets: ``(B, N, G * P, 3)`` first-level offsets ``(dx0, dy0, dz0)``.
        subpoint_offsets: ``(B, N, M, K, 3)`` second-level offsets ``(dx1, dy1, dz1)``, ``M`` 1 (shared
            by all points) or ``G * P``.

    Returns:
        ``xy`` ``(B, N, G * P, K, 2)`` in pixels and ``z`` ``(B, N, G * P, K)``.
    """
    x, y, z, r = xyzr[:, :, None, None, :].unbind(-1)
    dx0, dy0, dz0 = point_offsets[:, :, :, None, :].unbind(-1)
    dx1, dy1, dz1 = subpoint_offsets.unbind(-1)
    spread = 2.0**dz0
    new_x = x + 2.0 ** (z - 0.5 * r) * (dx0 + spread * dx1)
    new_y = y + 2.0 ** (z + 0.5 * r) * (dy0 + spread * dy1)
    return torch.stack([new_x, new_y], dim=-1), z + dz0 + dz1


class AdaptiveSampling3D(nn.Module):
    """Grouped adaptive 3-D sampling with two-level offsets.

    ``point_offsets = Linear(C, 3 G P)`` gives each query's ``G * P`` points; ``subpoint_offsets =
    Linear(C, 3 K)`` gives ``K`` sub-points around each point (the same pattern for all points, scaled by
    each point's ``2^dz0``). Both weights start at zero; the biases place points uniformly in
    ``[-0.5, 0.5]`` of the box and sub-points (all but the first, which sits on its point) in
    ``[-0.5/sqrt2, 0.5/sqrt2]``.

    Args:
        embed_dim: ``C`` of the queries and the feature maps.
        num_groups: ``G``; each group reads ``C / G`` channels.
        num_points: ``P`` points per group.
        num_subpoints: ``K`` sub-points per point.
        tau: temperature of :func:`level_weights`.
    """

    def __init__(
        self, embed_dim: int, num_groups: int, num_points: int, num_subpoints: int, tau: float = 2.0
    ):
        super().__init__()
        if embed_dim % num_groups:
            raise ValueError(f"embed_dim {embed_dim} is not divisible by num_groups {num_groups}")
        self.embed_dim = embed_dim
        self.num_groups = num_groups
        self.num_points = num_points
        self.num_subpoints = num_subpoints
        self.tau = tau
        self.point_offsets = nn.Linear(embed_dim, 3 * num_groups * num_points)
        self.subpoint_offsets = nn.Linear(embed_dim, 3 * num_subpoints)
        self.init_weights()

    @torch.no_grad()
    def init_weights(self) -> None:
        nn.init.zeros_(self.point_offsets.weight)
        nn.init.zeros_(self.subpoint_offsets.weight)
        point_bias = self.point_offsets.bias.view(-1, 3)
        point_bias.zero_()
        nn.init.uniform_(point_bias[:, :2], -0.5, 0.5)
        subpoint_bias = self.subpoint_offsets.bias.view(self.num_subpoints, 3)
        subpoint_bias.zero_()
        bound = 0.5 / math.sqrt(2.0)
        nn.init.uniform_(subpoint_bias[1:, :2], -bound, bound)

    def points(self, query: torch.Tensor, xyzr: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``xy`` ``(B, N, G * P, K, 2)`` pixels and ``z`` ``(B, N, G * P, K)`` of query ``(B, N, C)`` with
        boxes ``xyzr`` ``(B, N, 4)`` (see :func:`sampling_points`)."""
        batch, num_queries = query.shape[:2]
        point_offsets = self.point_offsets(query).view(batch, num_queries, -1, 3)
        subpoint_offsets = self.subpoint_offsets(query).view(batch, num_queries, 1, self.num_subpoints, 3)
        return sampling_points(xyzr, point_offsets, subpoint_offsets)

    def forward(
        self,
        features: Sequence[torch.Tensor],
        strides: Sequence[int],
        query: torch.Tensor,
        xyzr: torch.Tensor,
    ) -> torch.Tensor:
        """Sampled features.

        Args:
            features: ``L`` maps ``(B, C, H_l, W_l)`` of the padded batch.
            strides: their strides in pixels.
            query: ``(B, N, C)``.
            xyzr: ``(B, N, 4)`` boxes, pixels of the padded batch.

        Returns:
            ``(B, N, G, P * K, C / G)``: per group the level-blended bilinear samples of its points.
        """
        if len(features) != len(strides):
            raise ValueError(f"{len(features)} feature levels but {len(strides)} strides")
        batch, num_queries = query.shape[:2]
        groups, channels = self.num_groups, features[0].shape[1] // self.num_groups
        xy, z = self.points(query, xyzr)
        # (B, N, G, P * K, ...) -> (B * G, N, P * K, ...): one grouped map per image and group
        xy = xy.view(batch, num_queries, groups, -1, 2).transpose(1, 2).flatten(0, 1)
        weights = level_weights(z, strides, self.tau).view(batch, num_queries, groups, -1, len(strides))
        weights = weights.transpose(1, 2).flatten(0, 1)
        sampled = xy.new_zeros(batch * groups, channels, num_queries, xy.shape[2])
        for level, (feature, stride) in enumerate(zip(features, strides, strict=True)):
            height, width = feature.shape[-2:]
            grid = xy / xy.new_tensor([width * stride, height * stride]) * 2.0 - 1.0
            grouped = feature.reshape(batch * groups, channels, height, width)
            values = F.grid_sample(grouped, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
            sampled = sampled + values * weights[..., level].unsqueeze(1)
        # (B * G, C / G, N, P * K) -> (B, N, G, P * K, C / G)
        return sampled.view(batch, groups, channels, num_queries, -1).permute(0, 3, 1, 4, 2)
