"""The StageInteractor detector's losses: quality focal loss on cross-stage labels (soft target the gathered
IoU, or 1 as in the official code), L1 on normalised xyxy boxes and GIoU, every stage Hungarian-matched."""

import torch

from detrkit.modeling.criterion import SetCriterion
from detrkit.modeling.losses import quality_focal_loss

from .cross_stage_label_assignment import CrossStageLabels
from .csla_criterion import CrossStageLabelAssignmentMixin

__all__ = ["StageInteractorCriterion"]


class StageInteractorCriterion(CrossStageLabelAssignmentMixin, SetCriterion):
    """Cross-stage label assignment (:class:`CrossStageLabelAssignmentMixin`: every stage, ``aux_outputs``
    then the last, Hungarian-matched; stage ``i``'s class targets gathered from the matches of stages
    ``i + csla_scope[0]`` .. ``i + csla_scope[1]`` with IoU at least ``csla_iou_threshold``) with
    StageInteractor's losses: ``loss_class`` the :func:`quality_focal_loss` against ``labels * iou`` (or
    ``labels``), divided by ``max(number of labels, num_boxes)``; ``loss_bbox`` (L1 of normalised xyxy
    boxes) and ``loss_giou`` on stage ``i``'s own matches.

    CSLA off: ``csla_scope=(0, 0)`` and ``csla_iou_threshold=None``: each stage's own matches with their IoU
    as the soft target.

    Args:
        num_classes, matcher, weight_dict, alpha, gamma: see :class:`SetCriterion`.
        csla_scope: stage offsets gathered (official: ``(-1, None)``, i.e. ``[i - 1, L]``).
        csla_iou_threshold: the IoU a gathered match needs to be a label (0.5); None: every match.
        quality_target: the positive target of the quality focal loss: ``"iou"`` (the gathered IoU, the
            paper's reading) or ``"label"`` (1, which makes it the sigmoid focal loss: the official code,
            whose configs use it).
        iou_eps: added to the union and the enclosing area of the GIoU loss (see :class:`SetCriterion`). 0:
            mmdet's box overlaps, which the official code uses, only clamp the union at 1e-6 from below, so
            boxes of positive area get the eps-free IoU.
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
        iou_eps: float = 0.0,
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
            l1_box_format="xyxy",
            iou_eps=iou_eps,
        )
        self.quality_target = quality_target

    def summed_class_loss(
        self, logits: torch.Tensor, labels: torch.Tensor, gathered: CrossStageLabels
    ) -> torch.Tensor:
        """:func:`quality_focal_loss` of ``logits`` ``(B, N, C)`` against ``labels`` times their gathered
        IoU (``quality_target="iou"``) or ``labels``, summed."""
        soft_targets = labels * gathered.iou if self.quality_target == "iou" else labels
        return quality_focal_loss(logits, soft_targets, self.alpha, self.gamma, reduction="sum")

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, quality_target={self.quality_target!r}"
