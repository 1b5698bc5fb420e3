"""The real detectron2 and detrex for tests/integration: where they are, and how to train with detrex's own
``tools/train_net.py`` in this process on a machine without a GPU.

The tests here run when ``detectron2`` and ``detrex`` are importable (built CPU-only from their public
sources, see the README's "Inside detrex") and a detrex checkout is found: ``$DETREX_ROOT``, else the
checkout detrex is installed from. Each module starts with ``skip_unless_available()``, which skips it with
one line saying what is missing. Run them without the repository root on ``sys.path`` (``python -P -m
pytest tests/integration``), as a detrex user's process has it: detrex's configs import its ``projects``.
"""

import importlib.util
import json
import os
import runpy
import sys
from functools import cache
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tools"))
sys.path.insert(0, str(REPO / "tests" / "projects"))


def detrex_root() -> Path | None:
    """The detrex checkout (the folder holding ``tools/train_net.py`` and ``projects/``), or None."""
    candidates = [os.environ.get("DETREX_ROOT")]
    spec = importlib.util.find_spec("detrex")
    if spec is not None and spec.origin:
        candidates.append(str(Path(spec.origin).resolve().parents[1]))
    for candidate in candidates:
        if candidate and (Path(candidate) / "tools" / "train_net.py").is_file():
            return Path(candidate)
    return None


def skip_unless_available() -> Path:
    """The detrex checkout, with it on ``sys.path`` (for its ``projects``); skips the module otherwise."""
    for name in ("detectron2", "detrex"):
        if importlib.util.find_spec(name) is None:
            pytest.skip(
                f"tests/integration: {name} is not importable (build detectron2 and detrex CPU-only from "
                "their public sources to run them; README, 'Inside detrex')",
                allow_module_level=True,
            )
    root = detrex_root()
    if root is None:
        pytest.skip("tests/integration: no detrex checkout found; set DETREX_ROOT", allow_module_level=True)
    if str(root) not in sys.path:
        sys.path.append(str(root))
    return root


DINO_CONFIG = "projects/dino/configs/dino-resnet/dino_r50_4scale_12ep.py"
H_DETR_CONFIG = "projects/h_deformable_detr/configs/h_deformable_detr_r50_two_stage_12ep.py"


def tiny_detrex_config(path: str):
    """detrex's config at R18 / 1 encoder + 2 decoder layers / few queries, on shapes_train at 128 px."""
    from detectron2.config import LazyCall as L
    from detectron2.config import LazyConfig
    from detectron2.data import transforms as T

    import detrkit.data  # noqa: F401  (registers shapes_train, in detectron2's catalogs too)

    cfg = LazyConfig.load(str(detrex_root() / path))
    model = cfg.model
    model.backbone.stages.depth = 18
    del model.backbone.stages.stride_in_1x1  # bottleneck blocks only
    for level, channels in zip(("res3", "res4", "res5"), (128, 256, 512), strict=True):
        model.neck.input_shapes[level].channels = channels
    model.transformer.encoder.num_layers = 1
    model.transformer.decoder.num_layers = 2
    model.transformer.encoder.feedforward_dim = 64
    model.transformer.decoder.feedforward_dim = 64
    model.num_classes = model.criterion.num_classes = 3  # detrex's H-DETR states it twice
    if "num_queries_one2one" in model:
        model.num_queries_one2one, model.num_queries_one2many = 10, 20
        model.transformer.two_stage_num_proposals = 30
        model.k_one2many = 2
    else:
        model.num_queries, model.dn_number = 20, 4
    cfg.dataloader.train.dataset.names = "shapes_train"
    cfg.dataloader.train.total_batch_size = 2
    cfg.dataloader.train.mapper.augmentation = [L(T.ResizeShortestEdge)(short_edge_length=128, max_size=128)]
    cfg.dataloader.train.mapper.augmentation_with_crop = None
    cfg.train.init_checkpoint = ""
    return cfg


@cache
def detrex_train_net() -> dict:
    """The globals of detrex's ``tools/train_net.py`` (its ``Trainer``, ``do_train``, ``do_test``)."""
    return runpy.run_path(str(detrex_root() / "tools" / "train_net.py"), run_name="detrex_train_net")


def train_with_detrex(
    cfg,
    output_dir: Path,
    max_iter: int,
    resume: bool = False,
    evaluate: bool = False,
    trainer: str = "detrex",
) -> list[dict]:
    """Trains ``cfg`` for ``max_iter`` iterations with ``do_train`` of detrex's ``tools/train_net.py`` (its
    Trainer, detectron2's hooks, checkpointer and writers), or of detrkit's with ``trainer="detrkit"``, CUDA
    calls mapped to the CPU, evaluating at the end only with ``evaluate``; returns ``metrics.json``'s
    records."""
    from detectron2.engine import default_argument_parser
    from run_detrex_on_cpu import cuda_mapped_to_cpu

    if trainer == "detrex":
        do_train = detrex_train_net()["do_train"]
    else:
        import train_net  # detrkit's tools/train_net.py

        do_train = train_net.do_train
    cfg.train.output_dir = str(output_dir)
    cfg.train.max_iter = max_iter
    cfg.train.log_period = 1
    cfg.train.device = "cpu"
    cfg.train.amp.enabled = False
    if "device" in cfg.model:
        cfg.model.device = "cpu"
    cfg.dataloader.train.num_workers = 0
    if not evaluate:
        cfg.dataloader.pop("evaluator", None)
    args = default_argument_parser().parse_args(["--resume"] if resume else [])
    output_dir.mkdir(parents=True, exist_ok=True)
    with cuda_mapped_to_cpu():
        do_train(args, cfg)
    metrics = output_dir / "metrics.json"
    return [json.loads(line) for line in metrics.read_text().splitlines() if line.strip()]
