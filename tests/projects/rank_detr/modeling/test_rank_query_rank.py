"""Query ranking: the permutation on hand-made scores, and the ranking hook in both decoders (content,
references and positional queries follow their query; groups and denoising queries stay apart)."""

import pytest
import torch
from torch import nn

from detrkit.layers.mlp import MLP
from detrkit.layers.position_embedding import get_sine_pos_embed
from detrkit.modeling.transformer import (
    DINOTransformerDecoder,
    HDeformableDetrTransformerDecoder,
    compose_query_orders,
)
from detrkit_projects.rank_detr.modeling import (
    QueryRanking,
    QueryRankLayer,
    gather_queries,
    rank_order,
    ranked_groups,
)


def test_groups_are_sorted_apart_and_ties_keep_their_order():
    # group 1: queries 0-3, group 2: queries 4-6; ties at 0.5 (queries 1, 3) and 0.9 (queries 4, 6)
    scores = torch.tensor([[0.2, 0.5, 0.7, 0.5, 0.9, 0.1, 0.9]])
    order = rank_order(scores, (4, 3))
    assert order.tolist() == [[2, 1, 3, 0, 4, 6, 5]]


def test_unranked_leading_queries_stay_in_place():
    scores = torch.tensor([[0.9, 0.1, 0.3, 0.8, 0.5], [0.0, 1.0, 0.6, 0.6, 0.7]])
    order = rank_order(scores, (3,), num_unranked=2)
    assert order.tolist() == [[0, 1, 3, 4, 2], [0, 1, 4, 2, 3]]


def test_ranked_groups_of_training_inference_and_denoising_runs():
    assert ranked_groups(1800, (300, 1500)) == (0, (300, 1500))
    assert ranked_groups(300, (300, 1500)) == (0, (300,))
    assert ranked_groups(940, (900,)) == (40, (900,))
    with pytest.raises(ValueError, match="1000 queries"):
        ranked_groups(1000, (300, 1500))
    with pytest.raises(ValueError, match="scores"):
        rank_order(torch.zeros(1, 5), (3,))


def test_gather_moves_every_row_with_its_query():
    x = torch.arange(2 * 4 * 3).view(2, 4, 3)
    order = torch.tensor([[3, 0, 2, 1], [1, 2, 3, 0]])
    out = gather_queries(x, order)
    for b in range(2):
        for i in range(4):
            assert torch.equal(out[b, i], x[b, order[b, i]])


def test_rank_layer_fuses_the_rank_content_of_each_position():
    torch.manual_seed(0)
    layer = QueryRankLayer(num_queries=5, embed_dim=4)
    nn.init.normal_(layer.rank_content.weight)
    q = torch.randn(2, 6, 4, dtype=torch.float64)
    layer = layer.double()
    out = layer(q, num_unranked=2)
    content = torch.cat([torch.zeros(2, 4, dtype=torch.float64), layer.rank_content.weight[:4]])
    proj = content @ layer.content_proj.weight.T + layer.content_proj.bias
    expected = torch.cat([q, proj.expand(2, -1, -1)], -1) @ layer.fuse.weight.T + layer.fuse.bias
    torch.testing.assert_close(out, expected)
    with pytest.raises(ValueError, match="6 ranked queries"):
        layer(q)


def test_ranking_hook_checks_its_groups_and_drops_empty_ones():
    assert QueryRanking((300, 0), num_layers=2, embed_dim=4).query_groups == (300,)
    assert QueryRanking((3,), num_layers=2, embed_dim=4, query_rank_layer=False).rank_layers is None
    with pytest.raises(ValueError, match="query_groups"):
        QueryRanking((0,), num_layers=2, embed_dim=4)


def _decoder(cls, query_groups, num_layers=2):
    torch.manual_seed(0)
    decoder = cls(
        embed_dim=16,
        num_heads=2,
        feedforward_dim=32,
        attn_dropout=0.0,
        ffn_dropout=0.0,
        num_layers=num_layers,
        num_feature_levels=1,
        between_layers=QueryRanking(query_groups, num_layers, embed_dim=16),
    ).eval()
    decoder.class_embed = nn.ModuleList(nn.Linear(16, 3) for _ in range(num_layers + 1))
    decoder.bbox_embed = nn.ModuleList(MLP(16, 16, 4, 2) for _ in range(num_layers + 1))
    return decoder


