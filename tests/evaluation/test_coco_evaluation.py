"""COCOEvaluator against pycocotools' COCOeval run directly on the same detections, on a hand-written
ground truth: 4 images (one without objects), 3 categories with non-contiguous ids (1, 5, 9), one of them
(bird) never predicted."""

import contextlib
import io
import json
import logging
import math
import os
import uuid

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from detrkit.data import DatasetCatalog, MetadataCatalog, register_coco_instances, register_shapes_datasets
from detrkit.evaluation import COCOEvaluator, inference_on_dataset
from detrkit.structures import Boxes, Instances

CATEGORIES = [{"id": 1, "name": "cat"}, {"id": 5, "name": "dog"}, {"id": 9, "name": "bird"}]
DATASET_ID_TO_CONTIGUOUS = {1: 0, 5: 1, 9: 2}
CLASS_NAMES = ["cat", "dog", "bird"]
IMAGES = [
    {"id": 1, "width": 100, "height": 100, "file_name": "1.png"},
    {"id": 2, "width": 200, "height": 200, "file_name": "2.png"},
    {"id": 3, "width": 80, "height": 60, "file_name": "3.png"},  # no objects
    {"id": 4, "width": 150, "height": 150, "file_name": "4.png"},
]
# (image id, dataset category id, XYWH box): small, medium and large objects.
GT_OBJECTS = [
    (1, 1, [10, 10, 30, 30]),
    (1, 5, [50, 50, 40, 40]),
    (2, 9, [0, 0, 100, 120]),
    (2, 1, [120, 120, 20, 20]),
    (4, 5, [5, 5, 60, 60]),
    (4, 9, [100, 100, 10, 10]),
    (4, 1, [20, 80, 100, 60]),
]
# image id -> detections (XYXY box, score, contiguous class); class 2 (bird) is never predicted.
DETECTIONS = {
    1: [([11, 10, 41, 41], 0.9, 0), ([50, 52, 90, 90], 0.8, 1), ([0, 0, 20, 20], 0.3, 1)],
    2: [([118, 121, 139, 141], 0.6, 0), ([10, 10, 90, 110], 0.7, 0)],
    3: [([5, 5, 40, 40], 0.5, 1)],
    4: [([8, 6, 62, 70], 0.75, 1), ([20, 80, 120, 140], 0.85, 0)],
}
SUMMARY_KEYS = ["AP", "AP50", "AP75", "APs", "APm", "APl", "AR@1", "AR@10", "AR@100", "ARs@100", "ARm@100"]
SUMMARY_KEYS.append("ARl@100")


@pytest.fixture
def gt_json(tmp_path):
    annotations = [
        {"id": i + 1, "image_id": img, "category_id": cat, "bbox": box, "area": box[2] * box[3], "iscrowd": 0}
        for i, (img, cat, box) in enumerate(GT_OBJECTS)
    ]
    path = tmp_path / "gt.json"
    path.write_text(json.dumps({"images": IMAGES, "annotations": annotations, "categories": CATEGORIES}))
    return path


@pytest.fixture
def dataset_name(gt_json):
    name = f"eval_test_{uuid.uuid4().hex}"
    MetadataCatalog.get(name).set(
        json_file=str(gt_json),
        thing_dataset_id_to_contiguous_id=DATASET_ID_TO_CONTIGUOUS,
        thing_classes=CLASS_NAMES,
    )
    return name


def _model_io(detections: dict) -> tuple[list[dict], list[dict]]:
    """Input dicts and model outputs (Instances in original image coordinates) for every image."""
    inputs, outputs = [], []
    for image in IMAGES:
        dets = detections.get(image["id"], [])
        instances = Instances(
            (image["height"], image["width"]),
            pred_boxes=Boxes(torch.tensor([d[0] for d in dets], dtype=torch.float32).reshape(-1, 4)),
            scores=torch.tensor([d[1] for d in dets], dtype=torch.float32),
            pred_classes=torch.tensor([d[2] for d in dets], dtype=torch.int64),
        )
        inputs.append({"image_id": image["id"], "height": image["height"], "width": image["width"]})
        outputs.append({"instances": instances})
    return inputs, outputs


