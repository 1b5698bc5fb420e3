"""Every shipped project config links ``dataloader.evaluator.output_dir`` to ``train.output_dir``, so an
override of ``train.output_dir`` also moves the evaluator's ``coco_instances_results.json`` (a copy made
when the config is loaded would keep writing into ``./output/<config>``, another run's folder)."""

import json
import uuid

import pytest
import torch

from detrkit.config import LazyConfig, instantiate
from detrkit.config.project_configs import project_config_files
from detrkit.data import MetadataCatalog
from detrkit.structures import Boxes, Instances

CONFIGS = project_config_files()


@pytest.fixture(scope="module")
def tiny_dataset(tmp_path_factory) -> str:
    """A registered one-image, one-box COCO ground truth (the shipped datasets need not be present)."""
    json_file = tmp_path_factory.mktemp("gt") / "gt.json"
    gt = {
        "images": [{"id": 1, "width": 50, "height": 40, "file_name": "1.png"}],
        "annotations": [
            {"id": 1, "image_id": 1, "category_id": 3, "bbox": [5, 5, 20, 10], "area": 200, "iscrowd": 0}
        ],
        "categories": [{"id": 3, "name": "box"}],
    }
    json_file.write_text(json.dumps(gt))
    name = f"output_dir_test_{uuid.uuid4().hex}"
    MetadataCatalog.get(name).set(json_file=str(json_file), thing_dataset_id_to_contiguous_id={3: 0})
    return name


def test_project_configs_exist():
    assert len(CONFIGS) >= 30, [str(c) for c in CONFIGS]


@pytest.mark.parametrize("config_file", CONFIGS, ids=lambda p: f"{p.parent.parent.name}/{p.name}")
def test_evaluator_writes_into_the_overridden_output_dir(config_file, tiny_dataset, tmp_path):
    cfg = LazyConfig.load(str(config_file))
    run_dir = tmp_path / "my_run"
    LazyConfig.apply_overrides(
        cfg, [f"train.output_dir={run_dir}", f"dataloader.evaluator.dataset_name={tiny_dataset}"]
    )
    evaluator = instantiate(cfg.dataloader.evaluator)
    evaluator.reset()
    instances = Instances((40, 50), pred_boxes=Boxes(torch.tensor([[5.0, 5.0, 25.0, 15.0]])))
    instances.scores, instances.pred_classes = torch.ones(1), torch.zeros(1, dtype=torch.int64)
    evaluator.process([{"image_id": 1}], [{"instances": instances}])
    assert evaluator.evaluate()["bbox"]["AP"] == pytest.approx(100.0)
    written = json.loads((run_dir / "coco_instances_results.json").read_text())
    assert written == [{"image_id": 1, "category_id": 3, "bbox": [5.0, 5.0, 20.0, 10.0], "score": 1.0}]
