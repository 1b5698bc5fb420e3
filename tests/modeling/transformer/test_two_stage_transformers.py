"""DINOTransformer and HDeformableDetrTransformer: outputs, denoising and hybrid attention masks in action,
detrex parameter names, the query-selector slot."""

import pytest
import torch
from tiny_transformers import (
    EMBED_DIM,
    SHAPES,
    detrex_dino_decoder_keys,
    detrex_encoder_keys,
    dino_transformer,
    h_transformer,
    level_inputs,
)

from detrkit.modeling.transformer import (
    DecoderOutput,
    DINOTransformer,
    HDeformableDetrTransformer,
    TopKProposalSelector,
    TransformerOutput,
    TwoStageQuerySelector,
    denoising_attn_mask,
    hybrid_attn_mask,
)

NUM_TOKENS = sum(h * w for h, w in SHAPES)


def renamed(keys, renames):
    out = set()
    for key in keys:
        for old, new in renames.items():
            if key.startswith(old):
                key = new + key[len(old) :]
        out.add(key)
    return out


def head_keys(num_pred):
    classes = {f"decoder.class_embed.{i}.{w}" for i in range(num_pred) for w in ("weight", "bias")}
    boxes = {
        f"decoder.bbox_embed.{i}.layers.{j}.{w}"
        for i in range(num_pred)
        for j in range(3)
        for w in ("weight", "bias")
    }
    return classes | boxes


def test_dino_transformer_names_are_detrex_names_after_the_documented_renames():
    detrex_keys = (
        {"level_embeds", "tgt_embed.weight", "enc_output.weight", "enc_output.bias"}
        | {"enc_output_norm.weight", "enc_output_norm.bias"}
        | {f"encoder.{k}" for k in detrex_encoder_keys(2)}
        | {f"decoder.{k}" for k in detrex_dino_decoder_keys(2)}
        | head_keys(3)
    )
    transformer = dino_transformer()
    assert set(transformer.state_dict()) == renamed(detrex_keys, DINOTransformer.detrex_key_renames)


def test_h_transformer_names_are_detrex_names_after_the_documented_renames():
    layers = {k for k in detrex_dino_decoder_keys(2) if k.startswith("layers.")}
    detrex_keys = (
        {
            "level_embeds",
            "enc_output.weight",
            "enc_output.bias",
            "enc_output_norm.weight",
            "enc_output_norm.bias",
        }
        | {"pos_trans.weight", "pos_trans.bias", "pos_trans_norm.weight", "pos_trans_norm.bias"}
        | {f"encoder.{k}" for k in detrex_encoder_keys(2)}
        | {f"decoder.{k}" for k in layers}
        | head_keys(3)
    )
    transformer = h_transformer()
    assert set(transformer.state_dict()) == renamed(
        detrex_keys, HDeformableDetrTransformer.detrex_key_renames
    )


def test_dino_transformer_outputs_without_denoising():
    transformer = dino_transformer(num_queries=10).eval()
    out = transformer(*level_inputs())
    states, init_reference, references = out.inter_states, out.init_reference, out.inter_references
    enc_state, enc_reference = out.enc_state, out.enc_reference
    assert out.query_ids is None and out.extras is None
    assert states.shape == (2, 2, 10, EMBED_DIM)
    assert init_reference.shape == (2, 10, 4) and references.shape == (2, 2, 10, 4)
    assert enc_state.shape == (2, 10, EMBED_DIM) and enc_reference.shape == (2, 10, 4)
    # the decoder starts from the selected encoder proposals
    torch.testing.assert_close(init_reference, enc_reference)
    assert not init_reference.requires_grad and enc_reference.requires_grad


def run_with_denoising(transformer, dn_label, dn_bbox, attn_mask):
    """(decoder states, initial references)."""
    out = transformer(*level_inputs(), (dn_label, dn_bbox), attn_masks=[attn_mask, None])
    return out.inter_states, out.init_reference


def test_denoising_queries_come_first_and_the_mask_keeps_groups_apart():
    transformer = dino_transformer(num_queries=10).eval()
    torch.manual_seed(3)
    dn_label, dn_bbox = torch.randn(2, 8, EMBED_DIM), torch.randn(2, 8, 4)
    mask = denoising_attn_mask(num_groups=2, group_size=4, num_queries=10)
    states, init_reference = run_with_denoising(transformer, dn_label, dn_bbox, mask)
    assert states.shape == (2, 2, 18, EMBED_DIM)
    torch.testing.assert_close(init_reference[:, :8], dn_bbox.sigmoid())

    # changing denoising group 1 changes neither group 0 nor the matching queries
    changed_label, changed_bbox = dn_label.clone(), dn_bbox.clone()
    changed_label[:, 4:8] += 1.0
    changed_bbox[:, 4:8] -= 0.5
    changed, _ = run_with_denoising(transformer, changed_label, changed_bbox, mask)
    torch.testing.assert_close(changed[:, :, :4], states[:, :, :4])
    torch.testing.assert_close(changed[:, :, 8:], states[:, :, 8:])
    assert not torch.allclose(changed[:, :, 4:8], states[:, :, 4:8])
    # without the mask, the matching queries would see the change
    unmasked, _ = run_with_denoising(transformer, dn_label, dn_bbox, None)
    unmasked_changed, _ = run_with_denoising(transformer, changed_label, changed_bbox, None)
    assert not torch.allclose(unmasked_changed[:, :, 8:], unmasked[:, :, 8:])


