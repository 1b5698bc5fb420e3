"""Focus-DETR's modules: foreground supervision, the transformer with the token selector, the detector and
its foreground token loss (the scorer and the selective encoder are detrkit's, shared with Salience DETR)."""

from detrkit_projects.focus_detr.modeling.criterion import ForegroundTokenLoss
from detrkit_projects.focus_detr.modeling.focus_detr_transformer import FocusDETRTransformer
from detrkit_projects.focus_detr.modeling.foreground_supervision import (
    CODE_SCALE_RANGES,
    PAPER_SCALE_RANGES,
    ForegroundLabelAssigner,
    foreground_token_loss,
)

__all__ = [
    "CODE_SCALE_RANGES",
    "PAPER_SCALE_RANGES",
    "FocusDETRTransformer",
    "ForegroundLabelAssigner",
    "ForegroundTokenLoss",
    "foreground_token_loss",
]