def _evaluate(name: str, detections: dict, **kwargs) -> dict:
    evaluator = COCOEvaluator(name, **kwargs)
    evaluator.reset()
    inputs, outputs = _model_io(detections)
    for i in range(len(inputs)):
        evaluator.process(inputs[i : i + 1], outputs[i : i + 1])
    return evaluator.evaluate()


def _reference_results(detections: dict) -> list[dict]:
    """The detections in COCO result format, converted by hand (XYXY -> XYWH, contiguous -> dataset id)."""
    contiguous_to_dataset = {0: 1, 1: 5, 2: 9}
    return [
        {
            "image_id": image_id,
            "category_id": contiguous_to_dataset[cls],
            "bbox": [x0, y0, x1 - x0, y1 - y0],
            "score": score,
        }
        for image_id, dets in detections.items()
        for (x0, y0, x1, y1), score, cls in dets
    ]


def _cocoeval_stats(gt_json, results: list[dict], cat_ids: list[int] | None = None) -> list[float]:
    """pycocotools' 12 summary numbers in percent, computed directly."""
    with contextlib.redirect_stdout(io.StringIO()):
        coco_gt = COCO(str(gt_json))
        coco_eval = COCOeval(coco_gt, coco_gt.loadRes(results), "bbox")
        if cat_ids is not None:
            coco_eval.params.catIds = cat_ids
        coco_eval.evaluate()
        coco_eval.accumulate()
        coco_eval.summarize()
    return [float(s) * 100 if s >= 0 else math.nan for s in coco_eval.stats]


def test_metrics_equal_pycocotools(gt_json, dataset_name):
    results = _evaluate(dataset_name, DETECTIONS)
    reference = _reference_results(DETECTIONS)
    stats = _cocoeval_stats(gt_json, reference)

    bbox = results["bbox"]
    assert set(bbox) == set(SUMMARY_KEYS) | {"AP-cat", "AP-dog", "AP-bird"}
    assert [bbox[k] for k in SUMMARY_KEYS] == pytest.approx(stats, nan_ok=True)
    for name, category in (("cat", 1), ("dog", 5), ("bird", 9)):
        assert bbox[f"AP-{name}"] == pytest.approx(_cocoeval_stats(gt_json, reference, [category])[0])
    assert bbox["AP-bird"] == 0.0  # ground truth but no prediction
    assert 0 < bbox["AP"] < 100  # a non-trivial case: false positives, the empty image, an imperfect box


def test_perfect_detections_score_100(dataset_name):
    perfect = {}
    for image_id, category, (x, y, w, h) in GT_OBJECTS:
        perfect.setdefault(image_id, []).append(
            ([x, y, x + w, y + h], 1.0, DATASET_ID_TO_CONTIGUOUS[category])
        )
    bbox = _evaluate(dataset_name, perfect)["bbox"]
    for key in ["AP", "AP50", "AP75", "APs", "APm", "APl", "AR@100", "AP-cat", "AP-dog", "AP-bird"]:
        assert bbox[key] == pytest.approx(100.0), key


def test_writes_results_json(tmp_path, dataset_name):
    output_dir = tmp_path / "out"
    _evaluate(dataset_name, DETECTIONS, output_dir=str(output_dir))
    written = json.loads((output_dir / "coco_instances_results.json").read_text())
    key = lambda r: (r["image_id"], r["score"])  # noqa: E731
    expected = sorted(_reference_results(DETECTIONS), key=key)
    assert len(written) == len(expected)
    for got, want in zip(sorted(written, key=key), expected, strict=True):
        assert got["image_id"] == want["image_id"] and got["category_id"] == want["category_id"]
        assert got["bbox"] == pytest.approx(want["bbox"]) and got["score"] == pytest.approx(want["score"])
    per_image = torch.load(output_dir / "instances_predictions.pth", weights_only=False)
    assert [p["image_id"] for p in per_image] == [1, 2, 3, 4]


