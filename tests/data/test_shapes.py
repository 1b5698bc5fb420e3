"""The synthetic shapes dataset: determinism, tight boxes, COCO validity, registration and the cache."""

import contextlib
import io
import json
import os
import uuid

import numpy as np
import pytest
from PIL import Image
from pycocotools.coco import COCO

from detrkit.data import DatasetCatalog, MetadataCatalog, generate_shapes_dataset, register_shapes_datasets
from detrkit.data import shapes as shapes_module
from detrkit.data.datasets import datasets_root
from detrkit.data.shapes import SHAPE_CLASSES, render_shapes_image, shapes_cache_root

SIZE = 96
# pycocotools' mask decoding under numpy 2
pytestmark = pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning")


def _files(root):
    out = {}
    for folder, _, names in os.walk(root):
        for name in names:
            path = os.path.join(folder, name)
            out[os.path.relpath(path, root)] = open(path, "rb").read()
    return out


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    root = tmp_path_factory.mktemp("shapes")
    json_file = generate_shapes_dataset(str(root), num_images=12, seed=7, image_size=SIZE, min_size=6)
    with contextlib.redirect_stdout(io.StringIO()):
        coco = COCO(json_file)
    return root, coco


def test_same_seed_same_bytes_other_seed_differs(dataset, tmp_path):
    root, _ = dataset
    again = generate_shapes_dataset(
        str(tmp_path / "again"), num_images=12, seed=7, image_size=SIZE, min_size=6
    )
    assert _files(os.path.dirname(again)) == _files(root)
    other = generate_shapes_dataset(
        str(tmp_path / "other"), num_images=12, seed=8, image_size=SIZE, min_size=6
    )
    other_files = _files(os.path.dirname(other))
    assert other_files.keys() == _files(root).keys()
    assert all(other_files[k] != v for k, v in _files(root).items())


def test_json_is_valid_coco_with_the_declared_classes(dataset):
    _, coco = dataset
    assert [c["name"] for c in coco.loadCats(coco.getCatIds())] == list(SHAPE_CLASSES)
    assert len(coco.getImgIds()) == 12
    for img in coco.loadImgs(coco.getImgIds()):
        assert (img["height"], img["width"]) == (SIZE, SIZE)
    assert len(coco.getAnnIds()) > 0 and {a["category_id"] for a in coco.loadAnns(coco.getAnnIds())} <= {
        1,
        2,
        3,
    }


def test_boxes_are_tight_around_the_drawn_shape(dataset):
    root, coco = dataset
    for img in coco.loadImgs(coco.getImgIds()):
        pixels = np.asarray(Image.open(os.path.join(root, "images", img["file_name"])))
        for ann in coco.loadAnns(coco.getAnnIds(imgIds=img["id"])):
            x, y, w, h = ann["bbox"]
            mask = coco.annToMask(ann).astype(bool)  # the segmentation, rasterised by pycocotools
            ys, xs = np.nonzero(mask)
            assert (xs.min(), ys.min(), xs.max() + 1, ys.max() + 1) == (x, y, x + w, y + h)
            assert mask.sum() == ann["area"]
            # the shape's colour, read in the box centre (inside every shape); the pixels of that colour
            # around the box are exactly those of the box's extent
            color = pixels[y + h // 2, x + w // 2]
            y0, x0 = max(y - 1, 0), max(x - 1, 0)
            window = np.all(pixels[y0 : y + h + 1, x0 : x + w + 1] == color, axis=-1)
            wy, wx = np.nonzero(window)
            assert (wx.min() + x0, wy.min() + y0, wx.max() + x0 + 1, wy.max() + y0 + 1) == (
                x,
                y,
                x + w,
                y + h,
            )
            assert window.sum() == ann["area"]


def test_sizes_counts_and_empty_images():
    objects = [render_shapes_image(seed=1, index=i, image_size=128)[1] for i in range(60)]
    counts = [len(o) for o in objects]
    sides = [max(obj["bbox"][2:]) for o in objects for obj in o]
    assert 0 in counts and max(counts) >= 6
    assert min(sides) <= 10 and max(sides) >= 48  # from ~8 px to about half the image
    assert {obj["category"] for o in objects for obj in o} == {0, 1, 2}


def test_registration_generates_on_first_load_and_reuses_the_cache(tmp_path, monkeypatch):
    name = f"shapes_test_{uuid.uuid4().hex}"
    register_shapes_datasets(str(tmp_path), {name: (3, 4)}, image_size=64)
    meta = MetadataCatalog.get(name)
    assert meta.thing_classes == list(SHAPE_CLASSES) and meta.evaluator_type == "coco"
    assert not os.path.exists(meta.json_file)  # nothing generated at registration
    dicts = DatasetCatalog.get(name)
    assert len(dicts) == 4 and os.path.isfile(meta.json_file)
    assert dicts[0]["file_name"].startswith(meta.image_root)
    assert json.load(open(meta.json_file))["images"][0]["width"] == 64

    def fail(*args, **kwargs):
        raise AssertionError("the cached dataset should have been reused")

    monkeypatch.setattr(shapes_module, "generate_shapes_dataset", fail)
    assert DatasetCatalog.get(name) == dicts


def test_interrupted_generation_leaves_no_cache(tmp_path, monkeypatch):
    name = f"shapes_test_{uuid.uuid4().hex}"
    register_shapes_datasets(str(tmp_path), {name: (3, 4)}, image_size=64)
    real = shapes_module.generate_shapes_dataset

    def interrupted(root, *args, **kwargs):
        real(root, *args, **kwargs)
        raise KeyboardInterrupt

    monkeypatch.setattr(shapes_module, "generate_shapes_dataset", interrupted)
    with pytest.raises(KeyboardInterrupt):
        DatasetCatalog.get(name)
    assert os.listdir(tmp_path) == []  # neither a partial dataset nor a staging folder
    monkeypatch.setattr(shapes_module, "generate_shapes_dataset", real)
    assert len(DatasetCatalog.get(name)) == 4


def test_default_splits_are_registered_in_the_cache_root():
    for name in ("shapes_train", "shapes_val"):
        assert MetadataCatalog.get(name).json_file.startswith(shapes_cache_root())
    assert "n3000" in MetadataCatalog.get("shapes_train").json_file
    assert "n300-" in MetadataCatalog.get("shapes_val").json_file


def test_bad_generation_arguments(tmp_path):
    with pytest.raises(ValueError, match="num_images=0"):
        generate_shapes_dataset(str(tmp_path), num_images=0, seed=0)


@pytest.mark.parametrize(
    "env, expected",
    [
        ({"DETRKIT_DATASETS": "/a", "DETECTRON2_DATASETS": "/b"}, "/a/shapes"),
        ({"DETECTRON2_DATASETS": "/b"}, "/b/shapes"),
        ({"DETRKIT_DATASETS": "", "DETECTRON2_DATASETS": "/b"}, "/b/shapes"),
        ({}, os.path.join(os.path.expanduser("~"), ".cache", "detrkit", "shapes")),
    ],
)
def test_one_datasets_root_rule(monkeypatch, env, expected):
    for variable in ("DETRKIT_DATASETS", "DETECTRON2_DATASETS"):
        monkeypatch.delenv(variable, raising=False)
    for variable, value in env.items():
        monkeypatch.setenv(variable, value)
    assert shapes_cache_root() == expected
    assert datasets_root() == (os.path.dirname(expected) if env.get("DETECTRON2_DATASETS") else "datasets")
