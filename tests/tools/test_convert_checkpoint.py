"""tools/convert_checkpoint.py: renames an official checkpoint's keys with the named converter and offers
every project's registered source."""

import subprocess
import sys
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[2]
TOOL = REPO / "tools" / "convert_checkpoint.py"


def run_tool(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(TOOL), *args], cwd=REPO, capture_output=True, text=True, timeout=120
    )


def test_converts_a_detrex_checkpoint_under_model(tmp_path):
    weight = torch.arange(6.0).view(2, 3)
    source = {
        "backbone.res2.0.conv1.norm.weight": weight,
        "transformer.enc_output.weight": weight + 1,
        "class_embed.0.bias": weight[0],
    }
    official = tmp_path / "official.pth"
    torch.save({"model": source, "iteration": 7}, official)
    output = tmp_path / "out.pth"
    result = run_tool("--from", "detrex-dino", "--input", str(official), "--output", str(output))
    assert result.returncode == 0, result.stderr
    converted = torch.load(output, weights_only=True)["model"]
    assert set(converted) == {
        "backbone.layer1.0.bn1.weight",
        "transformer.query_selector.enc_output.weight",
        "class_embed.0.bias",
    }
    assert torch.equal(converted["transformer.query_selector.enc_output.weight"], weight + 1)


def test_unknown_source_lists_the_known_ones(tmp_path):
    result = run_tool("--from", "no-such-detector", "--input", "x.pth", "--output", str(tmp_path / "y.pth"))
    assert result.returncode != 0
    assert "no-such-detector" in result.stderr and "detrex-dino" in result.stderr
