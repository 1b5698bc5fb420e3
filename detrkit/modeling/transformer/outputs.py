"""What the decoders and transformers return: typed outputs instead of tuples and attributes left on the
modules for another one to read. detrex's decoders and transformers return tuples of the same tensors, so
their modules and detrkit's mix in one model: :meth:`DecoderOutput.of` and :meth:`TransformerOutput.of` read
detrex's tuples, and a :class:`DecoderOutput` unpacks as detrex's ``(states, references)`` pair."""

from dataclasses import dataclass
from typing import Generic, NamedTuple, TypeVar

import torch

__all__ = ["DecoderOutput", "NextLayerInputs", "TokenScores", "TransformerOutput", "compose_query_orders"]

Extras = TypeVar("Extras")


class NextLayerInputs(NamedTuple):
    """What a deformable decoder's ``between_layers`` hook returns after layer ``l``: the next layer's inputs.

    Attributes:
        output: ``(bs, nq, C)`` content queries of layer ``l + 1``.
        query_pos: ``(bs, nq, C)`` positional queries passed on (None where the decoder makes its own).
        reference_points: ``(bs, nq, 4)`` layer ``l``'s refined boxes, detached (layer ``l + 1``'s
            references).
        new_reference_points: ``(bs, nq, 4)`` the same boxes undetached (recorded with look-forward-twice).
        order: ``(bs, nq)`` the permutation that reordered them (``x_next[b, i] = x[b, order[b, i]]``), or
            None where the order is unchanged.
    """

    output: torch.Tensor
    query_pos: torch.Tensor | None
    reference_points: torch.Tensor
    new_reference_points: torch.Tensor
    order: torch.Tensor | None = None


@dataclass
class DecoderOutput:
    """A deformable decoder's output; ``states, references = decoder(...)`` unpacks it as detrex's
    transformers do.

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

    def __iter__(self):
        return iter((self.states, self.references))

    @classmethod
    def of(cls, result: "DecoderOutput | tuple[torch.Tensor, torch.Tensor]") -> "DecoderOutput":
        """``result`` itself, or detrex's decoder's ``(states, references)`` pair (query order unknown)."""
        return result if isinstance(result, cls) else cls(*result)


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
    """A two-stage transformer's output; the first five fields are detrex's five outputs.

    Attributes:
        inter_states: ``(num_layers, bs, nq, C)`` decoder outputs.
        init_reference: ``(bs, nq, 4)`` initial reference boxes.
        inter_references: ``(num_layers, bs, nq, 4)`` refined boxes after each layer.
        enc_state, enc_reference: the encoder proposals, as the transformer's detector reads them (DINO: the
            ``(bs, K, C)`` projected memory of the ``K`` selected tokens and their ``(bs, K, 4)`` boxes,
            sigmoid space; H-Deformable-DETR: every token's ``(bs, S, num_classes)`` class logits and
            ``(bs, S, 4)`` boxes, logit space).
        query_ids: the decoder's query order per layer (:attr:`DecoderOutput.query_ids`).
        extras: what a transformer adds for its own losses (e.g. :class:`TokenScores`), else None.
    """

    inter_states: torch.Tensor
    init_reference: torch.Tensor
    inter_references: torch.Tensor
    enc_state: torch.Tensor
    enc_reference: torch.Tensor
    query_ids: torch.Tensor | None = None
    extras: Extras | None = None

    @classmethod
    def of(cls, result: "TransformerOutput | tuple[torch.Tensor, ...]") -> "TransformerOutput":
        """``result`` itself, or detrex's transformer's five outputs (query order unknown, no extras)."""
        return result if isinstance(result, cls) else cls(*result)


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
