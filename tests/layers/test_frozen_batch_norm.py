"""FrozenBatchNorm2d behaves like BatchNorm2d in eval mode, has nothing to train, and loads BN state dicts."""

import pytest
import torch
from torch import nn

from detrkit.layers.batch_norm import FrozenBatchNorm2d, get_norm


def random_batch_norm(channels: int = 6, seed: int = 0) -> nn.BatchNorm2d:
    torch.manual_seed(seed)
    bn = nn.BatchNorm2d(channels, eps=1e-3)
    with torch.no_grad():
        bn.weight.uniform_(0.5, 2.0)
        bn.bias.normal_()
        bn.running_mean.normal_()
        bn.running_var.uniform_(0.2, 3.0)
    bn.num_batches_tracked.fill_(17)
    return bn.eval()


def test_equals_batch_norm_in_eval_mode_and_stays_frozen_in_train_mode():
    bn = random_batch_norm()
    frozen = FrozenBatchNorm2d.convert_frozen_batchnorm(bn)
    assert isinstance(frozen, FrozenBatchNorm2d) and frozen.eps == 1e-3
    x = torch.randn(3, 6, 5, 4) * 3 + 1
    torch.testing.assert_close(frozen(x), bn(x))
    frozen.train()
    before = {k: v.clone() for k, v in frozen.state_dict().items()}
    torch.testing.assert_close(frozen(x), bn(x))
    for key, value in frozen.state_dict().items():
        torch.testing.assert_close(value, before[key], rtol=0, atol=0)


def test_has_no_parameters_but_passes_gradients_to_its_input():
    frozen = FrozenBatchNorm2d(4)
    assert list(frozen.parameters()) == []
    assert sorted(frozen.state_dict()) == ["bias", "running_mean", "running_var", "weight"]
    x = torch.randn(2, 4, 3, 3, requires_grad=True)
    frozen(x).sum().backward()
    # identity initialization: (x - 0) / sqrt((1 - eps) + eps) * 1 + 0
    torch.testing.assert_close(frozen(x), x)
    torch.testing.assert_close(x.grad, torch.ones_like(x))


def test_loads_batch_norm_state_dict_with_num_batches_tracked():
    bn = random_batch_norm(seed=1)
    frozen = FrozenBatchNorm2d(6, eps=1e-3)
    assert "num_batches_tracked" in bn.state_dict()
    frozen.load_state_dict(bn.state_dict(), strict=True)
    x = torch.randn(2, 6, 3, 3)
    torch.testing.assert_close(frozen(x), bn(x))


def test_loads_affine_only_state_dict_with_identity_statistics():
    frozen = FrozenBatchNorm2d(3)
    frozen.load_state_dict({"weight": torch.tensor([1.0, 2.0, 3.0]), "bias": torch.tensor([0.0, 1.0, -1.0])})
    torch.testing.assert_close(frozen.running_mean, torch.zeros(3))
    torch.testing.assert_close(frozen.running_var, torch.ones(3))


def test_convert_replaces_nested_batch_norms_in_place():
    model = nn.Sequential(
        nn.Conv2d(3, 6, 1), random_batch_norm(), nn.Sequential(nn.ReLU(), nn.BatchNorm2d(6))
    )
    reference = nn.Sequential(*[m for m in model]).eval()
    x = torch.randn(2, 3, 4, 4)
    expected = reference(x)
    converted = FrozenBatchNorm2d.convert_frozen_batchnorm(model)
    assert converted is model
    assert isinstance(model[1], FrozenBatchNorm2d) and isinstance(model[2][1], FrozenBatchNorm2d)
    torch.testing.assert_close(model.train()(x), expected)
    assert [n for n, _ in model.named_parameters()] == ["0.weight", "0.bias"]


def test_get_norm():
    assert get_norm("", 8) is None and get_norm(None, 8) is None
    assert isinstance(get_norm("FrozenBN", 8), FrozenBatchNorm2d)
    assert isinstance(get_norm("BN", 8), nn.BatchNorm2d)
    gn = get_norm("GN", 64)
    assert isinstance(gn, nn.GroupNorm) and gn.num_groups == 32 and gn.num_channels == 64
    assert get_norm(lambda c: nn.LayerNorm(c), 8).normalized_shape == (8,)
    with pytest.raises(ValueError, match="'IN'"):
        get_norm("IN", 8)
