"""Weighting and reduction shared by every element-wise loss (detrex/mmdet semantics)."""

import torch

__all__ = ["reduce_loss", "weight_reduce_loss"]

_REDUCTIONS = ("none", "mean", "sum")


def reduce_loss(loss: torch.Tensor, reduction: str) -> torch.Tensor:
    """``loss`` unchanged ("none"), its mean ("mean") or its sum ("sum")."""
    if reduction == "none":
        return loss
    if reduction == "mean":
        return loss.mean()
    if reduction == "sum":
        return loss.sum()
    raise ValueError(f"reduction must be one of {_REDUCTIONS}, got {reduction!r}")


def weight_reduce_loss(
    loss: torch.Tensor,
    weight: torch.Tensor | None = None,
    reduction: str = "mean",
    avg_factor: float | None = None,
) -> torch.Tensor:
    """Multiplies an element-wise ``loss`` by ``weight`` (same number of dims, broadcastable) and reduces it.

    With ``avg_factor`` the "mean" is ``loss.sum() / (avg_factor + eps)`` (eps = the dtype's machine epsilon,
    so a factor of 0 gives 0 rather than a division error); "none" ignores ``avg_factor``; "sum" with an
    ``avg_factor`` is an error.
    """
    if weight is not None:
        if weight.ndim != loss.ndim:
            raise ValueError(
                f"weight has {weight.ndim} dims but the element-wise loss has {loss.ndim} "
                f"(shapes {tuple(weight.shape)} and {tuple(loss.shape)})"
            )
        loss = loss * weight
    if avg_factor is None:
        return reduce_loss(loss, reduction)
    if reduction == "mean":
        return loss.sum() / (avg_factor + torch.finfo(loss.dtype).eps)
    if reduction == "none":
        return loss
    raise ValueError(f"avg_factor can only be used with reduction 'mean' or 'none', got {reduction!r}")
