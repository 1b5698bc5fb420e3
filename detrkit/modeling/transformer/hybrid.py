"""Hybrid matching (H-DETR, Jia et al. 2023): a one-to-many query group trained against the GT repeated
``k`` times next to the usual one-to-one group, the two kept apart in the decoder's self-attention."""

import torch

__all__ = ["hybrid_attn_mask"]


def hybrid_attn_mask(
    num_queries_one2one: int, num_queries: int, device: torch.device | str | None = None
) -> torch.Tensor:
    """``(num_queries, num_queries)`` bool self-attention mask, True where attention is blocked: the first
    ``num_queries_one2one`` queries (one-to-one) and the rest (one-to-many) do not see each other, so the
    one-to-one branch works alone at inference. All False when there are no one-to-many queries."""
    if not 0 < num_queries_one2one <= num_queries:
        raise ValueError(
            f"num_queries_one2one={num_queries_one2one} must be in [1, num_queries={num_queries}]"
        )
    is_one2many = torch.arange(num_queries, device=device) >= num_queries_one2one
    return is_one2many[:, None] != is_one2many[None, :]
