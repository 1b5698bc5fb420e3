"""Position embeddings of DETR-style detectors, with detrex's signatures and semantics
(``detrex.layers.position_embedding``).

- :class:`PositionEmbeddingSine`: fixed sine/cosine embedding of each pixel's (row, column) position among the
  valid (unpadded) pixels of its image.
- :class:`PositionEmbeddingLearned`: learned row and column embeddings.
- :func:`get_sine_pos_embed`: sine embedding of arbitrary normalized coordinates (e.g. reference boxes).

Frequencies: channel pair ``(2k, 2k+1)`` of an ``F``-channel embedding uses ``temperature ** (2k / F)``; the
even channel holds the sine, the odd one the cosine.
"""

import math

import torch
from torch import nn

__all__ = ["PositionEmbeddingLearned", "PositionEmbeddingSine", "get_sine_pos_embed"]


def _check_even(num_pos_feats: int) -> None:
    if num_pos_feats <= 0 or num_pos_feats % 2:
        raise ValueError(
            f"num_pos_feats must be a positive even number (sine/cosine pairs), got {num_pos_feats}"
        )


def _frequencies(num_pos_feats: int, temperature: float, device: torch.device) -> torch.Tensor:
    """``(num_pos_feats,)`` divisors ``temperature ** (2 * (i // 2) / num_pos_feats)``, float32."""
    index = torch.arange(num_pos_feats, dtype=torch.float32, device=device)
    return temperature ** (2 * torch.div(index, 2, rounding_mode="floor") / num_pos_feats)


def _sin_cos(angles: torch.Tensor) -> torch.Tensor:
    """``(..., F)`` angles -> ``(..., F)`` with sine on even and cosine on odd channels."""
    return torch.stack((angles[..., 0::2].sin(), angles[..., 1::2].cos()), dim=-1).flatten(-2)


class PositionEmbeddingSine(nn.Module):
    """Sine position embedding of DETR: each valid pixel is embedded by its 1-based row and column index among
    the valid pixels of its image (cumulative count of unpadded pixels along the axis).

    Args:
        num_pos_feats: channels per axis; the output has ``2 * num_pos_feats`` (row channels first).
        temperature: base of the frequency progression.
        scale: with ``normalize``, positions are rescaled to ``(0, scale]``.
        eps: added to the denominator of the normalization.
        offset: with ``normalize``, added to the position before dividing:
            ``(position + offset) / (valid_length + eps) * scale`` (DINO uses ``-0.5``: pixel centres).
        normalize: whether to normalize positions by the number of valid pixels of the row/column.
    """

    def __init__(
        self,
        num_pos_feats: int = 64,
        temperature: int = 10000,
        scale: float = 2 * math.pi,
        eps: float = 1e-6,
        offset: float = 0.0,
        normalize: bool = False,
    ):
        super().__init__()
        _check_even(num_pos_feats)
        if normalize and not isinstance(scale, (int, float)):
            raise ValueError(f"scale must be a number when normalize=True, got {type(scale).__name__}")
        self.num_pos_feats = num_pos_feats
        self.temperature = temperature
        self.normalize = normalize
        self.scale = scale
        self.eps = eps
        self.offset = offset

    def forward(self, mask: torch.Tensor, **kwargs) -> torch.Tensor:
        """
        Args:
            mask: ``(bs, h, w)``, non-zero (True) on padded pixels.
        Returns:
            ``(bs, 2 * num_pos_feats, h, w)`` float32: row embedding channels, then column ones.
        """
        if mask.dim() != 3:
            raise ValueError(f"mask must be (bs, h, w), got shape {tuple(mask.shape)}")
        valid = mask == 0
        y_embed = valid.cumsum(1, dtype=torch.float32)
        x_embed = valid.cumsum(2, dtype=torch.float32)
        if self.normalize:
            y_embed = (y_embed + self.offset) / (y_embed[:, -1:, :] + self.eps) * self.scale
            x_embed = (x_embed + self.offset) / (x_embed[:, :, -1:] + self.eps) * self.scale
        dim_t = _frequencies(self.num_pos_feats, self.temperature, mask.device)
        pos_x = _sin_cos(x_embed[..., None] / dim_t)
        pos_y = _sin_cos(y_embed[..., None] / dim_t)
        return torch.cat((pos_y, pos_x), dim=3).permute(0, 3, 1, 2)


class PositionEmbeddingLearned(nn.Module):
    """Learned absolute position embedding: a row embedding and a column embedding, concatenated.

    Args:
        num_pos_feats: channels per axis; the output has ``2 * num_pos_feats`` (column channels first).
        row_num_embed: number of rows it can embed (the feature map height must not exceed it).
        col_num_embed: number of columns it can embed.
    """

    def __init__(self, num_pos_feats: int = 256, row_num_embed: int = 50, col_num_embed: int = 50):
        super().__init__()
        self.row_embed = nn.Embedding(row_num_embed, num_pos_feats)
        self.col_embed = nn.Embedding(col_num_embed, num_pos_feats)
        self.num_pos_feats = num_pos_feats
        self.row_num_embed = row_num_embed
        self.col_num_embed = col_num_embed
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Uniform(0, 1) initialization of both tables."""
        nn.init.uniform_(self.row_embed.weight)
        nn.init.uniform_(self.col_embed.weight)

    def forward(self, mask: torch.Tensor) -> torch.Tensor:
        """
        Args:
            mask: ``(bs, h, w)``; only its shape and device are used.
        Returns:
            ``(bs, 2 * num_pos_feats, h, w)``: ``[col_embed[x], row_embed[y]]`` at pixel ``(y, x)``.
        """
        bs, h, w = mask.shape
        if h > self.row_num_embed or w > self.col_num_embed:
            raise ValueError(
                f"feature map {h}x{w} exceeds the learned embedding tables "
                f"({self.row_num_embed} rows x {self.col_num_embed} columns)"
            )
        x_emb = self.col_embed(torch.arange(w, device=mask.device))  # (w, F)
        y_emb = self.row_embed(torch.arange(h, device=mask.device))  # (h, F)
        pos = torch.cat((x_emb[None, :, :].expand(h, w, -1), y_emb[:, None, :].expand(h, w, -1)), dim=-1)
        return pos.permute(2, 0, 1)[None].expand(bs, -1, -1, -1).contiguous()


def get_sine_pos_embed(
    pos_tensor: torch.Tensor,
    num_pos_feats: int = 128,
    temperature: int = 10000,
    exchange_xy: bool = True,
) -> torch.Tensor:
    """Sine embedding of each coordinate of normalized positions (e.g. ``(cx, cy, w, h)`` in ``[0, 1]``).

    Each coordinate ``v`` becomes ``num_pos_feats`` channels of ``v * 2 * pi / temperature ** (2k / F)``
    (sine on even, cosine on odd channels); the per-coordinate embeddings are concatenated in order, with the
    first two swapped when ``exchange_xy`` (``[x, y, ...] -> [emb(y), emb(x), ...]``).

    Args:
        pos_tensor: ``(..., n)`` coordinates.
    Returns:
        ``(..., n * num_pos_feats)``.
    """
    _check_even(num_pos_feats)
    dim_t = _frequencies(num_pos_feats, temperature, pos_tensor.device)
    embeds = list(_sin_cos(pos_tensor[..., None] * (2 * math.pi) / dim_t).unbind(-2))
    if exchange_xy:
        if len(embeds) < 2:
            raise ValueError(f"exchange_xy needs at least 2 coordinates, got shape {tuple(pos_tensor.shape)}")
        embeds[0], embeds[1] = embeds[1], embeds[0]
    return torch.cat(embeds, dim=-1)
