"""Quality focal loss (Li et al. 2020, GFL) with the alpha balance of the detectors that use it on DETR
queries (StageInteractor's official code; Rank-DETR's GIoU-aware loss, eq. 5)."""

import torch
import torch.nn.functional as F

from detrkit.modeling.losses.reduction import weight_reduce_loss

__all__ = ["quality_focal_loss"]


def quality_focal_loss(
    preds: torch.Tensor,
    soft_targets: torch.Tensor,
    alpha: float = 0.25,
    gamma: float = 2.0,
    reduction: str = "sum",
    avg_factor: float | None = None,
    *,
    positives: torch.Tensor | None = None,
) -> torch.Tensor:
    """Element-wise:

        positives:  alpha * |t - p|^gamma * BCE(x, t)
        negatives:  (1 - alpha) * p^gamma * BCE(x, 0)

    with ``p = sigmoid(x)`` and ``t`` the soft target; several classes of one query may be positive.

    Args:
        preds: logits ``(..., C)``, computed in float32.
        soft_targets: ``(..., C)`` quality targets ``t`` in [0, 1] (not differentiated).
        alpha, gamma: balance and focusing parameters.
        reduction, avg_factor: see :func:`~detrkit.modeling.losses.weight_reduce_loss`.
        positives: ``(..., C)`` bool, the positive elements; None: where ``t > 0`` (a positive with
            quality 0 then counts as a negative).
    """
    if preds.shape != soft_targets.shape:
        raise ValueError(f"preds {tuple(preds.shape)} and soft_targets {tuple(soft_targets.shape)} differ")
    preds, targets = preds.float(), soft_targets.detach().float()
    if positives is None:
        positives = targets > 0
    elif positives.shape != preds.shape:
        raise ValueError(f"preds {tuple(preds.shape)} and positives {tuple(positives.shape)} differ")
    prob = preds.sigmoid()
    positive = (
        alpha
        * (targets - prob).abs() ** gamma
        * F.binary_cross_entropy_with_logits(preds, targets, reduction="none")
    )
    negative = (
        (1 - alpha)
        * prob**gamma
        * F.binary_cross_entropy_with_logits(preds, torch.zeros_like(preds), reduction="none")
    )
    return weight_reduce_loss(torch.where(positives, positive, negative), None, reduction, avg_factor)
