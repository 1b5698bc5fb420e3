"""COCO json loading, registration, the builtin splits and each bad-input case's message."""

import json
import logging
import os
import uuid

import pytest

from detrkit.data import (
    DatasetCatalog,
    MetadataCatalog,
    get_detection_dataset_dicts,
    load_coco_json,
    register_coco_instances,
)
from detrkit.data.datasets.builtin import COCO_SPLITS
from detrkit.structures import BoxMode

CATEGORIES = [{"id": 9, "name": "nine"}, {"id": 2, "name": "two"}, {"id": 5, "name": "five"}]  # unsorted ids
IMAGES = [
    {"id": 20, "file_name": "b.png", "height": 30, "width": 40},
    {"id": 10, "file_name": "a.png", "height": 50, "width": 60},
    {"id": 30, "file_name": "empty.png", "height": 10, "width": 10},
]
ANNOTATIONS = [
    {"id": 1, "image_id": 10, "category_id": 9, "bbox": [1, 2, 3, 4], "iscrowd": 0},
    {"id": 2, "image_id": 10, "category_id": 2, "bbox": [5.5, 6, 7, 8]},
    {"id": 3, "image_id": 20, "category_id": 5, "bbox": [0, 0, 10, 10], "iscrowd": 1},
]


def _write(tmp_path, data=None, text=None):
    path = tmp_path / f"{uuid.uuid4().hex}.json"
    path.write_text(text if text is not None else json.dumps(data))
    return str(path)


def _dataset(**overrides):
    data = {"images": IMAGES, "annotations": ANNOTATIONS, "categories": CATEGORIES}
    data.update(overrides)
    return data


def test_load_coco_json_contiguous_ids_and_fields(tmp_path):
    name = f"coco_test_{uuid.uuid4().hex}"
    dicts = load_coco_json(_write(tmp_path, _dataset()), "/imgs", dataset_name=name)
    assert [d["image_id"] for d in dicts] == [10, 20, 30]
    first = dicts[0]
    assert first["file_name"] == os.path.join("/imgs", "a.png")
    assert (first["height"], first["width"]) == (50, 60)
    # sorted dataset ids 2, 5, 9 -> 0, 1, 2
    assert first["annotations"] == [
        {"bbox": [1.0, 2.0, 3.0, 4.0], "bbox_mode": BoxMode.XYWH_ABS, "category_id": 2, "iscrowd": 0},
        {"bbox": [5.5, 6.0, 7.0, 8.0], "bbox_mode": BoxMode.XYWH_ABS, "category_id": 0, "iscrowd": 0},
    ]
    assert dicts[1]["annotations"][0]["category_id"] == 1 and dicts[1]["annotations"][0]["iscrowd"] == 1
    assert dicts[2]["annotations"] == []
    meta = MetadataCatalog.get(name)
    assert meta.thing_classes == ["two", "five", "nine"]
    assert meta.thing_dataset_id_to_contiguous_id == {2: 0, 5: 1, 9: 2}


def test_register_and_filter_empty(tmp_path):
    name = f"coco_test_{uuid.uuid4().hex}"
    json_file = _write(tmp_path, _dataset())
    register_coco_instances(name, {"author": "test"}, json_file, "/imgs")
    meta = MetadataCatalog.get(name)
    assert (meta.json_file, meta.image_root, meta.evaluator_type, meta.author) == (
        json_file,
        "/imgs",
        "coco",
        "test",
    )
    assert [d["image_id"] for d in get_detection_dataset_dicts(name, filter_empty=False)] == [10, 20, 30]
    # image 20 has only a crowd box and image 30 none: both dropped
    assert [d["image_id"] for d in get_detection_dataset_dicts([name], filter_empty=True)] == [10]
    assert MetadataCatalog.get(name).thing_classes == ["two", "five", "nine"]  # set by the load


