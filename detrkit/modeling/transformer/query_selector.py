"""Two-stage query selection: the slot that turns the encoder memory into the decoder's initial queries.

Slot interface (what a transformer calls; a paper replaces the selector to change how queries are picked)::

    selection = selector(memory, memory_padding_mask, spatial_shapes, class_head, box_head, num_queries,
                         content_queries=None)

- ``memory``: ``(bs, S, C)`` encoder output; ``memory_padding_mask``: ``(bs, S)`` bool, True at padding;
  ``spatial_shapes``: ``(L, 2)`` int64.
- ``class_head``: ``(..., C) -> (..., num_classes)`` and ``box_head``: ``(..., C) -> (..., 4)``, the
  detector's encoder-proposal heads (``decoder.class_embed[-1]``, ``decoder.bbox_embed[-1]``).
- ``num_queries``: ``K``, how many queries to select.
- ``content_queries``: ``(K, C)`` content queries supplied by the detector (H-Deformable-DETR's mixed
  selection) or None for the selector's own.
- returns a :class:`QuerySelection`.

Selectors:
- :class:`TopKProposalSelector`: top-K tokens by their highest class logit; content queries are the
  selected memory, detached (DINO with ``learnt_init_query=False``).
- :class:`TwoStageQuerySelector` (DINO): the same selection, content queries a learned embedding
  ``tgt_embed``.
- :class:`DeformableQuerySelector` (Deformable DETR / H-Deformable-DETR): top-K by the first class logit
  (the class-agnostic "object" score of Deformable DETR's two-stage); query positions, and without mixed
  selection the content too, come from the sine embedding of the selected boxes through ``pos_trans``.
"""

from dataclasses import dataclass

import torch
from torch import nn

from detrkit.layers.position_embedding import get_sine_pos_embed
from detrkit.modeling.transformer.proposals import grid_proposals

__all__ = [
    "DeformableQuerySelector",
    "QuerySelection",
    "TopKProposalSelector",
    "TwoStageQuerySelector",
    "gather_tokens",
]


def gather_tokens(tokens: torch.Tensor, indices: torch.Tensor) -> torch.Tensor:
    """``tokens[b, indices[b]]`` for every image: ``(bs, S, D)`` and ``(bs, K)`` -> ``(bs, K, D)``."""
    return torch.gather(tokens, 1, indices[..., None].expand(-1, -1, tokens.shape[-1]))


@dataclass
class QuerySelection:
    """What a query selector returns (``K`` selected of ``S`` tokens).

    Attributes:
        content: ``(bs, K, C)`` initial content queries of the decoder.
        reference_points: ``(bs, K, 4)`` initial reference boxes ``(cx, cy, w, h)`` in [0, 1], detached.
        query_pos: ``(bs, K, C)`` positional queries, or None when the decoder makes its own (DINO).
        topk_indices: ``(bs, K)`` indices of the selected tokens.
        output_memory: ``(bs, S, C)`` the projected memory the heads ran on.
        enc_logits: ``(bs, S, num_classes)`` encoder-proposal class logits.
        enc_coords_unact: ``(bs, S, 4)`` encoder-proposal boxes in logit space (``+inf`` where invalid).
    """

    content: torch.Tensor
    reference_points: torch.Tensor
    query_pos: torch.Tensor | None
    topk_indices: torch.Tensor
    output_memory: torch.Tensor
    enc_logits: torch.Tensor
    enc_coords_unact: torch.Tensor

    @property
    def selected_memory(self) -> torch.Tensor:
        """``(bs, K, C)`` projected memory of the selected tokens (not detached)."""
        return gather_tokens(self.output_memory, self.topk_indices)

    @property
    def selected_coords_unact(self) -> torch.Tensor:
        """``(bs, K, 4)`` encoder-proposal boxes of the selected tokens, logit space (not detached)."""
        return gather_tokens(self.enc_coords_unact, self.topk_indices)


