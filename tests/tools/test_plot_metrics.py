"""tools/plot_metrics.py OUTPUT_DIR writes OUTPUT_DIR/metrics.png, and names a folder without metrics.json."""

import json
import subprocess
import sys
from pathlib import Path

from PIL import Image

TOOL = Path(__file__).resolve().parents[2] / "tools" / "plot_metrics.py"


def run(*args):
    return subprocess.run([sys.executable, str(TOOL), *args], capture_output=True, text=True, timeout=120)


def test_writes_metrics_png(tmp_path):
    lines = [
        {"iteration": i, "total_loss": 5.0 / (i + 1), "loss_class": 1.0 / (i + 1), "lr": 1e-4}
        for i in range(5)
    ]
    (tmp_path / "metrics.json").write_text("".join(json.dumps(x) + "\n" for x in lines))
    result = run(str(tmp_path))
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"wrote {tmp_path / 'metrics.png'}"
    with Image.open(tmp_path / "metrics.png") as image:
        assert image.size == (1100, 750)


def test_a_folder_without_metrics_is_an_error(tmp_path):
    result = run(str(tmp_path))
    assert result.returncode == 2
    assert f"{tmp_path / 'metrics.json'} does not exist" in result.stderr
    assert not (tmp_path / "metrics.png").exists()
