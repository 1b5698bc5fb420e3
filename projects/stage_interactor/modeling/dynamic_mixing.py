"""Cascade dynamic mixing with cross-stage filter reuse (StageInteractor sec. 3.3, eq. 2-3, Code 1).

A stage generates from each query a channel filter ``M`` ``(C/G, C/G)`` and a spatial filter ``S``
``(P_out, P K)`` per group (AdaMixer's adaptive mixing). It also reuses filters earlier stages generated
(the filter bank): each reused channel filter mixes the features once more, after a static channel-spatial
mixing (Code 1), and the previous stage's spatial filter supplies half of the output points. A reused filter
passes through an adapter (eq. 3): ``M' = (w1 w2^T) * M_j + (1 - w1 w2^T) * M_i`` with
``w = sigmoid(Linear(q))``, ``M_j`` the reused filter and ``M_i`` the stage's own.
"""

from collections.abc import Sequence
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["CascadeDynamicMixing", "DynamicFilters", "FilterAdapter", "StaticMixing", "adapt_filter"]

STATIC_MIXING_TYPES = ("channel_spatial", "spatial", "channel")


class DynamicFilters(NamedTuple):
    """The filters one stage generated, kept in the filter bank for the later stages.

    Attributes:
        channel: ``(B * N * G, C / G, C / G)`` channel-mixing filters.
        spatial: ``(B * N * G, P_new, P * K)`` spatial-mixing filters (``P_new`` output points).
    """

    channel: torch.Tensor
    spatial: torch.Tensor


def adapt_filter(
    reused: torch.Tensor, current: torch.Tensor, row_weights: torch.Tensor, col_weights: torch.Tensor
) -> torch.Tensor:
    """Eq. 3: ``(w1 w2^T) * reused + (1 - w1 w2^T) * current``.

    Args:
        reused, current: ``(..., R, Q)`` filters.
        row_weights: ``(..., R)`` ``w1``; col_weights: ``(..., Q)`` ``w2``, both in [0, 1].
    """
    gate = row_weights[..., :, None] * col_weights[..., None, :]
    return gate * reused + (1.0 - gate) * current


class FilterAdapter(nn.Module):
    """The gates ``w1 = sigmoid(.)`` ``(..., R)`` and ``w2`` ``(..., Q)`` of eq. 3 from a query, one pair per
    group; zero-initialised, so every gate starts at 0.5 and ``M' = 0.25 M_j + 0.75 M_i``.

    Args:
        embed_dim: ``C`` of the query.
        num_groups: ``G``.
        rows, cols: ``R`` and ``Q`` of the adapted filters.
    """

    def __init__(self, embed_dim: int, num_groups: int, rows: int, cols: int):
        super().__init__()
        self.rows, self.cols = rows, cols
        self.gates = nn.Linear(embed_dim, num_groups * (rows + cols))
        self.init_weights()

    @torch.no_grad()
    def init_weights(self) -> None:
        nn.init.zeros_(self.gates.weight)
        nn.init.zeros_(self.gates.bias)

    def forward(self, query: torch.Tensor, reused: torch.Tensor, current: torch.Tensor) -> torch.Tensor:
        """``query`` ``(B, N, C)``, filters ``(B * N * G, R, Q)`` -> adapted filters ``(B * N * G, R, Q)``."""
        gates = self.gates(query).sigmoid().view(current.shape[0], self.rows + self.cols)
        row_weights, col_weights = gates.split([self.rows, self.cols], dim=-1)
        return adapt_filter(reused, current, row_weights, col_weights)


