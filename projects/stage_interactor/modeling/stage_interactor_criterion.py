"""The StageInteractor detector's losses: quality focal loss on cross-stage labels (soft target the gathered
IoU, or 1 as in the official code), L1 on normalised xyxy boxes and GIoU, every stage Hungarian-matched."""

import torch
import torch.nn.functional as F

from detrkit.modeling.criterion import SetCriterion
from detrkit.modeling.losses import giou_loss, l1_loss, weight_reduce_loss
from detrkit.structures.box_ops import box_cxcywh_to_xyxy
from detrkit.utils import comm

from .cross_stage_label_assignment import CrossStageLabels
from .csla_criterion import CrossStageLabelAssignmentMixin

__all__ = ["StageInteractorCriterion", "quality_focal_loss"]


def quality_focal_loss(
    logits: torch.Tensor,
    soft_targets: torch.Tensor,
    alpha: float = 0.25,
    gamma: float = 2.0,
    reduction: str = "sum",
    avg_factor: float | None = None,
) -> torch.Tensor:
    """Quality focal loss with the alpha balance of StageInteractor's official code:

        positives (``t > 0``):  alpha * |t - p|^gamma * BCE(x, t)
        negatives (``t = 0``):  (1 - alpha) * p^gamma * BCE(x, 0)

    with ``p = sigmoid(x)``; several classes of one query may be positive.

    Args:
        logits: ``(..., C)``; soft_targets: ``(..., C)`` in [0, 1] (not differentiated).
        alpha, gamma: balance and focusing parameters.
        reduction, avg_factor: see :func:`~detrkit.modeling.losses.weight_reduce_loss`.
    """
    if logits.shape != soft_targets.shape:
        raise ValueError(f"logits {tuple(logits.shape)} and soft_targets {tuple(soft_targets.shape)} differ")
    logits, targets = logits.float(), soft_targets.detach().float()
    prob = logits.sigmoid()
    positive = (
        alpha
        * (targets - prob).abs() ** gamma
        * F.binary_cross_entropy_with_logits(logits, targets, reduction="none")
    )
    negative = (
        (1 - alpha)
        * prob**gamma
        * F.binary_cross_entropy_with_logits(logits, torch.zeros_like(logits), reduction="none")
    )
    loss = torch.where(targets > 0, positive, negative)
    return weight_reduce_loss(loss, None, reduction, avg_factor)


class StageInteractorCriterion(CrossStageLabelAssignmentMixin, SetCriterion):
    """Cross-stage label assignment (:class:`CrossStageLabelAssignmentMixin`: every stage, ``aux_outputs``
    then the last, Hungarian-matched; stage ``i``'s class targets gathered from the matches of stages
    ``i + csla_scope[0]`` .. ``i + csla_scope[1]`` with IoU at least ``csla_iou_threshold``) with
    StageInteractor's losses: ``loss_class`` the :func:`quality_focal_loss` against ``labels * iou`` (or
    ``labels``), divided by ``max(number of labels, num_boxes)``; ``loss_bbox`` (L1 of normalised xyxy boxes)
    and ``loss_giou`` on stage ``i``'s own matches.

    CSLA off: ``csla_scope=(0, 0)`` and ``csla_iou_threshold=None``: each stage's own matches with their IoU
    as the soft target.

    Args:
        num_classes, matcher, weight_dict, alpha, gamma: see :class:`SetCriterion`.
        csla_scope: stage offsets gathered (official: ``(-1, None)``, i.e. ``[i - 1, L]``).
        csla_iou_threshold: the IoU a gathered match needs to be a label (0.5); None: every match.
        quality_target: the positive target of the quality focal loss: ``"iou"`` (the gathered IoU, the
            paper's reading) or ``"label"`` (1, which makes it the sigmoid focal loss: the official code,
            whose configs use it).
    """

    def __init__(
        self,
        num_classes: int,
        matcher: torch.nn.Module,
        weight_dict: dict,
        alpha: float = 0.25,
        gamma: float = 2.0,
        csla_scope: tuple[int, int | None] = (-1, None),
        csla_iou_threshold: float | None = 0.5,
        quality_target: str = "iou",
    ):
        if quality_target not in ("iou", "label"):
            raise ValueError(f"quality_target must be 'iou' or 'label', got {quality_target!r}")
        super().__init__(
            num_classes,
            matcher,
            weight_dict,
            loss_class_type="focal_loss",
            alpha=alpha,
            gamma=gamma,
            csla_scope=csla_scope,
            csla_iou_threshold=csla_iou_threshold,
        )
        self.quality_target = quality_target

    def loss_boxes(self, outputs: dict, targets: list[dict], indices: list, num_boxes: float) -> dict:
        """``loss_bbox``: L1 of matched normalised xyxy boxes / num_boxes; ``loss_giou``: (1 - GIoU) /
        num_boxes."""
        src = box_cxcywh_to_xyxy(outputs["pred_boxes"][self._get_src_permutation_idx(indices)])
        tgt = torch.cat([t["boxes"][j] for t, (_, j) in zip(targets, indices, strict=True)]).to(src)
        tgt = box_cxcywh_to_xyxy(tgt)
        return {
            "loss_bbox": l1_loss(src, tgt, reduction="sum") / num_boxes,
            "loss_giou": giou_loss(src, tgt, eps=0.0, reduction="sum") / num_boxes,
        }

    def cross_stage_class_loss(
        self, logits: torch.Tensor, gathered: CrossStageLabels, num_boxes: float
    ) -> dict:
        """``loss_class``: :func:`quality_focal_loss` of ``logits`` ``(B, N, C)`` against the gathered labels
        times their IoU (``quality_target="iou"``) or the labels, divided by ``max(number of labels,
        num_boxes)``."""
        labels = gathered.labels(self.csla_iou_threshold)
        normaliser = max(comm.average_over_processes(labels.sum()), num_boxes)
        soft_targets = labels * gathered.iou if self.quality_target == "iou" else labels
        loss = quality_focal_loss(logits, soft_targets, self.alpha, self.gamma, reduction="sum")
        return {"loss_class": loss / normaliser}

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, quality_target={self.quality_target!r}"
