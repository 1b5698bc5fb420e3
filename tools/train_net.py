#!/usr/bin/env python
"""Trains or evaluates a model described by a LazyConfig file, with detrex's command line and flow.

    python tools/train_net.py --config-file F [--num-gpus N] [--resume] [--eval-only] [key=value ...]

The config provides ``model``, ``optimizer``, ``lr_multiplier``, ``dataloader.{train,test,evaluator}`` and
``train`` (see ``detrkit/config/configs/common/train.py``: output_dir, init_checkpoint, max_iter, amp,
ddp, clip_grad, fast_dev_run, checkpointer, eval_period, log_period, wandb, model_ema, device, seed: detrex's
fields). detrex's own configs run here too when detectron2 and detrex are importable. ``--num-gpus N`` runs N
processes (one per GPU, or N gloo processes on CPU). ``--resume`` continues from the last checkpoint in
``train.output_dir``; ``--eval-only`` evaluates ``train.init_checkpoint``.
"""

import logging

from omegaconf import OmegaConf

from detrkit.checkpoint import DetectionCheckpointer
from detrkit.config import LazyConfig, instantiate
from detrkit.engine import (
    AMPTrainer,
    ModelEMA,
    SimpleTrainer,
    create_ddp_model,
    default_argument_parser,
    default_setup,
    default_writers,
    hooks,
    launch,
)
from detrkit.evaluation import inference_on_dataset, print_csv_format
from detrkit.utils import comm
from detrkit.utils.metrics_plot import write_metrics_plot

logger = logging.getLogger("detrkit")


def build_model_ema(cfg, model) -> ModelEMA | None:
    """The model's EMA when ``train.model_ema.enabled``, else None."""
    if not OmegaConf.select(cfg, "train.model_ema.enabled", default=False):
        return None
    logger.info("Using Model EMA.")
    return ModelEMA(model, decay=cfg.train.model_ema.decay, device=cfg.train.model_ema.device)


def do_test(cfg, model, model_ema: ModelEMA | None = None) -> dict | None:
    """Evaluates ``model`` on ``dataloader.test`` with ``dataloader.evaluator`` (None without an evaluator);
    with ``model_ema`` also with the averaged weights, whose results get the suffix ``_ema``
    (``bbox_ema``)."""
    if "evaluator" not in cfg.dataloader:
        return None
    ret = inference_on_dataset(model, instantiate(cfg.dataloader.test), instantiate(cfg.dataloader.evaluator))
    print_csv_format(ret)
    if model_ema is not None:
        logger.info("Run evaluation with EMA.")
        with model_ema.apply_and_restore():
            ema_ret = inference_on_dataset(
                model, instantiate(cfg.dataloader.test), instantiate(cfg.dataloader.evaluator)
            )
        ema_ret = {f"{task}_ema": metrics for task, metrics in ema_ret.items()}
        print_csv_format(ema_ret)
        ret.update(ema_ret)
    return ret


def do_train(args, cfg) -> None:
    model = instantiate(cfg.model)
    logger.info(f"Model:\n{model}")
    model.to(cfg.train.device)

    cfg.optimizer.params.model = model
    optim = instantiate(cfg.optimizer)
    train_loader = instantiate(cfg.dataloader.train)

    model = create_ddp_model(model, **cfg.train.ddp)
    model_ema = build_model_ema(cfg, model)

    clip_grad_enabled = OmegaConf.select(cfg, "train.clip_grad.enabled", default=False)
    trainer = (AMPTrainer if cfg.train.amp.enabled else SimpleTrainer)(
        model,
        train_loader,
        optim,
        clip_grad_params=cfg.train.clip_grad.params if clip_grad_enabled else None,
    )
    checkpointables = {"trainer": trainer}
    if model_ema is not None:
        checkpointables["ema_state"] = model_ema
    checkpointer = DetectionCheckpointer(model, cfg.train.output_dir, **checkpointables)

    trainer.register_hooks(
        [
            hooks.IterationTimer(),
            hooks.EMAHook(model_ema) if model_ema is not None else None,
            hooks.LRScheduler(scheduler=instantiate(cfg.lr_multiplier)),
            hooks.PeriodicCheckpointer(checkpointer, **cfg.train.checkpointer)
            if comm.is_main_process()
            else None,
            hooks.EvalHook(cfg.train.eval_period, lambda: do_test(cfg, model, model_ema)),
            hooks.PeriodicWriter(
                default_writers(cfg.train.output_dir, cfg.train.max_iter),
                period=cfg.train.log_period,
            )
            if comm.is_main_process()
            else None,
        ]
    )

    checkpointer.resume_or_load(cfg.train.init_checkpoint, resume=args.resume)
    if args.resume and checkpointer.has_checkpoint():
        # the checkpoint holds the iteration that had just finished: continue with the next one
        start_iter = trainer.iter + 1
    else:
        start_iter = 0
    trainer.train(start_iter, cfg.train.max_iter)
    if comm.is_main_process():
        logger.info(f"Training curves: {write_metrics_plot(cfg.train.output_dir)}")


def do_eval_only(cfg) -> dict | None:
    """Evaluates ``train.init_checkpoint``; with ``train.model_ema.use_ema_weights_for_eval_only``, its EMA
    weights."""
    model = instantiate(cfg.model)
    model.to(cfg.train.device)
    model = create_ddp_model(model)
    model_ema = build_model_ema(cfg, model)
    checkpointables = {"ema_state": model_ema} if model_ema is not None else {}
    DetectionCheckpointer(model, **checkpointables).load(cfg.train.init_checkpoint)
    if model_ema is not None and cfg.train.model_ema.use_ema_weights_for_eval_only:
        if not model_ema.has_inited():
            raise ValueError(
                f"train.model_ema.use_ema_weights_for_eval_only is set, but {cfg.train.init_checkpoint!r} "
                "has no 'ema_state'"
            )
        logger.info("Run evaluation with EMA weights.")
        model_ema.apply_to_model()
    return do_test(cfg, model)


def apply_fast_dev_run(cfg) -> None:
    """``train.fast_dev_run.enabled`` (detrex's debugging switch): 20 iterations, evaluated at iteration 10
    and at the end, a log line every iteration."""
    if OmegaConf.select(cfg, "train.fast_dev_run.enabled", default=False):
        cfg.train.max_iter = 20
        cfg.train.eval_period = 10
        cfg.train.log_period = 1


def main(args) -> None:
    cfg = LazyConfig.load(args.config_file)
    cfg = LazyConfig.apply_overrides(cfg, args.opts)
    apply_fast_dev_run(cfg)
    default_setup(cfg, args)
    if OmegaConf.select(cfg, "train.wandb.enabled", default=False):
        logger.warning(
            "train.wandb.enabled is set, but detrkit's train_net.py does not log to Weights & Biases "
            "(detrex's train_net.py does); metrics go to metrics.json and TensorBoard events"
        )
    if args.eval_only:
        print(do_eval_only(cfg))
    else:
        do_train(args, cfg)


if __name__ == "__main__":
    args = default_argument_parser().parse_args()
    launch(
        main,
        args.num_gpus,
        num_machines=args.num_machines,
        machine_rank=args.machine_rank,
        dist_url=args.dist_url,
        args=(args,),
    )
