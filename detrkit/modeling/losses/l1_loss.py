"""L1 loss with detrex's signature."""

import torch

from detrkit.modeling.losses.reduction import weight_reduce_loss

__all__ = ["l1_loss"]


def l1_loss(
    preds: torch.Tensor,
    targets: torch.Tensor,
    weight: torch.Tensor | None = None,
    reduction: str = "mean",
    avg_factor: float | None = None,
) -> torch.Tensor:
    """``|preds - targets|`` element-wise, then weighted and reduced.

    Args:
        preds, targets: tensors of the same shape, e.g. ``(N, 4)`` boxes.
        weight: optional element-wise weight with as many dims as ``preds``.
        reduction, avg_factor: see :func:`detrkit.modeling.losses.weight_reduce_loss`.

    With no targets (``targets.numel() == 0``) the result is ``preds.sum() * 0``: zero, still in the graph.
    """
    if targets.numel() == 0:
        return preds.sum() * 0
    if preds.shape != targets.shape:
        raise ValueError(f"preds {tuple(preds.shape)} and targets {tuple(targets.shape)} differ in shape")
    return weight_reduce_loss((preds - targets).abs(), weight, reduction, avg_factor)