def test_builtin_coco_splits_are_registered_lazily():
    for name, (image_root, json_file) in COCO_SPLITS.items():
        meta = MetadataCatalog.get(name)
        assert meta.json_file.endswith(json_file) and meta.image_root.endswith(image_root)
        assert meta.evaluator_type == "coco"
    assert COCO_SPLITS["coco_2017_val"][1] == "coco/annotations/instances_val2017.json"
    meta = MetadataCatalog.get("coco_2017_val")
    mapping = meta.thing_dataset_id_to_contiguous_id
    assert (
        len(meta.thing_classes) == 80
        and meta.thing_classes[0] == "person"
        and meta.thing_classes[-1] == "toothbrush"
    )
    assert sorted(mapping) == [i for i in range(1, 91) if i not in (12, 26, 29, 30, 45, 66, 68, 69, 71, 83)]
    assert list(mapping.values()) == list(range(80))
    if not os.path.exists(meta.json_file):
        with pytest.raises(FileNotFoundError, match="instances_val2017.json"):
            DatasetCatalog.get("coco_2017_val")


def test_malformed_json_names_file_and_position(tmp_path):
    path = _write(tmp_path, text='{"images": [\n  {"id": 1,}\n]}')
    with pytest.raises(ValueError, match=f"{path}: malformed json at line 2, column 12"):
        load_coco_json(path, "/imgs")


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"images": [], "annotations": []}, "missing top-level key 'categories'"),
        (_dataset(images=[{"id": 1, "file_name": "a.png", "height": 5}]), "images\\[0\\] has no key 'width'"),
        (
            _dataset(annotations=[{"id": 4, "image_id": 10, "category_id": 9}]),
            "annotations\\[0\\] has no key 'bbox'",
        ),
        (
            _dataset(annotations=[{"id": 7, "image_id": 10, "category_id": 99, "bbox": [0, 0, 1, 1]}]),
            "annotation 7 has category_id 99, not in categories \\[2, 5, 9\\]",
        ),
        (
            _dataset(annotations=[{"id": 7, "image_id": 11, "category_id": 9, "bbox": [0, 0, 1, 1]}]),
            "annotation 7 has image_id 11, not in images",
        ),
        (_dataset(annotations=ANNOTATIONS + ANNOTATIONS[:1]), "annotations\\[3\\] repeats id 1"),
        (
            _dataset(annotations=[{"id": 7, "image_id": 10, "category_id": 9, "bbox": [0, 0, "w", 1]}]),
            "annotation 7 has bbox \\[0, 0, 'w', 1\\], expected 4 finite numbers",
        ),
    ],
)
def test_bad_json_content_names_file_and_field(tmp_path, data, message):
    path = _write(tmp_path, data)
    with pytest.raises(ValueError, match=f"{path}: {message}"):
        load_coco_json(path, "/imgs")


def test_non_positive_boxes_are_dropped_with_a_counted_warning(tmp_path, caplog):
    annotations = ANNOTATIONS + [
        {"id": 8, "image_id": 10, "category_id": 9, "bbox": [1, 1, 0, 5]},
        {"id": 9, "image_id": 20, "category_id": 9, "bbox": [1, 1, 5, -2]},
    ]
    path = _write(tmp_path, _dataset(annotations=annotations))
    with caplog.at_level(logging.WARNING, logger="detrkit.data.datasets.coco"):
        dicts = load_coco_json(path, "/imgs")
    assert [len(d["annotations"]) for d in dicts] == [2, 1, 0]
    assert f"{path}: dropped 2 annotations whose box has width or height <= 0" in caplog.text


def test_missing_image_files_are_reported_by_the_check_option(tmp_path):
    name = f"coco_test_{uuid.uuid4().hex}"
    (tmp_path / "a.png").write_bytes(b"")
    register_coco_instances(name, {}, _write(tmp_path, _dataset()), str(tmp_path))
    with pytest.raises(FileNotFoundError, match=f"2 of 3 image files of {name} are missing, e.g. .*b.png"):
        get_detection_dataset_dicts(name, filter_empty=False, check_image_files=True)


