"""The pieces every training script shares, with detectron2's names: the command line
(``default_argument_parser``), run set-up (``default_setup``), the standard writers and the DDP wrapper."""

import argparse
import os
import sys

import torch
from omegaconf import DictConfig, OmegaConf
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from detrkit.config import LazyConfig
from detrkit.utils import comm
from detrkit.utils.env import collect_env_info, seed_all_rng
from detrkit.utils.events import CommonMetricPrinter, EventWriter, JSONWriter, TensorboardXWriter
from detrkit.utils.logger import setup_logger

__all__ = ["create_ddp_model", "default_argument_parser", "default_setup", "default_writers"]


def default_argument_parser(epilog: str | None = None) -> argparse.ArgumentParser:
    """The command line of detectron2/detrex tools: ``--config-file F [--resume] [--eval-only]
    [--num-gpus N] [--num-machines M] [--machine-rank R] [--dist-url URL] [key=value ...]``."""
    parser = argparse.ArgumentParser(
        epilog=epilog
        or f"""
Examples:

Run on a single machine:
    $ {sys.argv[0]} --num-gpus 8 --config-file cfg.py

Change some config options:
    $ {sys.argv[0]} --config-file cfg.py train.max_iter=100 optimizer.lr=1e-4

Run on multiple machines:
    (machine0)$ {sys.argv[0]} --machine-rank 0 --num-machines 2 --dist-url <URL> [--other-flags]
    (machine1)$ {sys.argv[0]} --machine-rank 1 --num-machines 2 --dist-url <URL> [--other-flags]
""",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--config-file", default="", metavar="FILE", help="path to config file")
    parser.add_argument(
        "--resume",
        action="store_true",
        help="resume from the last checkpoint in the output directory (train.output_dir) if there is one; "
        "otherwise start from train.init_checkpoint",
    )
    parser.add_argument("--eval-only", action="store_true", help="perform evaluation only")
    parser.add_argument(
        "--num-gpus", type=int, default=1, help="number of processes *per machine* (GPUs, or CPU processes)"
    )
    parser.add_argument("--num-machines", type=int, default=1, help="total number of machines")
    parser.add_argument(
        "--machine-rank", type=int, default=0, help="the rank of this machine (unique per machine)"
    )
    # a port per user, so that users sharing a machine do not collide
    port = 2**15 + 2**14 + hash(os.getuid() if sys.platform != "win32" else 1) % 2**14
    parser.add_argument(
        "--dist-url",
        default=f"tcp://127.0.0.1:{port}",
        help="initialization URL for the pytorch distributed backend; 'auto' picks a free local port",
    )
    parser.add_argument(
        "opts",
        help="config overrides 'path.key=value' at the end of the command, e.g. train.max_iter=100",
        default=None,
        nargs=argparse.REMAINDER,
    )
    return parser


def default_setup(cfg: DictConfig, args: argparse.Namespace) -> None:
    """At the start of a run: creates ``cfg.train.output_dir``, sets up the "detrkit" and "fvcore" loggers
    (console on rank 0, ``log.txt`` per process), logs the environment, the arguments and the config
    file, saves the full config as ``<output_dir>/config.yaml`` and seeds the random generators with
    ``cfg.train.seed + rank`` (a random seed when it is negative or absent)."""
    output_dir = OmegaConf.select(cfg, "train.output_dir", default=None)
    rank = comm.get_rank()
    if comm.is_main_process() and output_dir:
        os.makedirs(output_dir, exist_ok=True)
    setup_logger(output_dir, distributed_rank=rank, name="fvcore")
    logger = setup_logger(output_dir, distributed_rank=rank)

    logger.info(f"Rank of current process: {rank}. World size: {comm.get_world_size()}")
    logger.info("Environment info:\n" + collect_env_info())
    logger.info(f"Command line arguments: {args}")
    config_file = getattr(args, "config_file", "")
    if config_file:
        with open(config_file) as f:
            logger.info(f"Contents of args.config_file={config_file}:\n{f.read()}")
    if comm.is_main_process() and output_dir:
        path = os.path.join(output_dir, "config.yaml")
        LazyConfig.save(cfg, path)
        logger.info(f"Full config saved to {path}")

    seed = OmegaConf.select(cfg, "train.seed", default=-1)
    seed_all_rng(None if seed is None or seed < 0 else seed + rank)
    if not getattr(args, "eval_only", False):
        torch.backends.cudnn.benchmark = bool(OmegaConf.select(cfg, "train.cudnn_benchmark", default=False))


def default_writers(output_dir: str, max_iter: int | None = None) -> list[EventWriter]:
    """Console line (``CommonMetricPrinter``), ``<output_dir>/metrics.json`` and TensorBoard events in
    ``output_dir``."""
    os.makedirs(output_dir, exist_ok=True)
    return [
        CommonMetricPrinter(max_iter),
        JSONWriter(os.path.join(output_dir, "metrics.json")),
        TensorboardXWriter(output_dir),
    ]


def create_ddp_model(model: nn.Module, *, fp16_compression: bool = False, **kwargs) -> nn.Module:
    """Wraps ``model`` in DistributedDataParallel when there is more than one process (else returns it
    as it is). ``kwargs`` go to DDP (e.g. ``broadcast_buffers``, ``find_unused_parameters``); on CUDA,
    ``device_ids`` defaults to this process's local GPU. ``fp16_compression`` all-reduces gradients in
    float16."""
    if comm.get_world_size() == 1:
        return model
    if "device_ids" not in kwargs and next(model.parameters()).device.type == "cuda":
        kwargs["device_ids"] = [comm.get_local_rank()]
    ddp = DistributedDataParallel(model, **kwargs)
    if fp16_compression:
        from torch.distributed.algorithms.ddp_comm_hooks import default as comm_hooks

        ddp.register_comm_hook(state=None, hook=comm_hooks.fp16_compress_hook)
    return ddp
