"""What the decoders and transformers return: typed outputs instead of tuples and attributes left on the
modules for another one to read."""

from dataclasses import dataclass
from typing import Generic, TypeVar

import torch

from detrkit.modeling.transformer.query_selector import QuerySelection

__all__ = ["DecoderOutput", "TokenScores", "TransformerOutput", "compose_query_orders"]

Extras = TypeVar("Extras")


@dataclass
class DecoderOutput:
    """A deformable decoder's output.

    Attributes:
        states: ``(num_layers, bs, nq, C)`` every layer's output (``(bs, nq, C)``, the last layer's, without
            ``return_intermediate``).
        references: ``(num_layers, bs, nq, 4)`` the refined boxes after every layer (``(bs, nq, 4)``).
        query_ids: ``(num_layers, bs, nq)`` for a decoder that reorders its queries between layers: the
            position in layer 0's input of the query at each position of each layer's output; None where the
            order never changes.
    """

    states: torch.Tensor
    references: torch.Tensor
    query_ids: torch.Tensor | None = None


@dataclass
class TokenScores:
    """The encoder-token scores of a transformer that selects the tokens its encoder updates.

    Attributes:
        logits: ``(bs, S)`` raw scores of the flattened tokens.
        spatial_shapes: ``(L, 2)`` int64 ``(H_l, W_l)`` of the levels they were flattened from.
    """

    logits: torch.Tensor
    spatial_shapes: torch.Tensor


@dataclass
class TransformerOutput(Generic[Extras]):
    """A two-stage transformer's output.

    Attributes:
        inter_states: ``(num_layers, bs, nq, C)`` decoder outputs.
        init_reference: ``(bs, nq, 4)`` initial reference boxes.
        inter_references: ``(num_layers, bs, nq, 4)`` refined boxes after each layer.
        proposals: the query selection: the encoder proposals of every token and the selected ones.
        query_ids: the decoder's query order per layer (:attr:`DecoderOutput.query_ids`).
        extras: what a transformer adds for its own losses (e.g. :class:`TokenScores`), else None.
    """

    inter_states: torch.Tensor
    init_reference: torch.Tensor
    inter_references: torch.Tensor
    proposals: QuerySelection
    query_ids: torch.Tensor | None = None
    extras: Extras | None = None


def compose_query_orders(orders: list[torch.Tensor | None]) -> torch.Tensor | None:
    """:attr:`DecoderOutput.query_ids` ``(num_layers, bs, nq)`` from the permutations ``(bs, nq)`` applied
    between consecutive layers (``num_layers - 1`` of them; None: order unchanged). Layer 0 keeps the
    initial order; layer ``l + 1``'s ids are layer ``l``'s gathered by ``orders[l]``. None when no layer
    reorders."""
    given = [order for order in orders if order is not None]
    if not given:
        return None
    ids = [torch.arange(given[0].shape[1], device=given[0].device).expand_as(given[0])]
    for order in orders:
        ids.append(ids[-1] if order is None else ids[-1].gather(1, order))
    return torch.stack(ids)