class StaticMixing(nn.Module):
    """The static mixing between two dynamic channel mixings (zero-initialised, so it starts as the
    identity through the caller's residual).

    ``"channel_spatial"`` (paper Code 1): a ``Linear(K C', K C')`` over each point's sub-points and channels
    plus a ``Linear(P C', P C')`` over each sub-point index's points and channels. ``"spatial"``:
    ``Linear(K, K)`` over the sub-points plus ``Linear(P, P)`` over the points, shared by the channels.
    ``"channel"``: ``Linear(C', C')``, shared by all points.

    Args:
        num_points: ``P``; num_subpoints: ``K``; channels: ``C' = C / G``.
        kind: one of ``"channel_spatial"``, ``"spatial"``, ``"channel"``.
    """

    def __init__(self, num_points: int, num_subpoints: int, channels: int, kind: str = "channel_spatial"):
        super().__init__()
        if kind not in STATIC_MIXING_TYPES:
            raise ValueError(f"static mixing kind must be one of {STATIC_MIXING_TYPES}, got {kind!r}")
        self.num_points, self.num_subpoints, self.channels, self.kind = (
            num_points,
            num_subpoints,
            channels,
            kind,
        )
        if kind == "channel_spatial":
            self.point_mixing = nn.Linear(num_subpoints * channels, num_subpoints * channels)
            self.subpoint_mixing = nn.Linear(num_points * channels, num_points * channels)
        elif kind == "spatial":
            self.point_mixing = nn.Linear(num_subpoints, num_subpoints)
            self.subpoint_mixing = nn.Linear(num_points, num_points)
        else:
            self.channel_mixing = nn.Linear(channels, channels)
        self.init_weights()

    @torch.no_grad()
    def init_weights(self) -> None:
        for module in self.modules():
            if isinstance(module, nn.Linear):
                nn.init.zeros_(module.weight)
                nn.init.zeros_(module.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(M, P * K, C')`` -> ``(M, P * K, C')``."""
        if self.kind == "channel":
            return self.channel_mixing(x)
        grid = x.view(-1, self.num_points, self.num_subpoints, self.channels)
        if self.kind == "channel_spatial":
            within_point = self.point_mixing(grid.flatten(2)).view_as(grid)
            across_points = self.subpoint_mixing(grid.transpose(1, 2).flatten(2))
            across_points = across_points.view(-1, self.num_subpoints, self.num_points, self.channels)
            mixed = within_point + across_points.transpose(1, 2)
        else:
            within_point = self.point_mixing(grid.transpose(2, 3)).transpose(2, 3)
            across_points = self.subpoint_mixing(grid.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)
            mixed = within_point + across_points
        return mixed.reshape(x.shape)


def _mix_and_normalise(x: torch.Tensor) -> torch.Tensor:
    """ReLU of the layer norm over the last two axes (points and channels), without affine parameters."""
    return F.relu(F.layer_norm(x, x.shape[-2:]))


class CascadeDynamicMixing(nn.Module):
    """One stage's mixing of its sampled features into its query.

    Channel mixing with the stage's own filter, then once per reused channel filter (oldest first): static
    mixing + residual, channel mixing with the adapted reused filter; then spatial mixing with the own
    spatial filter (``P_out / 2`` output points when the spatial filter is reused, else ``P_out``) stacked on
    the adapted previous one; then ``LayerNorm(q + Linear(flatten))``. Every mixing is followed by a layer
    norm over (points, channels) and a ReLU. The filter generator's and the output projection's weights
    start at zero.

    Args:
        embed_dim: ``C``.
        num_groups: ``G``.
        num_points, num_subpoints: ``P`` and ``K`` of the sampler (``P K`` input points per group).
        out_points: ``P_out`` output points per group.
        num_reused_filters: channel filters reused from the bank (0: none).
        reuse_spatial: reuse the previous stage's spatial filter for half of the output points.
        adapters: pass reused filters through eq. 3's adapters (False: reuse them as they are).
        static_mixing: the :class:`StaticMixing` kind.
    """

    def __init__(
        self,
        embed_dim: int = 256,
        num_groups: int = 4,
        num_points: int = 4,
        num_subpoints: int = 8,
        out_points: int = 128,
        num_reused_filters: int = 0,
        reuse_spatial: bool = False,
        adapters: bool = True,
        static_mixing: str = "channel_spatial",
    ):
        super().__init__()
        if embed_dim % num_groups:
            raise ValueError(f"embed_dim {embed_dim} is not divisible by num_groups {num_groups}")
        if reuse_spatial and out_points % 2:
            raise ValueError(
                f"spatial reuse splits out_points in two halves; got odd out_points {out_points}"
            )
        if num_reused_filters < 0:
            raise ValueError(f"num_reused_filters must be >= 0, got {num_reused_filters}")
        self.embed_dim, self.num_groups = embed_dim, num_groups
        self.channels = embed_dim // num_groups
        self.in_points = num_points * num_subpoints
        self.out_points = out_points
        self.new_out_points = out_points // 2 if reuse_spatial else out_points
        self.num_reused_filters = num_reused_filters
        self.reuse_spatial = reuse_spatial
        self.adapters = adapters
        channel_params = self.channels * self.channels
        self.filter_generator = nn.Linear(
            embed_dim, num_groups * (channel_params + self.new_out_points * self.in_points)
        )
        self.mixing_bias = nn.Linear(embed_dim, num_groups * (self.channels + out_points))
        self.static_mixings = nn.ModuleList(
            StaticMixing(num_points, num_subpoints, self.channels, static_mixing)
            for _ in range(num_reused_filters)
        )
        self.reused_bias = (
            nn.Linear(embed_dim, num_groups * self.channels * num_reused_filters)
            if num_reused_filters
            else None
        )
        self.channel_adapters = nn.ModuleList(
            FilterAdapter(embed_dim, num_groups, self.channels, self.channels)
            for _ in range(num_reused_filters if adapters else 0)
        )
        self.spatial_adapter = (
            FilterAdapter(embed_dim, num_groups, self.new_out_points, self.in_points)
            if reuse_spatial and adapters
            else None
        )
        self.output_proj = nn.Linear(out_points * embed_dim, embed_dim)
        self.norm = nn.LayerNorm(embed_dim)
        self.init_weights()

    @torch.no_grad()
    def init_weights(self) -> None:
        nn.init.zeros_(self.filter_generator.weight)
        nn.init.zeros_(self.mixing_bias.weight)
        nn.init.zeros_(self.output_proj.weight)
        if self.reused_bias is not None:
            nn.init.zeros_(self.reused_bias.weight)
        for module in [*self.static_mixings, *self.channel_adapters, self.spatial_adapter]:
            if module is not None:
                module.init_weights()

    def forward(
        self, features: torch.Tensor, query: torch.Tensor, filter_bank: Sequence[DynamicFilters] = ()
    ) -> tuple[torch.Tensor, DynamicFilters]:
        """Mixes ``features`` ``(B, N, G, P * K, C / G)`` into ``query`` ``(B, N, C)``.

        Args:
            filter_bank: the earlier stages' filters, oldest first; the last ``num_reused_filters`` channel
                filters and (with ``reuse_spatial``) the last spatial filter are reused.

        Returns:
            The updated query ``(B, N, C)`` and this stage's own :class:`DynamicFilters`.
        """
        needed = max(self.num_reused_filters, int(self.reuse_spatial))
        if len(filter_bank) < needed:
            raise ValueError(
                f"this stage reuses {needed} filters but the filter bank holds {len(filter_bank)}"
            )
        batch, num_queries = query.shape[:2]
        rows = batch * num_queries * self.num_groups
        x = features.reshape(rows, self.in_points, self.channels)
        channel_filter, spatial_filter = (
            self.filter_generator(query)
            .view(rows, -1)
            .split([self.channels * self.channels, self.new_out_points * self.in_points], dim=-1)
        )
        channel_filter = channel_filter.view(rows, self.channels, self.channels)
        spatial_filter = spatial_filter.view(rows, self.new_out_points, self.in_points)
        channel_bias, spatial_bias = (
            self.mixing_bias(query).view(rows, -1).split([self.channels, self.out_points], dim=-1)
        )
        mixed = _mix_and_normalise(torch.bmm(x, channel_filter) + channel_bias[:, None])
        if self.num_reused_filters:
            reused_biases = self.reused_bias(query).view(rows, self.num_reused_filters, 1, self.channels)
            residual = x
            for k, reused in enumerate(filter_bank[len(filter_bank) - self.num_reused_filters :]):
                residual = self.static_mixings[k](mixed) + residual
                reused_filter = reused.channel
                if self.adapters:
                    reused_filter = self.channel_adapters[k](query, reused_filter, channel_filter)
                mixed = _mix_and_normalise(torch.bmm(residual, reused_filter) + reused_biases[:, k])
        spatial = spatial_filter
        if self.reuse_spatial:
            previous = filter_bank[-1].spatial[:, : self.new_out_points, : self.in_points]
            if self.spatial_adapter is not None:
                previous = self.spatial_adapter(query, previous, spatial_filter)
            spatial = torch.cat([spatial_filter, previous], dim=1)
        out = _mix_and_normalise(torch.bmm(spatial, mixed) + spatial_bias[..., None])
        query = self.norm(query + self.output_proj(out.reshape(batch, num_queries, -1)))
        return query, DynamicFilters(channel_filter, spatial_filter)
