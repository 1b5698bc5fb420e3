"""Config helpers: add StageInteractor's cross-stage label assignment (CSLA) and dual cross-attention (DCA) to
a LazyCall config of any detrkit DETR, so that every config states the change once."""

from detrkit.config import LazyCall as L
from detrkit.config.criterion_edits import (
    detrkit_criterion_class,
    matching_criterion,
    set_class_loss,
    take_focal_parameters,
)
from detrkit.config.model_edits import detrkit_decoder_class
from detrkit_projects.stage_interactor.modeling.cross_stage_label_assignment import CrossStageClassLoss

__all__ = ["with_csla", "with_dca"]


def with_csla(model, scope: tuple[int, int | None] = (-1, None), iou_threshold: float | None = 0.5) -> None:
    """``model`` (a LazyCall detector whose criterion is detrkit's ``SetCriterion`` family, possibly inside
    a ``HybridMatchingCriterion``, or detrex's ``SetCriterion``, H-Deformable-DETR ``DeformableCriterion`` or
    DINO ``DINOCriterion``) with cross-stage label assignment, in place: the criterion's
    class loss becomes :class:`CrossStageClassLoss` on the decoder layers, the former class loss (the focal
    loss for detrex's keywords) staying on the encoder proposals and denoising queries."""
    criterion = matching_criterion(model.criterion)
    detrkit_criterion_class(criterion._target_)  # a criterion without the slot fails before any change
    fallback = criterion.get("class_loss")
    if fallback is not None and fallback._target_ is CrossStageClassLoss:
        raise ValueError("with_csla: the criterion's class loss is already cross-stage")
    csla = L(CrossStageClassLoss)(
        scope=tuple(scope), iou_threshold=iou_threshold, fallback=fallback, **take_focal_parameters(criterion)
    )
    set_class_loss(criterion, csla)


def with_dca(model) -> None:
    """``model`` (a LazyCall detector whose decoder is a detrkit ``DeformableTransformerDecoder`` subclass,
    or detrex's DINO or H-Deformable-DETR decoder, replaced by detrkit's) with dual cross-attention
    (``num_cross_attentions=2``: every layer's deformable cross-attention runs twice, each with its own
    parameters and post-norm), in place."""
    decoder = model.transformer.decoder
    decoder._target_ = detrkit_decoder_class(decoder._target_)
    decoder.num_cross_attentions = 2
