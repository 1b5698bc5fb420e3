"""The logit (inverse sigmoid) of probabilities and normalised boxes, detrex's ``inverse_sigmoid``."""

import torch

__all__ = ["inverse_sigmoid"]


def inverse_sigmoid(x: torch.Tensor, eps: float = 1e-3) -> torch.Tensor:
    """``log(x / (1 - x))`` of ``x`` clamped to [0, 1], with ``x`` and ``1 - x`` kept >= ``eps`` so the result
    stays finite (within about +-6.9 for the default ``eps``). Same shape as ``x``."""
    x = x.clamp(min=0, max=1)
    return torch.log(x.clamp(min=eps) / (1 - x).clamp(min=eps))
