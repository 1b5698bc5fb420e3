"""detrkit's datasets appear in detectron2's catalogs when detectron2 is importable: checked here against a
stand-in ``detectron2.data`` with detectron2's catalog semantics (tests/integration uses the real one), in a
subprocess so that this process's catalogs stay as they are."""

import subprocess
import sys
import textwrap

STAND_IN = """
from collections import UserDict


class _DatasetCatalog(UserDict):
    def register(self, name, func):
        assert name not in self, name
        self[name] = func


class _MetadataCatalog(UserDict):
    def get(self, name):
        return super().get(name) or self.setdefault(name, {"created_by": "detectron2"})


DatasetCatalog = _DatasetCatalog()
DatasetCatalog.register("coco_2017_val", lambda: ["detectron2's own"])
MetadataCatalog = _MetadataCatalog()
"""

CHECK = """
import detrkit.data as data
from detectron2.data import DatasetCatalog as D2Datasets, MetadataCatalog as D2Metadata

# the builtin shapes splits, registered when detrkit.data was imported, are there with the same objects
assert D2Datasets["shapes_val"] is data.DatasetCatalog["shapes_val"]
assert D2Metadata.get("shapes_val") is data.MetadataCatalog.get("shapes_val")
assert D2Metadata.get("shapes_val").thing_classes == data.MetadataCatalog.get("shapes_val").thing_classes
# a name detectron2 registered itself keeps detectron2's entry
assert D2Datasets["coco_2017_val"]() == ["detectron2's own"]
# a dataset registered later, and metadata set after registration, are seen through the shared object
data.DatasetCatalog.register("mine", lambda: [{"file_name": "a.png"}])
data.MetadataCatalog.get("mine").set(thing_classes=["tree"])
assert D2Datasets["mine"]() == [{"file_name": "a.png"}]
assert D2Metadata.get("mine").thing_classes == ["tree"]
print("mirrored")
"""


def test_datasets_and_metadata_are_shared_with_detectron2(tmp_path):
    package = tmp_path / "detectron2"
    (package / "data").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "data" / "__init__.py").write_text(textwrap.dedent(STAND_IN))
    result = subprocess.run(
        [sys.executable, "-c", CHECK],
        cwd=tmp_path,
        env={"PYTHONPATH": str(tmp_path), "PATH": "/usr/bin:/bin", "HOME": str(tmp_path)},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "mirrored" in result.stdout
