"""Transformer feed-forward block with a residual connection, detrex's ``FFN``."""

import torch
from torch import nn

__all__ = ["FFN"]


class FFN(nn.Module):
    """``identity + Dropout(Linear(... Dropout(act(Linear(x))) ...))``.

    Parameter names follow detrex: the hidden blocks are ``layers.{i}.0`` (``Linear``, activation, dropout in
    an ``nn.Sequential``), the output projection is ``layers.{num_fcs - 1}``.

    Args:
        embed_dim: input features. Default 256.
        feedforward_dim: hidden features. Default 1024.
        output_dim: output features; ``embed_dim`` when None. Must equal ``embed_dim`` for the residual.
        num_fcs: number of linear layers, at least 2. Default 2.
        activation: activation module between the linear layers. Default ``nn.ReLU(inplace=True)``.
        ffn_drop: dropout after every linear layer. Default 0.
        fc_bias: whether the linear layers have a bias. Default True.
        add_identity: add the residual ``identity`` (``x`` when not given). Default True.
    """

    def __init__(
        self,
        embed_dim: int = 256,
        feedforward_dim: int = 1024,
        output_dim: int | None = None,
        num_fcs: int = 2,
        activation: nn.Module | None = None,
        ffn_drop: float = 0.0,
        fc_bias: bool = True,
        add_identity: bool = True,
    ):
        super().__init__()
        if num_fcs < 2:
            raise ValueError(f"FFN needs num_fcs >= 2, got {num_fcs}")
        output_dim = embed_dim if output_dim is None else output_dim
        if add_identity and output_dim != embed_dim:
            raise ValueError(
                f"FFN with add_identity needs output_dim == embed_dim, got {output_dim} != {embed_dim}"
            )
        self.embed_dim = embed_dim
        self.feedforward_dim = feedforward_dim
        self.num_fcs = num_fcs
        self.activation = nn.ReLU(inplace=True) if activation is None else activation
        self.add_identity = add_identity
        blocks = []
        in_features = embed_dim
        for _ in range(num_fcs - 1):
            blocks.append(
                nn.Sequential(
                    nn.Linear(in_features, feedforward_dim, bias=fc_bias),
                    self.activation,
                    nn.Dropout(ffn_drop),
                )
            )
            in_features = feedforward_dim
        blocks += [nn.Linear(feedforward_dim, output_dim, bias=fc_bias), nn.Dropout(ffn_drop)]
        self.layers = nn.Sequential(*blocks)

    def forward(self, x: torch.Tensor, identity: torch.Tensor | None = None) -> torch.Tensor:
        """``(..., embed_dim)`` -> ``(..., output_dim)``, plus ``identity`` (default ``x``) when enabled."""
        out = self.layers(x)
        if not self.add_identity:
            return out
        return (x if identity is None else identity) + out
