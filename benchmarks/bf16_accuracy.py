"""COCO AP of a trained model on its test split in float32 and under CPU bfloat16 autocast (the fastest CPU
inference mode, see benchmarks/vs_detrex.py), and whether bfloat16 stays within 0.5 AP of float32.

    python benchmarks/bf16_accuracy.py --config-file projects/dino/configs/dino_shapes.py \\
        --checkpoint output/demo/model_final.pth [--threads 2] [--json]

bfloat16 autocast runs convolutions and matrix products in bfloat16 (8 mantissa bits; AMX/AVX-512-BF16 on
recent x86 CPUs) and keeps the rest (the deformable attention kernel, the sigmoid/top-k postprocess) in
float32. Whether the detections survive that rounding depends on the trained weights, so this is measured
on a trained checkpoint (the demo's: ``make demo``), never assumed.
"""

import argparse
import json
import time

import torch

from detrkit.checkpoint import DetectionCheckpointer
from detrkit.config import LazyConfig, instantiate
from detrkit.evaluation import inference_on_dataset

MAX_AP_DROP = 0.5


def evaluate(cfg, model, bf16: bool) -> tuple[dict, float]:
    """The evaluator's ``bbox`` metrics of ``model`` on ``cfg``'s test loader, and the seconds it took."""
    start = time.perf_counter()
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
        results = inference_on_dataset(
            model, instantiate(cfg.dataloader.test), instantiate(cfg.dataloader.evaluator)
        )
    return results["bbox"], time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config-file", required=True)
    parser.add_argument("--checkpoint", required=True, help="trained weights (DetectionCheckpointer)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--json", action="store_true", help="print one JSON object last")
    parser.add_argument("opts", nargs=argparse.REMAINDER, help="config overrides key=value")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    cfg = LazyConfig.apply_overrides(LazyConfig.load(args.config_file), args.opts)
    cfg.model.device = "cpu"
    cfg.dataloader.evaluator.output_dir = None
    model = instantiate(cfg.model)
    DetectionCheckpointer(model).load(args.checkpoint)
    float32, float32_s = evaluate(cfg, model, bf16=False)
    bfloat16, bfloat16_s = evaluate(cfg, model, bf16=True)
    result = {
        "config": args.config_file,
        "checkpoint": args.checkpoint,
        "float32_AP": float32["AP"],
        "bfloat16_AP": bfloat16["AP"],
        "float32_AP50": float32["AP50"],
        "bfloat16_AP50": bfloat16["AP50"],
        "float32_s": float32_s,
        "bfloat16_s": bfloat16_s,
        "bfloat16_within_0.5_AP": float32["AP"] - bfloat16["AP"] <= MAX_AP_DROP,
    }
    for key, value in result.items():
        print(f"{key:24s} {value:.3f}" if isinstance(value, float) else f"{key:24s} {value}")
    if args.json:
        print(json.dumps(result))


if __name__ == "__main__":
    main()
