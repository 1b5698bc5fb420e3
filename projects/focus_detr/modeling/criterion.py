"""Focus-DETR's foreground token loss ``loss_select``, as an extra loss of detrkit's criteria: Focus-DETR's
criterion is ``DINOCriterion(extra_losses=[ForegroundTokenLoss()])``."""

import torch
from torch import nn

from detrkit_projects.focus_detr.modeling.foreground_supervision import (
    ForegroundLabelAssigner,
    foreground_token_loss,
)

__all__ = ["ForegroundTokenLoss"]


class ForegroundTokenLoss(nn.Module):
    """``loss_select`` (detrex: ``select_loss``; weight 1.5 in the configs): the focal loss of
    ``outputs["foreground_logits"]`` ``(bs, S)`` against the labels ``label_assigner`` gives each token from
    the targets' ``"boxes_xyxy"`` (input-image pixels) and ``outputs["spatial_shapes"]`` ``(L, 2)``.

    Args:
        label_assigner: None builds ``ForegroundLabelAssigner()`` (the official code's scale ranges).
        alpha, gamma: focal parameters. Default 0.25, 2.0 (the official code's, the class loss's).
    """

    def __init__(self, label_assigner: nn.Module | None = None, alpha: float = 0.25, gamma: float = 2.0):
        super().__init__()
        self.label_assigner = ForegroundLabelAssigner() if label_assigner is None else label_assigner
        self.alpha = alpha
        self.gamma = gamma

    def forward(self, outputs: dict, targets: list[dict]) -> dict[str, torch.Tensor]:
        """``{"loss_select": scalar}``, unweighted."""
        labels = self.label_assigner([t["boxes_xyxy"] for t in targets], outputs["spatial_shapes"])
        return {
            "loss_select": foreground_token_loss(
                outputs["foreground_logits"], labels, alpha=self.alpha, gamma=self.gamma
            )
        }

    def extra_repr(self) -> str:
        return f"alpha={self.alpha}, gamma={self.gamma}"
