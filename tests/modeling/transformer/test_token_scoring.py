"""Foreground score predictor and top-down score modulation against hand-written float64 references."""

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from detrkit.modeling.transformer import ForegroundScorePredictor, TopDownScoreModulation


def reference_predictor(
    predictor: ForegroundScorePredictor, x: torch.Tensor, valid: torch.Tensor
) -> torch.Tensor:
    """LN -> Linear -> GELU, global half averaged over the tokens flagged in ``valid``, MLP to one logit."""
    norm, linear = predictor.embed[0], predictor.embed[1]
    z = F.gelu(F.linear(F.layer_norm(x, x.shape[-1:], norm.weight, norm.bias), linear.weight, linear.bias))
    half = z.shape[-1] // 2
    pooled = (z[..., half:] * valid[..., None]).sum(1, keepdim=True) / valid.sum(1)[:, None, None]
    z = torch.cat([z[..., :half], pooled.expand(-1, z.shape[1], -1)], -1)
    fc1, fc2, fc3 = predictor.head[0], predictor.head[2], predictor.head[4]
    z = F.gelu(F.linear(z, fc1.weight, fc1.bias))
    z = F.gelu(F.linear(z, fc2.weight, fc2.bias))
    return F.linear(z, fc3.weight, fc3.bias).squeeze(-1)


@pytest.mark.parametrize("pool_valid_only", [False, True])
def test_predictor_matches_reference(pool_valid_only):
    torch.manual_seed(0)
    predictor = ForegroundScorePredictor(8, 16, pool_valid_only=pool_valid_only).double()
    x = torch.randn(2, 5, 8, dtype=torch.float64)
    mask = torch.tensor([[False] * 5, [False, False, False, True, True]])
    valid = (~mask).double() if pool_valid_only else torch.ones(2, 5, dtype=torch.float64)
    out = predictor(x, mask)
    assert out.shape == (2, 5)
    torch.testing.assert_close(out, reference_predictor(predictor, x, valid))


def test_pool_valid_only_ignores_padded_tokens():
    torch.manual_seed(0)
    x = torch.randn(1, 4, 8)
    mask = torch.tensor([[False, False, True, True]])
    changed = x.clone()
    changed[0, 2:] = torch.randn(2, 8) * 3.0
    valid_only = ForegroundScorePredictor(8, 16, pool_valid_only=True)
    assert torch.equal(valid_only(x, mask)[0, :2], valid_only(changed, mask)[0, :2])
    all_tokens = ForegroundScorePredictor(8, 16)
    assert not torch.allclose(all_tokens(x, mask)[0, :2], all_tokens(changed, mask)[0, :2])


def test_predictor_errors_are_named():
    with pytest.raises(ValueError, match="hidden_dim=10"):
        ForegroundScorePredictor(8, 10)
    with pytest.raises(ValueError, match="needs the padding_mask"):
        ForegroundScorePredictor(8, 8, pool_valid_only=True)(torch.zeros(1, 2, 8))


class SumOfChannels(nn.Module):
    """A stand-in predictor whose score is the sum of the token's channels."""

    def forward(self, tokens, padding_mask):
        return tokens.sum(-1)


def test_top_down_modulation_by_hand():
    # Level 0: 1 x 3 tokens, level 1 (coarser): 1 x 2 tokens, one channel.
    scorer = TopDownScoreModulation(SumOfChannels(), num_feature_levels=2)
    with torch.no_grad():
        scorer.alpha.fill_(0.5)
    memory = torch.tensor([[[1.0], [2.0], [4.0], [2.0], [6.0]]])
    shapes = torch.tensor([[1, 3], [1, 2]])
    out = scorer(memory, torch.zeros(1, 5, dtype=torch.bool), shapes, torch.tensor([0, 3]))
    # coarse scores 2, 6; upsampled with align_corners=True to 3 columns: 2, 4, 6
    # fine: m + m * up * 0.5 = 1 + 1, 2 + 4, 4 + 12
    assert out.tolist() == [[2.0, 6.0, 16.0, 2.0, 6.0]]


def test_alpha_is_indexed_by_the_finer_level():
    scorer = TopDownScoreModulation(SumOfChannels(), num_feature_levels=3)
    with torch.no_grad():
        scorer.alpha.copy_(torch.tensor([1.0, 0.0]))
    # levels 0, 1, 2 of 1 x 1 tokens: level 1 keeps its value (alpha[1] = 0), level 0 uses alpha[0] = 1
    memory = torch.tensor([[[1.0], [2.0], [3.0]]])
    shapes = torch.tensor([[1, 1], [1, 1], [1, 1]])
    out = scorer(memory, torch.zeros(1, 3, dtype=torch.bool), shapes, torch.tensor([0, 1, 2]))
    assert out.tolist() == [[1.0 + 1.0 * 2.0, 2.0, 3.0]]


def test_alpha_initialisation_and_level_check():
    torch.manual_seed(0)
    scorer = TopDownScoreModulation(SumOfChannels(), num_feature_levels=4)
    assert scorer.alpha.shape == (3,) and scorer.alpha.abs().max() <= 0.3
    with pytest.raises(ValueError, match="built for 4 levels, got 2"):
        scorer(
            torch.zeros(1, 2, 1),
            torch.zeros(1, 2, dtype=torch.bool),
            torch.tensor([[1, 1]] * 2),
            torch.tensor([0, 1]),
        )
