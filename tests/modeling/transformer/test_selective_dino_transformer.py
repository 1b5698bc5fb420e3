"""SelectiveDINOTransformer: a selection policy is required, and the token scorer starts Xavier-uniform."""

import pytest
import torch

from detrkit.modeling.transformer import (
    CascadeTokenSelector,
    DINOTransformerDecoder,
    SelectiveDINOTransformer,
    SelectiveTokenEncoder,
)

DIMS = dict(embed_dim=16, num_heads=2, feedforward_dim=32, num_layers=1, num_feature_levels=2)


def build(**kwargs) -> SelectiveDINOTransformer:
    torch.manual_seed(0)
    return SelectiveDINOTransformer(
        SelectiveTokenEncoder(**DIMS),
        DINOTransformerDecoder(**DIMS),
        num_feature_levels=2,
        two_stage_num_proposals=5,
        **kwargs,
    )


def test_a_selection_policy_is_required():
    with pytest.raises(ValueError, match="token_selector"):
        build()


def test_scorer_matrices_are_xavier_uniform():
    """Every matrix fills U(-b, b) with Xavier's b = sqrt(6 / (fan_in + fan_out)), wider than PyTorch's
    default 1 / sqrt(fan_in) (checked on matrices of at least 64 entries, whose largest value is then above
    0.8 b with probability 1 - 0.8^64)."""
    transformer = build(token_selector=CascadeTokenSelector())
    matrices = [(n, p) for n, p in transformer.token_scorer.named_parameters() if p.dim() > 1]
    assert len(matrices) == 4
    for name, p in matrices:
        bound = (6.0 / (p.shape[0] + p.shape[1])) ** 0.5
        assert p.abs().max() <= bound, name
        if p.numel() >= 64:
            assert p.abs().max() > max(0.8 * bound, p.shape[1] ** -0.5), name
