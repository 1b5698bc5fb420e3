"""The GIoU-aware classification loss (Rank-DETR sec. 3.2, eq. 5), as a loss function and as a mixin that
gives any detrkit :class:`~detrkit.modeling.criterion.SetCriterion` subclass this class loss."""

from collections.abc import Callable

import torch

from detrkit.modeling.criterion import DINOCriterion, TwoStageCriterion
from detrkit.modeling.losses import quality_focal_loss
from detrkit.modeling.losses.giou_loss import paired_generalized_box_iou
from detrkit.structures.box_ops import box_cxcywh_to_xyxy

__all__ = ["GIoUAwareClassLossMixin", "RankDINOCriterion", "RankDetrCriterion", "giou_aware_focal_loss"]


def giou_aware_focal_loss(
    preds: torch.Tensor,
    targets: torch.Tensor,
    quality: torch.Tensor,
    alpha: float = 0.25,
    gamma: float = 2.0,
    reduction: str = "sum",
    avg_factor: float | None = None,
) -> torch.Tensor:
    """Element-wise focal loss whose positive target is the localisation quality ``t`` (eq. 5; the
    :func:`~detrkit.modeling.losses.quality_focal_loss` with the one-hot positives):

        positives (``targets == 1``):  alpha * |t - p|^gamma * BCE(x, t)
        negatives (``targets == 0``):  (1 - alpha) * p^gamma * BCE(x, 0)

    with ``p = sigmoid(x)``. With ``t = 1`` it is the sigmoid focal loss.

    Args:
        preds: logits ``(..., C)``.
        targets: one-hot ``(..., C)`` (0 / 1).
        quality: ``(...)`` target score ``t`` in [0, 1] of each query's positive class (ignored where a
            query has none); not differentiated.
        alpha, gamma: focal parameters.
        reduction, avg_factor: see :func:`~detrkit.modeling.losses.weight_reduce_loss`.
    """
    if preds.shape != targets.shape or quality.shape != preds.shape[:-1]:
        raise ValueError(
            f"giou_aware_focal_loss: preds {tuple(preds.shape)}, targets {tuple(targets.shape)} and quality "
            f"{tuple(quality.shape)} must be (..., C), (..., C), (...)"
        )
    soft_targets = targets.float() * quality.float()[..., None]
    return quality_focal_loss(preds, soft_targets, alpha, gamma, reduction, avg_factor, positives=targets > 0)


class GIoUAwareClassLossMixin:
    """Replaces a :class:`SetCriterion`'s focal ``loss_class`` by :func:`giou_aware_focal_loss` with
    ``t = (GIoU(matched prediction, its target) + 1) / 2`` (eq. 5; the GIoU with the criterion's
    ``iou_eps``, detrex's 1e-6 as in the official code), summed and divided by ``num_boxes``. It
    applies wherever the criterion computes ``loss_class`` (every decoder layer, one-to-many, denoising),
    except the encoder proposals (suffix ``_enc``), which keep the focal loss unless
    ``giou_aware_enc`` is set (official code).

    Use it first in the bases: ``class C(GIoUAwareClassLossMixin, TwoStageCriterion)``.
    """

    #: also use the GIoU-aware loss for the encoder proposals (official code: no)
    giou_aware_enc = False

    def loss_function(self, loss: str, suffix: str) -> Callable[..., dict]:
        """The base's class loss for the encoder proposals (suffix ``_enc``) unless ``giou_aware_enc``,
        otherwise the base's choice (:meth:`loss_labels` for ``"class"``)."""
        if loss == "class" and suffix == "_enc" and not self.giou_aware_enc:
            return super().loss_labels
        return super().loss_function(loss, suffix)

    def loss_labels(self, outputs: dict, targets: list[dict], indices, num_boxes: float) -> dict:
        """``loss_class``: the GIoU-aware focal loss."""
        if self.loss_class_type != "focal_loss":
            raise ValueError(
                f"{type(self).__name__}: the GIoU-aware class loss needs loss_class_type 'focal_loss', got "
                f"{self.loss_class_type!r}"
            )
        logits = outputs["pred_logits"]
        batch_idx, src_idx = self._get_src_permutation_idx(indices)
        matched_labels = torch.cat([t["labels"][j] for t, (_, j) in zip(targets, indices, strict=True)])
        matched_boxes = torch.cat([t["boxes"][j] for t, (_, j) in zip(targets, indices, strict=True)])
        onehot = torch.zeros_like(logits, dtype=torch.float)
        onehot[batch_idx, src_idx, matched_labels.to(logits.device)] = 1
        giou = paired_generalized_box_iou(
            box_cxcywh_to_xyxy(outputs["pred_boxes"][batch_idx, src_idx].float()),
            box_cxcywh_to_xyxy(matched_boxes.to(logits.device).float()),
            eps=self.iou_eps,
        )
        quality = torch.zeros(logits.shape[:2], device=logits.device)
        quality[batch_idx, src_idx] = (giou.detach() + 1) / 2
        loss = giou_aware_focal_loss(logits, onehot, quality, self.alpha, self.gamma, reduction="sum")
        return {"loss_class": loss / num_boxes}


class RankDetrCriterion(GIoUAwareClassLossMixin, TwoStageCriterion):
    """Rank-DETR's criterion (official ``RankDetrCriterion``): :class:`TwoStageCriterion` with the GIoU-aware
    class loss. Arguments: :class:`TwoStageCriterion`'s."""


class RankDINOCriterion(GIoUAwareClassLossMixin, DINOCriterion):
    """:class:`DINOCriterion` with the GIoU-aware class loss (also on the denoising queries). Arguments:
    :class:`DINOCriterion`'s."""
