"""Backbones computing in the channels-last memory format (the default) give the channels-first results
(float32 rounding apart) for outputs and gradients, and share state dicts with channels-first ones."""

import pytest
import torch

from detrkit.modeling.backbone import MobileNetV2, ResNet


@pytest.mark.parametrize(
    "build",
    [lambda cl: ResNet(depth=18, freeze_at=2, channels_last=cl), lambda cl: MobileNetV2(channels_last=cl)],
)
def test_channels_last_equals_channels_first(build):
    torch.manual_seed(0)
    reference, fast = build(False), build(True)
    fast.load_state_dict(reference.state_dict())
    image = torch.randn(2, 3, 72, 100)
    outputs = {}
    for name, model in (("reference", reference), ("fast", fast)):
        features = model(image)
        loss = sum((f * torch.linspace(-1, 1, f.numel()).view_as(f)).sum() for f in features.values())
        loss.backward()
        grads = {n: p.grad for n, p in model.named_parameters() if p.grad is not None}
        outputs[name] = features, grads
    (ref_features, ref_grads), (features, grads) = outputs["reference"], outputs["fast"]
    assert ref_grads and grads.keys() == ref_grads.keys()
    for name, feature in features.items():
        assert feature.is_contiguous(memory_format=torch.channels_last)
        torch.testing.assert_close(feature, ref_features[name], rtol=1e-4, atol=1e-4)
    for name, grad in grads.items():
        torch.testing.assert_close(grad, ref_grads[name], rtol=1e-3, atol=1e-3)
