"""ModelEMA/EMAHook against hand-computed averages."""

import itertools

import pytest
import torch
from torch import nn

from detrkit.engine import ModelEMA, SimpleTrainer, hooks


class BNModel(nn.Module):
    """A linear layer and a BatchNorm (whose buffers, including the integer counter, are averaged too)."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.linear = nn.Linear(2, 2)
        self.norm = nn.BatchNorm1d(2)

    def forward(self, x):
        return {"loss": self.norm(self.linear(x)).pow(2).mean()}


def test_ema_hook_averages_parameters_and_buffers():
    model = BNModel()
    initial = {k: v.clone() for k, v in model.state_dict().items()}
    ema = ModelEMA(model, decay=0.75)
    data = itertools.repeat(torch.tensor([[1.0, 2.0], [3.0, -1.0], [0.5, 0.0]]))
    trainer = SimpleTrainer(model, data, torch.optim.SGD(model.parameters(), lr=0.5))
    trainer.register_hooks([hooks.EMAHook(ema)])
    trainer.train(0, 1)
    after_one = {k: v.clone() for k, v in model.state_dict().items()}
    for name in ["linear.weight", "linear.bias", "norm.running_mean", "norm.running_var"]:
        torch.testing.assert_close(ema.state[name], 0.75 * initial[name] + 0.25 * after_one[name])
    assert ema.state["norm.num_batches_tracked"].item() == 1  # integers are copied

    trainer = SimpleTrainer(model, data, torch.optim.SGD(model.parameters(), lr=0.5))
    trainer.register_hooks([hooks.EMAHook(ema)])  # already initialised: continues the average
    previous = {k: v.clone() for k, v in ema.state.items()}
    trainer.train(1, 2)
    torch.testing.assert_close(
        ema.state["linear.weight"], 0.75 * previous["linear.weight"] + 0.25 * model.linear.weight.detach()
    )


def test_ema_apply_and_restore_and_state_dict_roundtrip():
    model = BNModel()
    ema = ModelEMA(model, decay=0.5)
    ema.reset_from_model()
    with torch.no_grad():
        ema.state["linear.weight"].fill_(7.0)
    own = model.linear.weight.detach().clone()
    with ema.apply_and_restore():
        assert torch.all(model.linear.weight == 7.0)
    torch.testing.assert_close(model.linear.weight.detach(), own)

    restored = ModelEMA(BNModel(), decay=0.5)
    assert not restored.has_inited()
    restored.load_state_dict(ema.state_dict())
    assert torch.all(restored.state["linear.weight"] == 7.0)
    restored.apply_to_model()
    assert torch.all(restored.model.linear.weight == 7.0)
    with pytest.raises(ValueError, match="decay"):
        ModelEMA(model, decay=1.5)
