"""DatasetCatalog / MetadataCatalog registration, lookup and errors."""

import uuid

import pytest

from detrkit.data import DatasetCatalog, MetadataCatalog


def _name() -> str:
    return f"catalog_test_{uuid.uuid4().hex}"


def test_dataset_catalog_register_get_list_remove():
    name = _name()
    DatasetCatalog.register(name, lambda: [{"image_id": 1}])
    assert DatasetCatalog.get(name) == [{"image_id": 1}]
    assert name in DatasetCatalog.list()
    with pytest.raises(AssertionError, match=f"'{name}' is already registered"):
        DatasetCatalog.register(name, list)
    DatasetCatalog.remove(name)
    assert name not in DatasetCatalog.list()


def test_unknown_dataset_lists_the_registered_names():
    with pytest.raises(
        KeyError, match="'no_such_dataset' is not registered! Available datasets are: .*shapes_val"
    ):
        DatasetCatalog.get("no_such_dataset")


def test_register_needs_a_callable():
    with pytest.raises(TypeError, match="needs a callable, got list"):
        DatasetCatalog.register(_name(), [{"image_id": 1}])


def test_metadata_is_a_singleton_with_consistent_values():
    name = _name()
    meta = MetadataCatalog.get(name)
    assert MetadataCatalog.get(name) is meta
    meta.thing_classes = ["a", "b"]
    meta.set(thing_classes=["a", "b"], json_file="x.json")  # same value again: allowed
    assert MetadataCatalog.get(name).thing_classes == ["a", "b"]
    assert meta.get("json_file") == "x.json"
    assert meta.get("evaluator_type", "none") == "none"
    assert meta.as_dict() == {"name": name, "thing_classes": ["a", "b"], "json_file": "x.json"}
    with pytest.raises(AssertionError, match=f"'thing_classes' in the metadata of '{name}' cannot be set"):
        meta.thing_classes = ["a", "c"]
    with pytest.raises(
        AttributeError, match=f"'image_root' does not exist in the metadata of dataset '{name}'"
    ):
        _ = meta.image_root
    MetadataCatalog.remove(name)
    assert name not in MetadataCatalog.list()


def test_lazy_metadata_is_computed_once_on_first_access():
    calls = []

    def loader():
        calls.append(1)
        return {"thing_classes": ["a"], "thing_dataset_id_to_contiguous_id": {7: 0}}

    meta = MetadataCatalog.get(_name()).set(evaluator_type="coco")
    meta.set_lazy(("thing_classes", "thing_dataset_id_to_contiguous_id"), loader)
    assert meta.evaluator_type == "coco" and not calls
    assert meta.thing_classes == ["a"] and meta.thing_dataset_id_to_contiguous_id == {7: 0}
    assert len(calls) == 1
    assert meta.as_dict() == {
        "name": meta.name,
        "evaluator_type": "coco",
        "thing_classes": ["a"],
        "thing_dataset_id_to_contiguous_id": {7: 0},
    }
    with pytest.raises(AssertionError, match="cannot be set to a different value"):
        meta.thing_classes = ["b"]


def test_an_explicit_value_replaces_a_pending_lazy_one():
    meta = MetadataCatalog.get(_name())
    meta.set_lazy(("thing_classes",), lambda: {"thing_classes": ["lazy"]})
    meta.thing_classes = ["explicit"]
    assert meta.thing_classes == ["explicit"] and meta.as_dict()["thing_classes"] == ["explicit"]


def test_a_loader_that_misses_a_key_names_it():
    meta = MetadataCatalog.get(_name())
    meta.set_lazy(("thing_classes",), lambda: {})
    with pytest.raises(KeyError, match="did not return 'thing_classes'"):
        meta.get("thing_classes")
