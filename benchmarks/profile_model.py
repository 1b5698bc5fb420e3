"""Where the time of one inference and of one training step of a config's model goes, stage by stage.

    python benchmarks/profile_model.py --config-file F [--train] [--bf16] [--repeats 3] [--threads 2]
        [--input-size H W] [--train-size H W] [--json] [key=value ...]

Inference: one image of ``--input-size`` (default 800x1333; a shapes config's test size, its
``short_edge_length``, squared), random pixels. Training step (``--train``): forward with the losses,
backward, gradient clipping and the optimizer step of the config's optimizer, on a batch: a shapes config's
real ``dataloader.train`` batch (the data stage is the time to load it, ``num_workers=0``), else 2 random
images of ``--train-size`` (default 512x512) with 3 random boxes each (no dataset; the data stage is not
measured). ``--bf16`` runs the forward under CPU bfloat16 autocast.

Stages are timed with forward hooks on the modules whose dotted path matches :data:`STAGES` (first match
wins) and with timers around backward, optimizer and data. A stage's time is exclusive: a hooked module
nested in another (the encoder's attention in the encoder) counts for its own stage only, so the stages and
``other`` (everything outside them: preprocessing, positional embedding, heads, postprocess) add up to the
measured total. Times are means over ``--repeats`` runs after one warm-up run (means, so that they add up).
The hooks cost a few microseconds per module call.

Output: a table per mode, and with ``--json`` one JSON line per mode, last.
"""

import argparse
import json
import re
import sys
import time
from collections import defaultdict
from contextlib import contextmanager
from pathlib import Path

import torch

from detrkit.config import LazyConfig, instantiate
from detrkit.utils.events import EventStorage

sys.path.insert(0, str(Path(__file__).resolve().parent))  # benchmarks/common.py, also under python -P
from common import machine_description, random_batch  # noqa: E402

#: (stage, regular expression over a module's dotted path in the detector); the first match names the stage.
STAGES = (
    ("backbone", r"backbone"),
    ("neck", r"neck"),
    ("encoder attention", r"transformer\.encoder\..*attentions\.\d+"),
    ("encoder FFN", r"transformer\.encoder\..*ffns\.\d+"),
    ("encoder other", r"transformer\.encoder"),
    ("token selection", r"transformer\.(token_scorer|token_selector)"),
    ("query selection", r"transformer\.query_selector|query_generator"),  # StageInteractor: query_generator
    ("decoder", r"transformer\.decoder|decoder"),  # StageInteractor: no transformer, no encoder
    ("denoising queries", r"denoising"),
    ("matcher", r"criterion\..*matcher"),
    ("losses", r"criterion"),
)


class StageTimer:
    """Exclusive wall time per stage: hooked modules and :meth:`region` blocks push onto a stack; a region's
    time is added to its stage and subtracted from the region it is nested in."""

    def __init__(self):
        self.seconds: dict[str, float] = defaultdict(float)
        self._stack: list[list] = []  # [stage, start, time of nested regions]

    def _enter(self, stage: str) -> None:
        self._stack.append([stage, time.perf_counter(), 0.0])

    def _exit(self) -> None:
        stage, start, nested = self._stack.pop()
        elapsed = time.perf_counter() - start
        self.seconds[stage] += elapsed - nested
        if self._stack:
            self._stack[-1][2] += elapsed

    @contextmanager
    def region(self, stage: str):
        self._enter(stage)
        try:
            yield
        finally:
            self._exit()

    def hook(self, model: torch.nn.Module) -> list:
        """Registers the hooks of :data:`STAGES` on ``model``'s modules; returns the handles."""
        handles = []
        for path, module in model.named_modules():
            stage = next((name for name, pattern in STAGES if re.fullmatch(pattern, path)), None)
            if stage is None or isinstance(module, (torch.nn.ModuleList, torch.nn.ModuleDict)):
                continue
            handles.append(module.register_forward_pre_hook(lambda *_, stage=stage: self._enter(stage)))
            handles.append(module.register_forward_hook(lambda *_: self._exit()))
        return handles


def test_size(cfg) -> tuple[int, int] | None:
    """A shapes config's evaluation size ``(s, s)`` (its test ``short_edge_length``), else None."""
    if "shapes" not in str(cfg.dataloader.test.dataset.names):
        return None
    size = cfg.dataloader.test.mapper.augmentation[0].short_edge_length
    return (size, size)