def test_inconsistent_classes_across_datasets(tmp_path):
    first, second = (f"coco_test_{uuid.uuid4().hex}" for _ in range(2))
    register_coco_instances(first, {}, _write(tmp_path, _dataset()), "/imgs")
    other = _dataset(
        categories=[{"id": 2, "name": "x"}, {"id": 5, "name": "five"}, {"id": 9, "name": "nine"}]
    )
    register_coco_instances(second, {}, _write(tmp_path, other), "/imgs")
    with pytest.raises(ValueError, match=f"'{first}' and '{second}' have different thing_classes"):
        get_detection_dataset_dicts([first, second])


def test_empty_dataset_is_an_error():
    name = f"coco_test_{uuid.uuid4().hex}"
    DatasetCatalog.register(name, list)
    with pytest.raises(ValueError, match=f"Dataset '{name}' is empty!"):
        get_detection_dataset_dicts(name)


def test_class_names_come_from_the_json_before_the_dataset_is_loaded(tmp_path):
    name = f"coco_test_{uuid.uuid4().hex}"
    json_file = _write(tmp_path, _dataset())
    register_coco_instances(name, {}, json_file, "/imgs")
    meta = MetadataCatalog.get(name)
    assert "thing_classes" not in vars(meta)  # nothing read at registration
    assert meta.thing_classes == ["two", "five", "nine"]  # categories sorted by id 2, 5, 9
    assert meta.get("thing_dataset_id_to_contiguous_id") == {2: 0, 5: 1, 9: 2}
    # the later full load sets the same values (a different one would raise)
    DatasetCatalog.get(name)
    assert meta.as_dict()["thing_classes"] == ["two", "five", "nine"]


def test_given_class_names_are_not_read_from_the_json(tmp_path):
    name = f"coco_test_{uuid.uuid4().hex}"
    register_coco_instances(name, {"thing_classes": ["a", "b", "c"]}, str(tmp_path / "absent.json"), "/imgs")
    assert MetadataCatalog.get(name).thing_classes == ["a", "b", "c"]
    with pytest.raises(FileNotFoundError, match="absent.json"):  # the id map is still read lazily
        MetadataCatalog.get(name).get("thing_dataset_id_to_contiguous_id")


def test_lazy_class_names_of_a_json_without_categories_name_the_file(tmp_path):
    name = f"coco_test_{uuid.uuid4().hex}"
    json_file = _write(tmp_path, {"images": [], "annotations": []})
    register_coco_instances(name, {}, json_file, "/imgs")
    with pytest.raises(ValueError, match=f"{json_file}: missing top-level key 'categories'"):
        MetadataCatalog.get(name).get("thing_classes")


def test_registering_the_same_dataset_twice_is_a_no_op_and_another_one_an_error(tmp_path):
    name = f"coco_test_{uuid.uuid4().hex}"
    json_file = _write(tmp_path, _dataset())
    register_coco_instances(name, {"author": "x"}, json_file, str(tmp_path / "images"))
    # the same arguments, with the paths spelt differently: the same dataset
    register_coco_instances(name, {"author": "x"}, json_file, str(tmp_path / "." / "images"))
    other = _write(tmp_path, _dataset())
    with pytest.raises(ValueError, match=f"dataset '{name}' is already registered, json_file='{json_file}'"):
        register_coco_instances(name, {"author": "x"}, other, str(tmp_path / "images"))
    with pytest.raises(ValueError, match="metadata=\\{'author': 'x'\\}; now .*metadata=\\{'author': 'y'\\}"):
        register_coco_instances(name, {"author": "y"}, json_file, str(tmp_path / "images"))
    with pytest.raises(ValueError, match="'shapes_val' is already registered, by another function"):
        register_coco_instances("shapes_val", {}, json_file, str(tmp_path / "images"))
    assert MetadataCatalog.get(name).json_file == json_file
