"""Token selection (cascade counts on a padded batch) and the selective encoder: only the selected tokens
change, the object tokens are the top-k by the multi-category score, the deformable value is the input."""

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from detrkit.modeling.transformer import (
    CascadeTokenSelector,
    SelectiveEncoderLayer,
    SelectiveTokenEncoder,
    cascade_token_counts,
    encoder_reference_points,
    get_valid_ratio,
)

SHAPES = torch.tensor([[4, 6], [2, 3]])  # S = 24 + 6 = 30 tokens
LEVEL_START = torch.tensor([0, 24])


def padded_batch():
    """Two images: the first unpadded, the second with 2 x 3 valid cells of level 0 and 1 x 2 of level 1."""
    masks = [torch.zeros(2, 4, 6, dtype=torch.bool), torch.zeros(2, 2, 3, dtype=torch.bool)]
    masks[0][1, 2:, :] = True
    masks[0][1, :, 3:] = True
    masks[1][1, 1:, :] = True
    masks[1][1, :, 2:] = True
    valid_ratios = torch.stack([get_valid_ratio(m) for m in masks], 1)
    mask = torch.cat([m.flatten(1) for m in masks], 1)
    return mask, encoder_reference_points(SHAPES, valid_ratios)


def test_cascade_counts_follow_the_official_formula():
    kept, per_layer = cascade_token_counts(torch.tensor([30, 8]), 0.5, (1.0, 0.8, 0.6, 0.6, 0.4, 0.2))
    # N = int(30 * 0.5) + 1 = 16 and int(8 * 0.5) + 1 = 5; K = 16; int(r * 16) in float32
    assert kept.tolist() == [16, 5]
    assert per_layer == [16, 12, 9, 9, 6, 3]
    with pytest.raises(ValueError, match="keep_ratio=1.5"):
        cascade_token_counts(torch.tensor([4]), 1.5, (1.0,))
    with pytest.raises(ValueError, match="layer_ratios"):
        CascadeTokenSelector(0.5, (1.0, 0.0))


def test_selector_on_a_padded_batch():
    mask, _ = padded_batch()
    torch.manual_seed(0)
    scores = torch.randn(2, 30)
    selection = CascadeTokenSelector(0.5)(scores, mask)
    assert selection.num_updated.tolist() == [16, 5]  # valid tokens 30 and 6 + 2 = 8
    assert [i.shape[1] for i in selection.layer_indices] == [16, 12, 9, 9, 6, 3]
    filled = scores.masked_fill(mask, scores.min())
    ranked_scores, ranked = filled.sort(1, descending=True)
    for indices in selection.layer_indices:
        # the top scores; ties among the padded tokens may come in any order
        assert torch.equal(filled.gather(1, indices), ranked_scores[:, : indices.shape[1]])
        assert torch.equal(indices[0], ranked[0, : indices.shape[1]])
        assert torch.equal(indices[1, :5], ranked[1, : min(5, indices.shape[1])])
    # the tokens image 1 writes back are its best valid tokens
    assert not mask[1, selection.layer_indices[0][1, :5]].any()


def tiny_encoder(num_layers=3, num_object_tokens=4):
    torch.manual_seed(0)
    encoder = SelectiveTokenEncoder(
        embed_dim=16,
        num_heads=2,
        feedforward_dim=32,
        attn_dropout=0.0,
        ffn_dropout=0.0,
        num_layers=num_layers,
        num_feature_levels=2,
        num_object_tokens=num_object_tokens,
    )
    head = nn.Linear(16, 3)
    encoder.class_heads = nn.ModuleList([head] * num_layers)
    for p in encoder.parameters():  # non-trivial sampling offsets and attention weights
        nn.init.normal_(p, std=0.3)
    return encoder.eval()


def test_only_selected_tokens_change_and_the_rest_are_bit_identical():
    mask, refs = padded_batch()
    encoder = tiny_encoder()
    torch.manual_seed(1)
    query, pos, scores = torch.randn(2, 30, 16), torch.randn(2, 30, 16), torch.randn(2, 30)
    selection = CascadeTokenSelector(0.5, (1.0, 0.6, 0.2))(scores, mask)
    assert [i.shape[1] for i in selection.layer_indices] == [16, 9, 3]
    out = encoder(
        query,
        None,
        None,
        query_pos=pos,
        query_key_padding_mask=mask,
        token_selection=selection,
        reference_points=refs,
        spatial_shapes=SHAPES,
        level_start_index=LEVEL_START,
    )
    changed = (out != query).any(-1)
    for image, kept in enumerate(selection.num_updated.tolist()):
        written = torch.zeros(30, dtype=torch.bool)
        written[selection.layer_indices[0][image, :kept]] = True  # later layers take prefixes of these
        assert torch.equal(changed[image], written)
        assert torch.equal(out[image, ~written], query[image, ~written])
    assert not changed[1][mask[1]].any()