def run_repeats(run_once, timer: StageTimer, repeats: int, stages: dict) -> list[float]:
    """Runs ``run_once`` ``repeats + 1`` times, the first a warm-up; adds each stage's mean seconds to
    ``stages``; returns the total seconds of the timed runs."""
    totals = []
    for index in range(repeats + 1):
        timer.seconds.clear()
        start = time.perf_counter()
        run_once()
        if index == 0:  # warm-up
            continue
        totals.append(time.perf_counter() - start)
        for stage, seconds in timer.seconds.items():
            stages[stage] += seconds / repeats
    return totals


def profile(cfg, train: bool, bf16: bool, repeats: int, input_size, train_size) -> dict:
    """Mean seconds per stage (``"total"`` and ``"other"`` included) of ``repeats`` inferences or steps."""
    torch.manual_seed(0)
    cfg.model.device = "cpu"
    model = instantiate(cfg.model)
    timer = StageTimer()
    timer.hook(model)
    autocast = torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16)
    if not train:
        model.eval()
        size = test_size(cfg) or tuple(input_size)
        image = torch.randint(
            0, 256, (3, *size), dtype=torch.uint8, generator=torch.Generator().manual_seed(0)
        )
        inputs = [{"image": image, "height": size[0], "width": size[1]}]

        def run_once():
            with torch.no_grad(), autocast:
                model(inputs)

    else:
        model.train()
        cfg.optimizer.params.model = model
        optimizer = instantiate(cfg.optimizer)
        clip = cfg.train.clip_grad
        loader = None
        if test_size(cfg) is not None:
            cfg.dataloader.train.num_workers = 0
            loader = iter(instantiate(cfg.dataloader.train))
        fixed = random_batch(tuple(train_size), 2, cfg.model.num_classes)

        def run_once():
            if loader is not None:
                with timer.region("data"):
                    batch = next(loader)
            else:
                batch = fixed
            with autocast:
                losses = model(batch)
            with timer.region("backward"):
                sum(losses.values()).backward()
            with timer.region("optimizer"):
                if clip.enabled:
                    torch.nn.utils.clip_grad_norm_(model.parameters(), **clip.params)
                optimizer.step()
                optimizer.zero_grad()

    stages = defaultdict(float)
    with EventStorage(0):  # the training iteration some matchers read (Rank-DETR's high-order matching)
        totals = run_repeats(run_once, timer, repeats, stages)
    result = {name: stages[name] for name, _ in STAGES if name in stages}
    result.update({name: stages[name] for name in ("backward", "optimizer", "data") if name in stages})
    total = sum(totals) / repeats
    result["other"] = total - sum(result.values())
    result["total"] = total
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config-file", required=True)
    parser.add_argument("--train", action="store_true", help="also profile one training step")
    parser.add_argument("--bf16", action="store_true", help="forward under CPU bfloat16 autocast")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--input-size", nargs=2, type=int, default=(800, 1333), metavar=("H", "W"))
    parser.add_argument("--train-size", nargs=2, type=int, default=(512, 512), metavar=("H", "W"))
    parser.add_argument("--json", action="store_true", help="one JSON line per mode, last")
    parser.add_argument("opts", nargs=argparse.REMAINDER, help="config overrides key=value")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    lines = []
    for train in (False, True) if args.train else (False,):
        cfg = LazyConfig.apply_overrides(LazyConfig.load(args.config_file), args.opts)
        stages = profile(cfg, train, args.bf16, args.repeats, args.input_size, args.train_size)
        mode = "training step" if train else "inference"
        if train:
            size = "dataloader.train batch" if test_size(cfg) else f"2 x {list(args.train_size)}"
        else:
            size = str(list(test_size(cfg) or args.input_size))
        print(f"{args.config_file}: {mode}, {size}{' (bf16 autocast)' if args.bf16 else ''}")
        for stage, seconds in stages.items():
            share = 100 * seconds / stages["total"]
            print(f"  {stage:20s} {1e3 * seconds:10.1f} ms {share:6.1f} %")
        lines.append(
            {
                "config": args.config_file,
                "mode": "train" if train else "inference",
                "bf16": args.bf16,
                "input": size,
                "machine": machine_description(args.threads),
                "ms": {stage: round(1e3 * seconds, 2) for stage, seconds in stages.items()},
            }
        )
    if args.json:
        for line in lines:
            print(json.dumps(line))
    sys.stdout.flush()


if __name__ == "__main__":
    main()