def test_max_dets_per_image_limits_detections_per_image_and_category(gt_json, dataset_name):
    bbox = _evaluate(dataset_name, DETECTIONS, max_dets_per_image=1)["bbox"]
    # COCOeval keeps the best `maxDet` detections of each (image, category): filter them by hand.
    top1 = {}
    for result in _reference_results(DETECTIONS):
        best = top1.get((result["image_id"], result["category_id"]))
        if best is None or result["score"] > best["score"]:
            top1[(result["image_id"], result["category_id"])] = result
    assert bbox["AP"] == pytest.approx(_cocoeval_stats(gt_json, list(top1.values()))[0])
    assert bbox["AR@1"] == pytest.approx(_cocoeval_stats(gt_json, _reference_results(DETECTIONS))[6])
    assert bbox["AR@10"] == pytest.approx(_cocoeval_stats(gt_json, _reference_results(DETECTIONS))[7])
    assert {"ARs@1", "ARm@1", "ARl@1"} <= bbox.keys() and "AR@100" not in bbox


def test_no_detections_gives_nan_metrics(dataset_name, caplog):
    with caplog.at_level(logging.WARNING):
        results = _evaluate(dataset_name, {})
    assert set(results["bbox"]) == set(SUMMARY_KEYS)
    assert all(math.isnan(v) for v in results["bbox"].values())
    assert "No predictions from the model" in caplog.text


def test_no_processed_images_returns_empty(dataset_name, caplog):
    evaluator = COCOEvaluator(dataset_name)
    evaluator.reset()
    with caplog.at_level(logging.WARNING):
        assert evaluator.evaluate() == {}
    assert "Did not receive valid predictions" in caplog.text


def test_bad_inputs_have_clear_errors(tmp_path, dataset_name):
    with pytest.raises(ValueError, match="unsupported task.*segm"):
        COCOEvaluator(dataset_name, tasks=("bbox", "segm"))
    with pytest.raises(ValueError, match="max_dets_per_image must be >= 1, got 0"):
        COCOEvaluator(dataset_name, max_dets_per_image=0)
    no_json = f"eval_test_{uuid.uuid4().hex}"
    MetadataCatalog.get(no_json).set(thing_classes=CLASS_NAMES)
    with pytest.raises(ValueError, match=f"'{no_json}' has no 'json_file'"):
        COCOEvaluator(no_json)
    with pytest.raises(ValueError, match="image 3 has class 7, but dataset .* has 3 classes"):
        _evaluate(dataset_name, {3: [([0, 0, 10, 10], 0.5, 7)]})
    evaluator = COCOEvaluator(dataset_name)
    with pytest.raises(ValueError, match="no 'image_id'"):
        evaluator.process([{"height": 10, "width": 10}], _model_io(DETECTIONS)[1][:1])


def test_inference_on_dataset_with_coco_evaluator(dataset_name):
    inputs, outputs = _model_io(DETECTIONS)
    by_image = {i["image_id"]: o for i, o in zip(inputs, outputs, strict=True)}
    batches = [inputs[:3], inputs[3:]]

    class ReplayModel(torch.nn.Module):
        def forward(self, batch):
            return [by_image[d["image_id"]] for d in batch]

    results = inference_on_dataset(ReplayModel(), batches, COCOEvaluator(dataset_name))
    assert results == _evaluate(dataset_name, DETECTIONS)


def _distributed_worker(rank: int, world_size: int, init_file: str, name: str, out_dir: str) -> None:
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=world_size)
    try:
        evaluator = COCOEvaluator(name, distributed=True)
        evaluator.reset()
        inputs, outputs = _model_io(DETECTIONS)
        for i in range(rank, len(inputs), world_size):  # each process sees a share of the images
            evaluator.process(inputs[i : i + 1], outputs[i : i + 1])
        results = evaluator.evaluate()
        with open(f"{out_dir}/rank{rank}.json", "w") as f:
            json.dump(results, f)
    finally:
        dist.destroy_process_group()


