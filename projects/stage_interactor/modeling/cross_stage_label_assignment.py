"""Cross-stage label assignment (StageInteractor sec. 3.2, "cross-stage label assigner"): the classification
targets of one decoder stage gathered from the one-to-one matches of several stages.

Query index ``q`` names the same query in every stage (the decoders keep their query order; Rank-DETR's
detectors return every layer's predictions in the decoder's initial query order). For stage ``i`` and each
candidate stage ``j`` (:func:`candidate_stages`) that matched query ``q`` to target ``g_j(q)``, query ``q`` of
stage ``i`` gets the class of ``g_j(q)`` with the score ``IoU(box of g_j(q), box_i(q))``; a class keeps the
largest score over the candidates, and it is a label where that score reaches the IoU threshold. Stage
``i``'s own match is one of the candidates, so a stage-``i`` match whose box overlaps its target by less than
the threshold becomes a negative, and a label can come from another stage's match only.
"""

from collections.abc import Sequence
from typing import NamedTuple

import torch
from torch import nn

from detrkit.modeling.criterion import FocalClassLoss, StageMatches
from detrkit.modeling.losses import quality_focal_loss
from detrkit.structures.box_ops import box_cxcywh_to_xyxy, paired_box_iou
from detrkit.utils import comm

__all__ = ["CrossStageClassLoss", "CrossStageLabels", "candidate_stages", "check_scope", "cross_stage_labels"]

Indices = list[tuple[torch.Tensor, torch.Tensor]]


def check_scope(scope: tuple[int, int | None]) -> tuple[int, int | None]:
    """``scope`` as a tuple; a ValueError when it excludes offset 0 (a stage's own match decides its
    regression target and must be a label candidate too)."""
    low, high = scope
    if low > 0 or (high is not None and high < 0):
        raise ValueError(
            f"scope {tuple(scope)} must contain offset 0 (the stage's own match): low <= 0 <= high"
        )
    return low, high


def candidate_stages(stage: int, num_stages: int, scope: tuple[int, int | None] = (-1, None)) -> list[int]:
    """The stages whose matches stage ``stage`` gathers: ``stage + scope[0]`` up to ``stage + scope[1]``
    (the last stage when ``scope[1]`` is None), clipped to ``[0, num_stages - 1]``. The paper's best scope is
    ``[i - 1, L]`` (Table 13): ``(-1, None)``; ``(0, 0)`` is the plain one-to-one assignment.

    Raises:
        ValueError: ``stage`` outside ``[0, num_stages)``, or a scope that excludes the stage itself (its
            own match decides its regression target and must be a label candidate too).
    """
    if not 0 <= stage < num_stages:
        raise ValueError(f"stage {stage} is not one of the {num_stages} stages")
    low, high = check_scope(scope)
    last = num_stages - 1 if high is None else min(stage + high, num_stages - 1)
    return list(range(max(stage + low, 0), last + 1))


class CrossStageLabels(NamedTuple):
    """The gathered assignment of one stage.

    Attributes:
        iou: ``(bs, nq, C)`` for each query and class, the largest IoU between the query's box at this stage
            and a target of that class matched to the query by a candidate stage (0 where none).
        assigned: ``(bs, nq, C)`` bool, True where some candidate stage matched the query to a target of that
            class (whatever the IoU).
    """

    iou: torch.Tensor
    assigned: torch.Tensor

    def labels(self, iou_threshold: float | None = 0.5) -> torch.Tensor:
        """``(bs, nq, C)`` 0/1 multi-label classification targets: assigned with ``iou >= iou_threshold``
        (``None``: every assigned class, the threshold disabled)."""
        keep = self.assigned if iou_threshold is None else self.assigned & (self.iou >= iou_threshold)
        return keep.to(self.iou.dtype)


def cross_stage_labels(
    stage_boxes: Sequence[torch.Tensor],
    stage_indices: Sequence[Indices],
    targets: list[dict],
    num_classes: int,
    stage: int,
    scope: tuple[int, int | None] = (-1, None),
) -> CrossStageLabels:
    """Gathers the matches of :func:`candidate_stages` ``(stage, len(stage_boxes), scope)`` for ``stage``.

    Args:
        stage_boxes: per stage, ``(bs, nq, 4)`` predicted boxes, normalised cxcywh (only ``stage``'s are
            read; not differentiated).
        stage_indices: per stage, per image ``(query indices, target indices)`` of its one-to-one matches.
        targets: per image ``"labels"`` ``(n,)`` and ``"boxes"`` ``(n, 4)`` normalised cxcywh.
        num_classes: ``C``.
        stage: the stage whose targets are built.
        scope: see :func:`candidate_stages`.

    Returns:
        :class:`CrossStageLabels` of ``stage``.
    """
    if len(stage_boxes) != len(stage_indices):
        raise ValueError(f"{len(stage_boxes)} stages of boxes but {len(stage_indices)} stages of matches")
    boxes = box_cxcywh_to_xyxy(stage_boxes[stage].detach())
    bs, num_queries = boxes.shape[:2]
    iou = boxes.new_zeros(bs * num_queries * num_classes)
    assigned = torch.zeros(bs * num_queries * num_classes, dtype=torch.bool, device=boxes.device)
    for j in candidate_stages(stage, len(stage_boxes), scope):
        if len(stage_indices[j]) != bs:
            raise ValueError(f"stage {j} has matches for {len(stage_indices[j])} images, expected {bs}")
        for b, ((src, tgt), target) in enumerate(zip(stage_indices[j], targets, strict=True)):
            src, tgt = src.to(boxes.device), tgt.to(boxes.device)
            target_boxes = box_cxcywh_to_xyxy(target["boxes"][tgt].to(boxes))
            flat = (b * num_queries + src) * num_classes + target["labels"][tgt].to(boxes.device)
            iou.scatter_reduce_(0, flat, paired_box_iou(target_boxes, boxes[b, src]), reduce="amax")
            assigned[flat] = True
    shape = (bs, num_queries, num_classes)
    return CrossStageLabels(iou.view(shape), assigned.view(shape))


