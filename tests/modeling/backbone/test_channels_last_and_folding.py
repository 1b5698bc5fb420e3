"""Backbones computing in the channels-last memory format with their frozen batch norms folded into the
convolutions (the defaults) give the channels-first, unfolded results (float32 rounding apart) for outputs
and gradients, with the same state dict; fold_frozen_batch_norms folds exactly the conv -> norm pairs."""

import pytest
import torch
from torch import nn

from detrkit.layers import FrozenBatchNorm2d, fold_frozen_batch_norms
from detrkit.modeling.backbone import MobileNetV2, ResNet

BUILDERS = {
    "resnet18": lambda **kw: ResNet(depth=18, freeze_at=2, **kw),
    "resnet50": lambda **kw: ResNet(depth=50, out_features=("res3",), freeze_at=1, **kw),
    "mobilenet_v2": lambda **kw: MobileNetV2(freeze_at=1, **kw),
}


def randomise_frozen_norms(model: nn.Module, generator: torch.Generator) -> None:
    for module in model.modules():
        if isinstance(module, FrozenBatchNorm2d):
            for buffer, low, high in (("weight", 0.5, 1.5), ("bias", -0.5, 0.5), ("running_var", 0.5, 2.0)):
                getattr(module, buffer).copy_(
                    torch.empty(module.num_features).uniform_(low, high, generator=generator)
                )
            module.running_mean.normal_(generator=generator)


def outputs_and_grads(model: nn.Module, image: torch.Tensor):
    features = model(image)
    loss = sum((f * torch.linspace(-1, 1, f.numel()).view_as(f)).sum() for f in features.values())
    loss.backward()
    return features, {n: p.grad for n, p in model.named_parameters() if p.grad is not None}


@pytest.mark.parametrize("name", sorted(BUILDERS))
def test_fast_backbone_equals_the_plain_one(name):
    torch.manual_seed(0)
    reference = BUILDERS[name](channels_last=False, fold_frozen_bn=False)
    randomise_frozen_norms(reference, torch.Generator().manual_seed(1))
    fast = BUILDERS[name]()
    assert fast.state_dict().keys() == reference.state_dict().keys()
    fast.load_state_dict(reference.state_dict())  # the folded convolutions read the loaded statistics
    image = torch.randn(2, 3, 72, 100)
    ref_features, ref_grads = outputs_and_grads(reference, image)
    features, grads = outputs_and_grads(fast, image)
    assert ref_grads and grads.keys() == ref_grads.keys()
    for level, feature in features.items():
        assert feature.is_contiguous(memory_format=torch.channels_last)
        scale = ref_features[level].abs().max()
        torch.testing.assert_close(feature / scale, ref_features[level] / scale, rtol=0, atol=2e-5)
    for parameter, grad in grads.items():
        scale = ref_grads[parameter].abs().max()
        torch.testing.assert_close(grad / scale, ref_grads[parameter] / scale, rtol=0, atol=2e-4)


def test_fold_takes_exactly_the_conv_norm_pairs():
    model = nn.Sequential(
        nn.Conv2d(3, 4, 3, padding=1),
        FrozenBatchNorm2d(4),  # folded
        nn.ReLU(),
        FrozenBatchNorm2d(4),  # not after a convolution: kept
        nn.Conv2d(4, 4, 1, bias=False),
        nn.BatchNorm2d(4).eval(),  # trainable statistics: kept
    )
    randomise_frozen_norms(model, torch.Generator().manual_seed(0))
    x = torch.randn(1, 3, 8, 8)
    expected = model(x)
    keys = model.state_dict().keys()
    assert fold_frozen_batch_norms(model) == 1
    assert model.state_dict().keys() == keys
    torch.testing.assert_close(model(x), expected, rtol=1e-5, atol=1e-5)
    assert model[1](x[:, :1].expand(1, 4, 8, 8)).equal(x[:, :1].expand(1, 4, 8, 8))  # now the identity
    assert not model[3](torch.ones(1, 4, 1, 1)).equal(torch.ones(1, 4, 1, 1))
