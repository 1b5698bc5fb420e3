"""Grid proposals for two-stage query selection: a fixed box per encoder token (Deformable DETR sec. 4.1)."""

import torch

from detrkit.modeling.transformer.multi_level import token_grid

__all__ = ["grid_proposals"]


def grid_proposals(
    memory_padding_mask: torch.Tensor, spatial_shapes: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """A box per token, centred on its pixel, side ``0.05 * 2^l`` on level ``l``, in logit space.

    Centres are normalised by each image's unpadded size on that level:
    ``cx = (j + 0.5) / W_valid``, ``cy = (i + 0.5) / H_valid``. A proposal is valid iff all four
    coordinates lie in (0.01, 0.99) and its token is not padding; invalid ones are ``+inf``.

    Args:
        memory_padding_mask: ``(bs, S)`` bool, True at padding.
        spatial_shapes: ``(L, 2)`` int64 ``(H_l, W_l)``.

    Returns:
        proposals: ``(bs, S, 4)`` ``sigmoid^-1((cx, cy, w, h))``, ``+inf`` where invalid.
        valid: ``(bs, S, 1)`` bool, True where the box lies in (0.01, 0.99) (padding is not checked here).
    """
    num_levels = spatial_shapes.shape[0]
    level, row, column = token_grid(spatial_shapes, memory_padding_mask.shape[1])
    # unpadded height (width) of each image's level: its valid tokens in column (row) 0
    one_hot = (level[:, None] == torch.arange(num_levels, device=level.device)).float()  # (S, L)
    valid = (~memory_padding_mask).float()
    valid_h = (valid * (column == 0)) @ one_hot  # (bs, L), exact integer counts
    valid_w = (valid * (row == 0)) @ one_hot
    scale = torch.stack([valid_w, valid_h], -1)[:, level]  # (bs, S, 2)
    centres = (torch.stack([column, row], -1).to(torch.float32) + 0.5) / scale
    side = torch.tensor([0.05 * 2.0**i for i in range(num_levels)], device=level.device)[level]
    proposals = torch.cat((centres, side[None, :, None].expand_as(centres)), -1)
    valid = ((proposals > 0.01) & (proposals < 0.99)).all(-1, keepdim=True)
    proposals = torch.log(proposals / (1 - proposals))
    proposals = proposals.masked_fill(memory_padding_mask[..., None], float("inf"))
    proposals = proposals.masked_fill(~valid, float("inf"))
    return proposals, valid
