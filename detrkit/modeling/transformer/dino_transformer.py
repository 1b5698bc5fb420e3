"""DINO's transformer (Zhang et al., ICLR 2023): deformable encoder, mixed query selection, denoising
queries prepended to the selected ones, DINO decoder. detrex's ``DINOTransformer`` interface."""

import torch
from torch import nn

from detrkit.modeling.transformer.multi_level import MultiLevelTokens
from detrkit.modeling.transformer.outputs import DecoderOutput, TransformerOutput
from detrkit.modeling.transformer.query_selector import TopKProposalSelector, TwoStageQuerySelector
from detrkit.modeling.transformer.two_stage_transformer import TwoStageDeformableTransformer

__all__ = ["DINOTransformer"]


class DINOTransformer(TwoStageDeformableTransformer):
    """DINO's two-stage deformable transformer.

    Args:
        encoder: e.g. :class:`DINOTransformerEncoder`.
        decoder: e.g. :class:`DINOTransformerDecoder`.
        num_feature_levels: feature levels ``L``. Default 4.
        two_stage_num_proposals: ``K``, queries selected from the encoder. Default 900.
        learnt_init_query: learned content queries (``TwoStageQuerySelector``) rather than the selected
            memory (``TopKProposalSelector``); used only when ``query_selector`` is None. Default True.
        query_selector: the selection slot; None builds the one ``learnt_init_query`` names.

    Checkpoints: detrex keeps the selector's parameters on the transformer; their names here are
    ``query_selector.<name>`` (see :attr:`detrex_key_renames`).
    """

    #: detrex parameter-name prefixes (relative to the transformer) -> detrkit's.
    detrex_key_renames = {
        "enc_output.": "query_selector.enc_output.",
        "enc_output_norm.": "query_selector.enc_output_norm.",
        "tgt_embed.": "query_selector.tgt_embed.",
    }

    def __init__(
        self,
        encoder: nn.Module,
        decoder: nn.Module,
        num_feature_levels: int = 4,
        two_stage_num_proposals: int = 900,
        learnt_init_query: bool = True,
        query_selector: nn.Module | None = None,
    ):
        if query_selector is None:
            query_selector = (
                TwoStageQuerySelector(encoder.embed_dim, two_stage_num_proposals)
                if learnt_init_query
                else TopKProposalSelector(encoder.embed_dim)
            )
        super().__init__(encoder, decoder, query_selector, num_feature_levels)
        self.two_stage_num_proposals = two_stage_num_proposals
        self.learnt_init_query = learnt_init_query

    def forward(
        self,
        multi_level_feats: list[torch.Tensor],
        multi_level_masks: list[torch.Tensor],
        multi_level_pos_embeds: list[torch.Tensor],
        query_embed: tuple[torch.Tensor | None, torch.Tensor | None] = (None, None),
        attn_masks: list[torch.Tensor | None] | None = None,
        **kwargs,
    ) -> TransformerOutput:
        """Encoder, selection of ``K`` queries, decoder over ``pad`` denoising + ``K`` queries.

        Args:
            multi_level_feats: ``L`` tensors ``(bs, C, H_l, W_l)``.
            multi_level_masks: ``L`` bool tensors ``(bs, H_l, W_l)``, True at padding.
            multi_level_pos_embeds: ``L`` tensors ``(bs, C, H_l, W_l)``.
            query_embed: ``(input_query_label (bs, pad, C), input_query_bbox (bs, pad, 4) logits)`` of the
                denoising queries, or ``(None, None)``.
            attn_masks: ``[self_attn_mask (pad + K, pad + K), None]`` for the decoder layers.

        Returns:
            A :class:`TransformerOutput` over ``nq = pad + K`` queries (the denoising ones first); its
            ``enc_state`` is the ``(bs, K, C)`` projected memory of the selected tokens (the detector applies
            the encoder class head to it), ``enc_reference`` their ``(bs, K, 4)`` encoder proposals, sigmoid
            space, not detached.
        """
        memory, tokens = self.encode(multi_level_feats, multi_level_masks, multi_level_pos_embeds, **kwargs)
        return self.decode(memory, tokens, query_embed, attn_masks, **kwargs)

    def decode(
        self,
        memory: torch.Tensor,
        tokens: MultiLevelTokens,
        query_embed: tuple[torch.Tensor | None, torch.Tensor | None] | None = (None, None),
        attn_masks: list[torch.Tensor | None] | None = None,
        **kwargs,
    ) -> TransformerOutput:
        """Selection of ``K`` queries from the ``(bs, S, C)`` encoder ``memory`` of the flattened ``tokens``,
        then the decoder over the denoising queries (``query_embed``) and the selected ones; arguments and
        output as in :meth:`forward`."""
        dn_label, dn_bbox = query_embed if query_embed is not None else (None, None)
        selection = self.select_queries(memory, tokens, self.two_stage_num_proposals)
        reference_points = selection.reference_points
        target = selection.content
        if dn_bbox is not None:
            reference_points = torch.cat([dn_bbox.sigmoid(), reference_points], 1)
        if dn_label is not None:
            target = torch.cat([dn_label, target], 1)
        if attn_masks and attn_masks[0] is not None:
            # a selector may return fewer than K queries; they come last, so the mask keeps its leading block
            num_total = target.shape[1]
            attn_masks = [attn_masks[0][:num_total, :num_total], *attn_masks[1:]]
        decoded = DecoderOutput.of(
            self.decoder(
                query=target,
                key=memory,
                value=memory,
                query_pos=selection.query_pos,
                key_padding_mask=tokens.mask,
                reference_points=reference_points,
                spatial_shapes=tokens.spatial_shapes,
                level_start_index=tokens.level_start_index,
                valid_ratios=tokens.valid_ratios,
                attn_masks=attn_masks,
                **kwargs,
            )
        )
        return TransformerOutput(
            decoded.states,
            reference_points,
            decoded.references,
            selection.selected_memory,
            selection.selected_coords_unact.sigmoid(),
            decoded.query_ids,
        )
