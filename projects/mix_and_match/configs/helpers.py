"""Salience DETR's encoder and query selection + Rank-DETR's decoder, rank-adaptive head and high-order
matcher + StageInteractor's cross-stage label assignment, on DINO. Each piece comes from its own project
and fills a slot or keyword of detrkit's modules; this module only combines them in a config."""

from detrkit_projects.rank_detr.configs.helpers import high_order_matcher, with_rank_modules
from detrkit_projects.salience_detr.modeling.salience_detr_transformer import SalienceDETRTransformer
from detrkit_projects.stage_interactor.configs.helpers import with_csla

__all__ = ["to_salience_rank_csla"]


def to_salience_rank_csla(
    model,
    matcher_change_iter: int,
    csla_scope: tuple[int, int | None] = (-1, None),
    csla_iou_threshold: float | None = 0.5,
) -> None:
    """``model`` (a LazyCall DINO with a :class:`SalienceDETRTransformer`: a Salience DETR config) given
    Rank-DETR's query ranking (decoder hook and rank-adaptive head over ``model.num_queries``) and
    high-order matcher (from ``matcher_change_iter``) and cross-stage label assignment, in place. The
    redundancy removal must then keep ``num_queries`` queries per image (``require_num_queries``): the
    ranking tells the denoising queries from the ranked ones by count."""
    if model.transformer._target_ is not SalienceDETRTransformer:
        raise ValueError(
            f"to_salience_rank_csla needs a Salience DETR config, whose transformer is a "
            f"SalienceDETRTransformer; got {model.transformer._target_}"
        )
    with_rank_modules(model, ["${model.num_queries}"])
    model.transformer.query_selector.require_num_queries = True
    model.criterion.matcher = high_order_matcher(model.criterion.matcher, matcher_change_iter)
    with_csla(model, csla_scope, csla_iou_threshold)
