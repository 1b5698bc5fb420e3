"""Salience DETR's losses (official code), as the slots of detrkit's criteria: the IoU-aware
(varifocal-style) class loss and the salience token loss ``loss_salience``. Salience DETR's criterion is
``DINOCriterion(class_loss=IoUAwareClassLoss(), extra_losses=[SalienceLoss()], iou_eps=0)``."""

import torch
import torch.nn.functional as F
from torch import nn

from detrkit.modeling.criterion import FocalClassLoss, StageMatches, matched_targets
from detrkit.structures.box_ops import box_cxcywh_to_xyxy, paired_box_iou
from detrkit_projects.salience_detr.modeling.salience_supervision import (
    SalienceTargetGenerator,
    salience_focal_loss,
)

__all__ = ["IoUAwareClassLoss", "SalienceLoss", "iou_aware_focal_loss"]


def iou_aware_focal_loss(
    logits: torch.Tensor, onehot: torch.Tensor, quality: torch.Tensor, alpha: float = 0.25, gamma: float = 2.0
) -> torch.Tensor:
    """Per-element varifocal-style loss of the official code (RT-DETR's): target ``q = onehot * quality``,
    weight ``(1 - alpha) p^gamma (1 - onehot) + q`` with ``p = sigmoid(x)`` detached, ``BCE(x, q) * weight``.

    Args:
        logits: ``(bs, nq, C)``; onehot: ``(bs, nq, C)`` 0/1 matched classes; quality: ``(bs, nq)`` IoU of the
            matched box (0 for unmatched queries).
    """
    prob = logits.sigmoid().detach()
    target = onehot * quality[..., None]
    weight = (1 - alpha) * prob**gamma * (1 - onehot) + target
    return F.binary_cross_entropy_with_logits(logits, target, weight=weight, reduction="none")


class IoUAwareClassLoss(FocalClassLoss):
    """Salience DETR's ``loss_class`` (official code): :func:`iou_aware_focal_loss` of the ``(bs, nq, C)``
    logits with the IoU (criterion's ``iou_eps``) of each matched prediction and its target (detached) as
    quality, summed and divided by ``num_boxes``. A class-loss slot of detrkit's criteria (see
    :mod:`detrkit.modeling.criterion.class_losses`).

    Args:
        alpha, gamma: focal parameters. Default 0.25, 2.0.
    """

    def forward(
        self,
        outputs: dict,
        targets: list[dict],
        indices,
        num_boxes: float,
        iou_eps: float = 0.0,
        stages: StageMatches | None = None,
    ) -> torch.Tensor:
        """Scalar ``loss_class`` of one layer."""
        logits = outputs["pred_logits"]
        matched = matched_targets(targets, indices, logits.device)
        src_boxes = outputs["pred_boxes"][matched.batch_idx, matched.query_idx]
        quality = logits.new_zeros(logits.shape[:2])
        quality[matched.batch_idx, matched.query_idx] = paired_box_iou(
            box_cxcywh_to_xyxy(src_boxes), box_cxcywh_to_xyxy(matched.boxes.to(src_boxes)), eps=iou_eps
        ).detach()
        loss = iou_aware_focal_loss(
            logits, matched.onehot(logits), quality, alpha=self.alpha, gamma=self.gamma
        )
        return loss.sum() / num_boxes


class SalienceLoss(nn.Module):
    """``loss_salience`` (weight 2 in the configs): :func:`salience_focal_loss` of
    ``outputs["salience_logits"]`` ``(bs, S)`` against the targets of ``target_generator`` built from each
    target's ``"boxes_xyxy"`` (input pixels) and ``"input_size"`` (the padded batch's ``(H, W)``) and
    ``outputs["spatial_shapes"]`` ``(L, 2)``. An extra loss of detrkit's criteria.

    Args:
        target_generator: None builds ``SalienceTargetGenerator()`` (official code: level gating).
        alpha, gamma: focal parameters. Default 0.25, 2.0.
    """

    def __init__(self, target_generator: nn.Module | None = None, alpha: float = 0.25, gamma: float = 2.0):
        super().__init__()
        self.target_generator = SalienceTargetGenerator() if target_generator is None else target_generator
        self.alpha = alpha
        self.gamma = gamma

    def forward(self, outputs: dict, targets: list[dict]) -> dict:
        """``{"loss_salience": scalar}``, unweighted."""
        logits = outputs["salience_logits"]
        salience_targets = self.target_generator(
            [t["boxes_xyxy"] for t in targets], outputs["spatial_shapes"], targets[0]["input_size"]
        )
        return {
            "loss_salience": salience_focal_loss(logits, salience_targets.to(logits), self.alpha, self.gamma)
        }

    def extra_repr(self) -> str:
        return f"alpha={self.alpha}, gamma={self.gamma}"