class TopKProposalSelector(nn.Module):
    """Top-K selection of encoder proposals (Deformable DETR two-stage, DINO sec. 3.4), content from memory.

    The memory is projected, ``m' = LN(Linear(m))`` (``enc_output``, ``enc_output_norm``; zeroed first at
    padding and invalid proposals), scored by the class head, and its boxes are the grid proposals refined
    by the box head: ``b = sigmoid(box_head(m') + sigmoid^-1(p_grid))``. The ``K`` tokens with the highest
    :meth:`score` give the reference boxes (detached); :meth:`make_queries` gives the content and
    positional queries, here the selected ``m'`` detached and None.

    Args:
        embed_dim: model width ``C``. Default 256.
    """

    def __init__(self, embed_dim: int = 256):
        super().__init__()
        self.embed_dim = embed_dim
        self.enc_output = nn.Linear(embed_dim, embed_dim)
        self.enc_output_norm = nn.LayerNorm(embed_dim)

    def gen_encoder_output_proposals(
        self, memory: torch.Tensor, memory_padding_mask: torch.Tensor, spatial_shapes: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """The projected memory ``(bs, S, C)`` (zeroed before the projection at padding and invalid
        proposals) and the grid proposals ``(bs, S, 4)`` in logit space (see :func:`grid_proposals`)."""
        proposals, valid = grid_proposals(memory_padding_mask, spatial_shapes)
        memory = memory.masked_fill(memory_padding_mask[..., None], 0.0).masked_fill(~valid, 0.0)
        return self.enc_output_norm(self.enc_output(memory)), proposals

    def score(self, enc_logits: torch.Tensor) -> torch.Tensor:
        """Selection score of every token, ``(bs, S, num_classes) -> (bs, S)``: the highest class logit."""
        return enc_logits.max(-1)[0]

    def make_queries(
        self, selected_memory: torch.Tensor, selected_coords_unact: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Content ``(bs, K, C)`` and positional queries (None: the decoder derives them from the reference
        boxes) from the selected ``(bs, K, C)`` memory and ``(bs, K, 4)`` logit-space boxes."""
        return selected_memory.detach(), None

    def select_indices(
        self, scores: torch.Tensor, spatial_shapes: torch.Tensor, num_queries: int
    ) -> torch.Tensor:
        """Indices ``(bs, K)`` of the selected tokens, best first, from the ``(bs, S)`` :meth:`score` of every
        token (levels of ``spatial_shapes`` ``(L, 2)`` flattened in order); here the top ``K = num_queries``.
        A subclass may return fewer (e.g. after removing redundant tokens)."""
        num_tokens = scores.shape[1]
        if num_queries > num_tokens:
            raise ValueError(
                f"two-stage selection of {num_queries} queries from only {num_tokens} encoder tokens; "
                "use fewer queries or larger feature maps"
            )
        return torch.topk(scores, num_queries, dim=1)[1]

    def forward(
        self,
        memory: torch.Tensor,
        memory_padding_mask: torch.Tensor,
        spatial_shapes: torch.Tensor,
        class_head: nn.Module,
        box_head: nn.Module,
        num_queries: int,
        content_queries: torch.Tensor | None = None,
    ) -> QuerySelection:
        """Selects ``num_queries`` queries; see the module docstring for the arguments."""
        output_memory, proposals = self.gen_encoder_output_proposals(
            memory, memory_padding_mask, spatial_shapes
        )
        enc_logits = class_head(output_memory)
        enc_coords_unact = box_head(output_memory) + proposals
        with torch.no_grad():
            topk_indices = self.select_indices(self.score(enc_logits), spatial_shapes, num_queries)
        selected_coords_unact = gather_tokens(enc_coords_unact, topk_indices)
        content, query_pos = self.make_queries(
            gather_tokens(output_memory, topk_indices), selected_coords_unact
        )
        if content_queries is not None:
            if content_queries.shape != (num_queries, self.embed_dim):
                raise ValueError(
                    f"content_queries has shape {tuple(content_queries.shape)}, expected "
                    f"({num_queries}, {self.embed_dim})"
                )
            content = content_queries[None, : topk_indices.shape[1]].expand(memory.shape[0], -1, -1)
        return QuerySelection(
            content=content,
            reference_points=selected_coords_unact.detach().sigmoid(),
            query_pos=query_pos,
            topk_indices=topk_indices,
            output_memory=output_memory,
            enc_logits=enc_logits,
            enc_coords_unact=enc_coords_unact,
        )


class TwoStageQuerySelector(TopKProposalSelector):
    """DINO's mixed query selection: :class:`TopKProposalSelector` with learned content queries
    ``tgt_embed`` (the reference boxes are selected, the content is not).

    Args:
        embed_dim: model width ``C``. Default 256.
        num_queries: rows of ``tgt_embed``, the most queries this selector can make. Default 900.
    """

    def __init__(self, embed_dim: int = 256, num_queries: int = 900):
        super().__init__(embed_dim=embed_dim)
        self.num_queries = num_queries
        self.tgt_embed = nn.Embedding(num_queries, embed_dim)

    def make_queries(
        self, selected_memory: torch.Tensor, selected_coords_unact: torch.Tensor
    ) -> tuple[torch.Tensor, None]:
        """The first ``K`` rows of ``tgt_embed`` per image, ``(bs, K, C)``, and no positional queries."""
        batch, num_queries = selected_memory.shape[:2]
        if num_queries > self.num_queries:
            raise ValueError(
                f"{num_queries} queries requested but tgt_embed has only {self.num_queries} rows"
            )
        return self.tgt_embed.weight[None, :num_queries].expand(batch, -1, -1), None


class DeformableQuerySelector(TopKProposalSelector):
    """Deformable DETR's two-stage selection as H-Deformable-DETR uses it.

    Tokens are ranked by the first class logit (trained class-agnostically by the criterion's binary
    encoder loss). The selected boxes ``p`` (detached) give
    ``[query_pos, content] = LN(pos_trans(PE(sigmoid(p))))`` (``2C`` features, ``C/2`` sine features per
    coordinate, ``(x, y, w, h)`` order); with mixed selection the detector supplies the content instead.

    Args:
        embed_dim: model width ``C``. Default 256.
    """

    def __init__(self, embed_dim: int = 256):
        super().__init__(embed_dim=embed_dim)
        self.pos_trans = nn.Linear(2 * embed_dim, 2 * embed_dim)
        self.pos_trans_norm = nn.LayerNorm(2 * embed_dim)

    def score(self, enc_logits: torch.Tensor) -> torch.Tensor:
        """The first class's logit, ``(bs, S)``."""
        return enc_logits[..., 0]

    def make_queries(
        self, selected_memory: torch.Tensor, selected_coords_unact: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """``(content, query_pos)``, each ``(bs, K, C)``, from the sine embedding of the selected boxes."""
        sine = get_sine_pos_embed(
            selected_coords_unact.detach().sigmoid(), num_pos_feats=self.embed_dim // 2, exchange_xy=False
        )
        query_pos, content = self.pos_trans_norm(self.pos_trans(sine)).split(self.embed_dim, dim=-1)
        return content, query_pos
