"""A transformer layer assembled from attention, FFN and norm modules in a given order, and a stack of such
layers (detrex's ``BaseTransformerLayer`` and ``TransformerLayerSequence``, same parameter names:
``attentions.{i}``, ``ffns.{i}``, ``norms.{i}``, ``layers.{n}``)."""

import copy

import torch
from torch import nn

__all__ = ["BaseTransformerLayer", "TransformerLayerSequence"]

_OPERATIONS = {"self_attn", "cross_attn", "norm", "ffn"}


class BaseTransformerLayer(nn.Module):
    """Runs ``operation_order``, e.g. ``("self_attn", "norm", "cross_attn", "norm", "ffn", "norm")``.

    Every attention and FFN adds its own residual. A post-norm layer (the DETR default) passes no identity
    to them, so the residual is their (normed) input; a pre-norm layer (``operation_order`` starting with
    ``"norm"``) passes the input from before the norm.

    Args:
        attn: one attention module per ``self_attn``/``cross_attn`` entry, in order; a single module is
            deep-copied for every entry.
        ffn: FFN module, deep-copied for every ``ffn`` entry.
        norm: normalisation module, deep-copied for every ``norm`` entry.
        operation_order: the operations, each one of ``self_attn``, ``cross_attn``, ``norm``, ``ffn``.
    """

    def __init__(
        self,
        attn: nn.Module | list[nn.Module],
        ffn: nn.Module,
        norm: nn.Module,
        operation_order: tuple[str, ...],
    ):
        super().__init__()
        unknown = set(operation_order) - _OPERATIONS
        if unknown:
            raise ValueError(f"operation_order {operation_order}: unknown operations {sorted(unknown)}")
        num_attn = sum(op in ("self_attn", "cross_attn") for op in operation_order)
        if isinstance(attn, nn.Module):
            attn = [copy.deepcopy(attn) for _ in range(num_attn)]
        elif len(attn) != num_attn:
            raise ValueError(
                f"operation_order {operation_order} has {num_attn} attentions but {len(attn)} were given"
            )
        self.num_attn = num_attn
        self.operation_order = tuple(operation_order)
        self.pre_norm = operation_order[0] == "norm"
        self.attentions = nn.ModuleList(attn)
        self.embed_dim = self.attentions[0].embed_dim
        self.ffns = nn.ModuleList(copy.deepcopy(ffn) for _ in range(operation_order.count("ffn")))
        self.norms = nn.ModuleList(copy.deepcopy(norm) for _ in range(operation_order.count("norm")))

    def forward(
        self,
        query: torch.Tensor,
        key: torch.Tensor | None = None,
        value: torch.Tensor | None = None,
        query_pos: torch.Tensor | None = None,
        key_pos: torch.Tensor | None = None,
        attn_masks: list[torch.Tensor | None] | torch.Tensor | None = None,
        query_key_padding_mask: torch.Tensor | None = None,
        key_padding_mask: torch.Tensor | None = None,
        **kwargs,
    ) -> torch.Tensor:
        """One layer; ``**kwargs`` (reference points, spatial shapes, ...) go to every attention.

        Args:
            query: ``(bs, Lq, C)`` or ``(Lq, bs, C)``, as the attention modules expect.
            key, value: the cross-attention's keys and values; self-attention uses ``query`` for both.
            query_pos: positional embedding of the queries (keys too in self-attention).
            key_pos: positional embedding of the cross-attention keys.
            attn_masks: one mask per attention (or None), or one tensor used by all attentions.
            query_key_padding_mask: ``(bs, Lq)`` bool, True at padded queries; used by self-attention.
            key_padding_mask: ``(bs, Lk)`` bool, True at padded keys; used by cross-attention.

        Returns:
            Same shape as ``query``.
        """
        if attn_masks is None or isinstance(attn_masks, torch.Tensor):
            attn_masks = [attn_masks] * self.num_attn
        elif len(attn_masks) != self.num_attn:
            raise ValueError(f"{len(attn_masks)} attn_masks given for {self.num_attn} attentions")
        attn_index = norm_index = ffn_index = 0
        identity = query
        for operation in self.operation_order:
            if operation == "norm":
                query = self.norms[norm_index](query)
                norm_index += 1
            elif operation == "ffn":
                query = self.ffns[ffn_index](query, identity if self.pre_norm else None)
                ffn_index += 1
            else:
                is_self = operation == "self_attn"
                query = self.attentions[attn_index](
                    query,
                    query if is_self else key,
                    query if is_self else value,
                    identity if self.pre_norm else None,
                    query_pos=query_pos,
                    key_pos=query_pos if is_self else key_pos,
                    attn_mask=attn_masks[attn_index],
                    key_padding_mask=query_key_padding_mask if is_self else key_padding_mask,
                    **kwargs,
                )
                attn_index += 1
                identity = query
        return query


class TransformerLayerSequence(nn.Module):
    """Holds ``num_layers`` transformer layers as ``self.layers``; subclasses define ``forward``.

    Args:
        transformer_layers: one layer, deep-copied ``num_layers`` times, or a list of ``num_layers`` layers.
        num_layers: number of layers.
    """

    def __init__(self, transformer_layers: nn.Module | list[nn.Module], num_layers: int):
        super().__init__()
        if isinstance(transformer_layers, nn.Module):
            transformer_layers = [copy.deepcopy(transformer_layers) for _ in range(num_layers)]
        elif len(transformer_layers) != num_layers:
            raise ValueError(
                f"{len(transformer_layers)} transformer_layers given for num_layers={num_layers}"
            )
        self.num_layers = num_layers
        self.layers = nn.ModuleList(transformer_layers)
