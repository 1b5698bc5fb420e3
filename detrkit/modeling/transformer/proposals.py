"""Grid proposals for two-stage query selection: a fixed box per encoder token (Deformable DETR sec. 4.1)."""

import torch

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
    batch = memory_padding_mask.shape[0]
    device = memory_padding_mask.device
    proposals = []
    start = 0
    for level, (height, width) in enumerate(spatial_shapes.tolist()):
        mask = memory_padding_mask[:, start : start + height * width].view(batch, height, width)
        valid_h = (~mask[:, :, 0]).sum(1)
        valid_w = (~mask[:, 0, :]).sum(1)
        grid_y, grid_x = torch.meshgrid(
            torch.arange(height, dtype=torch.float32, device=device),
            torch.arange(width, dtype=torch.float32, device=device),
            indexing="ij",
        )
        grid = torch.stack([grid_x, grid_y], -1)
        scale = torch.stack([valid_w, valid_h], -1).view(batch, 1, 1, 2)
        centres = (grid[None] + 0.5) / scale
        sizes = torch.full_like(centres, 0.05 * 2.0**level)
        proposals.append(torch.cat((centres, sizes), -1).view(batch, -1, 4))
        start += height * width
    proposals = torch.cat(proposals, 1)
    valid = ((proposals > 0.01) & (proposals < 0.99)).all(-1, keepdim=True)
    proposals = torch.log(proposals / (1 - proposals))
    proposals = proposals.masked_fill(memory_padding_mask[..., None], float("inf"))
    proposals = proposals.masked_fill(~valid, float("inf"))
    return proposals, valid