def _run(decoder, nq, query_pos=None):
    """Runs the decoder on random inputs; returns its outputs, layer 0's raw output and what layer 1
    received."""
    g = torch.Generator().manual_seed(1)
    seen = {}
    decoder.layers[0].register_forward_hook(lambda m, args, out: seen.update(layer0=out))
    decoder.layers[1].register_forward_pre_hook(
        lambda m, args, kwargs: seen.update(query=args[0], **kwargs), with_kwargs=True
    )
    out = decoder(
        query=torch.randn(1, nq, 16, generator=g),
        key=None,
        value=torch.randn(1, 16, 16, generator=g),
        query_pos=query_pos,
        key_padding_mask=torch.zeros(1, 16, dtype=torch.bool),
        reference_points=torch.rand(1, nq, 4, generator=g) * 0.5 + 0.25,
        spatial_shapes=torch.tensor([[4, 4]]),
        level_start_index=torch.tensor([0]),
        valid_ratios=torch.ones(1, 1, 2),
    )
    return out, seen


def _order(decoder, states, layer, groups, num_unranked=0):
    return rank_order(
        decoder.class_embed[layer](states[layer]).sigmoid().max(-1).values, groups, num_unranked
    )


def test_hdetr_decoder_moves_content_references_and_positions_with_the_ranked_query():
    decoder = _decoder(HDeformableDetrTransformerDecoder, (3, 4))
    query_pos = torch.randn(1, 7, 16)
    with torch.no_grad():
        out, seen = _run(decoder, 7, query_pos)
    states, references = out.states, out.references
    order = _order(decoder, states, 0, (3, 4))
    # the decoder returns the query order of every layer: layer 0 the initial one, layer 1 the sorted one
    assert torch.equal(out.query_ids, torch.stack([torch.arange(7)[None], order]))
    assert set(order[0, :3].tolist()) == {0, 1, 2} and set(order[0, 3:].tolist()) == {3, 4, 5, 6}
    assert not torch.equal(order, torch.arange(7)[None])  # a real permutation
    rank_layer = decoder.between_layers.rank_layers[0]
    torch.testing.assert_close(seen["query"], rank_layer(gather_queries(seen["layer0"], order)))
    torch.testing.assert_close(seen["query_pos"], gather_queries(query_pos, order))
    torch.testing.assert_close(references[0], seen["reference_points"][:, :, 0])
    # layer 1 refines the sorted boxes; its own boxes come out sorted by layer 1's scores
    refined = (decoder.bbox_embed[1](states[1]) + torch.special.logit(references[0])).sigmoid()
    torch.testing.assert_close(
        references[1], gather_queries(refined, _order(decoder, states, 1, (3, 4))), atol=1e-5, rtol=1e-5
    )


def test_dino_decoder_recomputes_positions_from_sorted_boxes_and_leaves_denoising_queries():
    decoder = _decoder(DINOTransformerDecoder, (5,))
    with torch.no_grad():
        out, seen = _run(decoder, 2 + 5)  # 2 denoising queries in front
    states, references = out.states, out.references
    order = _order(decoder, states, 0, (5,), num_unranked=2)
    assert torch.equal(out.query_ids[1], order)
    assert order[0, :2].tolist() == [0, 1]
    assert not torch.equal(order, torch.arange(7)[None])
    torch.testing.assert_close(references[0], seen["reference_points"][:, :, 0])
    torch.testing.assert_close(
        seen["query"], decoder.between_layers.rank_layers[0](gather_queries(seen["layer0"], order), 2)
    )
    # paper eq. 4: the positional query of layer 1 comes from the sorted boxes
    expected_pos = decoder.ref_point_head(get_sine_pos_embed(references[0], num_pos_feats=8))
    torch.testing.assert_close(seen["query_pos"], expected_pos)


def test_query_order_gives_the_returned_order_again_from_the_layer_outputs():
    """Where a transformer (detrex's) does not pass the decoder's query order on, the detector rebuilds it
    from the layer outputs with the hook's rule: the same ids."""
    decoder = _decoder(DINOTransformerDecoder, (5,), num_layers=3)  # two reorderings composed
    hook = decoder.between_layers
    with torch.no_grad():
        out, _ = _run(decoder, 2 + 5)
        orders = [hook.query_order(layer, out.states[layer], decoder.class_embed) for layer in range(2)]
    assert out.query_ids.shape == (3, 1, 7)
    assert torch.equal(compose_query_orders(orders), out.query_ids)
