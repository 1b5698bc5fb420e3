"""Train/test loaders: batch sizes per rank, determinism given a seed, aspect-ratio grouping, coverage."""

import itertools
import uuid

import numpy as np
import pytest
import torch
from omegaconf import OmegaConf
from PIL import Image

from detrkit.data import (
    DatasetCatalog,
    DatasetFromList,
    DetrDatasetMapper,
    build_detection_test_loader,
    build_detection_train_loader,
)
from detrkit.data.transforms import RandomCrop, RandomFlip, ResizeShortestEdge
from detrkit.structures import BoxMode
from detrkit.utils import comm


@pytest.fixture(scope="module")
def dataset_dicts(tmp_path_factory):
    root = tmp_path_factory.mktemp("images")
    rng = np.random.default_rng(0)
    dicts = []
    for i in range(6):
        height, width = (24, 32) if i % 2 else (32, 24)
        path = root / f"{i}.png"
        Image.fromarray(rng.integers(0, 256, (height, width, 3), dtype=np.uint8)).save(path)
        dicts.append(
            {
                "file_name": str(path),
                "image_id": i,
                "height": height,
                "width": width,
                "annotations": [
                    {"bbox": [2, 3, 10, 12], "bbox_mode": BoxMode.XYWH_ABS, "category_id": i % 3}
                ],
            }
        )
    return dicts


def _mapper():
    return DetrDatasetMapper(
        [RandomFlip(), ResizeShortestEdge((16, 20, 24), sample_style="choice")],
        [RandomCrop("absolute_range", (12, 20)), ResizeShortestEdge((16, 20), sample_style="choice")],
    )


def _summary(batches):
    return [
        [(d["image_id"], tuple(d["image"].shape), d["instances"].gt_boxes.tensor.tolist()) for d in batch]
        for batch in batches
    ]


def test_train_loader_batches_and_determinism(dataset_dicts):
    def first_batches(seed, num_workers=0):
        loader = build_detection_train_loader(
            dataset_dicts,
            mapper=_mapper(),
            total_batch_size=4,
            aspect_ratio_grouping=False,
            seed=seed,
            num_workers=num_workers,
        )
        return _summary(itertools.islice(loader, 4))

    batches = first_batches(seed=5)
    assert [len(b) for b in batches] == [4, 4, 4, 4]  # infinite: more images than the dataset holds
    ids = [d[0] for b in batches for d in b]
    assert sorted(ids[:6]) == list(range(6))  # the first pass is a permutation
    assert first_batches(seed=5) == batches
    assert first_batches(seed=6) != batches
    assert first_batches(seed=5, num_workers=1) == first_batches(seed=5, num_workers=1)


def test_train_loader_batch_per_rank(monkeypatch, dataset_dicts):
    monkeypatch.setattr(comm, "get_world_size", lambda: 2)
    loader = build_detection_train_loader(
        dataset_dicts, mapper=None, total_batch_size=4, aspect_ratio_grouping=False, seed=0
    )
    assert len(next(iter(loader))) == 2
    with pytest.raises(
        ValueError, match="Total batch size \\(5\\) must be divisible by the number of processes \\(2\\)"
    ):
        build_detection_train_loader(dataset_dicts, mapper=None, total_batch_size=5, seed=0)


def test_aspect_ratio_grouping(dataset_dicts):
    loader = build_detection_train_loader(dataset_dicts, mapper=None, total_batch_size=2, seed=0)
    for batch in itertools.islice(loader, 10):
        assert len(batch) == 2
        assert len({d["width"] > d["height"] for d in batch}) == 1


def test_test_loader_visits_every_image_once_in_order(dataset_dicts):
    mapper = DetrDatasetMapper([ResizeShortestEdge(16)], None, is_train=False)
    loader = build_detection_test_loader(dataset_dicts, mapper=mapper, batch_size=4)
    batches = list(loader)
    assert [len(b) for b in batches] == [4, 2]
    assert [d["image_id"] for b in batches for d in b] == list(range(6))
    assert all(min(d["image"].shape[1:]) == 16 for b in batches for d in b)


def test_loaders_accept_dataset_names(dataset_dicts):
    name = f"build_test_{uuid.uuid4().hex}"
    DatasetCatalog.register(name, lambda: dataset_dicts)
    assert len(list(build_detection_test_loader(name, mapper=None))) == 6
    names = OmegaConf.create([name])  # as a config passes them
    batch = next(iter(build_detection_train_loader(names, mapper=None, total_batch_size=3, seed=0)))
    assert len(batch) == 3


def test_dataset_from_list_returns_copies(dataset_dicts):
    dataset = DatasetFromList(dataset_dicts)
    assert len(dataset) == 6 and dataset[3] == dataset_dicts[3]
    item = dataset[0]
    item["annotations"].clear()
    assert dataset[0]["annotations"] == dataset_dicts[0]["annotations"]
    with pytest.raises(ValueError, match="the list of items is empty"):
        DatasetFromList([])
    assert torch.equal(
        torch.tensor([d["image_id"] for d in DatasetFromList(dataset_dicts, serialize=False)]),
        torch.arange(6),
    )
