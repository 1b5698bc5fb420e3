"""Focus-DETR's criterion: DINO's losses plus the foreground token loss ``loss_select``."""

from torch import nn

from detrkit.modeling.criterion import DINOCriterion
from detrkit_projects.focus_detr.modeling.foreground_supervision import (
    ForegroundLabelAssigner,
    foreground_token_loss,
)

__all__ = ["FocusDETRCriterion"]


class FocusDETRCriterion(DINOCriterion):
    """:class:`DINOCriterion` plus ``loss_select`` (detrex: ``select_loss``; weight 1.5 in the configs): the
    focal loss of the foreground logits against the labels of ``label_assigner``.

    Reads ``outputs["foreground_logits"]`` ``(bs, S)``, ``outputs["spatial_shapes"]`` ``(L, 2)`` and each
    target's ``"boxes_xyxy"`` (input-image pixels).

    Args:
        *args, **kwargs: :class:`DINOCriterion`'s (the focal ``alpha``/``gamma`` also serve ``loss_select``).
        label_assigner: None builds ``ForegroundLabelAssigner()`` (the official code's scale ranges).
    """

    def __init__(self, *args, label_assigner: nn.Module | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.label_assigner = ForegroundLabelAssigner() if label_assigner is None else label_assigner

    def forward(self, outputs: dict, targets: list[dict], dn_metas: dict | None = None) -> dict:
        """Unweighted losses of :class:`DINOCriterion` and ``loss_select``."""
        losses = super().forward(outputs, targets, dn_metas)
        labels = self.label_assigner([t["boxes_xyxy"] for t in targets], outputs["spatial_shapes"])
        losses["loss_select"] = foreground_token_loss(
            outputs["foreground_logits"], labels, alpha=self.alpha, gamma=self.gamma
        )
        return losses
