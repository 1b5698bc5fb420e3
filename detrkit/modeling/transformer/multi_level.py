"""Multi-scale feature maps flattened into one token sequence for the deformable transformer, with the
per-level bookkeeping (spatial shapes, level starts, valid ratios, encoder reference points)."""

from dataclasses import dataclass

import torch

__all__ = ["MultiLevelTokens", "encoder_reference_points", "flatten_multi_level", "get_valid_ratio"]


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


def encoder_reference_points(spatial_shapes: torch.Tensor, valid_ratios: torch.Tensor) -> torch.Tensor:
    """Each encoder token's reference point: its pixel centre normalised by the unpadded size of its own
    level, ``((j + 0.5) / (r_w W_l), (i + 0.5) / (r_h H_l))``, then rescaled to every level by that level's
    valid ratio (so one point addresses the same image location on all levels).

    Args:
        spatial_shapes: ``(L, 2)`` int64 ``(H_l, W_l)``.
        valid_ratios: ``(bs, L, 2)`` ``(w, h)``.

    Returns:
        ``(bs, S, L, 2)`` points ``(x, y)``.
    """
    points = []
    for level, (height, width) in enumerate(spatial_shapes.tolist()):
        ref_y, ref_x = torch.meshgrid(
            torch.arange(height, dtype=torch.float32, device=valid_ratios.device) + 0.5,
            torch.arange(width, dtype=torch.float32, device=valid_ratios.device) + 0.5,
            indexing="ij",
        )
        ref_x = ref_x.reshape(1, -1) / (valid_ratios[:, None, level, 0] * width)
        ref_y = ref_y.reshape(1, -1) / (valid_ratios[:, None, level, 1] * height)
        points.append(torch.stack((ref_x, ref_y), -1))
    return torch.cat(points, 1)[:, :, None] * valid_ratios[:, None]