def test_h_transformer_outputs_and_hybrid_mask():
    transformer = h_transformer(num_queries=10).eval()
    torch.manual_seed(3)
    query_embed = torch.randn(10, EMBED_DIM)
    mask = hybrid_attn_mask(4, 10)
    out = transformer(*level_inputs(), query_embed, mask)
    states, init_reference, references = out.inter_states, out.init_reference, out.inter_references
    enc_class, enc_coords = out.enc_state, out.enc_reference
    assert states.shape == (2, 2, 10, EMBED_DIM) and references.shape == (2, 2, 10, 4)
    assert enc_class.shape == (2, NUM_TOKENS, 3) and enc_coords.shape == (2, NUM_TOKENS, 4)
    assert init_reference.shape == (2, 10, 4)

    # the first 4 (one-to-one) queries do not see the one-to-many ones
    changed_embed = query_embed.clone()
    changed_embed[4:] += 1.0
    changed = transformer(*level_inputs(), changed_embed, mask).inter_states
    torch.testing.assert_close(changed[:, :, :4], states[:, :, :4])
    assert not torch.allclose(changed[:, :, 4:], states[:, :, 4:])
    unmasked = transformer(*level_inputs(), query_embed, None).inter_states
    unmasked_changed = transformer(*level_inputs(), changed_embed, None).inter_states
    assert not torch.allclose(unmasked_changed[:, :, :4], unmasked[:, :, :4])

    # at inference the detector asks for the one-to-one queries only
    one2one = transformer(*level_inputs(), query_embed[:4], None, num_proposals=4).inter_states
    assert one2one.shape == (2, 2, 4, EMBED_DIM)


def test_h_transformer_configuration_errors():
    with pytest.raises(ValueError, match="as_two_stage=False"):
        h_transformer(as_two_stage=False)
    transformer = h_transformer()
    with pytest.raises(ValueError, match="needs query_embed"):
        transformer(*level_inputs(), None, None)
    transformer.decoder.class_embed = None
    with pytest.raises(RuntimeError, match="decoder.class_embed and decoder.bbox_embed are not set"):
        transformer(*level_inputs(), torch.zeros(10, EMBED_DIM), None)


class RecordingSelector(TwoStageQuerySelector):
    """A replacement selector that records what it was asked."""

    def forward(
        self, memory, memory_padding_mask, spatial_shapes, class_head, box_head, num_queries, **kwargs
    ):
        self.calls = getattr(self, "calls", []) + [(tuple(memory.shape), num_queries)]
        return super().forward(
            memory, memory_padding_mask, spatial_shapes, class_head, box_head, num_queries, **kwargs
        )


def test_query_selector_slot_can_be_replaced():
    selector = RecordingSelector(EMBED_DIM, num_queries=6)
    transformer = dino_transformer(num_queries=6, query_selector=selector)
    assert transformer.query_selector is selector
    transformer(*level_inputs())
    assert selector.calls == [((2, NUM_TOKENS, EMBED_DIM), 6)]
    assert type(dino_transformer(learnt_init_query=False).query_selector) is TopKProposalSelector


def test_h_transformer_without_mixed_selection_takes_content_from_the_proposals():
    transformer = h_transformer(num_queries=10, mixed_selection=False).eval()
    out = transformer(*level_inputs(), None, hybrid_attn_mask(4, 10))
    states, init_reference = out.inter_states, out.init_reference
    assert states.shape == (2, 2, 10, EMBED_DIM) and init_reference.shape == (2, 10, 4)


def test_hybrid_attn_mask_separates_the_two_groups():
    mask = hybrid_attn_mask(2, 5)
    expected = torch.tensor(
        [
            [0, 0, 1, 1, 1],
            [0, 0, 1, 1, 1],
            [1, 1, 0, 0, 0],
            [1, 1, 0, 0, 0],
            [1, 1, 0, 0, 0],
        ],
        dtype=torch.bool,
    )
    assert torch.equal(mask, expected)
    assert not hybrid_attn_mask(3, 3).any()
    with pytest.raises(ValueError, match="num_queries_one2one=6"):
        hybrid_attn_mask(6, 5)


def test_detrex_tuples_are_read_and_decoder_outputs_unpack_as_detrex_pairs():
    """detrex's decoders return ``(states, references)`` and its transformers five tensors, so that their
    modules and detrkit's mix in one model: detrkit's transformers read a decoder's pair, its detectors a
    transformer's five outputs, and detrkit's decoder output unpacks as detrex's pair."""
    transformer = dino_transformer(num_queries=10).eval()
    expected = transformer(*level_inputs())
    decoder_forward = transformer.decoder.forward
    decoded = {}

    def detrex_decoder(*args, **kwargs):
        decoded["output"] = decoder_forward(*args, **kwargs)
        states, references = decoded["output"]
        return states, references

    transformer.decoder.forward = detrex_decoder
    out = transformer(*level_inputs())
    assert isinstance(decoded["output"], DecoderOutput)
    torch.testing.assert_close(out.inter_states, expected.inter_states)
    five = (out.inter_states, out.init_reference, out.inter_references, out.enc_state, out.enc_reference)
    read = TransformerOutput.of(five)
    assert read.enc_reference is out.enc_reference and read.query_ids is None and read.extras is None
    assert TransformerOutput.of(out) is out