class CrossStageClassLoss(FocalClassLoss):
    """Cross-stage label assignment (CSLA) as the class-loss slot of detrkit's criteria (see
    :mod:`detrkit.modeling.criterion.class_losses`): for decoder layer ``i`` (the criterion passes every
    layer's Hungarian matches as :class:`~detrkit.modeling.criterion.StageMatches`), ``loss_class`` is the
    :func:`~detrkit.modeling.losses.quality_focal_loss` of the ``(bs, nq, C)`` logits against the 0/1 labels
    :func:`cross_stage_labels` gathers from the matches of layers ``[i + scope[0], i + scope[1]]`` with IoU at
    least ``iou_threshold`` (times their gathered IoU with ``quality_target="iou"``), summed and divided by
    ``max(number of labels averaged over processes, num_boxes)``. With 0/1 targets the quality focal loss is
    the sigmoid focal loss. The box losses keep each layer's own matches (the criterion's). Layers without
    stage matches (encoder proposals, denoising queries) use ``fallback``.

    Args:
        scope: ``(low, high)`` layer offsets gathered by each layer, ``high`` None for the last layer
            (paper: ``[i - 1, L]``, Table 13). Default ``(-1, None)``.
        iou_threshold: the IoU a gathered match needs to become a label (paper Table 14: 0.5); None
            disables the check. Default 0.5.
        quality_target: the positive target: ``"label"`` (1: the sigmoid focal loss, as the official
            StageInteractor configs and the CSLA-on-DETR experiments) or ``"iou"`` (the gathered IoU, the
            StageInteractor paper's reading).
        alpha, gamma: focal parameters. Default 0.25, 2.0.
        fallback: the class loss of layers without stage matches; None: :class:`FocalClassLoss` with
            ``alpha``, ``gamma`` (e.g. Salience DETR's IoU-aware loss when CSLA joins its criterion).
    """

    def __init__(
        self,
        scope: tuple[int, int | None] = (-1, None),
        iou_threshold: float | None = 0.5,
        quality_target: str = "label",
        alpha: float = 0.25,
        gamma: float = 2.0,
        fallback: nn.Module | None = None,
    ):
        super().__init__(alpha, gamma)
        if iou_threshold is not None and not 0.0 <= iou_threshold <= 1.0:
            raise ValueError(f"iou_threshold must be in [0, 1] or None, got {iou_threshold}")
        if quality_target not in ("iou", "label"):
            raise ValueError(f"quality_target must be 'iou' or 'label', got {quality_target!r}")
        self.scope = check_scope(scope)
        self.iou_threshold = iou_threshold
        self.quality_target = quality_target
        self.fallback = FocalClassLoss(alpha, gamma) if fallback is None else fallback

    def forward(
        self,
        outputs: dict,
        targets: list[dict],
        indices,
        num_boxes: float,
        iou_eps: float = 0.0,
        stages: StageMatches | None = None,
    ) -> torch.Tensor:
        """Scalar ``loss_class`` of one layer (``indices`` its own matches, which ``stages`` also holds)."""
        if stages is None:
            return self.fallback(outputs, targets, indices, num_boxes, iou_eps=iou_eps)
        logits = outputs["pred_logits"]
        gathered = cross_stage_labels(
            stages.boxes, stages.indices, targets, logits.shape[-1], stages.stage, self.scope
        )
        labels = gathered.labels(self.iou_threshold)
        soft_targets = labels * gathered.iou if self.quality_target == "iou" else labels
        loss = quality_focal_loss(logits, soft_targets, self.alpha, self.gamma, reduction="sum")
        return loss / max(comm.average_over_processes(labels.sum()), num_boxes)

    def extra_repr(self) -> str:
        return (
            f"scope={self.scope}, iou_threshold={self.iou_threshold}, "
            f"quality_target={self.quality_target!r}, {super().extra_repr()}"
        )
