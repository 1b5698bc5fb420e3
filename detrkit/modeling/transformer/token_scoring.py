"""Foreground scores of the encoder tokens, shared by Focus-DETR (Zheng et al., ICCV 2023) and Salience DETR
(Hou et al., CVPR 2024): a per-token score predictor with a global context half, run level by level from the
coarsest to the finest feature map, each finer level modulated by the upsampled scores of the coarser one.

- :class:`ForegroundScorePredictor`: ``(bs, N, C) -> (bs, N)`` logits of one level (Focus-DETR's
  ``MaskPredictor``).
- :class:`TopDownScoreModulation`: the coarse-to-fine loop over all levels with the learnable factors
  ``alpha`` (Focus-DETR eq. 3, Salience DETR eq. 4).
"""

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["ForegroundScorePredictor", "TopDownScoreModulation"]


class ForegroundScorePredictor(nn.Module):
    """One foreground logit per token from a local feature and a global (image-level) context feature.

    ``z = GELU(Linear(LN(x)))`` is split into halves ``[z_local, z_global]``; ``z_global`` is replaced by its
    mean over the tokens of the image, then ``[z_local, mean(z_global)]`` goes through
    ``Linear(h, h/2) - GELU - Linear(h/2, h/4) - GELU - Linear(h/4, 1)``.

    Args:
        embed_dim: input width ``C``. Default 256.
        hidden_dim: ``h``, width of the first projection (even, divisible by 4). Default 256.
        pool_valid_only: average the global half over the unpadded tokens only. Default False: both
            official codes average over all tokens of the level, padding included.

    Parameters: ``embed`` (``LayerNorm``, ``Linear``, ``GELU``) and ``head`` (the MLP; ``Linear`` modules at
    indices 0, 2, 4).
    """

    def __init__(self, embed_dim: int = 256, hidden_dim: int = 256, pool_valid_only: bool = False):
        super().__init__()
        if hidden_dim % 4:
            raise ValueError(f"ForegroundScorePredictor: hidden_dim={hidden_dim} must be divisible by 4")
        self.hidden_dim = hidden_dim
        self.pool_valid_only = pool_valid_only
        self.embed = nn.Sequential(nn.LayerNorm(embed_dim), nn.Linear(embed_dim, hidden_dim), nn.GELU())
        self.head = nn.Sequential(
            nn.Linear(hidden_dim, hidden_dim // 2),
            nn.GELU(),
            nn.Linear(hidden_dim // 2, hidden_dim // 4),
            nn.GELU(),
            nn.Linear(hidden_dim // 4, 1),
        )

    def forward(self, tokens: torch.Tensor, padding_mask: torch.Tensor | None = None) -> torch.Tensor:
        """Logits ``(bs, N)`` of ``(bs, N, C)`` tokens (one image each, e.g. one feature level);
        ``padding_mask`` ``(bs, N)`` (True at padding) is needed only with ``pool_valid_only``."""
        z = self.embed(tokens)
        z_local, z_global = z.split(self.hidden_dim // 2, dim=-1)
        if self.pool_valid_only:
            if padding_mask is None:
                raise ValueError("ForegroundScorePredictor(pool_valid_only=True) needs the padding_mask")
            valid = (~padding_mask).unsqueeze(-1).to(z.dtype)
            pooled = (z_global * valid).sum(1, keepdim=True) / valid.sum(1, keepdim=True).clamp(min=1)
        else:
            pooled = z_global.mean(1, keepdim=True)
        z = torch.cat([z_local, pooled.expand_as(z_global)], -1)
        return self.head(z).squeeze(-1)


class TopDownScoreModulation(nn.Module):
    """Foreground logits of all levels, coarse to fine (Focus-DETR eq. 3, Salience DETR eq. 4).

    The coarsest level ``L-1`` is scored as it is; every finer level ``l`` is first modulated by the raw
    logits of level ``l+1`` bilinearly upsampled to its size (``align_corners=True``)::

        m_l <- m_l + m_l * up(s_{l+1}) * alpha_l,      s_l = predictor(m_l)

    ``alpha`` has ``L - 1`` learnable entries indexed by the finer level ``l`` (Salience DETR's layout;
    Focus-DETR's checkpoints store them coarse-to-fine, reversed), initialised U(-0.3, 0.3).

    Args:
        predictor: e.g. :class:`ForegroundScorePredictor`; ``predictor(tokens (bs, N, C), mask (bs, N))``.
        num_feature_levels: ``L``. Default 4.
    """

    def __init__(self, predictor: nn.Module, num_feature_levels: int = 4):
        super().__init__()
        if num_feature_levels < 1:
            raise ValueError(f"TopDownScoreModulation: num_feature_levels={num_feature_levels} must be >= 1")
        self.predictor = predictor
        self.num_feature_levels = num_feature_levels
        self.alpha = nn.Parameter(torch.empty(num_feature_levels - 1))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        nn.init.uniform_(self.alpha, -0.3, 0.3)

    def forward(
        self,
        memory: torch.Tensor,
        padding_mask: torch.Tensor,
        spatial_shapes: torch.Tensor,
        level_start_index: torch.Tensor,
    ) -> torch.Tensor:
        """Foreground logits of every token.

        Args:
            memory: ``(bs, S, C)`` flattened tokens of all levels (finest first), e.g. the two-stage
                projection of features + position embeddings.
            padding_mask: ``(bs, S)`` bool, True at padding.
            spatial_shapes: ``(L, 2)`` int64 ``(H_l, W_l)``.
            level_start_index: ``(L,)`` int64.

        Returns:
            ``(bs, S)`` raw logits (padding not masked), in ``memory``'s token order.
        """
        if spatial_shapes.shape[0] != self.num_feature_levels:
            raise ValueError(
                f"TopDownScoreModulation built for {self.num_feature_levels} levels, got "
                f"{spatial_shapes.shape[0]} spatial shapes"
            )
        batch, num_tokens, channels = memory.shape
        shapes = spatial_shapes.tolist()
        starts = level_start_index.tolist() + [num_tokens]
        scores: list[torch.Tensor] = [memory.new_empty(0)] * self.num_feature_levels
        coarser: torch.Tensor | None = None
        for level in range(self.num_feature_levels - 1, -1, -1):
            height, width = shapes[level]
            tokens = memory[:, starts[level] : starts[level + 1]]
            if coarser is not None:
                up = F.interpolate(coarser, size=(height, width), mode="bilinear", align_corners=True)
                tokens = tokens + tokens * up.flatten(2).transpose(1, 2) * self.alpha[level]
            scores[level] = self.predictor(tokens, padding_mask[:, starts[level] : starts[level + 1]])
            coarser = scores[level].view(batch, 1, height, width)
        return torch.cat(scores, 1)
