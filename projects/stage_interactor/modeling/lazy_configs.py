"""Config helpers: add StageInteractor's cross-stage label assignment (CSLA) and dual cross-attention (DCA) to
a LazyCall config of any detrkit DETR, so that every config states the change once."""

from detrkit.config.model_edits import detrkit_decoder_class
from detrkit.modeling.criterion import DINOCriterion, SetCriterion, TwoStageCriterion
from detrkit_projects.stage_interactor.modeling.csla_criterion import (
    CSLADINOCriterion,
    CSLASetCriterion,
    CSLATwoStageCriterion,
)

__all__ = ["with_csla", "with_dca"]


def _qualified_name(target) -> str:
    """A config ``_target_`` (a class, or its dotted name as in a saved config) as ``module.QualName``."""
    return target if isinstance(target, str) else f"{target.__module__}.{target.__qualname__}"


# detrkit's classes, and detrex's classes of the same role (named, so that detrex need not be importable):
# detrex's criteria take the same constructor keywords and are called the same way, so their detrkit CSLA
# versions replace them in detrex's own model configs too.
_CSLA_CRITERIA = {
    _qualified_name(SetCriterion): CSLASetCriterion,
    _qualified_name(TwoStageCriterion): CSLATwoStageCriterion,
    _qualified_name(DINOCriterion): CSLADINOCriterion,
    "detrex.modeling.criterion.criterion.SetCriterion": CSLASetCriterion,
    "projects.h_deformable_detr.modeling.deformable_criterion.DeformableCriterion": CSLATwoStageCriterion,
    "projects.dino.modeling.dn_criterion.DINOCriterion": CSLADINOCriterion,
}


def _replacement(target, table: dict, helper: str, what: str):
    """``table``'s class for a config's ``_target_``, or a ValueError naming the known ones."""
    name = _qualified_name(target)
    if name not in table:
        raise ValueError(f"{helper}: no {what} version of {name}; known: {sorted(table)}")
    return table[name]


def with_csla(model, scope: tuple[int, int | None] = (-1, None), iou_threshold: float | None = 0.5):
    """``model`` (a LazyCall detector whose criterion is a ``SetCriterion``, ``TwoStageCriterion`` or
    ``DINOCriterion``, possibly inside a ``HybridMatchingCriterion``, or detrex's ``SetCriterion``,
    H-Deformable-DETR ``DeformableCriterion`` or DINO ``DINOCriterion``) with that criterion's CSLA version,
    in place (and returned)."""
    criterion = model.criterion
    if "criterion" in criterion:  # HybridMatchingCriterion: both query groups use the wrapped criterion
        criterion = criterion.criterion
    criterion._target_ = _replacement(criterion._target_, _CSLA_CRITERIA, "with_csla", "cross-stage")
    criterion.csla_scope = scope
    criterion.csla_iou_threshold = iou_threshold
    return model


def with_dca(model):
    """``model`` (a LazyCall detector whose decoder is a detrkit ``DeformableTransformerDecoder`` subclass,
    or detrex's DINO or H-Deformable-DETR decoder, replaced by detrkit's) with dual cross-attention
    (``num_cross_attentions=2``: every layer's deformable cross-attention runs twice, each with its own
    parameters and post-norm), in place (and returned)."""
    decoder = model.transformer.decoder
    decoder._target_ = detrkit_decoder_class(decoder._target_)
    decoder.num_cross_attentions = 2
    return model
