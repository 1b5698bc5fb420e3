"""Sigmoid focal loss (Lin et al. 2017, RetinaNet) with detrex's signature."""

import torch
import torch.nn.functional as F

from detrkit.modeling.losses.reduction import weight_reduce_loss

__all__ = ["sigmoid_focal_loss"]


def sigmoid_focal_loss(
    preds: torch.Tensor,
    targets: torch.Tensor,
    weight: torch.Tensor | None = None,
    alpha: float = 0.25,
    gamma: float = 2.0,
    reduction: str = "mean",
    avg_factor: float | None = None,
) -> torch.Tensor:
    """Binary focal loss on logits, element-wise: ``alpha_t * (1 - p_t)**gamma * BCE(preds, targets)``.

    Args:
        preds: logits of any shape, e.g. ``(N, C)`` or ``(bs, num_queries, C)``; computed in float32.
        targets: same shape as ``preds``, 1 for the positive class and 0 for the negative (values in
            between are used as given in ``p_t`` and ``alpha_t``).
        weight: optional element-wise weight with as many dims as ``preds``.
        alpha: weight of the positives (``1 - alpha`` for the negatives); a negative value disables it.
        gamma: exponent of the modulating factor ``1 - p_t``.
        reduction: "none" (same shape as ``preds``), "mean" or "sum" (scalars).
        avg_factor: with "mean", the loss is summed and divided by this instead of the element count.
    """
    if preds.shape != targets.shape:
        raise ValueError(f"preds {tuple(preds.shape)} and targets {tuple(targets.shape)} differ in shape")
    preds = preds.float()
    targets = targets.float()
    prob = preds.sigmoid()
    bce = F.binary_cross_entropy_with_logits(preds, targets, reduction="none")
    p_t = prob * targets + (1 - prob) * (1 - targets)
    loss = bce * (1 - p_t) ** gamma
    if alpha >= 0:
        loss = (alpha * targets + (1 - alpha) * (1 - targets)) * loss
    return weight_reduce_loss(loss, weight, reduction, avg_factor)
