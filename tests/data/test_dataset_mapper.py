"""DetrDatasetMapper: output format, hand-computed boxes for flip/resize/crop, branch choice, bad input."""

import logging

import numpy as np
import pytest
import torch
from PIL import Image

from detrkit.data import DetrDatasetMapper
from detrkit.data.transforms import RandomCrop, RandomFlip, ResizeShortestEdge
from detrkit.structures import BoxMode

H, W = 40, 60


@pytest.fixture
def image_file(tmp_path):
    pixels = np.random.default_rng(0).integers(0, 256, (H, W, 3), dtype=np.uint8)
    path = tmp_path / "img.png"
    Image.fromarray(pixels).save(path)
    return str(path), torch.from_numpy(pixels).permute(2, 0, 1)


def _dict(file_name, annotations):
    return {"file_name": file_name, "image_id": 7, "height": H, "width": W, "annotations": annotations}


def _ann(bbox, category_id=1, iscrowd=0, mode=BoxMode.XYWH_ABS):
    return {"bbox": bbox, "bbox_mode": mode, "category_id": category_id, "iscrowd": iscrowd}


def test_flip_and_resize_branch(image_file):
    path, pixels = image_file
    mapper = DetrDatasetMapper([RandomFlip(prob=1.0), ResizeShortestEdge(20)], None)
    anns = [
        _ann([10, 5, 20, 20], 1),
        _ann([0, 0, 5, 5], 2, iscrowd=1),
        _ann([40, 0, 60, 20], 0, mode=BoxMode.XYXY_ABS),
    ]
    out = mapper(_dict(path, anns))
    assert (out["file_name"], out["image_id"], out["height"], out["width"]) == (path, 7, H, W)
    assert "annotations" not in out
    assert out["image"].dtype == torch.uint8 and out["image"].shape == (3, 20, 30)
    instances = out["instances"]
    assert instances.image_size == (20, 30)
    # xyxy [10, 5, 30, 25] -> flipped [30, 5, 50, 25] -> halved; [40, 0, 60, 20] -> [0, 0, 20, 20] -> halved
    expected = torch.tensor([[15.0, 2.5, 25.0, 12.5], [0.0, 0.0, 10.0, 10.0]])
    assert torch.allclose(instances.gt_boxes.tensor, expected)
    assert instances.gt_classes.dtype == torch.int64 and instances.gt_classes.tolist() == [1, 0]

    flipped = DetrDatasetMapper([RandomFlip(prob=1.0)], None)(_dict(path, []))
    assert torch.equal(flipped["image"], pixels.flip(-1))
    bgr = DetrDatasetMapper([], None, img_format="BGR")(_dict(path, []))
    assert torch.equal(bgr["image"], pixels.flip(0))


def test_crop_branch_boxes(image_file, caplog):
    path, pixels = image_file
    crop = RandomCrop("absolute", (20, 20))
    mapper = DetrDatasetMapper([ResizeShortestEdge(20)], [crop])
    boxes = [[10, 5, 30, 25], [50, 30, 60, 40], [0, 0, 60, 40]]
    anns = [_ann(b, i, mode=BoxMode.XYXY_ABS) for i, b in enumerate(boxes)]
    seed = next(s for s in range(100) if torch.rand((), generator=torch.Generator().manual_seed(s)) <= 0.5)
    torch.manual_seed(seed)  # the seed takes the crop branch: replay its draws to know the window
    torch.rand(())
    top, left, crop_h, crop_w = crop.get_params(H, W)
    torch.manual_seed(seed)
    with caplog.at_level(logging.INFO, logger="detrkit.data.dataset_mapper"):
        out = mapper(_dict(path, anns))
    assert torch.equal(out["image"], pixels[:, top : top + 20, left : left + 20])
    expected, classes = [], []
    for i, (x1, y1, x2, y2) in enumerate(boxes):
        clipped = [
            min(max(x1 - left, 0), 20),
            min(max(y1 - top, 0), 20),
            min(max(x2 - left, 0), 20),
            min(max(y2 - top, 0), 20),
        ]
        if clipped[2] > clipped[0] and clipped[3] > clipped[1]:
            expected.append(clipped)
            classes.append(i)
    assert out["instances"].gt_boxes.tensor.tolist() == expected
    assert out["instances"].gt_classes.tolist() == classes
    assert len(expected) == 2  # this seed's window leaves the second box outside: dropped and counted
    assert "1 boxes empty after augmentation/clipping were dropped" in caplog.text


