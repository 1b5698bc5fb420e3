"""Multi-scale feature maps flattened into one token sequence for the deformable transformer, with the
per-level bookkeeping (spatial shapes, level starts, valid ratios, encoder reference points)."""

from dataclasses import dataclass

import torch

__all__ = [
    "MultiLevelTokens",
    "encoder_reference_points",
    "flatten_multi_level",
    "get_valid_ratio",
    "token_grid",
]


@dataclass
class MultiLevelTokens:
    """``L`` feature levels flattened and concatenated; ``S = sum_l H_l * W_l`` tokens.

    Attributes:
        feat: ``(bs, S, C)`` features.
        mask: ``(bs, S)`` bool, True at padding.
        pos: ``(bs, S, C)`` positional embedding plus the level embedding.
        spatial_shapes: ``(L, 2)`` int64 ``(H_l, W_l)``.
        level_start_index: ``(L,)`` int64, first token of each level.
        valid_ratios: ``(bs, L, 2)`` unpadded fraction ``(w, h)`` of each level.
    """

    feat: torch.Tensor
    mask: torch.Tensor
    pos: torch.Tensor
    spatial_shapes: torch.Tensor
    level_start_index: torch.Tensor
    valid_ratios: torch.Tensor


def get_valid_ratio(mask: torch.Tensor) -> torch.Tensor:
    """``(bs, H, W)`` padding mask (True at padding, padding at the bottom/right) -> ``(bs, 2)`` unpadded
    fractions ``(w, h)``."""
    _, height, width = mask.shape
    valid_h = (~mask[:, :, 0]).sum(1).float() / height
    valid_w = (~mask[:, 0, :]).sum(1).float() / width
    return torch.stack([valid_w, valid_h], -1)


def flatten_multi_level(
    multi_level_feats: list[torch.Tensor],
    multi_level_masks: list[torch.Tensor],
    multi_level_pos_embeds: list[torch.Tensor],
    level_embeds: torch.Tensor,
) -> MultiLevelTokens:
    """Flattens ``L`` levels of ``(bs, C, H_l, W_l)`` features, ``(bs, H_l, W_l)`` masks and
    ``(bs, C, H_l, W_l)`` positional embeddings; adds ``level_embeds[l]`` (``(L, C)``) to level ``l``'s
    positions (Deformable DETR's scale-level embedding)."""
    if not len(multi_level_feats) == len(multi_level_masks) == len(multi_level_pos_embeds):
        raise ValueError(
            f"{len(multi_level_feats)} feature levels, {len(multi_level_masks)} masks and "
            f"{len(multi_level_pos_embeds)} position embeddings: they must match"
        )
    if len(multi_level_feats) > level_embeds.shape[0]:
        raise ValueError(
            f"{len(multi_level_feats)} feature levels but only {level_embeds.shape[0]} level embeddings "
            "(num_feature_levels)"
        )
    feats, masks, positions = [], [], []
    for level, (feat, mask, pos) in enumerate(
        zip(multi_level_feats, multi_level_masks, multi_level_pos_embeds, strict=True)
    ):
        feats.append(feat.flatten(2).transpose(1, 2))
        masks.append(mask.flatten(1))
        positions.append(pos.flatten(2).transpose(1, 2) + level_embeds[level].view(1, 1, -1))
    feat = torch.cat(feats, 1)
    spatial_shapes = torch.as_tensor(
        [tuple(f.shape[-2:]) for f in multi_level_feats], dtype=torch.long, device=feat.device
    )
    level_start_index = torch.cat((spatial_shapes.new_zeros(1), spatial_shapes.prod(1).cumsum(0)[:-1]))
    valid_ratios = torch.stack([get_valid_ratio(m) for m in multi_level_masks], 1)
    return MultiLevelTokens(
        feat, torch.cat(masks, 1), torch.cat(positions, 1), spatial_shapes, level_start_index, valid_ratios
    )


def token_grid(spatial_shapes: torch.Tensor, num_tokens: int) -> tuple[torch.Tensor, ...]:
    """Level, row and column of every token of the flattened levels, as tensors (no Python loop over the
    levels and no host read of ``spatial_shapes``, so ``torch.export`` sees only the static ``num_tokens``).

    Args:
        spatial_shapes: ``(L, 2)`` int64 ``(H_l, W_l)``.
        num_tokens: ``S = sum_l H_l * W_l``.

    Returns:
        ``level``, ``row``, ``column``: ``(S,)`` int64 each.
    """
    sizes = spatial_shapes.prod(1)
    ends = sizes.cumsum(0)
    index = torch.arange(num_tokens, device=spatial_shapes.device)
    level = (index[:, None] >= ends[None, :]).sum(1)
    local = index - (ends - sizes)[level]
    width = spatial_shapes[level, 1]
    return level, torch.div(local, width, rounding_mode="floor"), local % width


def encoder_reference_points(
    spatial_shapes: torch.Tensor, valid_ratios: torch.Tensor, num_tokens: int | None = None
) -> torch.Tensor:
    """Each encoder token's reference point: its pixel centre normalised by the unpadded size of its own
    level, ``((j + 0.5) / (r_w W_l), (i + 0.5) / (r_h H_l))``, then rescaled to every level by that level's
    valid ratio (so one point addresses the same image location on all levels).

    Args:
        spatial_shapes: ``(L, 2)`` int64 ``(H_l, W_l)``.
        valid_ratios: ``(bs, L, 2)`` ``(w, h)``.
        num_tokens: ``S``; pass it (e.g. the memory's length) where the graph is captured: without it it is
            read from ``spatial_shapes`` (a host read).

    Returns:
        ``(bs, S, L, 2)`` points ``(x, y)``.
    """
    if num_tokens is None:
        num_tokens = int(spatial_shapes.prod(1).sum())
    level, row, column = token_grid(spatial_shapes, num_tokens)
    centres = torch.stack((column, row), -1).to(torch.float32) + 0.5  # (S, 2) x, y
    size = spatial_shapes[level].flip(-1).to(torch.float32)  # (S, 2) W, H
    points = centres / (valid_ratios[:, level] * size)  # (bs, S, 2)
    return points[:, :, None] * valid_ratios[:, None]
