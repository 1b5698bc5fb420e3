"""Config helper: turn a LazyCall config of detrkit's DINO into Focus-DETR's, so that every Focus-DETR config
(COCO, shapes) states the changes once."""

from collections.abc import Sequence

from detrkit.config import LazyCall as L
from detrkit.config.criterion_edits import add_extra_loss
from detrkit.config.model_edits import detrkit_dino_class
from detrkit.modeling.transformer import CascadeTokenSelector, SelectiveTokenEncoder
from detrkit_projects.focus_detr.modeling.criterion import ForegroundTokenLoss
from detrkit_projects.focus_detr.modeling.focus_detr_transformer import FocusDETRTransformer
from detrkit_projects.focus_detr.modeling.foreground_supervision import (
    CODE_SCALE_RANGES,
    ForegroundLabelAssigner,
)

__all__ = ["to_focus_detr"]


def to_focus_detr(
    model,
    keep_ratio: float = 0.5,
    layer_ratios: Sequence[float] = (1.0, 0.8, 0.6, 0.6, 0.4, 0.2),
    strides: Sequence[int] = (8, 16, 32, 64),
    scale_ranges: Sequence[tuple[float, float]] = CODE_SCALE_RANGES,
    select_loss_weight: float = 1.5,
) -> None:
    """``model`` (a LazyCall DINO, detrkit's or detrex's) made Focus-DETR in place: selective encoder (one
    layer ratio per encoder layer), foreground token selector with keep ratio ``keep_ratio``, and the
    foreground loss ``loss_select`` (weight ``select_loss_weight``) with labels by ``strides`` and
    ``scale_ranges`` (one per feature level)."""
    model._target_ = detrkit_dino_class(model._target_)
    model.transformer._target_ = FocusDETRTransformer
    model.transformer.encoder._target_ = SelectiveTokenEncoder
    model.transformer.token_selector = L(CascadeTokenSelector)(
        keep_ratio=keep_ratio, layer_ratios=tuple(layer_ratios)
    )
    label_assigner = L(ForegroundLabelAssigner)(
        strides=tuple(strides), scale_ranges=tuple(tuple(r) for r in scale_ranges)
    )
    add_extra_loss(
        model.criterion,
        L(ForegroundTokenLoss)(label_assigner=label_assigner),
        {"loss_select": select_loss_weight},
    )