def test_use_checkpoint_recomputes_the_layers_with_the_same_outputs_and_gradients():
    mask, refs = padded_batch()
    torch.manual_seed(1)
    query, pos, scores = torch.randn(2, 30, 16), torch.randn(2, 30, 16), torch.randn(2, 30)
    selection = CascadeTokenSelector(0.5, (1.0, 0.6, 0.2))(scores, mask)
    results = []
    for use_checkpoint in (False, True):
        encoder = tiny_encoder().train()
        encoder.use_checkpoint = use_checkpoint
        calls = []
        for layer in encoder.layers:
            layer.register_forward_pre_hook(lambda *_, calls=calls: calls.append(1))
        x = query.clone().requires_grad_()
        out = encoder(
            x,
            None,
            None,
            query_pos=pos,
            query_key_padding_mask=mask,
            token_selection=selection,
            reference_points=refs,
            spatial_shapes=SHAPES,
            level_start_index=LEVEL_START,
        )
        out.pow(2).sum().backward()
        grads = {name: p.grad for name, p in encoder.named_parameters() if p.grad is not None}
        results.append((out.detach(), x.grad, grads, len(calls)))
    (out, x_grad, grads, calls), (out_ckpt, x_grad_ckpt, grads_ckpt, calls_ckpt) = results
    assert calls == 3 and calls_ckpt == 6  # each layer runs again in the backward pass
    torch.testing.assert_close(out_ckpt, out, rtol=0, atol=0)
    torch.testing.assert_close(x_grad_ckpt, x_grad)
    assert grads_ckpt.keys() == grads.keys() and len(grads) > 0
    for name, g in grads.items():
        torch.testing.assert_close(grads_ckpt[name], g)


def test_each_layer_updates_its_cascade_share():
    mask, refs = padded_batch()
    encoder = tiny_encoder()
    sizes = []
    for layer in encoder.layers:
        layer.register_forward_hook(lambda module, args, output: sizes.append(args[0].shape[1]))
    torch.manual_seed(2)
    selection = CascadeTokenSelector(0.5, (1.0, 0.6, 0.2))(torch.randn(2, 30), mask)
    value_seen = []
    deform = encoder.layers[1].attentions[1]
    deform.register_forward_pre_hook(
        lambda module, args, kwargs: value_seen.append(kwargs["value"]), with_kwargs=True
    )
    query = torch.randn(2, 30, 16)
    encoder(
        query,
        None,
        None,
        query_pos=torch.randn(2, 30, 16),
        query_key_padding_mask=mask,
        token_selection=selection,
        reference_points=refs,
        spatial_shapes=SHAPES,
        level_start_index=LEVEL_START,
    )
    assert sizes == [16, 9, 3]
    assert value_seen[0] is query  # the second layer still attends to the encoder input


def test_layer_dual_attention_matches_a_float64_reference():
    torch.manual_seed(3)
    layer = SelectiveEncoderLayer(16, 2, 32, 0.0, 0.0, num_feature_levels=2, num_object_tokens=3).double()
    for p in layer.parameters():
        nn.init.normal_(p, std=0.3)
    mask, refs = padded_batch()
    query, pos = torch.randn(2, 5, 16, dtype=torch.float64), torch.randn(2, 5, 16, dtype=torch.float64)
    value = torch.randn(2, 30, 16, dtype=torch.float64)
    object_scores = torch.tensor([[0.1, 0.9, 0.5, 0.7, 0.0], [3.0, 2.0, 1.0, 0.0, -1.0]], dtype=torch.float64)
    token_refs = refs[:, :5].double()
    out = layer(query, pos, value, mask, token_refs, SHAPES, LEVEL_START, object_scores)

    mha = layer.attentions[0].attn
    expected = query.clone()
    for image, objects in enumerate([[1, 3, 2], [0, 1, 2]]):
        x, p = query[image, objects], pos[image, objects]
        attended = F.multi_head_attention_forward(
            (x + p)[:, None],
            (x + p)[:, None],
            x[:, None],
            16,
            2,
            mha.in_proj_weight,
            mha.in_proj_bias,
            None,
            None,
            False,
            0.0,
            mha.out_proj.weight,
            mha.out_proj.bias,
            training=False,
            need_weights=False,
        )[0][:, 0]
        expected[image, objects] = F.layer_norm(
            x + attended, (16,), layer.object_norm.weight, layer.object_norm.bias
        )
    deform = layer.attentions[1]
    expected = layer.norms[0](
        deform(
            expected,
            value=value,
            query_pos=pos,
            key_padding_mask=mask,
            reference_points=token_refs,
            spatial_shapes=SHAPES,
            level_start_index=LEVEL_START,
        )
    )
    ffn = layer.ffns[0].layers
    hidden = F.relu(ffn[0][0](expected))
    expected = layer.norms[1](expected + ffn[1](hidden))
    torch.testing.assert_close(out, expected)


def test_encoder_needs_class_heads_and_one_index_list_per_layer():
    mask, refs = padded_batch()
    encoder = tiny_encoder(num_layers=2)
    selection = CascadeTokenSelector(0.5, (1.0,))(torch.randn(2, 30), mask)
    kwargs = dict(
        query_pos=torch.zeros(2, 30, 16),
        query_key_padding_mask=mask,
        token_selection=selection,
        reference_points=refs,
        spatial_shapes=SHAPES,
        level_start_index=LEVEL_START,
    )
    with pytest.raises(ValueError, match="1 layer index lists for 2 encoder layers"):
        encoder(torch.zeros(2, 30, 16), None, None, **kwargs)
    encoder.class_heads = None
    with pytest.raises(RuntimeError, match="class_heads must hold 2"):
        encoder(torch.zeros(2, 30, 16), None, None, **kwargs)
