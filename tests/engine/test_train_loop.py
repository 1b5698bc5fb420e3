"""SimpleTrainer/AMPTrainer steps against hand-computed updates; gradient clipping; NaN/inf losses; the
hooks' order, state and resume."""

import copy
import itertools

import numpy as np
import pytest
import torch
from fvcore.common.param_scheduler import MultiStepParamScheduler
from torch import nn

from detrkit.checkpoint import DetectionCheckpointer
from detrkit.engine import AMPTrainer, HookBase, SimpleTrainer, hooks
from detrkit.utils.events import EventWriter

X = np.array([[1.0, 2.0, 0.0], [0.0, 1.0, -1.0], [2.0, 0.0, 1.0], [1.0, 1.0, 1.0]])
Y = np.array([1.0, -1.0, 2.0, 0.5])
W0 = np.array([0.5, -0.25, 1.0])


class LinearRegression(nn.Module):
    """``loss_mse = mean((X w - y)^2)``, ``loss_reg = 0.5 |w|^2``; the gradient is
    ``2/N X^T (X w - y) + w``. ``bad_losses`` maps an iteration to losses replaced by a value there."""

    def __init__(self, bad_losses: dict | None = None):
        super().__init__()
        self.linear = nn.Linear(3, 1, bias=False)
        with torch.no_grad():
            self.linear.weight.copy_(torch.tensor(W0, dtype=torch.float32)[None])
        self.bad_losses = bad_losses or {}
        self.calls = 0
        self.linear_output_dtypes = []

    def forward(self, batch):
        x, y = batch
        pred = self.linear(x)
        self.linear_output_dtypes.append(pred.dtype)
        losses = {
            "loss_mse": ((pred[:, 0].float() - y) ** 2).mean(),
            "loss_reg": 0.5 * (self.linear.weight.float() ** 2).sum(),
        }
        for name, value in self.bad_losses.get(self.calls, {}).items():
            losses[name] = losses[name] * 0 + value
        self.calls += 1
        return losses


def batches():
    return itertools.repeat((torch.tensor(X, dtype=torch.float32), torch.tensor(Y, dtype=torch.float32)))


def hand_gradient(w):
    return 2 / len(Y) * X.T @ (X @ w - Y) + w


def weight(model):
    return model.linear.weight.detach()[0].double().cpu().numpy()


def test_sgd_step_equals_hand_computed_update_and_metrics():
    model = LinearRegression()
    trainer = SimpleTrainer(model, batches(), torch.optim.SGD(model.parameters(), lr=0.1))
    trainer.train(0, 1)
    np.testing.assert_allclose(weight(model), W0 - 0.1 * hand_gradient(W0), rtol=1e-6)
    mse = np.mean((X @ W0 - Y) ** 2)
    reg = 0.5 * np.sum(W0**2)
    storage = trainer.storage
    assert storage.history("loss_mse").latest() == pytest.approx(mse)
    assert storage.history("total_loss").latest() == pytest.approx(mse + reg)
    assert storage.history("data_time").latest() >= 0
    assert trainer.iter == 1


def test_adamw_step_equals_hand_computed_update():
    lr, wd, eps = 0.01, 0.1, 1e-8
    model = LinearRegression()
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=wd, eps=eps)
    SimpleTrainer(model, batches(), optimizer).train(0, 1)
    g = hand_gradient(W0)
    # first AdamW step: bias-corrected moments are g and g^2; decoupled weight decay first
    expected = W0 * (1 - lr * wd) - lr * g / (np.abs(g) + eps)
    np.testing.assert_allclose(weight(model), expected, rtol=1e-5)


def test_gradient_clipping_caps_the_update_norm():
    model = LinearRegression()
    trainer = SimpleTrainer(
        model, batches(), torch.optim.SGD(model.parameters(), lr=1.0), clip_grad_params={"max_norm": 0.01}
    )
    trainer.train(0, 1)
    g = hand_gradient(W0)
    assert np.linalg.norm(g) > 0.01
    np.testing.assert_allclose(W0 - weight(model), 0.01 * g / np.linalg.norm(g), rtol=1e-4)


