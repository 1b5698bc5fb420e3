"""The GIoU-aware classification loss (Rank-DETR sec. 3.2, eq. 5), as a loss function and as the class-loss
slot of detrkit's criteria."""

import torch

from detrkit.modeling.criterion import FocalClassLoss, StageMatches, matched_targets
from detrkit.modeling.losses import quality_focal_loss
from detrkit.modeling.losses.giou_loss import paired_generalized_box_iou
from detrkit.structures.box_ops import box_cxcywh_to_xyxy

__all__ = ["GIoUAwareClassLoss", "giou_aware_focal_loss"]


def giou_aware_focal_loss(
    preds: torch.Tensor,
    targets: torch.Tensor,
    quality: torch.Tensor,
    alpha: float = 0.25,
    gamma: float = 2.0,
    reduction: str = "sum",
    avg_factor: float | None = None,
) -> torch.Tensor:
    """Element-wise focal loss whose positive target is the localisation quality ``t`` (eq. 5; the
    :func:`~detrkit.modeling.losses.quality_focal_loss` with the one-hot positives):

        positives (``targets == 1``):  alpha * |t - p|^gamma * BCE(x, t)
        negatives (``targets == 0``):  (1 - alpha) * p^gamma * BCE(x, 0)

    with ``p = sigmoid(x)``. With ``t = 1`` it is the sigmoid focal loss.

    Args:
        preds: logits ``(..., C)``.
        targets: one-hot ``(..., C)`` (0 / 1).
        quality: ``(...)`` target score ``t`` in [0, 1] of each query's positive class (ignored where a
            query has none); not differentiated.
        alpha, gamma: focal parameters.
        reduction, avg_factor: see :func:`~detrkit.modeling.losses.weight_reduce_loss`.
    """
    if preds.shape != targets.shape or quality.shape != preds.shape[:-1]:
        raise ValueError(
            f"giou_aware_focal_loss: preds {tuple(preds.shape)}, targets {tuple(targets.shape)} and quality "
            f"{tuple(quality.shape)} must be (..., C), (..., C), (...)"
        )
    soft_targets = targets.float() * quality.float()[..., None]
    return quality_focal_loss(preds, soft_targets, alpha, gamma, reduction, avg_factor, positives=targets > 0)


class GIoUAwareClassLoss(FocalClassLoss):
    """Rank-DETR's ``loss_class`` (eq. 5): :func:`giou_aware_focal_loss` of the ``(bs, nq, C)`` logits with
    ``t = (GIoU(matched prediction, its target) + 1) / 2`` (the GIoU with the criterion's ``iou_eps``,
    detrex's 1e-6 as in the official code), summed and divided by ``num_boxes``. A class-loss slot of
    detrkit's criteria (see :mod:`detrkit.modeling.criterion.class_losses`); the official code keeps the
    focal loss for the encoder proposals (``TwoStageCriterion(enc_class_loss=FocalClassLoss())``).

    Args:
        alpha, gamma: focal parameters. Default 0.25, 2.0.
    """

    def forward(
        self,
        outputs: dict,
        targets: list[dict],
        indices,
        num_boxes: float,
        iou_eps: float = 1e-6,
        stages: StageMatches | None = None,
    ) -> torch.Tensor:
        """Scalar ``loss_class`` of one layer."""
        logits = outputs["pred_logits"]
        matched = matched_targets(targets, indices, logits.device)
        giou = paired_generalized_box_iou(
            box_cxcywh_to_xyxy(outputs["pred_boxes"][matched.batch_idx, matched.query_idx].float()),
            box_cxcywh_to_xyxy(matched.boxes.float()),
            eps=iou_eps,
        )
        quality = torch.zeros(logits.shape[:2], device=logits.device)
        quality[matched.batch_idx, matched.query_idx] = (giou.detach() + 1) / 2
        onehot = matched.onehot(logits.float())
        return (
            giou_aware_focal_loss(logits, onehot, quality, self.alpha, self.gamma, reduction="sum")
            / num_boxes
        )
