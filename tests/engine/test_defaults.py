"""default_argument_parser, default_setup, default_writers and create_ddp_model in one process."""

import argparse
import logging

import pytest
import torch
import yaml
from omegaconf import OmegaConf
from torch import nn

from detrkit.engine import create_ddp_model, default_argument_parser, default_setup, default_writers
from detrkit.utils.events import CommonMetricPrinter, JSONWriter, TensorboardXWriter
from detrkit.utils.logger import log_every_n_seconds, setup_logger


def test_argument_parser_matches_detectron2():
    args = default_argument_parser().parse_args(
        ["--config-file", "cfg.py", "--num-gpus", "2", "--resume", "train.max_iter=10", "optimizer.lr=0.1"]
    )
    assert args.config_file == "cfg.py" and args.num_gpus == 2 and args.resume and not args.eval_only
    assert (args.num_machines, args.machine_rank) == (1, 0)
    assert args.dist_url.startswith("tcp://127.0.0.1:")
    assert args.opts == ["train.max_iter=10", "optimizer.lr=0.1"]
    args = default_argument_parser().parse_args(["--eval-only", "--dist-url", "auto"])
    assert args.eval_only and args.dist_url == "auto" and args.opts == []


@pytest.fixture
def restore_loggers():
    """default_setup configures the "detrkit"/"fvcore" loggers (handlers, no propagation): undo it so other
    tests see the default logging set-up."""
    yield
    for name in ("detrkit", "fvcore"):
        logger = logging.getLogger(name)
        for handler in list(logger.handlers):
            logger.removeHandler(handler)
            handler.close()
        logger.propagate = True
        logger.setLevel(logging.NOTSET)
    setup_logger.cache_clear()


def test_default_setup_saves_config_logs_and_seeds(tmp_path, restore_loggers):
    output_dir = tmp_path / "run"
    cfg = OmegaConf.create({"train": {"output_dir": str(output_dir), "seed": 7, "max_iter": 3}})
    config_file = tmp_path / "cfg.py"
    config_file.write_text("train = dict(max_iter=3)\n")
    default_setup(cfg, argparse.Namespace(config_file=str(config_file), eval_only=False))
    drawn = torch.rand(3)
    torch.manual_seed(7)  # rank 0: seed + 0
    torch.testing.assert_close(drawn, torch.rand(3))

    assert yaml.safe_load((output_dir / "config.yaml").read_text())["train"]["max_iter"] == 3
    logging.getLogger("detrkit.some.module").info("a message for the log file")
    log = (output_dir / "log.txt").read_text()
    assert "a message for the log file" in log
    assert "train = dict(max_iter=3)" in log  # the config file's contents
    assert "PyTorch" in log  # environment info


def test_default_writers(tmp_path):
    writers = default_writers(str(tmp_path / "out"), max_iter=10)
    assert [type(w) for w in writers] == [CommonMetricPrinter, JSONWriter, TensorboardXWriter]
    for writer in writers:
        writer.close()
    assert (tmp_path / "out" / "metrics.json").exists()


def test_create_ddp_model_is_identity_in_one_process():
    model = nn.Linear(2, 2)
    assert create_ddp_model(model, broadcast_buffers=False, fp16_compression=True) is model


def test_setup_logger_rank_files_and_console(tmp_path, capsys):
    name = "detrkit_logger_test"
    try:
        main = setup_logger(str(tmp_path), distributed_rank=0, name=name)
        main.info("from rank 0")
        other = setup_logger(str(tmp_path), distributed_rank=1, name=f"{name}.rank1", color=False)
        other.info("from rank 1")
        assert setup_logger(str(tmp_path), distributed_rank=0, name=name) is main
        assert len(main.handlers) == 2  # a repeated call adds no handlers
        for _ in range(3):
            log_every_n_seconds(logging.INFO, "throttled", n=60, name=name)
    finally:
        for logger in (logging.getLogger(name), logging.getLogger(f"{name}.rank1")):
            for handler in list(logger.handlers):
                logger.removeHandler(handler)
                handler.close()
        setup_logger.cache_clear()
    console = capsys.readouterr().out
    assert "from rank 0" in console and "from rank 1" not in console
    assert console.count("throttled") == 1
    assert "from rank 0" in (tmp_path / "log.txt").read_text()
    assert "from rank 1" in (tmp_path / "log.txt.rank1").read_text()
