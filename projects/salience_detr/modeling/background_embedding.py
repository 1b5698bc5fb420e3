"""Background embedding (Salience DETR sec. 3.3): a learned embedding added after the encoder to every valid
token that the last encoder layer did not update, so that filtered-out background tokens stay distinguishable
from foreground ones."""

import torch
import torch.nn.functional as F
from torch import nn

from detrkit.layers import PositionEmbeddingLearned

__all__ = ["BackgroundEmbedding"]


class BackgroundEmbedding(nn.Module):
    """Adds a learned per-position embedding to the background tokens.

    - ``"absolute"`` (official code): ``[col_embed[x], row_embed[y]]`` from two tables of ``max_positions``
      rows of ``C/2`` features (detrkit's :class:`PositionEmbeddingLearned`, U(0, 1) init).
    - ``"relative"`` (paper's alternative): per channel the outer product ``row[c, :] x col[c, :]`` of two
      ``(C, max_positions)`` tables, bilinearly resized (``align_corners=True``) to each level's ``H x W``, so
      that the embedding depends on the relative position in the map.

    Args:
        embed_dim: ``C`` (even). Default 256.
        max_positions: table length (largest feature map side for ``"absolute"``). Default 200.
        mode: ``"absolute"`` (default) or ``"relative"``.
    """

    def __init__(self, embed_dim: int = 256, max_positions: int = 200, mode: str = "absolute"):
        super().__init__()
        if mode not in ("absolute", "relative"):
            raise ValueError(f"BackgroundEmbedding: mode={mode!r} must be 'absolute' or 'relative'")
        if embed_dim % 2:
            raise ValueError(f"BackgroundEmbedding: embed_dim={embed_dim} must be even")
        self.mode = mode
        if mode == "absolute":
            self.embedding = PositionEmbeddingLearned(embed_dim // 2, max_positions, max_positions)
        else:
            self.row_embed = nn.Parameter(torch.rand(embed_dim, max_positions))
            self.col_embed = nn.Parameter(torch.rand(embed_dim, max_positions))

    def level_embedding(self, batch: int, height: int, width: int) -> torch.Tensor:
        """``(batch, C, height, width)`` embedding of one level."""
        if self.mode == "absolute":
            return self.embedding(self.embedding.row_embed.weight.new_empty(batch, height, width))
        outer = self.row_embed[:, :, None] * self.col_embed[:, None, :]  # (C, P, P)
        resized = F.interpolate(outer[None], size=(height, width), mode="bilinear", align_corners=True)
        return resized.expand(batch, -1, -1, -1)

    def forward(
        self,
        memory: torch.Tensor,
        padding_mask: torch.Tensor,
        spatial_shapes: torch.Tensor,
        foreground_indices: torch.Tensor,
    ) -> torch.Tensor:
        """``memory + embedding`` at every unpadded token not listed in ``foreground_indices``.

        Args:
            memory: ``(bs, S, C)`` encoder output; padding_mask: ``(bs, S)`` True at padding.
            spatial_shapes: ``(L, 2)``.
            foreground_indices: ``(bs, K)`` the tokens of the last encoder layer (all ``K`` listed, as the
                official code, even those an image does not write back).
        """
        batch = memory.shape[0]
        embedding = torch.cat(
            [self.level_embedding(batch, h, w).flatten(2) for h, w in spatial_shapes.tolist()], 2
        ).transpose(1, 2)
        embedding = embedding.scatter(
            1, foreground_indices[..., None].expand(-1, -1, embedding.shape[-1]), 0.0
        )
        return memory + embedding * (~padding_mask)[..., None]
