"""Deformable encoder and decoders: detrex parameter names, padding, box refinement, look-forward-twice."""

import torch
from tiny_transformers import (
    EMBED_DIM,
    LAYER_ARGS,
    SHAPES,
    attach_heads,
    detrex_dino_decoder_keys,
    detrex_encoder_keys,
    level_inputs,
)

from detrkit.layers.logits import inverse_sigmoid
from detrkit.modeling.transformer import (
    DeformableTransformerDecoder,
    DeformableTransformerEncoder,
    DINOTransformer,
    DINOTransformerDecoder,
    encoder_reference_points,
    flatten_multi_level,
)


def tokens_of(seed=0):
    tokens = flatten_multi_level(*level_inputs(seed=seed), level_embeds=torch.zeros(len(SHAPES), EMBED_DIM))
    reference_points = encoder_reference_points(tokens.spatial_shapes, tokens.valid_ratios)
    return tokens, reference_points


def run_encoder(encoder, tokens, reference_points, feat=None):
    return encoder(
        query=tokens.feat if feat is None else feat,
        key=None,
        value=None,
        query_pos=tokens.pos,
        query_key_padding_mask=tokens.mask,
        spatial_shapes=tokens.spatial_shapes,
        reference_points=reference_points,
        level_start_index=tokens.level_start_index,
    )


def test_encoder_and_decoder_parameter_names_match_detrex():
    assert set(DeformableTransformerEncoder(**LAYER_ARGS).state_dict()) == detrex_encoder_keys(2)
    assert set(DINOTransformerDecoder(**LAYER_ARGS).state_dict()) == detrex_dino_decoder_keys(2)
    plain = {k for k in detrex_dino_decoder_keys(2) if k.startswith("layers.")}
    assert set(DeformableTransformerDecoder(**LAYER_ARGS).state_dict()) == plain


def test_encoder_ignores_features_at_padding():
    torch.manual_seed(0)
    encoder = DeformableTransformerEncoder(**LAYER_ARGS).eval()
    tokens, reference_points = tokens_of()
    memory = run_encoder(encoder, tokens, reference_points)
    assert memory.shape == tokens.feat.shape
    changed = tokens.feat.masked_fill(tokens.mask[..., None], 100.0)
    memory_changed = run_encoder(encoder, tokens, reference_points, feat=changed)
    valid = ~tokens.mask
    torch.testing.assert_close(memory_changed[valid], memory[valid])
    assert not torch.allclose(memory_changed[~valid], memory[~valid])


def decode(decoder, query_pos=None, references=None):
    torch.manual_seed(1)
    tokens, _ = tokens_of()
    query = torch.randn(2, 5, EMBED_DIM)
    if references is None:
        references = torch.rand(2, 5, 4) * 0.5 + 0.25
    out = decoder(
        query=query,
        key=tokens.feat,
        value=tokens.feat,
        query_pos=query_pos,
        key_padding_mask=tokens.mask,
        reference_points=references,
        spatial_shapes=tokens.spatial_shapes,
        level_start_index=tokens.level_start_index,
        valid_ratios=tokens.valid_ratios,
    )
    assert out.query_ids is None  # these decoders keep their query order
    return (out.states, out.references), references


def test_decoder_refines_boxes_layer_by_layer():
    torch.manual_seed(0)
    decoder = attach_heads(
        DINOTransformer(
            DeformableTransformerEncoder(**LAYER_ARGS), DeformableTransformerDecoder(**LAYER_ARGS), 2, 5
        )
    ).decoder
    for head in decoder.bbox_embed:  # non-zero refinements
        torch.nn.init.normal_(head.layers[-1].weight, std=0.1)
    (states, references), initial = decode(decoder, query_pos=torch.randn(2, 5, EMBED_DIM))
    assert states.shape == (2, 2, 5, EMBED_DIM) and references.shape == (2, 2, 5, 4)
    previous = initial
    for layer in range(2):
        # b_i = sigmoid(bbox_embed_i(q_i) + sigmoid^-1(b_{i-1})) (this decoder returns its raw outputs)
        expected = (decoder.bbox_embed[layer](states[layer]) + inverse_sigmoid(previous)).sigmoid()
        torch.testing.assert_close(references[layer], expected)
        previous = references[layer]


def test_look_forward_twice_lets_the_next_layer_train_the_previous_box_head():
    for look_forward_twice in (True, False):
        torch.manual_seed(0)
        decoder = DINOTransformerDecoder(**LAYER_ARGS, look_forward_twice=look_forward_twice)
        attach_heads(DINOTransformer(DeformableTransformerEncoder(**LAYER_ARGS), decoder, 2, 5))
        (states, references), _ = decode(decoder)
        # layer 1's box prediction refines the references returned for layer 0
        prediction = (decoder.bbox_embed[1](states[1]) + inverse_sigmoid(references[0])).sigmoid()
        prediction.sum().backward()
        grad = decoder.bbox_embed[0].layers[-1].weight.grad
        reaches_layer_0 = grad is not None and grad.abs().sum() > 0
        assert reaches_layer_0 == look_forward_twice


def test_dino_decoder_makes_its_own_query_positions_and_normalises_outputs():
    torch.manual_seed(0)
    decoder = DINOTransformerDecoder(**LAYER_ARGS)
    attach_heads(DINOTransformer(DeformableTransformerEncoder(**LAYER_ARGS), decoder, 2, 5))
    (states, _), _ = decode(decoder)
    (states_with_pos, _), _ = decode(decoder, query_pos=torch.randn(2, 5, EMBED_DIM))
    torch.testing.assert_close(states, states_with_pos)
    # every intermediate output went through the shared LayerNorm (unit weight, zero bias at init)
    torch.testing.assert_close(states.mean(-1), torch.zeros(2, 2, 5), atol=1e-5, rtol=0)


def test_activation_checkpointing_computes_the_same_function():
    tokens, reference_points = tokens_of()
    results = []
    for use_checkpoint in (False, True):
        torch.manual_seed(0)
        encoder = DeformableTransformerEncoder(**LAYER_ARGS, use_checkpoint=use_checkpoint).train()
        memory = run_encoder(encoder, tokens, reference_points)
        memory.square().sum().backward()
        results.append((memory.detach(), [p.grad for p in encoder.parameters()]))
    (memory, grads), (memory_ckpt, grads_ckpt) = results
    torch.testing.assert_close(memory_ckpt, memory)
    for grad, grad_ckpt in zip(grads, grads_ckpt, strict=True):
        torch.testing.assert_close(grad_ckpt, grad)


def test_decoder_activation_checkpointing_computes_the_same_function():
    results = []
    for use_checkpoint in (False, True):
        torch.manual_seed(0)
        decoder = DINOTransformerDecoder(**LAYER_ARGS, use_checkpoint=use_checkpoint)
        attach_heads(DINOTransformer(DeformableTransformerEncoder(**LAYER_ARGS), decoder, 2, 5))
        (states, references), _ = decode(decoder.train())
        (states.square().sum() + references.sum()).backward()
        results.append((states.detach(), [p.grad for p in decoder.parameters()]))
    (states, grads), (states_ckpt, grads_ckpt) = results
    torch.testing.assert_close(states_ckpt, states)
    for grad, grad_ckpt in zip(grads, grads_ckpt, strict=True):
        torch.testing.assert_close(grad_ckpt, grad)
