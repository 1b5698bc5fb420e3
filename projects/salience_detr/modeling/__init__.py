"""Salience DETR's modules: salience supervision, hierarchical token filtering, background embedding,
cross-level token fusion, redundancy removal, the transformer, the detector and its losses (the scorer and
the selective encoder are detrkit's, shared with Focus-DETR)."""

from detrkit_projects.salience_detr.modeling.background_embedding import BackgroundEmbedding
from detrkit_projects.salience_detr.modeling.criterion import (
    IoUAwareClassLoss,
    SalienceLoss,
    iou_aware_focal_loss,
)
from detrkit_projects.salience_detr.modeling.query_selector import (
    RedundancyRemovalQuerySelector,
    remove_redundant_tokens,
)
from detrkit_projects.salience_detr.modeling.salience_detr_transformer import SalienceDETRTransformer
from detrkit_projects.salience_detr.modeling.salience_supervision import (
    CODE_SCALE_RANGES,
    SalienceTargetGenerator,
    salience_focal_loss,
)
from detrkit_projects.salience_detr.modeling.token_filter import HierarchicalTokenSelector
from detrkit_projects.salience_detr.modeling.token_fusion import (
    CrossLevelTokenFusion,
    CSPRepPluXLayer,
    GlobalContextGate,
    RepVGGPluXBlock,
)

__all__ = [
    "CODE_SCALE_RANGES",
    "BackgroundEmbedding",
    "CSPRepPluXLayer",
    "CrossLevelTokenFusion",
    "GlobalContextGate",
    "HierarchicalTokenSelector",
    "IoUAwareClassLoss",
    "RedundancyRemovalQuerySelector",
    "RepVGGPluXBlock",
    "SalienceDETRTransformer",
    "SalienceLoss",
    "SalienceTargetGenerator",
    "iou_aware_focal_loss",
    "remove_redundant_tokens",
    "salience_focal_loss",
]
