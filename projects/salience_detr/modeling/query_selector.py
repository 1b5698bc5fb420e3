"""Two-stage query selection with redundancy removal (Salience DETR sec. 3.5): the best proposals of the
encoder, thinned by a non-maximum suppression of neighbouring tokens on each level's grid."""

import torch

from detrkit.layers import batched_nms
from detrkit.modeling.transformer import TwoStageQuerySelector

__all__ = ["RedundancyRemovalQuerySelector", "remove_redundant_tokens"]


def remove_redundant_tokens(
    scores: torch.Tensor,
    spatial_shapes: torch.Tensor,
    num_candidates: int,
    num_kept: int,
    iou_threshold: float,
) -> torch.Tensor:
    """Indices ``(bs, K)`` of the tokens kept after redundancy removal, best first.

    The ``num_candidates`` best tokens of each image (by ``scores`` ``(bs, S)``) become boxes
    ``[x - 1, y - 1, x + 1, y + 1]`` in their level's grid (``spatial_shapes`` ``(L, 2)``, levels flattened in
    order); NMS with ``iou_threshold`` runs per (image, level) group (with 0.3, the 4 direct neighbours of a
    kept token, IoU 1/3, are suppressed and the diagonal ones, IoU 1/7, kept); every image keeps
    ``K = min(num_kept, fewest survivors of an image)``.
    """
    batch, num_tokens = scores.shape
    num_candidates = min(num_candidates, num_tokens)
    # A stable sort: equal scores stay in token order, as in ONNX TopK (torch.topk orders ties arbitrarily).
    sorted_scores, sorted_indices = scores.sort(dim=1, descending=True, stable=True)
    top_scores, top_indices = sorted_scores[:, :num_candidates], sorted_indices[:, :num_candidates]
    sizes = spatial_shapes.prod(1)
    level = torch.repeat_interleave(torch.arange(len(sizes), device=scores.device), sizes)[top_indices]
    starts = (sizes.cumsum(0) - sizes)[level]
    widths = spatial_shapes[:, 1][level]
    local = top_indices - starts
    x, y = (local % widths).to(scores.dtype), torch.div(local, widths, rounding_mode="floor").to(scores.dtype)
    boxes = torch.stack([x - 1, y - 1, x + 1, y + 1], -1)
    image = torch.arange(batch, device=scores.device)[:, None].expand(-1, num_candidates)
    groups = level + len(sizes) * image
    keep = batched_nms(boxes.reshape(-1, 4), top_scores.reshape(-1), groups.reshape(-1), iou_threshold)
    kept_image = keep // num_candidates
    survivors = [top_indices.reshape(-1)[keep[kept_image == i]][:num_kept] for i in range(batch)]
    if batch == 1:
        # No Python count: a traced (ONNX) graph keeps the number of survivors dynamic.
        return survivors[0][None]
    count = min(len(s) for s in survivors)
    return torch.stack([s[:count] for s in survivors])


class RedundancyRemovalQuerySelector(TwoStageQuerySelector):
    """DINO's mixed query selection (:class:`TwoStageQuerySelector`) whose top-K is replaced by
    :func:`remove_redundant_tokens`: ``candidates_per_query * K`` candidates by highest class logit, NMS
    ``iou_threshold`` per (image, level), ``min(K, fewest survivors)`` queries per image (the official code
    needs at least ``K`` survivors; here fewer queries are returned, e.g. on tiny images, unless
    ``require_num_queries``).

    Args:
        embed_dim: ``C``. Default 256.
        num_queries: rows of ``tgt_embed``. Default 900.
        candidates_per_query: default 4.
        iou_threshold: default 0.3.
        require_num_queries: a ValueError when an image keeps fewer than ``K`` tokens, as the official code
            requires and Rank-DETR's query ranking and head need (they tell the denoising queries from the
            ranked ones by count). Default False.
    """

    def __init__(
        self,
        embed_dim: int = 256,
        num_queries: int = 900,
        candidates_per_query: int = 4,
        iou_threshold: float = 0.3,
        require_num_queries: bool = False,
    ):
        super().__init__(embed_dim=embed_dim, num_queries=num_queries)
        if candidates_per_query < 1:
            raise ValueError(f"candidates_per_query={candidates_per_query} must be >= 1")
        self.candidates_per_query = candidates_per_query
        self.iou_threshold = iou_threshold
        self.require_num_queries = require_num_queries

    def select_indices(
        self, scores: torch.Tensor, spatial_shapes: torch.Tensor, num_queries: int
    ) -> torch.Tensor:
        """:func:`remove_redundant_tokens` of the ``(bs, S)`` scores: ``(bs, K')``, ``K' <= num_queries``
        (``K' = num_queries`` or a ValueError with ``require_num_queries``)."""
        indices = remove_redundant_tokens(
            scores, spatial_shapes, self.candidates_per_query * num_queries, num_queries, self.iou_threshold
        )
        if self.require_num_queries and indices.shape[1] < num_queries:
            raise ValueError(
                f"redundancy removal kept {indices.shape[1]} tokens in some image, fewer than the "
                f"{num_queries} queries required (require_num_queries): use larger images or fewer queries"
            )
        return indices
