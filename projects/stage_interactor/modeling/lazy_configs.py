"""Config helpers: add StageInteractor's cross-stage label assignment (CSLA) and dual cross-attention (DCA) to
a LazyCall config of any detrkit DETR, so that every config states the change once."""

from detrkit.modeling.criterion import DINOCriterion, SetCriterion, TwoStageCriterion
from detrkit.modeling.transformer import DeformableTransformerDecoder, DINOTransformerDecoder
from detrkit_projects.stage_interactor.modeling.csla_criterion import (
    CSLADINOCriterion,
    CSLASetCriterion,
    CSLATwoStageCriterion,
)
from detrkit_projects.stage_interactor.modeling.dual_cross_attention import (
    DCADeformableTransformerDecoder,
    DCADINOTransformerDecoder,
)

__all__ = ["with_csla", "with_dca"]


def _qualified_name(target) -> str:
    """A config ``_target_`` (a class, or its dotted name as in a saved config) as ``module.QualName``."""
    return target if isinstance(target, str) else f"{target.__module__}.{target.__qualname__}"


# detrkit's classes, and detrex's classes of the same role (named, so that detrex need not be importable):
# detrex's criteria and decoders take the same constructor keywords and are called the same way, so their
# detrkit CSLA/DCA versions replace them in detrex's own model configs too.
_CSLA_CRITERIA = {
    _qualified_name(SetCriterion): CSLASetCriterion,
    _qualified_name(TwoStageCriterion): CSLATwoStageCriterion,
    _qualified_name(DINOCriterion): CSLADINOCriterion,
    "detrex.modeling.criterion.criterion.SetCriterion": CSLASetCriterion,
    "projects.h_deformable_detr.modeling.deformable_criterion.DeformableCriterion": CSLATwoStageCriterion,
    "projects.dino.modeling.dn_criterion.DINOCriterion": CSLADINOCriterion,
}
_DCA_DECODERS = {
    _qualified_name(DeformableTransformerDecoder): DCADeformableTransformerDecoder,
    _qualified_name(DINOTransformerDecoder): DCADINOTransformerDecoder,
    "projects.h_deformable_detr.modeling.h_deformable_transformer.HDeformableDetrTransformerDecoder": (
        DCADeformableTransformerDecoder
    ),
    "projects.dino.modeling.dino_transformer.DINOTransformerDecoder": DCADINOTransformerDecoder,
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
    """``model`` (a LazyCall detector with a DINO or (H-)Deformable-DETR decoder, detrkit's or detrex's)
    with the dual cross-attention version of its decoder, in place (and returned). Other decoders: subclass
    them with :class:`DualCrossAttentionMixin` first in the bases."""
    decoder = model.transformer.decoder
    decoder._target_ = _replacement(decoder._target_, _DCA_DECODERS, "with_dca", "dual cross-attention")
    return model
