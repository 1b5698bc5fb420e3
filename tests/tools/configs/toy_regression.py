# A toy regression run for the tools/train_net.py tests (needs tests/tools on PYTHONPATH for toy_training).
import torch
from fvcore.common.param_scheduler import MultiStepParamScheduler
from toy_training import ToyEvaluator, ToyRegressor, ToyTrainLoader, toy_test_loader

from detrkit.config import LazyCall as L
from detrkit.config import get_config
from detrkit.solver import get_default_optimizer_params

model = L(ToyRegressor)(kill_at_iter=None, nan_at_iter=None)

dataloader = dict(
    train=L(ToyTrainLoader)(total_batch_size=8),
    test=L(toy_test_loader)(batch_size=4),
    evaluator=L(ToyEvaluator)(),
)

optimizer = L(torch.optim.AdamW)(
    params=L(get_default_optimizer_params)(),
    lr=0.05,
    betas=(0.9, 0.999),
    weight_decay=0.1,
)

lr_multiplier = L(MultiStepParamScheduler)(values=[1.0, 0.1], milestones=[6], num_updates=8)

train = get_config("common/train.py").train
train.max_iter = 8
train.device = "cpu"
train.seed = 0
train.log_period = 2
train.eval_period = 4
train.checkpointer = dict(period=2, max_to_keep=10)
train.model_ema = dict(enabled=True, decay=0.5, device="", use_ema_weights_for_eval_only=False)
train.clip_grad = dict(enabled=True, params=dict(max_norm=1.0, norm_type=2))
