"""Salience DETR's encoder and query selection + Rank-DETR's decoder, rank-adaptive head and high-order
matcher + StageInteractor's cross-stage label assignment, on DINO. Each piece comes from its own project
and fills a slot or keyword of detrkit's modules; this module only combines them in a config."""

from detrkit_projects.rank_detr.configs.helpers import high_order_matcher, with_rank_modules
from detrkit_projects.salience_detr.modeling.salience_detr import SalienceDETR
from detrkit_projects.stage_interactor.configs.helpers import with_csla

__all__ = ["to_salience_rank_csla"]


def to_salience_rank_csla(
    model,
    matcher_change_iter: int,
    csla_scope: tuple[int, int | None] = (-1, None),
    csla_iou_threshold: float | None = 0.5,
) -> None:
    """``model`` (a LazyCall :class:`SalienceDETR`, e.g. from a Salience DETR config) given Rank-DETR's
    query ranking (decoder hook and rank-adaptive head over ``model.num_queries``) and high-order matcher
    (from ``matcher_change_iter``) and cross-stage label assignment, in place. The redundancy
    removal must then keep ``num_queries`` queries per image (``require_num_queries``): the ranking tells
    the denoising queries from the ranked ones by count."""
    if model._target_ is not SalienceDETR:
        raise ValueError(f"to_salience_rank_csla needs a SalienceDETR config, got {model._target_}")
    with_rank_modules(model, ["${model.num_queries}"])
    model.transformer.query_selector.require_num_queries = True
    model.criterion.matcher = high_order_matcher(model.criterion.matcher, matcher_change_iter)
    with_csla(model, csla_scope, csla_iou_threshold)
