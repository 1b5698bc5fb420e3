"""Images that cannot be used: a truncated file is named (and skipped, counted, in training when asked), an
extreme aspect ratio resizes to at least one pixel per side, and a failing augmentation names the file."""

import logging

import numpy as np
import pytest
import torch
from PIL import Image

from detrkit.data import CorruptImageError, DetrDatasetMapper, MapDataset
from detrkit.data.transforms import Augmentation, ResizeShortestEdge
from detrkit.structures import BoxMode


def write_image(path, height: int, width: int) -> str:
    pixels = np.random.default_rng(0).integers(0, 256, (height, width, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(path)
    return str(path)


def record(file_name: str, height: int, width: int) -> dict:
    box = {"bbox": [0, 0, width / 2, height / 2], "bbox_mode": BoxMode.XYWH_ABS, "category_id": 0}
    return {"file_name": file_name, "image_id": 1, "height": height, "width": width, "annotations": [box]}


@pytest.fixture
def truncated_jpeg(tmp_path) -> str:
    good = write_image(tmp_path / "good.jpg", 64, 64)
    data = open(good, "rb").read()
    path = tmp_path / "truncated.jpg"
    path.write_bytes(data[: len(data) // 2])
    return str(path)


def test_a_truncated_image_is_named(truncated_jpeg):
    mapper = DetrDatasetMapper([ResizeShortestEdge(32)], None)
    with pytest.raises(
        CorruptImageError, match=f"Cannot read image file {truncated_jpeg}: cannot decode it: .*truncated"
    ) as error:
        mapper(record(truncated_jpeg, 64, 64))
    assert error.value.file_name == truncated_jpeg and "truncated" in error.value.reason


def test_training_skips_corrupt_images_when_asked_and_counts_them(tmp_path, truncated_jpeg, caplog):
    good = write_image(tmp_path / "good.png", 64, 64)
    mapper = DetrDatasetMapper([ResizeShortestEdge(32)], None, skip_corrupt_images=True)
    with caplog.at_level(logging.WARNING):
        assert [mapper(record(truncated_jpeg, 64, 64)) for _ in range(3)] == [None] * 3
    assert "skipped (3 corrupt images so far)" in caplog.text and truncated_jpeg in caplog.text
    # the loader's dataset replaces a skipped item by another one
    dataset = MapDataset([record(truncated_jpeg, 64, 64), record(good, 64, 64)], mapper)
    assert dataset[0]["file_name"] == good
    with pytest.raises(ValueError, match="skip_corrupt_images is for training"):
        DetrDatasetMapper([ResizeShortestEdge(32)], None, is_train=False, skip_corrupt_images=True)


def test_an_extreme_aspect_ratio_resizes_to_at_least_one_pixel(tmp_path):
    # 2 x 3000 with detrex's test resize (short side 800, long side at most 1333): 0.89 x 1333 by the formula
    path = write_image(tmp_path / "strip.png", 2, 3000)
    mapped = DetrDatasetMapper([ResizeShortestEdge(800, max_size=1333)], None, is_train=False)(
        record(path, 2, 3000)
    )
    assert mapped["image"].shape == (3, 1, 1333)
    assert (mapped["height"], mapped["width"]) == (2, 3000)


class Failing(Augmentation):
    def get_params(self, height, width):
        return None

    def apply(self, image, boxes, params):
        raise RuntimeError("Input and output sizes should be greater than 0")


def test_a_failing_augmentation_names_the_image(tmp_path):
    path = write_image(tmp_path / "img.png", 8, 12)
    with pytest.raises(
        ValueError, match=rf"{path} \(height=8, width=12\): the augmentations .* failed: Input"
    ):
        DetrDatasetMapper([Failing()], None, is_train=False)(record(path, 8, 12))
    assert torch.is_tensor(DetrDatasetMapper([], None, is_train=False)(record(path, 8, 12))["image"])