def test_two_processes_equal_one(tmp_path, dataset_name):
    # fork: the children inherit the registered metadata and start in well under a second.
    mp.start_processes(
        _distributed_worker,
        args=(2, str(tmp_path / "rendezvous"), dataset_name, str(tmp_path)),
        nprocs=2,
        start_method="fork",
    )
    main = json.loads((tmp_path / "rank0.json").read_text())
    assert json.loads((tmp_path / "rank1.json").read_text()) == {}
    single = _evaluate(dataset_name, DETECTIONS)
    assert main.keys() == single.keys() == {"bbox"}
    assert main["bbox"].keys() == single["bbox"].keys()
    for key, value in single["bbox"].items():
        assert main["bbox"][key] == pytest.approx(value, nan_ok=True), key


def test_a_generated_dataset_is_materialised_for_its_json(tmp_path):
    name = f"shapes_eval_{uuid.uuid4().hex}"
    register_shapes_datasets(root=str(tmp_path), splits={name: (5, 3)}, image_size=64)
    json_file = MetadataCatalog.get(name).json_file
    assert not os.path.exists(json_file)
    evaluator = COCOEvaluator(name)
    assert os.path.exists(json_file)
    evaluator.reset()
    assert evaluator.evaluate() == {}


def test_a_missing_json_file_is_named(tmp_path):
    name = f"missing_{uuid.uuid4().hex}"
    MetadataCatalog.get(name).set(json_file=str(tmp_path / "nope.json"))
    with pytest.raises(FileNotFoundError, match="nope.json"):
        COCOEvaluator(name)


def test_evaluator_built_before_the_dataset_is_loaded_reads_the_id_mapping_at_evaluation(tmp_path):
    # detectron2's tutorial order: evaluator first, then the loader loads the dataset, which is when
    # register_coco_instances' dataset sets thing_dataset_id_to_contiguous_id (sorted ids 1, 7, 90 -> 0, 1, 2)
    categories = [{"id": 90, "name": "zebra"}, {"id": 1, "name": "ant"}, {"id": 7, "name": "cow"}]
    images = [{"id": i, "width": 100, "height": 80, "file_name": f"{i}.png"} for i in (1, 2)]
    objects = [
        (1, 90, [10, 10, 30, 40]),
        (1, 1, [50, 20, 40, 30]),
        (2, 7, [5, 5, 60, 50]),
        (2, 90, [70, 40, 20, 30]),
    ]
    annotations = [
        {"id": k + 1, "image_id": img, "category_id": cat, "bbox": box, "area": box[2] * box[3], "iscrowd": 0}
        for k, (img, cat, box) in enumerate(objects)
    ]
    json_file = tmp_path / "gt.json"
    json_file.write_text(json.dumps({"images": images, "annotations": annotations, "categories": categories}))
    name = f"late_mapping_{uuid.uuid4().hex}"
    register_coco_instances(name, {}, str(json_file), str(tmp_path))

    evaluator = COCOEvaluator(name, distributed=False)
    assert "thing_dataset_id_to_contiguous_id" not in vars(MetadataCatalog.get(name))  # not read yet (lazy)
    dataset = DatasetCatalog.get(name)
    evaluator.reset()
    for record in dataset:  # perfect predictions: the ground truth with the loader's contiguous classes
        boxes = [[x, y, x + w, y + h] for x, y, w, h in (a["bbox"] for a in record["annotations"])]
        instances = Instances(
            (80, 100),
            pred_boxes=Boxes(torch.tensor(boxes)),
            scores=torch.ones(len(boxes)),
            pred_classes=torch.tensor([a["category_id"] for a in record["annotations"]]),
        )
        evaluator.process([{"image_id": record["image_id"]}], [{"instances": instances}])
    bbox = evaluator.evaluate()["bbox"]
    assert bbox["AP"] == pytest.approx(100.0)
    assert {k: v for k, v in bbox.items() if k.startswith("AP-")} == pytest.approx(
        {"AP-ant": 100.0, "AP-cow": 100.0, "AP-zebra": 100.0}
    )