def test_amp_trainer_on_cpu_runs_in_bfloat16_autocast():
    model = LinearRegression()
    trainer = AMPTrainer(model, batches(), torch.optim.SGD(model.parameters(), lr=0.1))
    assert trainer.grad_scaler is None and trainer.precision == torch.bfloat16
    trainer.train(0, 2)
    assert model.linear_output_dtypes == [torch.bfloat16, torch.bfloat16]
    assert model.linear.weight.dtype == torch.float32
    # bf16 forward: the update is close to the fp32 one
    w1 = W0 - 0.1 * hand_gradient(W0)
    np.testing.assert_allclose(weight(model), w1 - 0.1 * hand_gradient(w1), atol=0.05)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_amp_trainer_on_cuda_uses_float16_and_a_grad_scaler():
    model = LinearRegression().to("cuda")
    data = ((x.to("cuda"), y.to("cuda")) for x, y in batches())
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    trainer = AMPTrainer(model, data, optimizer, clip_grad_params={"max_norm": 100.0})
    assert isinstance(trainer.grad_scaler, torch.amp.GradScaler)
    trainer.train(0, 1)
    assert model.linear_output_dtypes == [torch.float16]
    # the scaled gradients are unscaled before clipping and the step: the fp32 update up to fp16 error
    np.testing.assert_allclose(weight(model), W0 - 0.1 * hand_gradient(W0), atol=1e-2)
    assert "grad_scaler" in trainer.state_dict()


@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
def test_non_finite_loss_stops_before_the_step_and_keeps_last_checkpoint(tmp_path, bad):
    model = LinearRegression(bad_losses={2: {"loss_reg": bad}})
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    trainer = SimpleTrainer(model, batches(), optimizer)
    weights_after_step = {}
    checkpointer = DetectionCheckpointer(model, str(tmp_path), trainer=trainer)
    trainer.register_hooks(
        [
            hooks.CallbackHook(
                after_step=lambda t: weights_after_step.update({t.iter: weight(model).copy()})
            ),
            hooks.PeriodicCheckpointer(checkpointer, period=1, max_iter=5),
        ]
    )
    with pytest.raises(FloatingPointError, match=rf"iteration=2: loss_reg={bad}") as error:
        trainer.train(0, 5)
    assert "loss_mse" not in str(error.value).splitlines()[0]  # only the non-finite key is named
    np.testing.assert_array_equal(weight(model), weights_after_step[1])
    assert (tmp_path / "last_checkpoint").read_text() == "model_0000001.pth"
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "last_checkpoint",
        "model_0000000.pth",
        "model_0000001.pth",
    ]


class Recorder(HookBase):
    def __init__(self, log, name):
        self.log, self.name = log, name

    def before_train(self):
        self.log.append(f"{self.name}.before_train")

    def before_step(self):
        self.log.append(f"{self.name}.before_step{self.trainer.iter}")

    def after_backward(self):
        grad = self.trainer.model.linear.weight.grad
        self.log.append(f"{self.name}.after_backward(grad={'set' if grad is not None else 'none'})")

    def after_step(self):
        self.log.append(f"{self.name}.after_step{self.trainer.iter}")

    def after_train(self):
        self.log.append(f"{self.name}.after_train{self.trainer.iter}")


def test_hook_order():
    log = []
    model = LinearRegression()
    trainer = SimpleTrainer(model, batches(), torch.optim.SGD(model.parameters(), lr=0.1))
    trainer.register_hooks([Recorder(log, "a"), None, Recorder(log, "b")])
    trainer.train(3, 5)
    step = ["before_step{}", "after_backward(grad=set)", "after_step{}"]
    expected = ["a.before_train", "b.before_train"]
    for it in (3, 4):
        for event in step:
            expected += [f"a.{event.format(it)}", f"b.{event.format(it)}"]
    assert log == expected + ["a.after_train5", "b.after_train5"]


