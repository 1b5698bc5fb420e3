"""One StageInteractor decoder stage (AdaMixer's stage with cross-stage filter reuse): box position
embedding, self-attention with the IoF bias, adaptive 3-D sampling, cascade dynamic mixing, FFN, class and box
heads; and the xyzr box arithmetic the stages share."""

import math
from collections.abc import Sequence

import torch
from torch import nn

from detrkit.layers.ffn import FFN

from .adaptive_sampling import AdaptiveSampling3D
from .dynamic_mixing import CascadeDynamicMixing, DynamicFilters

__all__ = ["StageInteractorStage", "box_position_embedding", "refine_xyzr", "xyzr_to_xyxy", "xyxy_to_xyzr"]


def xyzr_to_xyxy(xyzr: torch.Tensor) -> torch.Tensor:
    """``(..., 4)`` ``(x, y, z, r)`` -> ``(x1, y1, x2, y2)``: ``w = 2^(z - r/2)``, ``h = 2^(z + r/2)``."""
    x, y, z, r = xyzr.unbind(-1)
    half_w, half_h = 0.5 * 2.0 ** (z - 0.5 * r), 0.5 * 2.0 ** (z + 0.5 * r)
    return torch.stack([x - half_w, y - half_h, x + half_w, y + half_h], dim=-1)


def xyxy_to_xyzr(boxes: torch.Tensor) -> torch.Tensor:
    """``(..., 4)`` ``(x1, y1, x2, y2)`` -> ``(x, y, z = log2 sqrt(wh), r = log2(h / w))``."""
    x1, y1, x2, y2 = boxes.unbind(-1)
    w, h = x2 - x1, y2 - y1
    return torch.stack([(x1 + x2) / 2, (y1 + y2) / 2, 0.5 * torch.log2(w * h), torch.log2(h / w)], dim=-1)


def refine_xyzr(xyzr: torch.Tensor, delta: torch.Tensor) -> torch.Tensor:
    """The box update: ``x += dx w``, ``y += dy h``, ``z += dz``, ``r += dr`` (``w, h`` of the old box)."""
    x, y, z, r = xyzr.unbind(-1)
    dx, dy, dz, dr = delta.unbind(-1)
    return torch.stack([x + dx * 2.0 ** (z - 0.5 * r), y + dy * 2.0 ** (z + 0.5 * r), z + dz, r + dr], dim=-1)