def test_branch_probability_and_eval_mode(image_file):
    path, _ = image_file
    plain, crop = [ResizeShortestEdge(20)], [ResizeShortestEdge(30)]  # the output size tells the branch
    torch.manual_seed(0)
    train = DetrDatasetMapper(plain, crop, is_train=True)
    heights = [train(_dict(path, []))["image"].shape[1] for _ in range(200)]
    assert set(heights) == {20, 30} and 70 < heights.count(30) < 130
    evaluation = DetrDatasetMapper(plain, crop, is_train=False)
    out = evaluation(_dict(path, [_ann([1, 1, 2, 2])]))
    assert out["image"].shape[1] == 20 and len(out["instances"]) == 1


def test_no_objects_gives_empty_instances(image_file):
    path, _ = image_file
    mapper = DetrDatasetMapper([ResizeShortestEdge(20)], None)
    out = mapper(_dict(path, [_ann([0, 0, 5, 5], iscrowd=1)]))
    assert len(out["instances"]) == 0 and out["instances"].gt_boxes.tensor.shape == (0, 4)
    assert out["instances"].gt_classes.shape == (0,)
    unannotated = {"file_name": path, "image_id": 1, "height": H, "width": W}
    assert "instances" not in mapper(unannotated)


def test_boxes_outside_the_image_are_clipped_and_counted(image_file, caplog):
    path, _ = image_file
    mapper = DetrDatasetMapper([], None)
    anns = [_ann([-5, -5, 20, 20]), _ann([100, 100, 5, 5]), _ann([50, 30, 20, 20])]
    with caplog.at_level(logging.INFO, logger="detrkit.data.dataset_mapper"):
        out = mapper(_dict(path, anns))
    # the second box lies entirely outside: clipped to an empty box and dropped
    assert out["instances"].gt_boxes.tensor.tolist() == [[0.0, 0.0, 15.0, 15.0], [50.0, 30.0, 60.0, 40.0]]
    assert f"3 annotation boxes outside their image were clipped so far (latest in {path})" in caplog.text
    assert "1 boxes empty after augmentation/clipping were dropped" in caplog.text


def test_missing_image_and_size_mismatch(image_file, tmp_path):
    path, _ = image_file
    mapper = DetrDatasetMapper([], None)
    missing = str(tmp_path / "nowhere.png")
    with pytest.raises(FileNotFoundError, match=f"Image file not found: {missing}"):
        mapper(_dict(missing, []))
    wrong = dict(_dict(path, []), height=41)
    with pytest.raises(
        ValueError, match=f"{path}: the dataset says height=41, width=60, but the image is height=40"
    ):
        mapper(wrong)
    not_an_image = tmp_path / "text.png"
    not_an_image.write_text("hello")
    with pytest.raises(ValueError, match=f"Cannot read image file {not_an_image}"):
        mapper(_dict(str(not_an_image), []))


def test_bad_mapper_arguments():
    with pytest.raises(ValueError, match="mask_on=True is not supported"):
        DetrDatasetMapper([], None, mask_on=True)
    with pytest.raises(ValueError, match="img_format must be 'RGB' or 'BGR', got 'L'"):
        DetrDatasetMapper([], None, img_format="L")


def test_dropped_boxes_are_summarised_at_powers_of_ten(image_file, caplog):
    path, _ = image_file
    mapper = DetrDatasetMapper([], None)
    # per image: one box inside, one entirely outside (clipped to empty, dropped)
    anns = [_ann([1, 1, 5, 5]), _ann([100, 100, 5, 5])]
    with caplog.at_level(logging.INFO, logger="detrkit.data.dataset_mapper"):
        for _ in range(12):
            mapper(_dict(path, anns))
    dropped = [r.getMessage() for r in caplog.records if "were dropped" in r.getMessage()]
    # 12 dropped boxes: summaries at the 1st and the 10th only, with the share of the boxes mapped
    assert len(dropped) == 2
    assert "1 boxes empty after augmentation/clipping were dropped so far" in dropped[0]
    assert "50.0% of the 2 boxes this process mapped; next summary at 10" in dropped[0]
    assert "10 boxes empty after augmentation/clipping were dropped so far" in dropped[1]
    assert "50.0% of the 20 boxes this process mapped; next summary at 100" in dropped[1]
