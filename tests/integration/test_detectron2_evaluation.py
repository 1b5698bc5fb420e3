"""detectron2's own COCOEvaluator, finding a detrkit dataset by name in its catalogs, scores predictions as
detrkit's COCOEvaluator does: the same AP table, class by class, on shapes_val."""

import numpy as np
import pytest
import torch
from detrex_env import skip_unless_available

skip_unless_available()

from detectron2.evaluation import COCOEvaluator as Detectron2COCOEvaluator

from detrkit.data import DatasetCatalog
from detrkit.evaluation import COCOEvaluator
from detrkit.structures import Boxes, BoxMode, Instances


def jittered_predictions(record: dict, rng: np.random.Generator) -> dict:
    """The ground truth of ``record`` moved by up to 15% of each box's size, with random scores, one
    wrongly-classed copy of each object and one stray box: a prediction set with AP well away from 0 and
    100."""
    boxes, classes = [], []
    for annotation in record["annotations"]:
        x0, y0, x1, y1 = BoxMode.convert(annotation["bbox"], annotation["bbox_mode"], BoxMode.XYXY_ABS)
        size = np.array([x1 - x0, y1 - y0, x1 - x0, y1 - y0])
        boxes.append(np.array([x0, y0, x1, y1]) + rng.uniform(-0.15, 0.15, 4) * size)
        classes.append(annotation["category_id"])
        boxes.append(boxes[-1] + rng.uniform(-2, 2, 4))
        classes.append((annotation["category_id"] + 1) % 3)
    boxes.append(np.array([10.0, 10.0, 60.0, 60.0]))
    classes.append(int(rng.integers(3)))
    instances = Instances((record["height"], record["width"]))
    instances.pred_boxes = Boxes(torch.tensor(np.stack(boxes), dtype=torch.float32))
    instances.scores = torch.tensor(rng.uniform(0.05, 1.0, len(boxes)), dtype=torch.float32)
    instances.pred_classes = torch.tensor(classes)
    return {"instances": instances}


def evaluate(evaluator, records: list[dict]) -> dict:
    rng = np.random.default_rng(0)
    evaluator.reset()
    for record in records:
        evaluator.process([record], [jittered_predictions(record, rng)])
    return evaluator.evaluate()


def test_detectron2_coco_evaluator_agrees_with_ours(tmp_path):
    records = DatasetCatalog.get("shapes_val")
    ours = evaluate(COCOEvaluator("shapes_val", output_dir=str(tmp_path / "ours")), records)["bbox"]
    theirs = evaluate(Detectron2COCOEvaluator("shapes_val", output_dir=str(tmp_path / "d2")), records)["bbox"]
    assert 20 < ours["AP"] < 90
    assert {"AP-circle", "AP-square", "AP-triangle"} <= set(theirs)
    for key, value in theirs.items():
        assert ours[key] == pytest.approx(value, abs=1e-9), key
