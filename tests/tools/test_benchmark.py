"""tools/benchmark.py: the latency is the median of timed eval forwards with the warm-up excluded, and the
command line prints one JSON object last."""

import importlib.util
import json
import subprocess
import sys
import time
from pathlib import Path

import torch
from torch import nn

REPO = Path(__file__).resolve().parents[2]
TOOL = REPO / "tools" / "benchmark.py"


def load_tool():
    spec = importlib.util.spec_from_file_location("benchmark_tool", TOOL)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class SleepyDetector(nn.Module):
    """Sleeps 0.3 s on its first call (a slow warm-up) and 0.02 s afterwards; records its mode and inputs."""

    def __init__(self):
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(1))
        self.calls = []

    def forward(self, batched_inputs):
        self.calls.append((self.training, torch.is_grad_enabled(), batched_inputs[0]["height"]))
        time.sleep(0.3 if len(self.calls) == 1 else 0.02)
        return [{}]


def test_median_excludes_the_warmup():
    model = SleepyDetector().train()
    image = torch.zeros(3, 40, 60, dtype=torch.uint8)
    latency = load_tool().measure_latency_ms(model, image, warmup=1, repeats=5)
    assert 20.0 <= latency < 150.0
    assert len(model.calls) == 6
    assert all(call == (False, False, 40) for call in model.calls)


def test_cli_prints_json_last():
    command = [sys.executable, str(TOOL), "--config-file", "projects/dino/configs/dino_shapes.py"]
    command += ["--input-size", "64", "96", "--warmup", "1", "--repeats", "2", "--threads", "1", "--json"]
    command += ["train.device=cpu"]
    result = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["device"] == "cpu" and report["input_size"] == [3, 64, 96] and report["threads"] == 1
    assert report["latency_ms"] > 0
