"""The papers' speed claims on the CPU: each project's R50 inference latency relative to DINO R50 4-scale's,
at 800x1333 in one process, against its GFLOPs ratio to DINO.

    python benchmarks/papers_latency.py [--threads 2] [--repeats 3] [--count-flops] [--json]

Focus DETR and Salience DETR exist to be cheaper than DINO (sparse encoders); the check is whether the
latency ratio is within 15% of the GFLOPs ratio (``|latency ratio / GFLOPs ratio - 1| <= 0.15``). The GFLOPs
ratios are those measured with ``tools/analyze_model.py`` and recorded in the projects' READMEs (fvcore
counting, one 3x800x1333 image); ``--count-flops`` counts them again in this run (about 30 s per model).

The models (seeded random weights, eval mode, no gradients, float32) run in turns on the same random
800x1333 image: one warm-up round, then ``--repeats`` rounds; medians.
"""

import os
import statistics
import sys
import time
from pathlib import Path

import torch

from detrkit.config import LazyConfig, instantiate
from detrkit.utils.analysis import flop_count

sys.path.insert(0, str(Path(__file__).resolve().parent))  # benchmarks/common.py, also under python -P
from common import machine_description, main  # noqa: E402

PROJECTS = Path(__file__).resolve().parents[1] / "projects"
REFERENCE = "dino"
#: name: (config under projects/, GFLOPs ratio to DINO R50 4-scale recorded in the project's README)
CONFIGS = {
    REFERENCE: ("dino/configs/dino_r50_4scale_12ep.py", 1.0),
    "focus_detr": ("focus_detr/configs/focus_detr_r50_4scale_12ep.py", 0.625),
    "salience_detr": ("salience_detr/configs/salience_detr_r50_4scale_12ep.py", 0.715),
    "salience_detr_no_token_fusion": ("salience_detr/configs/salience_detr_r50_4scale_12ep_noctf.py", 0.631),
    "rank_dino": ("rank_detr/configs/rank_dino_r50_4scale_12ep.py", 294.23 / 293.24),
    "rank_detr_h_detr": ("rank_detr/configs/rank_detr_r50_two_stage_12ep.py", 283.95 / 293.24),
    "stage_interactor_csla_dca_dino": ("stage_interactor/configs/dino_csla_dca_r50_4scale_12ep.py", None),
    "stageinteractor": ("stage_interactor/configs/stageinteractor_r50_1x_coco.py", 115.3 / 293.24),
}
#: the claims checked: latency ratio within 15% of the GFLOPs ratio
CLAIMS = ("focus_detr", "salience_detr", "salience_detr_no_token_fusion")
TOLERANCE = 0.15
SIZE = (800, 1333)


def build(config: str) -> torch.nn.Module:
    cfg = LazyConfig.load(str(PROJECTS / config))
    if "device" in cfg.model:
        cfg.model.device = "cpu"
    torch.manual_seed(0)
    return instantiate(cfg.model).eval()


def run(threads: int, repeats: int, count_flops: bool = False) -> dict:
    torch.set_num_threads(threads)
    generator = torch.Generator().manual_seed(0)
    image = torch.randint(0, 256, (3, *SIZE), dtype=torch.uint8, generator=generator)
    inputs = [{"image": image, "height": SIZE[0], "width": SIZE[1]}]
    models = {name: build(config) for name, (config, _) in CONFIGS.items()}
    flops = {name: ratio for name, (_, ratio) in CONFIGS.items()}
    if count_flops:
        counted = {name: flop_count(model, image)[0] for name, model in models.items()}
        flops = {name: gflops / counted[REFERENCE] for name, gflops in counted.items()}
    times = {name: [] for name in models}
    load_before = os.getloadavg()
    with torch.no_grad():
        for round_index in range(repeats + 1):
            for name, model in models.items():
                start = time.perf_counter()
                model(inputs)
                if round_index > 0:
                    times[name].append(time.perf_counter() - start)
    medians = {name: statistics.median(values) for name, values in times.items()}
    result = {
        "machine": machine_description(threads),
        "input_size": list(SIZE),
        "load_average_before": load_before,
        "load_average_after": os.getloadavg(),
        "gflops_ratios_counted_here": count_flops,
    }
    for name, seconds in medians.items():
        latency_ratio = seconds / medians[REFERENCE]
        result[f"{name}_ms"] = 1e3 * seconds
        result[f"{name}_latency_ratio"] = latency_ratio
        if flops[name] is not None:
            result[f"{name}_gflops_ratio"] = flops[name]
            result[f"{name}_latency_over_gflops_ratio"] = latency_ratio / flops[name]
    result["claims_within_15_percent"] = {
        name: abs(result[f"{name}_latency_over_gflops_ratio"] - 1) <= TOLERANCE for name in CLAIMS
    }
    return result


if __name__ == "__main__":
    main(
        __doc__.splitlines()[0],
        run,
        default_repeats=3,
        extra_flags={"--count-flops": "count the GFLOPs ratios in this run instead of the recorded ones"},
    )