class Interrupted(Exception):
    pass


def lrs_of_run(scheduler_factory, start_iter=0, state=None, stop_before=None):
    """Learning rates logged by the LRScheduler hook in a 6-iteration run from ``start_iter`` (restoring
    ``state``), stopped with an exception before iteration ``stop_before``; and the trainer's state after
    each iteration."""
    model = LinearRegression()
    optimizer = torch.optim.SGD(model.parameters(), lr=1.0)
    trainer = SimpleTrainer(model, batches(), optimizer)
    states = {}

    def stop(t):
        if t.iter == stop_before:
            raise Interrupted

    trainer.register_hooks(
        [
            hooks.CallbackHook(before_step=stop),
            hooks.LRScheduler(scheduler=scheduler_factory(optimizer)),
            hooks.CallbackHook(after_step=lambda t: states.update({t.iter: copy.deepcopy(t.state_dict())})),
        ]
    )
    if state is not None:
        trainer.load_state_dict(state)
    try:
        trainer.train(start_iter, 6)
    except Interrupted:
        pass
    return [lr for lr, _ in trainer.storage.history("lr").values()], states


@pytest.mark.parametrize(
    "factory",
    [
        lambda opt: torch.optim.lr_scheduler.StepLR(opt, step_size=2, gamma=0.1),
        lambda opt: MultiStepParamScheduler(values=[1.0, 0.1, 0.01], milestones=[2, 4], num_updates=6),
    ],
    ids=["torch_scheduler", "param_scheduler"],
)
def test_lr_schedule_continues_after_resume(factory):
    full, _ = lrs_of_run(factory)
    assert full == pytest.approx([1.0, 1.0, 0.1, 0.1, 0.01, 0.01])
    first, states = lrs_of_run(factory, stop_before=3)
    assert states[2]["iteration"] == 2
    second, _ = lrs_of_run(factory, start_iter=3, state=states[2])
    assert first + second == pytest.approx(full)


def test_eval_hook_periodic_final_and_not_after_failure():
    calls = []

    def evaluate():
        calls.append(trainer.iter)
        return {"bbox": {"AP": 1.5 * len(calls)}}

    model = LinearRegression()
    trainer = SimpleTrainer(model, batches(), torch.optim.SGD(model.parameters(), lr=0.1))
    trainer.register_hooks([hooks.EvalHook(2, evaluate)])
    trainer.train(0, 5)
    assert calls == [1, 3, 5]  # after iterations 1 and 3, and once more after the last one
    assert trainer.storage.history("bbox/AP").latest() == 4.5

    calls.clear()
    model = LinearRegression(bad_losses={2: {"loss_mse": float("nan")}})
    trainer = SimpleTrainer(model, batches(), torch.optim.SGD(model.parameters(), lr=0.1))
    trainer.register_hooks([hooks.EvalHook(2, evaluate)])
    with pytest.raises(FloatingPointError):
        trainer.train(0, 4)
    assert calls == [1]


def test_periodic_writer_period_and_last_iteration():
    class Writer(EventWriter):
        def __init__(self):
            self.writes, self.closed = [], False

        def write(self):
            self.writes.append(trainer.iter)

        def close(self):
            self.closed = True

    writer = Writer()
    model = LinearRegression()
    trainer = SimpleTrainer(model, batches(), torch.optim.SGD(model.parameters(), lr=0.1))
    trainer.register_hooks([hooks.PeriodicWriter([writer], period=3)])
    trainer.train(0, 7)
    assert writer.writes == [2, 5, 6, 7] and writer.closed
    with pytest.raises(TypeError, match="LinearRegression"):
        hooks.PeriodicWriter([model])
