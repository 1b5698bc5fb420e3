"""StageInteractor's modules: cross-stage label assignment and dual cross-attention (``with_dca``: the
decoder's ``num_cross_attentions=2``) for any detrkit DETR, and the StageInteractor detector (AdaMixer's
decoder with cross-stage filter reuse)."""

from detrkit_projects.stage_interactor.modeling.adaptive_sampling import (
    AdaptiveSampling3D,
    level_weights,
    sampling_points,
)
from detrkit_projects.stage_interactor.modeling.cross_stage_label_assignment import (
    CrossStageClassLoss,
    CrossStageLabels,
    candidate_stages,
    check_scope,
    cross_stage_labels,
)
from detrkit_projects.stage_interactor.modeling.decoder import StageInteractorDecoder
from detrkit_projects.stage_interactor.modeling.dynamic_mixing import (
    CascadeDynamicMixing,
    DynamicFilters,
    FilterAdapter,
    StaticMixing,
    adapt_filter,
)
from detrkit_projects.stage_interactor.modeling.query_generator import InitialQueryGenerator
from detrkit_projects.stage_interactor.modeling.stage_head import StageInteractorStage
from detrkit_projects.stage_interactor.modeling.stage_interactor import StageInteractor

__all__ = [
    "AdaptiveSampling3D",
    "CascadeDynamicMixing",
    "CrossStageClassLoss",
    "CrossStageLabels",
    "DynamicFilters",
    "FilterAdapter",
    "InitialQueryGenerator",
    "StageInteractor",
    "StageInteractorDecoder",
    "StageInteractorStage",
    "StaticMixing",
    "adapt_filter",
    "candidate_stages",
    "check_scope",
    "cross_stage_labels",
    "level_weights",
    "sampling_points",
]
