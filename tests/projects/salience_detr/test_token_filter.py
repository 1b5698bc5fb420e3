"""Hierarchical filtering: token counts follow the level x layer ratio products on a padded batch with
different valid sizes, and the shared selective encoder updates exactly the selected tokens."""

import torch
from torch import nn

from detrkit.modeling.transformer import SelectiveTokenEncoder, encoder_reference_points, flatten_multi_level
from detrkit_projects.salience_detr.modeling import HierarchicalTokenSelector

LEVEL_RATIOS = (0.4, 0.8, 1.0, 1.0)
LAYER_RATIOS = (1.0, 0.8, 0.6, 0.6, 0.4, 0.2)
SHAPES = [(10, 12), (5, 6), (3, 3), (2, 2)]
VALID = [[(10, 12), (5, 6), (3, 3), (2, 2)], [(7, 9), (4, 5), (2, 3), (1, 2)]]  # image 1 is padded


def padded_batch(channels: int = 8):
    g = torch.Generator().manual_seed(0)
    feats, masks, pos = [], [], []
    for level, (h, w) in enumerate(SHAPES):
        mask = torch.ones(2, h, w, dtype=torch.bool)
        for image, sizes in enumerate(VALID):
            mask[image, : sizes[level][0], : sizes[level][1]] = False
        masks.append(mask)
        feats.append(torch.randn(2, channels, h, w, generator=g))
        pos.append(torch.randn(2, channels, h, w, generator=g))
    return flatten_multi_level(feats, masks, pos, torch.zeros(len(SHAPES), channels))


def test_counts_follow_the_ratio_products():
    tokens = padded_batch()
    scores = torch.randn(tokens.mask.shape, generator=torch.Generator().manual_seed(1))
    selection = HierarchicalTokenSelector(LEVEL_RATIOS, LAYER_RATIOS)(
        scores, tokens.mask, tokens.spatial_shapes, tokens.level_start_index
    )
    kept = [[int(h * w * r) for (h, w), r in zip(sizes, LEVEL_RATIOS, strict=True)] for sizes in VALID]
    assert kept == [[48, 24, 9, 4], [25, 16, 6, 2]]
    assert selection.num_updated.tolist() == [85, 49]
    listed = sum(max(a, b) for a, b in zip(*kept, strict=True))  # per level, the batch's largest budget
    assert [i.shape[1] for i in selection.layer_indices] == [int(listed * r) for r in LAYER_RATIOS]
    # image 0 (no padding): the first layer lists exactly the top tokens of every level, best first
    first = selection.layer_indices[0][0]
    bounds = tokens.level_start_index.tolist() + [tokens.mask.shape[1]]
    for level, k in enumerate(kept[0]):
        in_level = first[(first >= bounds[level]) & (first < bounds[level + 1])]
        expected = scores[0, bounds[level] : bounds[level + 1]].topk(k)[1] + bounds[level]
        assert sorted(in_level.tolist()) == sorted(expected.tolist())
    assert torch.all(scores[0, first][:-1] >= scores[0, first][1:])
    # padding gets the batch's lowest score in the selection scores
    assert torch.all(selection.scores[tokens.mask] == scores.min())


def test_encoder_updates_exactly_the_selected_tokens():
    torch.manual_seed(0)
    channels, num_layers = 8, 3
    tokens = padded_batch(channels)
    selector = HierarchicalTokenSelector(LEVEL_RATIOS, (1.0, 0.6, 0.2))
    selection = selector(
        torch.randn(tokens.mask.shape), tokens.mask, tokens.spatial_shapes, tokens.level_start_index
    )
    encoder = SelectiveTokenEncoder(
        embed_dim=channels,
        num_heads=2,
        feedforward_dim=16,
        attn_dropout=0.0,
        ffn_dropout=0.0,
        num_layers=num_layers,
        num_object_tokens=5,
    )
    encoder.class_heads = nn.ModuleList([nn.Linear(channels, 3)] * num_layers)
    memory = encoder(
        query=tokens.feat,
        key=None,
        value=None,
        query_pos=tokens.pos,
        query_key_padding_mask=tokens.mask,
        token_selection=selection,
        reference_points=encoder_reference_points(tokens.spatial_shapes, tokens.valid_ratios),
        spatial_shapes=tokens.spatial_shapes,
        level_start_index=tokens.level_start_index,
    )
    for image in range(2):
        limit = int(selection.num_updated[image])
        updated = torch.zeros(tokens.mask.shape[1], dtype=torch.bool)
        updated[selection.layer_indices[0][image, :limit]] = True
        changed = (memory[image] != tokens.feat[image]).any(-1)
        assert torch.equal(changed, updated)
