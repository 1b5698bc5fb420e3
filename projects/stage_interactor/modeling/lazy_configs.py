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

_CSLA_CRITERIA = {
    SetCriterion: CSLASetCriterion,
    TwoStageCriterion: CSLATwoStageCriterion,
    DINOCriterion: CSLADINOCriterion,
}
_DCA_DECODERS = {
    DeformableTransformerDecoder: DCADeformableTransformerDecoder,
    DINOTransformerDecoder: DCADINOTransformerDecoder,
}


def with_csla(model, scope: tuple[int, int | None] = (-1, None), iou_threshold: float | None = 0.5):
    """``model`` (a LazyCall detector whose criterion is a ``SetCriterion``, ``TwoStageCriterion`` or
    ``DINOCriterion``, possibly inside a ``HybridMatchingCriterion``) with that criterion's CSLA version, in
    place (and returned)."""
    criterion = model.criterion
    if "criterion" in criterion:  # HybridMatchingCriterion: both query groups use the wrapped criterion
        criterion = criterion.criterion
    if criterion._target_ not in _CSLA_CRITERIA:
        raise ValueError(
            f"with_csla: no cross-stage version of {criterion._target_}; known: "
            f"{sorted(c.__name__ for c in _CSLA_CRITERIA)}"
        )
    criterion._target_ = _CSLA_CRITERIA[criterion._target_]
    criterion.csla_scope = scope
    criterion.csla_iou_threshold = iou_threshold
    return model


def with_dca(model):
    """``model`` (a LazyCall detector with a DINO or (H-)Deformable-DETR decoder) with the dual
    cross-attention version of its decoder, in place (and returned). Other decoders: subclass them with
    :class:`DualCrossAttentionMixin` first in the bases."""
    decoder = model.transformer.decoder
    if decoder._target_ not in _DCA_DECODERS:
        raise ValueError(
            f"with_dca: no dual cross-attention version of {decoder._target_}; known: "
            f"{sorted(c.__name__ for c in _DCA_DECODERS)} (or subclass with DualCrossAttentionMixin)"
        )
    decoder._target_ = _DCA_DECODERS[decoder._target_]
    return model
