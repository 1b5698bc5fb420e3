"""Salience DETR's encoder and query selection + Rank-DETR's decoder, rank-adaptive head and high-order
matcher + StageInteractor's cross-stage label assignment, on DINO. Each piece comes from its own project;
this module only names their combinations."""

from detrkit_projects.rank_detr.modeling.lazy_configs import high_order_matcher, with_rank_modules
from detrkit_projects.salience_detr.modeling.criterion import SalienceDETRCriterion
from detrkit_projects.salience_detr.modeling.salience_detr import SalienceDETR
from detrkit_projects.stage_interactor.modeling.csla_criterion import CrossStageLabelAssignmentMixin

__all__ = [
    "CSLASalienceDETRCriterion",
    "to_salience_rank_csla",
]


class CSLASalienceDETRCriterion(CrossStageLabelAssignmentMixin, SalienceDETRCriterion):
    """Salience DETR's criterion whose decoder layers take cross-stage class targets (focal loss on the
    gathered labels); the encoder proposals and denoising queries keep Salience's IoU-aware class loss, and
    ``loss_salience`` is unchanged. Arguments: :class:`SalienceDETRCriterion`'s, ``csla_scope`` and
    ``csla_iou_threshold``."""


def to_salience_rank_csla(
    model,
    matcher_change_iter: int,
    csla_scope: tuple[int, int | None] = (-1, None),
    csla_iou_threshold: float | None = 0.5,
):
    """``model`` (a LazyCall :class:`SalienceDETR`, e.g. from a Salience DETR config) given Rank-DETR's
    query ranking (decoder hook and rank-adaptive head over ``model.num_queries``) and high-order matcher
    (from ``matcher_change_iter``) and cross-stage label assignment, in place (and returned). The redundancy
    removal must then keep ``num_queries`` queries per image (``require_num_queries``): the ranking tells
    the denoising queries from the ranked ones by count."""
    if model._target_ is not SalienceDETR:
        raise ValueError(f"to_salience_rank_csla needs a SalienceDETR config, got {model._target_}")
    with_rank_modules(model, ["${model.num_queries}"])
    model.transformer.query_selector.require_num_queries = True
    criterion = model.criterion
    criterion._target_ = CSLASalienceDETRCriterion
    criterion.matcher = high_order_matcher(criterion.matcher, matcher_change_iter)
    criterion.csla_scope = csla_scope
    criterion.csla_iou_threshold = csla_iou_threshold
    return model
