"""detrkit's DINO R50 4-scale against detrex's, with the same weights, in one process on the CPU.

    DETREX_ROOT=/path/to/detrex python -P benchmarks/vs_detrex.py [--threads 2] [--repeats 5] [--json]
        [--inference-size 800 1333] [--train-size 512 512]

Runs where ``detectron2`` and ``detrex`` are importable and a detrex checkout is found (``$DETREX_ROOT``, else
the checkout detrex is installed from; its configs import its ``projects``, so it goes on ``sys.path``);
otherwise it prints one line saying what is missing and exits with status 0.

The models: detrkit's ``projects/dino/configs/dino_r50_4scale_12ep.py`` (seeded random weights) and detrex's
``projects/dino/configs/dino-resnet/dino_r50_4scale_12ep.py`` given the same weights, converted as
``tools/convert_checkpoint.py --to detrex-dino`` does (``convert_to_official``, loaded with ``strict=True``);
the script checks that both give the same detections before timing. detrex's hard-coded ``.cuda()`` calls
are mapped to the CPU at run time (``tools/run_detrex_on_cpu.py``'s ``cuda_mapped_to_cpu``).

Timed, in turns (one run of each variant per round, ``--repeats`` rounds after a warm-up round, medians):

- inference: one 800x1333 image (random pixels), eval mode, no gradients: detrex float32, detrkit float32,
  detrkit under CPU bfloat16 autocast (its fastest CPU mode; its accuracy is checked separately,
  ``benchmarks/bf16_accuracy.py``);
- one training step: forward with the losses, backward, gradient clipping (0.1) and AdamW, on a batch of 2
  random 512x512 images with 3 random boxes each: detrex float32, detrkit float32 (and bfloat16 autocast).

Ratios are detrex's median over detrkit's (> 1: detrkit is faster). ``--json`` prints one JSON line per
ratio (``{"benchmark": "vs_detrex", "measure": ..., ...}``) and the whole result last.
"""

import argparse
import copy
import importlib.util
import json
import os
import statistics
import sys
import time
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))  # benchmarks/common.py, also under python -P
sys.path.insert(0, str(REPO / "tools"))  # run_detrex_on_cpu.py
from common import machine_description, random_batch  # noqa: E402

DETRKIT_CONFIG = REPO / "projects" / "dino" / "configs" / "dino_r50_4scale_12ep.py"
DETREX_CONFIG = "projects/dino/configs/dino-resnet/dino_r50_4scale_12ep.py"
TRAIN_IMAGES = 2


def detrex_root() -> Path | None:
    """The detrex checkout holding ``projects/dino/configs``: ``$DETREX_ROOT``, else detrex's source tree."""
    candidates = [os.environ.get("DETREX_ROOT")]
    spec = importlib.util.find_spec("detrex")
    if spec is not None and spec.origin:
        candidates.append(str(Path(spec.origin).resolve().parents[1]))
    return next((Path(c) for c in candidates if c and (Path(c) / DETREX_CONFIG).is_file()), None)


def missing_requirement() -> str | None:
    """What prevents the comparison (one line), or None."""
    missing = [name for name in ("detectron2", "detrex") if importlib.util.find_spec(name) is None]
    if missing:
        return f"{' and '.join(missing)} not importable"
    if detrex_root() is None:
        return f"no detrex checkout with {DETREX_CONFIG} (set DETREX_ROOT)"
    return None


def build_models():
    """detrkit's and detrex's DINO R50 4-scale on the CPU, with the same weights."""
    from detectron2.config import LazyConfig as Detectron2LazyConfig
    from detectron2.config import instantiate as detectron2_instantiate

    from detrkit.config import LazyConfig, instantiate
    from detrkit.modeling.checkpoint_conversion import convert_to_official

    cfg = LazyConfig.load(str(DETRKIT_CONFIG))
    cfg.model.device = "cpu"
    torch.manual_seed(0)
    ours = instantiate(cfg.model)
    theirs_cfg = Detectron2LazyConfig.load(str(detrex_root() / DETREX_CONFIG))
    theirs_cfg.model.device = "cpu"
    theirs = detectron2_instantiate(theirs_cfg.model)
    theirs.load_state_dict(convert_to_official(ours.state_dict(), "detrex-dino", ours), strict=True)
    return ours, theirs


def detectron2_batch(batch: list[dict]) -> list[dict]:
    """The same inputs with detectron2's ``Instances`` and ``Boxes`` (what detrex's model expects)."""
    from detectron2.structures import Boxes, Instances

    converted = []
    for item in batch:
        instances = item["instances"]
        theirs = Instances(instances.image_size)
        theirs.gt_boxes = Boxes(instances.gt_boxes.tensor.clone())
        theirs.gt_classes = instances.gt_classes.clone()
        converted.append({**item, "instances": theirs})
    return converted


