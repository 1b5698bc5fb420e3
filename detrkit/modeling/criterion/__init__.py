"""Set-prediction criteria with detrex's names, signatures and loss keys.

The papers' variations are arguments, not subclasses: a criterion takes a ``class_loss`` module (what each
query's class target is: one-hot focal, cross-entropy, or a project's IoU-aware, GIoU-aware or cross-stage
loss; :mod:`~detrkit.modeling.criterion.class_losses`) and a list of ``extra_losses`` (token losses).

A criterion returns UNWEIGHTED losses and carries ``weight_dict``; as in detrex, the meta-architecture
multiplies each loss by its weight (:func:`weight_losses`) before returning the training dict. Unlike detrex,
which keeps a loss without a weight at weight 1, a loss key missing from ``weight_dict`` is a ``KeyError``
naming it (H-Deformable-DETR's ``<key>_one2many`` losses fall back to ``<key>``'s weight, as in detrex)."""

from detrkit.modeling.criterion.class_losses import (
    CrossEntropyClassLoss,
    FocalClassLoss,
    MatchedTargets,
    StageMatches,
    matched_targets,
)
from detrkit.modeling.criterion.dn_criterion import DINOCriterion
from detrkit.modeling.criterion.hybrid_criterion import HybridMatchingCriterion
from detrkit.modeling.criterion.set_criterion import SetCriterion, average_num_boxes
from detrkit.modeling.criterion.two_stage_criterion import TwoStageCriterion
from detrkit.modeling.criterion.weight_dict import build_weight_dict, weight_losses

__all__ = [
    "CrossEntropyClassLoss",
    "DINOCriterion",
    "FocalClassLoss",
    "HybridMatchingCriterion",
    "MatchedTargets",
    "SetCriterion",
    "StageMatches",
    "TwoStageCriterion",
    "average_num_boxes",
    "build_weight_dict",
    "matched_targets",
    "weight_losses",
]
