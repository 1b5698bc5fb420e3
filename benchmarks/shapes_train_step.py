"""One training step (forward, backward, gradient clipping, AdamW) of each paper's shapes config against
`projects/dino/configs/dino_shapes.py`'s in float32, on the same batch of 8 shapes_train images, in one
process. Each config steps as its trainer does: under bfloat16 autocast where `train.amp.enabled` (the demo's
DINO).

The configs are timed in turns (one step of each, `repeats` rounds, after a warm-up round), so a load on the
machine slows them alike; the medians and their ratios to DINO's go in BENCHMARKS.md beside the 20-minute
accuracy runs, whose iteration budget they set.

    python benchmarks/shapes_train_step.py [--threads 2] [--repeats 5] [--json]
"""

import statistics
import time
from pathlib import Path

import torch
from common import machine_description, main

from detrkit.config import LazyConfig, instantiate

ROOT = Path(__file__).resolve().parents[1] / "projects"
REFERENCE = "dino_float32"
CONFIGS = {  # name: (config, overrides)
    REFERENCE: ("dino/configs/dino_shapes.py", ["train.amp.enabled=False"]),
    "dino": ("dino/configs/dino_shapes.py", []),
    "rank_detr": ("rank_detr/configs/rank_detr_shapes.py", []),
    "focus_detr": ("focus_detr/configs/focus_detr_shapes.py", []),
    "salience_detr": ("salience_detr/configs/salience_detr_shapes.py", []),
    "dino_csla": ("stage_interactor/configs/dino_csla_shapes.py", []),
    "stageinteractor": ("stage_interactor/configs/stageinteractor_shapes.py", []),
    "mix_salience_rank_csla": ("mix_and_match/configs/mix_salience_rank_csla_shapes.py", []),
}


def training_step(cfg):
    """A closure running one training step of ``cfg``'s model on a batch, as the trainer does."""
    torch.manual_seed(0)
    cfg.model.device = "cpu"
    model = instantiate(cfg.model).train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=cfg.optimizer.lr)
    clip = cfg.train.clip_grad
    autocast = torch.autocast("cpu", dtype=torch.bfloat16, enabled=cfg.train.amp.enabled)

    def step(batch):
        with autocast:
            losses = model(batch)
        optimizer.zero_grad()
        sum(losses.values()).backward()
        if clip.enabled:
            torch.nn.utils.clip_grad_norm_(model.parameters(), **clip.params)
        optimizer.step()

    return step


def run(threads: int, repeats: int) -> dict:
    torch.set_num_threads(threads)
    configs = {
        name: LazyConfig.apply_overrides(LazyConfig.load(str(ROOT / path)), overrides)
        for name, (path, overrides) in CONFIGS.items()
    }
    loader_cfg = configs[REFERENCE].dataloader.train
    loader_cfg.num_workers = 0
    batch = next(iter(instantiate(loader_cfg)))
    steps = {name: training_step(cfg) for name, cfg in configs.items()}
    times = {name: [] for name in steps}
    for round_index in range(repeats + 1):
        for name, step in steps.items():
            start = time.perf_counter()
            step(batch)
            if round_index > 0:  # round 0 warms up
                times[name].append(time.perf_counter() - start)
    medians = {name: statistics.median(t) for name, t in times.items()}
    result = {"machine": machine_description(threads), "images": len(batch)}
    for name, seconds in medians.items():
        result[f"{name}_s"] = seconds
        result[f"{name}_vs_{REFERENCE}"] = seconds / medians[REFERENCE]
    return result


if __name__ == "__main__":
    main(__doc__.splitlines()[0], run, default_repeats=5)
