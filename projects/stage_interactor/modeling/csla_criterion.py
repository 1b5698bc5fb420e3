"""Cross-stage label assignment for the detrkit criteria: a mixin that replaces the decoder layers'
classification targets by :func:`cross_stage_labels` and leaves everything else (regression on each layer's
own matches, encoder proposals, denoising, the one-to-many branch's repeated targets) as the base computes it.
"""

import torch

from detrkit.modeling.criterion import DINOCriterion, SetCriterion, TwoStageCriterion
from detrkit.modeling.losses import sigmoid_focal_loss
from detrkit.utils import comm
from detrkit_projects.stage_interactor.modeling.cross_stage_label_assignment import (
    CrossStageLabels,
    cross_stage_labels,
)

__all__ = [
    "CrossStageLabelAssignmentMixin",
    "CSLADINOCriterion",
    "CSLASetCriterion",
    "CSLATwoStageCriterion",
]


class CrossStageLabelAssignmentMixin:
    """Cross-stage label assignment (CSLA) for a :class:`~detrkit.modeling.criterion.SetCriterion` with the
    focal class loss. Every decoder layer is Hungarian-matched as before; layer ``i``'s ``loss_class`` is then
    the sigmoid focal loss against the multi-label targets :func:`cross_stage_labels` gathers from the matches
    of layers ``[i + scope[0], i + scope[1]]`` with IoU at least ``csla_iou_threshold``, normalised by
    ``max(number of labels, num_boxes)`` (the number of labels averaged over processes). ``loss_bbox`` and
    ``loss_giou`` use layer ``i``'s own matches. The encoder proposals (``_enc``) and the denoising queries
    (``_dn``) keep the base's losses. With a one-to-many branch (:class:`HybridMatchingCriterion`) the rule
    applies within that branch too, on its repeated targets.

    Use it first in the bases: ``class C(CrossStageLabelAssignmentMixin, DINOCriterion)``; the extra
    constructor arguments are keywords.

    Args:
        csla_scope: ``(low, high)`` layer offsets gathered by each layer, ``high`` None for the last layer
            (paper: ``[i - 1, L]``, Table 13). Default ``(-1, None)``.
        csla_iou_threshold: the IoU a gathered match needs to become a label (paper Table 14: 0.5); None
            disables the check. Default 0.5.
        others: the base criterion's.
    """

    def __init__(
        self,
        *args,
        csla_scope: tuple[int, int | None] = (-1, None),
        csla_iou_threshold: float | None = 0.5,
        **kwargs,
    ):
        super().__init__(*args, **kwargs)
        if self.loss_class_type != "focal_loss":
            raise ValueError(
                f"{type(self).__name__}: cross-stage label assignment needs loss_class_type 'focal_loss' "
                f"(multi-label sigmoid targets), got {self.loss_class_type!r}"
            )
        if csla_iou_threshold is not None and not 0.0 <= csla_iou_threshold <= 1.0:
            raise ValueError(f"csla_iou_threshold must be in [0, 1] or None, got {csla_iou_threshold}")
        self.csla_scope = tuple(csla_scope)
        self.csla_iou_threshold = csla_iou_threshold

    def decoder_losses(self, outputs: dict, targets: list[dict], num_boxes: float) -> dict:
        """Every decoder layer's losses, the class targets gathered across layers."""
        layers, suffixes = self.decoder_layers(outputs)
        indices = [self.matcher(layer, targets) for layer in layers]
        boxes = [layer["pred_boxes"] for layer in layers]
        losses = {}
        for stage, (layer, suffix) in enumerate(zip(layers, suffixes, strict=True)):
            for loss in self.losses:
                if loss == "class":
                    gathered = cross_stage_labels(
                        boxes, indices, targets, self.num_classes, stage, self.csla_scope
                    )
                    layer_losses = self.cross_stage_class_loss(layer["pred_logits"], gathered, num_boxes)
                else:
                    layer_losses = self.get_loss(loss, layer, targets, indices[stage], num_boxes)
                losses.update({k + suffix: v for k, v in layer_losses.items()})
        return losses

    def cross_stage_class_loss(
        self, logits: torch.Tensor, gathered: CrossStageLabels, num_boxes: float
    ) -> dict:
        """``loss_class``: :meth:`summed_class_loss` of ``logits`` ``(bs, nq, C)`` against the 0/1 labels
        ``(bs, nq, C)`` of ``gathered`` (IoU at least ``csla_iou_threshold``), divided by ``max(number of
        labels, num_boxes)``."""
        labels = gathered.labels(self.csla_iou_threshold)
        normaliser = max(comm.average_over_processes(labels.sum()), num_boxes)
        return {"loss_class": self.summed_class_loss(logits, labels, gathered) / normaliser}

    def summed_class_loss(
        self, logits: torch.Tensor, labels: torch.Tensor, gathered: CrossStageLabels
    ) -> torch.Tensor:
        """The sigmoid focal loss of ``logits`` against ``labels``, summed; override it for another class
        loss on the same labels (``gathered`` holds their IoUs)."""
        return sigmoid_focal_loss(logits, labels, alpha=self.alpha, gamma=self.gamma, reduction="sum")

    def extra_repr(self) -> str:
        return (
            f"{super().extra_repr()}, csla_scope={self.csla_scope}, "
            f"csla_iou_threshold={self.csla_iou_threshold}"
        )


class CSLASetCriterion(CrossStageLabelAssignmentMixin, SetCriterion):
    """Deformable-DETR's :class:`SetCriterion` with cross-stage label assignment."""


class CSLATwoStageCriterion(CrossStageLabelAssignmentMixin, TwoStageCriterion):
    """Two-stage Deformable-DETR's / H-Deformable-DETR's criterion with cross-stage label assignment (wrap it
    in :class:`HybridMatchingCriterion` for H-DETR: both query groups then use it)."""


class CSLADINOCriterion(CrossStageLabelAssignmentMixin, DINOCriterion):
    """DINO's criterion with cross-stage label assignment; the denoising losses are DINO's."""
