# Training options read by tools/train_net.py: every field of detrex's common/train.py, with detrex's
# defaults (except `device`, which falls back to the CPU), so that detrex's own tools/train_net.py runs these
# configs too.
import torch

from detrkit.config.schedules import COCO_ITERS_PER_EPOCH

train = dict(
    # where checkpoints, logs, metrics.json and the saved config go
    output_dir="./output",
    # weights loaded before training or evaluation ("" for none)
    init_checkpoint="",
    # 12 COCO epochs (90,000 iterations)
    max_iter=12 * COCO_ITERS_PER_EPOCH,
    # automatic mixed precision (fp16 on cuda, bf16 on cpu)
    amp=dict(enabled=False),
    # DistributedDataParallel options
    ddp=dict(
        broadcast_buffers=False,
        find_unused_parameters=False,
        fp16_compression=False,
    ),
    # gradient clipping (torch.nn.utils.clip_grad_norm_ arguments)
    clip_grad=dict(
        enabled=False,
        params=dict(
            max_norm=0.1,
            norm_type=2,
        ),
    ),
    # a short debugging run: 20 iterations, evaluated at iteration 10 and at the end, a log line every one
    fast_dev_run=dict(enabled=False),
    # a checkpoint every `period` iterations, keeping the last `max_to_keep`
    checkpointer=dict(period=5000, max_to_keep=100),
    # evaluate every `eval_period` iterations
    eval_period=5000,
    # print a console line every `log_period` iterations
    log_period=20,
    # Weights & Biases logging (read by detrex's train_net.py; detrkit's warns that it does not log there)
    wandb=dict(
        enabled=False,
        params=dict(
            dir="./wandb_output",
            project="detrex",
            name="detrex_experiment",
        ),
    ),
    # exponential moving average of the weights
    model_ema=dict(
        enabled=False,
        decay=0.999,
        device="",
        use_ema_weights_for_eval_only=False,
    ),
    device="cuda" if torch.cuda.is_available() else "cpu",
    # < 0: a different random seed every run
    seed=-1,
)