def box_position_embedding(xyzr: torch.Tensor, embed_dim: int, temperature: float = 10000.0) -> torch.Tensor:
    """Sine embedding ``(B, N, embed_dim)`` of ``xyzr`` ``(B, N, 4)`` (x, y in pixels divided by 1000):
    ``embed_dim / 4`` features per coordinate, ``sin`` and ``cos`` interleaved, coordinates concatenated."""
    if embed_dim % 8:
        raise ValueError(f"box_position_embedding needs embed_dim divisible by 8, got {embed_dim}")
    num_feats = embed_dim // 4
    scaled = xyzr / xyzr.new_tensor([1000.0, 1000.0, 1.0, 1.0])
    dim_t = torch.arange(num_feats, dtype=xyzr.dtype, device=xyzr.device)
    dim_t = temperature ** (2 * (dim_t // 2) / num_feats)
    pos = scaled[..., None] / dim_t
    return torch.stack([pos[..., 0::2].sin(), pos[..., 1::2].cos()], dim=-1).flatten(2)


def iof(boxes: torch.Tensor) -> torch.Tensor:
    """``(B, N, N)`` intersection over the first box's area of ``(B, N, 4)`` xyxy boxes."""
    top_left = torch.maximum(boxes[:, :, None, :2], boxes[:, None, :, :2])
    bottom_right = torch.minimum(boxes[:, :, None, 2:], boxes[:, None, :, 2:])
    inter = (bottom_right - top_left).clamp(min=0).prod(-1)
    area = (boxes[..., 2:] - boxes[..., :2]).prod(-1)
    return inter / area[:, :, None].clamp(min=1e-6)


class StageInteractorStage(nn.Module):
    """One decoder stage.

    ``q = LN(q + pe + MHSA(q + pe, bias = log(IoF + 1e-7) * tau_h))`` (``tau_h ~ U(0, 4)`` per head);
    sampling (:class:`AdaptiveSampling3D`); mixing (:class:`CascadeDynamicMixing`); ``q = LN(q + FFN(q))``;
    class logits ``Linear(ReLU(LN(Linear(q))))`` (focal prior 0.01) and box deltas likewise (last layer
    zero-initialised). Parameters with two or more dimensions are Xavier-uniform unless their module
    initialises them itself.

    Args:
        embed_dim: ``C``; num_heads: self-attention heads; feedforward_dim: FFN hidden size;
        num_classes: sigmoid classes.
        num_groups, num_points, num_subpoints: the sampler's ``G``, ``P``, ``K``.
        mixing: this stage's :class:`CascadeDynamicMixing`; None builds one without filter reuse.
    """

    def __init__(
        self,
        embed_dim: int = 256,
        num_heads: int = 8,
        feedforward_dim: int = 2048,
        num_classes: int = 80,
        num_groups: int = 4,
        num_points: int = 4,
        num_subpoints: int = 8,
        mixing: CascadeDynamicMixing | None = None,
    ):
        super().__init__()
        self.embed_dim, self.num_heads = embed_dim, num_heads
        self.attention = nn.MultiheadAttention(embed_dim, num_heads, batch_first=True)
        self.attention_norm = nn.LayerNorm(embed_dim)
        self.iof_tau = nn.Parameter(torch.empty(num_heads))
        self.sampler = AdaptiveSampling3D(embed_dim, num_groups, num_points, num_subpoints)
        self.mixing = (
            CascadeDynamicMixing(embed_dim, num_groups, num_points, num_subpoints)
            if mixing is None
            else mixing
        )
        self.ffn = FFN(embed_dim, feedforward_dim)
        self.ffn_norm = nn.LayerNorm(embed_dim)
        self.class_branch = nn.Sequential(
            nn.Linear(embed_dim, embed_dim), nn.LayerNorm(embed_dim), nn.ReLU(inplace=True)
        )
        self.class_head = nn.Linear(embed_dim, num_classes)
        self.box_branch = nn.Sequential(
            nn.Linear(embed_dim, embed_dim), nn.LayerNorm(embed_dim), nn.ReLU(inplace=True)
        )
        self.box_head = nn.Linear(embed_dim, 4)
        self.init_weights()

    @torch.no_grad()
    def init_weights(self) -> None:
        for p in self.parameters():
            if p.dim() > 1:
                nn.init.xavier_uniform_(p)
        nn.init.uniform_(self.iof_tau, 0.0, 4.0)
        nn.init.constant_(self.class_head.bias, -math.log((1 - 0.01) / 0.01))
        nn.init.zeros_(self.box_head.weight)
        nn.init.zeros_(self.box_head.bias)
        self.sampler.init_weights()
        self.mixing.init_weights()

    def self_attention(self, query: torch.Tensor, xyzr: torch.Tensor) -> torch.Tensor:
        """``(B, N, C)`` queries after position embedding, IoF-biased self-attention and layer norm."""
        batch, num_queries = query.shape[:2]
        with torch.no_grad():
            pe = box_position_embedding(xyzr, self.embed_dim)
            log_iof = (iof(xyzr_to_xyxy(xyzr)) + 1e-7).log()
        bias = log_iof[:, None] * self.iof_tau.view(1, -1, 1, 1)
        query = query + pe
        attended = self.attention(
            query, query, query, attn_mask=bias.reshape(batch * self.num_heads, num_queries, num_queries)
        )[0]
        return self.attention_norm(query + attended)

    def forward(
        self,
        features: Sequence[torch.Tensor],
        strides: Sequence[int],
        query: torch.Tensor,
        xyzr: torch.Tensor,
        filter_bank: Sequence[DynamicFilters] = (),
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, DynamicFilters]:
        """One stage.

        Args:
            features: ``L`` maps ``(B, C, H_l, W_l)``; strides: their strides.
            query: ``(B, N, C)``; xyzr: ``(B, N, 4)`` boxes in pixels (not differentiated).
            filter_bank: the earlier stages' filters (see :class:`CascadeDynamicMixing`).

        Returns:
            Class logits ``(B, N, num_classes)``, box deltas ``(B, N, 4)``, the updated query and the
            stage's filters.
        """
        query = self.self_attention(query, xyzr)
        sampled = self.sampler(features, strides, query, xyzr)
        query, filters = self.mixing(sampled, query, filter_bank)
        query = self.ffn_norm(self.ffn(query))
        return (
            self.class_head(self.class_branch(query)),
            self.box_head(self.box_branch(query)),
            query,
            filters,
        )
