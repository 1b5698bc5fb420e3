"""Salience DETR's criterion (official code): DINO's matching, box and denoising losses with an IoU-aware
(varifocal-style) classification loss, plus the salience loss ``loss_salience``."""

import torch
import torch.nn.functional as F
from torch import nn

from detrkit.modeling.criterion import DINOCriterion
from detrkit.structures.box_ops import box_cxcywh_to_xyxy, paired_box_iou
from detrkit_projects.salience_detr.modeling.salience_supervision import (
    SalienceTargetGenerator,
    salience_focal_loss,
)

__all__ = ["SalienceDETRCriterion", "iou_aware_focal_loss"]


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


class SalienceDETRCriterion(DINOCriterion):
    """:class:`DINOCriterion` with the official code's classification loss and ``loss_salience``.

    ``loss_class`` (every decoder layer, encoder proposals, denoising): :func:`iou_aware_focal_loss` with
    the IoU of each matched prediction and its target (detached), summed and divided by ``num_boxes``; with
    ``iou_aware_class_loss=False`` DINO's focal loss. ``loss_salience`` (weight 2 in the configs):
    :func:`salience_focal_loss` of ``outputs["salience_logits"]`` ``(bs, S)`` against the targets of
    ``target_generator`` built from each target's ``"boxes_xyxy"`` (input pixels) and ``"input_size"`` (the
    padded batch's ``(H, W)``) and ``outputs["spatial_shapes"]``.

    Args:
        *args, **kwargs: :class:`DINOCriterion`'s (the focal ``alpha``/``gamma`` also serve the new losses).
        target_generator: None builds ``SalienceTargetGenerator()`` (official code: level gating).
        iou_aware_class_loss: the official code's IoU-aware class loss (default) or DINO's focal loss.
    """

    def __init__(
        self, *args, target_generator: nn.Module | None = None, iou_aware_class_loss: bool = True, **kwargs
    ):
        super().__init__(*args, **kwargs)
        self.target_generator = SalienceTargetGenerator() if target_generator is None else target_generator
        self.iou_aware_class_loss = iou_aware_class_loss

    def loss_labels(self, outputs: dict, targets: list[dict], indices, num_boxes: float) -> dict:
        """``loss_class``: see the class docstring."""
        if not self.iou_aware_class_loss:
            return super().loss_labels(outputs, targets, indices, num_boxes)
        logits = outputs["pred_logits"]
        idx = self._get_src_permutation_idx(indices)
        src_boxes = outputs["pred_boxes"][idx]
        tgt_boxes = torch.cat([t["boxes"][j] for t, (_, j) in zip(targets, indices, strict=True)]).to(
            src_boxes
        )
        quality = logits.new_zeros(logits.shape[:2])
        quality[idx] = paired_box_iou(
            box_cxcywh_to_xyxy(src_boxes), box_cxcywh_to_xyxy(tgt_boxes), eps=self.iou_eps
        ).detach()
        classes = torch.full(logits.shape[:2], self.num_classes, dtype=torch.int64, device=logits.device)
        classes[idx] = torch.cat([t["labels"][j] for t, (_, j) in zip(targets, indices, strict=True)]).to(
            logits.device, torch.int64
        )
        onehot = F.one_hot(classes, self.num_classes + 1)[..., :-1].to(logits.dtype)
        loss = iou_aware_focal_loss(logits, onehot, quality, alpha=self.alpha, gamma=self.gamma)
        return {"loss_class": loss.sum() / num_boxes}

    def forward(self, outputs: dict, targets: list[dict], dn_metas: dict | None = None) -> dict:
        """Unweighted losses of :class:`DINOCriterion` and ``loss_salience``."""
        losses = super().forward(outputs, targets, dn_metas)
        salience_targets = self.target_generator(
            [t["boxes_xyxy"] for t in targets], outputs["spatial_shapes"], targets[0]["input_size"]
        )
        losses["loss_salience"] = salience_focal_loss(
            outputs["salience_logits"],
            salience_targets.to(outputs["salience_logits"]),
            self.alpha,
            self.gamma,
        )
        return losses
