"""Detection losses with detrex's function names and signatures: element-wise loss, optional element-wise
``weight``, then a ``reduction`` ("none" | "mean" | "sum") or a mean over a given ``avg_factor``."""

from detrkit.modeling.losses.focal_loss import sigmoid_focal_loss
from detrkit.modeling.losses.giou_loss import giou_loss, paired_generalized_box_iou
from detrkit.modeling.losses.l1_loss import l1_loss
from detrkit.modeling.losses.quality_focal_loss import quality_focal_loss
from detrkit.modeling.losses.reduction import reduce_loss, weight_reduce_loss

__all__ = [
    "giou_loss",
    "l1_loss",
    "paired_generalized_box_iou",
    "quality_focal_loss",
    "reduce_loss",
    "sigmoid_focal_loss",
    "weight_reduce_loss",
]
