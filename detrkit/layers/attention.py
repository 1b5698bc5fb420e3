"""Multi-head attention with residual and positional embeddings, detrex's ``MultiheadAttention``."""

import torch
from torch import nn

__all__ = ["MultiheadAttention"]


class MultiheadAttention(nn.Module):
    """``identity + Dropout(MHA(query + query_pos, key + key_pos, value))``, ``torch.nn.MultiheadAttention``.

    The wrapped module is ``attn`` (parameters ``attn.in_proj_weight``, ``attn.out_proj.weight``, ... as in
    detrex), so checkpoints load by name.

    Args:
        embed_dim: model width ``C``.
        num_heads: attention heads.
        attn_drop: dropout on the attention weights. Default 0.
        proj_drop: dropout on the output. Default 0.
        batch_first: tensors are ``(bs, n, C)`` when True, ``(n, bs, C)`` otherwise. Default False.
        **kwargs: further ``torch.nn.MultiheadAttention`` arguments.
    """

    def __init__(
        self,
        embed_dim: int,
        num_heads: int,
        attn_drop: float = 0.0,
        proj_drop: float = 0.0,
        batch_first: bool = False,
        **kwargs,
    ):
        super().__init__()
        self.embed_dim = embed_dim
        self.num_heads = num_heads
        self.batch_first = batch_first
        self.attn = nn.MultiheadAttention(
            embed_dim=embed_dim, num_heads=num_heads, dropout=attn_drop, batch_first=batch_first, **kwargs
        )
        self.proj_drop = nn.Dropout(proj_drop)

    def forward(
        self,
        query: torch.Tensor,
        key: torch.Tensor | None = None,
        value: torch.Tensor | None = None,
        identity: torch.Tensor | None = None,
        query_pos: torch.Tensor | None = None,
        key_pos: torch.Tensor | None = None,
        attn_mask: torch.Tensor | None = None,
        key_padding_mask: torch.Tensor | None = None,
        **kwargs,
    ) -> torch.Tensor:
        """Attention of ``query`` over ``key``/``value``; extra keywords (from a layer) are ignored.

        Args:
            query: ``(bs, Lq, C)`` with ``batch_first``, else ``(Lq, bs, C)``.
            key: ``(bs, Lk, C)`` / ``(Lk, bs, C)``; defaults to ``query``.
            value: same shape as ``key``; defaults to ``key``.
            identity: residual added to the output; defaults to ``query`` (before ``query_pos``).
            query_pos: added to ``query``.
            key_pos: added to ``key``; defaults to ``query_pos`` when that has ``key``'s shape.
            attn_mask: ``(Lq, Lk)`` bool, True where attention is NOT allowed (or an additive float mask).
            key_padding_mask: ``(bs, Lk)`` bool, True at padded keys.

        Returns:
            Same shape as ``query``.
        """
        if key is None:
            key = query
        if value is None:
            value = key
        if identity is None:
            identity = query
        if key_pos is None and query_pos is not None and query_pos.shape == key.shape:
            key_pos = query_pos
        if query_pos is not None:
            query = query + query_pos
        if key_pos is not None:
            key = key + key_pos
        out = self.attn(
            query=query, key=key, value=value, attn_mask=attn_mask, key_padding_mask=key_padding_mask
        )[0]
        return identity + self.proj_drop(out)
