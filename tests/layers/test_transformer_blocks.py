"""MLP, FFN, MultiheadAttention, BaseTransformerLayer and inverse_sigmoid against hand-written references,
with detrex's parameter names."""

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from detrkit.layers.attention import MultiheadAttention
from detrkit.layers.ffn import FFN
from detrkit.layers.logits import inverse_sigmoid
from detrkit.layers.mlp import MLP
from detrkit.layers.transformer import BaseTransformerLayer, TransformerLayerSequence


def test_mlp_is_relu_between_linear_layers():
    torch.manual_seed(0)
    mlp = MLP(6, 8, 3, 3)
    x = torch.randn(4, 6)
    (w0, b0), (w1, b1), (w2, b2) = [(layer.weight, layer.bias) for layer in mlp.layers]
    expected = F.relu(F.relu(x @ w0.T + b0) @ w1.T + b1) @ w2.T + b2
    torch.testing.assert_close(mlp(x), expected)
    assert list(mlp.state_dict()) == [f"layers.{i}.{p}" for i in range(3) for p in ("weight", "bias")]


def test_ffn_residual_and_detrex_names():
    torch.manual_seed(0)
    ffn = FFN(embed_dim=4, feedforward_dim=7, num_fcs=2)
    assert list(ffn.state_dict()) == [
        "layers.0.0.weight",
        "layers.0.0.bias",
        "layers.1.weight",
        "layers.1.bias",
    ]
    x = torch.randn(3, 4)
    hidden = F.relu(x @ ffn.layers[0][0].weight.T + ffn.layers[0][0].bias)
    out = hidden @ ffn.layers[1].weight.T + ffn.layers[1].bias
    torch.testing.assert_close(ffn(x), x + out)
    identity = torch.randn(3, 4)
    torch.testing.assert_close(ffn(x, identity), identity + out)
    no_identity = FFN(embed_dim=4, feedforward_dim=7, output_dim=5, add_identity=False)
    assert no_identity(x).shape == (3, 5)


def test_ffn_rejects_bad_configuration():
    with pytest.raises(ValueError, match="num_fcs"):
        FFN(num_fcs=1)
    with pytest.raises(ValueError, match="output_dim"):
        FFN(embed_dim=4, output_dim=5)


def test_multihead_attention_adds_positions_and_residual():
    torch.manual_seed(0)
    attn = MultiheadAttention(8, 2, batch_first=True)
    assert {"attn.in_proj_weight", "attn.in_proj_bias", "attn.out_proj.weight"} <= set(attn.state_dict())
    q, k, v = torch.randn(2, 3, 8), torch.randn(2, 5, 8), torch.randn(2, 5, 8)
    q_pos, k_pos = torch.randn(2, 3, 8), torch.randn(2, 5, 8)
    mask = torch.zeros(3, 5, dtype=torch.bool)
    mask[0, 1:] = True
    expected = q + attn.attn(q + q_pos, k + k_pos, v, attn_mask=mask)[0]
    torch.testing.assert_close(attn(q, k, v, query_pos=q_pos, key_pos=k_pos, attn_mask=mask), expected)
    # self-attention: key defaults to query and key_pos to query_pos
    expected_self = q + attn.attn(q + q_pos, q + q_pos, q)[0]
    torch.testing.assert_close(attn(q, query_pos=q_pos), expected_self)


def _post_norm_reference(layer, query, memory, query_pos, self_mask):
    """self_attn -> norm -> cross_attn -> norm -> ffn -> norm, every block adding its input."""
    self_attn, cross_attn = layer.attentions
    x = query + self_attn.attn(query + query_pos, query + query_pos, query, attn_mask=self_mask)[0]
    x = layer.norms[0](x)
    x = x + cross_attn.attn(x + query_pos, memory, memory)[0]
    x = layer.norms[1](x)
    return layer.norms[2](layer.ffns[0](x))


def test_base_transformer_layer_runs_operations_in_order():
    torch.manual_seed(0)
    layer = BaseTransformerLayer(
        attn=MultiheadAttention(8, 2, batch_first=True),
        ffn=FFN(8, 16),
        norm=nn.LayerNorm(8),
        operation_order=("self_attn", "norm", "cross_attn", "norm", "ffn", "norm"),
    )
    assert len(layer.attentions) == 2 and layer.attentions[0] is not layer.attentions[1]
    assert (len(layer.ffns), len(layer.norms), layer.pre_norm) == (1, 3, False)
    query, memory, query_pos = torch.randn(2, 4, 8), torch.randn(2, 6, 8), torch.randn(2, 4, 8)
    self_mask = torch.eye(4, dtype=torch.bool).roll(1, 0)
    out = layer(query, memory, memory, query_pos=query_pos, attn_masks=[self_mask, None])
    torch.testing.assert_close(out, _post_norm_reference(layer, query, memory, query_pos, self_mask))


def test_pre_norm_layer_adds_the_unnormalised_input():
    torch.manual_seed(0)
    layer = BaseTransformerLayer(
        attn=MultiheadAttention(8, 2, batch_first=True),
        ffn=FFN(8, 16),
        norm=nn.LayerNorm(8),
        operation_order=("norm", "self_attn", "norm", "ffn"),
    )
    assert layer.pre_norm
    x = torch.randn(2, 4, 8)
    normed = layer.norms[0](x)
    after_attn = x + layer.attentions[0].attn(normed, normed, normed)[0]
    expected = after_attn + (layer.ffns[0](layer.norms[1](after_attn)) - layer.norms[1](after_attn))
    torch.testing.assert_close(layer(x), expected)


def test_layer_and_sequence_validate_their_arguments():
    with pytest.raises(ValueError, match="unknown operations"):
        BaseTransformerLayer(MultiheadAttention(8, 2), FFN(8, 16), nn.LayerNorm(8), ("self_attn", "conv"))
    with pytest.raises(ValueError, match="2 attentions but 1"):
        BaseTransformerLayer(
            [MultiheadAttention(8, 2)], FFN(8, 16), nn.LayerNorm(8), ("self_attn", "cross_attn", "ffn")
        )
    layer = BaseTransformerLayer(MultiheadAttention(8, 2), FFN(8, 16), nn.LayerNorm(8), ("self_attn", "ffn"))
    sequence = TransformerLayerSequence(layer, num_layers=3)
    assert len(sequence.layers) == 3 and sequence.layers[0] is not sequence.layers[1]
    with pytest.raises(ValueError, match="num_layers=3"):
        TransformerLayerSequence([layer, layer], num_layers=3)


def test_inverse_sigmoid_inverts_sigmoid_and_stays_finite():
    x = torch.tensor([0.01, 0.3, 0.5, 0.9, 0.999])
    torch.testing.assert_close(inverse_sigmoid(x).sigmoid(), x)
    edges = inverse_sigmoid(torch.tensor([0.0, 1.0, -0.5, 1.5]))
    bound = -torch.log(torch.tensor(1e-3))  # log(1 / eps): x clamps to [0, 1], then x, 1 - x to >= eps
    torch.testing.assert_close(edges, torch.stack([-bound, bound, -bound, bound]))
