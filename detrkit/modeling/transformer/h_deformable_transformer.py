"""H-Deformable-DETR's transformer (Jia et al., CVPR 2023): Deformable DETR two-stage with box refinement
and mixed query selection, run over the one-to-one and one-to-many query groups at once (kept apart by the
self-attention mask). detrex's ``HDeformableDetrTransformer`` interface."""

import torch
from torch import nn

from detrkit.modeling.transformer.outputs import DecoderOutput, TransformerOutput
from detrkit.modeling.transformer.query_selector import DeformableQuerySelector
from detrkit.modeling.transformer.two_stage_transformer import TwoStageDeformableTransformer

__all__ = ["HDeformableDetrTransformer"]


class HDeformableDetrTransformer(TwoStageDeformableTransformer):
    """H-Deformable-DETR's two-stage deformable transformer.

    Args:
        encoder: e.g. :class:`HDeformableDetrTransformerEncoder`.
        decoder: e.g. :class:`HDeformableDetrTransformerDecoder` (query positions come from the selector).
        num_feature_levels: feature levels ``L``. Default 4.
        as_two_stage: must be True: detrkit implements the two-stage variant (proposals from the encoder).
        two_stage_num_proposals: ``K`` when ``forward`` is not told otherwise (detrex: 300 + 1500 = 1800 in
            training; the detector asks for the one-to-one 300 at inference). Default 300.
        mixed_selection: content queries come from the detector (``query_embed``), positions from the
            selected proposals; otherwise both from the proposals. Default True.
        query_selector: the selection slot; None builds a :class:`DeformableQuerySelector`.

    Checkpoints: detrex keeps the selector's parameters on the transformer; their names here are
    ``query_selector.<name>`` (see :attr:`detrex_key_renames`).
    """

    #: detrex parameter-name prefixes (relative to the transformer) -> detrkit's.
    detrex_key_renames = {
        "enc_output.": "query_selector.enc_output.",
        "enc_output_norm.": "query_selector.enc_output_norm.",
        "pos_trans.": "query_selector.pos_trans.",
        "pos_trans_norm.": "query_selector.pos_trans_norm.",
    }

    def __init__(
        self,
        encoder: nn.Module,
        decoder: nn.Module,
        num_feature_levels: int = 4,
        as_two_stage: bool = True,
        two_stage_num_proposals: int = 300,
        mixed_selection: bool = True,
        query_selector: nn.Module | None = None,
    ):
        if not as_two_stage:
            raise ValueError(
                "HDeformableDetrTransformer: as_two_stage=False (learned reference points) is not supported; "
                "detrkit implements the two-stage H-Deformable-DETR"
            )
        if query_selector is None:
            query_selector = DeformableQuerySelector(encoder.embed_dim)
        super().__init__(encoder, decoder, query_selector, num_feature_levels)
        self.as_two_stage = as_two_stage
        self.two_stage_num_proposals = two_stage_num_proposals
        self.mixed_selection = mixed_selection

    def forward(
        self,
        multi_level_feats: list[torch.Tensor],
        multi_level_masks: list[torch.Tensor],
        multi_level_pos_embeds: list[torch.Tensor],
        query_embed: torch.Tensor | None,
        self_attn_mask: torch.Tensor | None,
        num_proposals: int | None = None,
        **kwargs,
    ) -> TransformerOutput:
        """Encoder, selection of ``K`` queries, decoder.

        Args:
            multi_level_feats: ``L`` tensors ``(bs, C, H_l, W_l)``.
            multi_level_masks: ``L`` bool tensors ``(bs, H_l, W_l)``, True at padding.
            multi_level_pos_embeds: ``L`` tensors ``(bs, C, H_l, W_l)``.
            query_embed: ``(K, C)`` content queries (mixed selection), else None.
            self_attn_mask: ``(K, K)`` bool decoder self-attention mask (the hybrid groups), or None.
            num_proposals: ``K``; default ``query_embed``'s rows, else ``two_stage_num_proposals``.

        Returns:
            A :class:`TransformerOutput` over the ``K`` queries; its ``enc_state`` and ``enc_reference`` are
            the encoder proposals of every token: ``(bs, S, num_classes)`` logits and ``(bs, S, 4)`` boxes,
            logit space.
        """
        if self.mixed_selection and query_embed is None:
            raise ValueError("HDeformableDetrTransformer with mixed_selection needs query_embed (K, C)")
        if num_proposals is None:
            num_proposals = query_embed.shape[0] if query_embed is not None else self.two_stage_num_proposals
        memory, tokens = self.encode(multi_level_feats, multi_level_masks, multi_level_pos_embeds, **kwargs)
        selection = self.select_queries(
            memory, tokens, num_proposals, content_queries=query_embed if self.mixed_selection else None
        )
        decoded = DecoderOutput.of(
            self.decoder(
                query=selection.content,
                key=None,
                value=memory,
                query_pos=selection.query_pos,
                key_padding_mask=tokens.mask,
                reference_points=selection.reference_points,
                spatial_shapes=tokens.spatial_shapes,
                level_start_index=tokens.level_start_index,
                valid_ratios=tokens.valid_ratios,
                attn_masks=[self_attn_mask, None],
                **kwargs,
            )
        )
        return TransformerOutput(
            decoded.states,
            selection.reference_points,
            decoded.references,
            selection.enc_logits,
            selection.enc_coords_unact,
            decoded.query_ids,
        )