def same_detections(ours, theirs, inputs) -> dict:
    """Largest differences of the two models' eval detections on ``inputs`` (float32)."""
    from run_detrex_on_cpu import cuda_mapped_to_cpu

    with torch.no_grad():
        a = ours.eval()(inputs)[0]["instances"]
        with cuda_mapped_to_cpu():
            b = theirs.eval()(inputs)[0]["instances"]
    return {
        "max_abs_diff_scores": (a.scores - b.scores).abs().max().item(),
        "max_abs_diff_boxes": (a.pred_boxes.tensor - b.pred_boxes.tensor).abs().max().item(),
        "labels_equal": bool(torch.equal(a.pred_classes, b.pred_classes)),
    }


def inference_runs(ours, theirs, inputs) -> dict:
    """Closures running one eval forward of each variant."""
    from run_detrex_on_cpu import cuda_mapped_to_cpu

    def run(model, bf16=False, detrex=False):
        def call():
            with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
                if detrex:
                    with cuda_mapped_to_cpu():
                        model(inputs)
                else:
                    model(inputs)

        return call

    ours.eval(), theirs.eval()
    return {"detrex": run(theirs, detrex=True), "detrkit": run(ours), "detrkit_bf16": run(ours, bf16=True)}


def training_runs(ours, theirs, batch) -> dict:
    """Closures running one training step of each variant, each on its own copy of the model."""
    from run_detrex_on_cpu import cuda_mapped_to_cpu

    def step_of(model, inputs, bf16=False, detrex=False):
        model = copy.deepcopy(model).train()
        params = [p for p in model.parameters() if p.requires_grad]
        optimizer = torch.optim.AdamW(params, lr=1e-4, weight_decay=1e-4)

        def step():
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
                if detrex:
                    with cuda_mapped_to_cpu():
                        losses = model(inputs)
                else:
                    losses = model(inputs)
            optimizer.zero_grad()
            sum(losses.values()).backward()
            torch.nn.utils.clip_grad_norm_(params, 0.1)
            optimizer.step()

        return step

    return {
        "detrex": step_of(theirs, detectron2_batch(batch), detrex=True),
        "detrkit": step_of(ours, batch),
        "detrkit_bf16": step_of(ours, batch, bf16=True),
    }


def interleaved_medians(runs: dict, repeats: int) -> dict:
    """Median seconds of each closure, run in turns: a warm-up round, then ``repeats`` timed rounds."""
    times = {name: [] for name in runs}
    for round_index in range(repeats + 1):
        for name, call in runs.items():
            start = time.perf_counter()
            call()
            if round_index > 0:
                times[name].append(time.perf_counter() - start)
    return {name: statistics.median(values) for name, values in times.items()}


def run(threads: int, repeats: int, inference_size, train_size) -> dict:
    torch.set_num_threads(threads)
    root = detrex_root()
    if str(root) not in sys.path:
        sys.path.append(str(root))  # detrex's configs import its projects.*
    ours, theirs = build_models()
    generator = torch.Generator().manual_seed(0)
    image = torch.randint(0, 256, (3, *inference_size), dtype=torch.uint8, generator=generator)
    inputs = [{"image": image, "height": inference_size[0], "width": inference_size[1]}]
    result = {
        "machine": machine_description(threads),
        "inference_size": list(inference_size),
        "train_batch": [TRAIN_IMAGES, *train_size],
        "load_average_before": os.getloadavg(),
        "same_weights_check": same_detections(ours, theirs, inputs),
    }
    inference = interleaved_medians(inference_runs(ours, theirs, inputs), repeats)
    batch = random_batch(tuple(train_size), TRAIN_IMAGES, ours.num_classes)
    training = interleaved_medians(training_runs(ours, theirs, batch), repeats)
    for mode, medians in (("inference", inference), ("train_step", training)):
        for name, seconds in medians.items():
            result[f"{mode}_{name}_s"] = seconds
        for name in ("detrkit", "detrkit_bf16"):
            result[f"{mode}_speedup_{name}"] = medians["detrex"] / medians[name]
    result["load_average_after"] = os.getloadavg()
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument(
        "--json", action="store_true", help="JSON lines: one per ratio, the whole result last"
    )
    parser.add_argument("--inference-size", nargs=2, type=int, default=(800, 1333), metavar=("H", "W"))
    parser.add_argument("--train-size", nargs=2, type=int, default=(512, 512), metavar=("H", "W"))
    args = parser.parse_args()
    reason = missing_requirement()
    if reason is not None:
        print(f"vs_detrex: skipped: {reason}")
        return
    result = run(args.threads, args.repeats, args.inference_size, args.train_size)
    for key, value in result.items():
        print(f"{key:32s} {value:.3f}" if isinstance(value, float) else f"{key:32s} {value}")
    if args.json:
        for key, value in result.items():
            if "_speedup_" in key:
                mode, variant = key.split("_speedup_")
                print(
                    json.dumps(
                        {"benchmark": "vs_detrex", "measure": mode, "variant": variant, "ratio": value}
                    )
                )
        print(json.dumps(result))


if __name__ == "__main__":
    main()
