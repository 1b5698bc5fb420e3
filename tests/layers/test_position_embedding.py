"""Position embeddings against hand-computed values and an independent float64 evaluation of the formula."""

import math

import pytest
import torch

from detrkit.layers.position_embedding import (
    PositionEmbeddingLearned,
    PositionEmbeddingSine,
    get_sine_pos_embed,
)


def padded_masks(valid_sizes, h, w):
    """``(bs, h, w)`` bool masks, True outside the top-left ``valid_h x valid_w`` block of each image."""
    mask = torch.ones(len(valid_sizes), h, w, dtype=torch.bool)
    for i, (vh, vw) in enumerate(valid_sizes):
        mask[i, :vh, :vw] = False
    return mask


def sine_reference(mask, num_pos_feats, temperature, normalize, scale, eps, offset):
    """Float64, element by element: row/column index among valid pixels -> sin/cos channel pairs."""
    bs, h, w = mask.shape
    out = torch.zeros(bs, 2 * num_pos_feats, h, w, dtype=torch.float64)
    for b in range(bs):
        for i in range(h):
            for j in range(w):
                y = float((~mask[b, : i + 1, j]).sum())
                x = float((~mask[b, i, : j + 1]).sum())
                if normalize:
                    y = (y + offset) / (float((~mask[b, :, j]).sum()) + eps) * scale
                    x = (x + offset) / (float((~mask[b, i, :]).sum()) + eps) * scale
                for k in range(num_pos_feats):
                    freq = temperature ** (2 * (k // 2) / num_pos_feats)
                    trig = math.sin if k % 2 == 0 else math.cos
                    out[b, k, i, j] = trig(y / freq)
                    out[b, num_pos_feats + k, i, j] = trig(x / freq)
    return out


def test_sine_hand_computed_with_padded_column():
    mask = torch.tensor([[[False, False, True], [False, False, True]]])  # 1x2x3, last column padded
    pos = PositionEmbeddingSine(num_pos_feats=2)(
        mask
    )  # frequencies 1, 1: channels sin y, cos y, sin x, cos x
    y = torch.tensor([[1.0, 1.0, 0.0], [2.0, 2.0, 0.0]])
    x = torch.tensor([[1.0, 2.0, 2.0], [1.0, 2.0, 2.0]])
    expected = torch.stack([y.sin(), y.cos(), x.sin(), x.cos()])[None]
    assert pos.shape == (1, 4, 2, 3) and pos.dtype == torch.float32
    torch.testing.assert_close(pos, expected)


def test_sine_normalized_with_offset_hand_computed():
    # DINO's setting: valid positions 1, 2 of 2 become (k - 0.5) / 2 * 2pi = pi/2, 3pi/2
    mask = torch.tensor([[[False, False, True], [False, False, True]]])
    pos = PositionEmbeddingSine(num_pos_feats=2, normalize=True, offset=-0.5)(mask)
    half, three_halves = math.pi / 2, 3 * math.pi / 2
    y = torch.tensor([[half, half], [three_halves, three_halves]])
    x = torch.tensor([[half, three_halves], [half, three_halves]])
    expected = torch.stack([y.sin(), y.cos(), x.sin(), x.cos()])
    torch.testing.assert_close(pos[0, :, :, :2], expected, atol=1e-5, rtol=0)


@pytest.mark.parametrize("normalize,offset", [(True, -0.5), (True, 0.0), (False, 0.0)])
def test_sine_matches_float64_formula(normalize, offset):
    mask = padded_masks([(5, 7), (3, 4)], 5, 7)
    module = PositionEmbeddingSine(num_pos_feats=16, temperature=10000, normalize=normalize, offset=offset)
    expected = sine_reference(mask, 16, 10000, normalize, 2 * math.pi, 1e-6, offset)
    valid = (~mask)[:, None].expand_as(expected)
    torch.testing.assert_close(module(mask).double()[valid], expected[valid], atol=2e-5, rtol=0)


def test_sine_dino_setting_shape_and_integer_mask():
    mask = padded_masks([(6, 6), (4, 5)], 6, 6)
    module = PositionEmbeddingSine(num_pos_feats=128, temperature=10000, normalize=True, offset=-0.5)
    pos = module(mask)
    assert pos.shape == (2, 256, 6, 6)
    torch.testing.assert_close(module(mask.to(torch.uint8)), pos, rtol=0, atol=0)


def test_sine_rejects_odd_feature_count_and_bad_mask():
    with pytest.raises(ValueError, match="even"):
        PositionEmbeddingSine(num_pos_feats=3)
    with pytest.raises(ValueError, match=r"\(bs, h, w\)"):
        PositionEmbeddingSine()(torch.zeros(4, 4, dtype=torch.bool))


def test_learned_embedding_places_column_then_row_tables():
    module = PositionEmbeddingLearned(num_pos_feats=8, row_num_embed=5, col_num_embed=6)
    assert sorted(module.state_dict()) == ["col_embed.weight", "row_embed.weight"]
    pos = module(torch.zeros(2, 4, 6, dtype=torch.bool))
    assert pos.shape == (2, 16, 4, 6)
    for y in range(4):
        for x in range(6):
            torch.testing.assert_close(pos[1, :8, y, x], module.col_embed.weight[x])
            torch.testing.assert_close(pos[1, 8:, y, x], module.row_embed.weight[y])
    pos.sum().backward()
    assert (
        module.row_embed.weight.grad[:4].abs().sum() > 0 and module.row_embed.weight.grad[4].abs().sum() == 0
    )


def test_learned_embedding_rejects_maps_larger_than_its_tables():
    with pytest.raises(ValueError, match="exceeds"):
        PositionEmbeddingLearned(num_pos_feats=4, row_num_embed=3, col_num_embed=3)(torch.zeros(1, 4, 2))


def test_get_sine_pos_embed_formula_and_xy_exchange():
    torch.manual_seed(0)
    boxes = torch.rand(2, 5, 4)
    out = get_sine_pos_embed(boxes, num_pos_feats=8, temperature=20)
    assert out.shape == (2, 5, 32)
    k = torch.arange(8, dtype=torch.float64)
    freq = 20 ** (2 * torch.div(k, 2, rounding_mode="floor") / 8)

    def embed(v):  # (2, 5) -> (2, 5, 8)
        angles = v.double()[..., None] * 2 * math.pi / freq
        return torch.where(k % 2 == 0, angles.sin(), angles.cos())

    expected = torch.cat(
        [embed(boxes[..., 1]), embed(boxes[..., 0]), embed(boxes[..., 2]), embed(boxes[..., 3])], -1
    )
    torch.testing.assert_close(out.double(), expected, atol=1e-5, rtol=0)
    unswapped = get_sine_pos_embed(boxes, num_pos_feats=8, temperature=20, exchange_xy=False)
    torch.testing.assert_close(unswapped[..., :8], out[..., 8:16])
