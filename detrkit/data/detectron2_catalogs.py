"""detrkit's datasets in detectron2's catalogs too, when detectron2 is importable: a dataset registered in
:data:`~detrkit.data.DatasetCatalog` is registered under the same name in ``detectron2.data.DatasetCatalog``
(the same loading function), and detectron2's ``MetadataCatalog`` holds the very same :class:`Metadata`
object, so detectron2's ``COCOEvaluator``, ``build_detection_*_loader`` and hooks find them by name and both
libraries always see the same class names and id mapping. Names detectron2 registers itself (its builtin
COCO splits) keep detectron2's entries."""

import importlib.util
from collections.abc import Callable
from functools import cache

__all__ = ["mirror_to_detectron2"]


@cache
def _detectron2_catalogs():
    """detectron2's ``(DatasetCatalog, MetadataCatalog)``, or None when detectron2 is not installed."""
    if importlib.util.find_spec("detectron2") is None:
        return None
    from detectron2.data import DatasetCatalog, MetadataCatalog

    return DatasetCatalog, MetadataCatalog


def mirror_to_detectron2(name: str, func: Callable[[], list[dict]], metadata) -> bool:
    """Registers ``func`` and ``metadata`` (detrkit's :class:`Metadata` of ``name``) in detectron2's
    catalogs. Returns whether it did (False: detectron2 is not installed, or has ``name`` already)."""
    catalogs = _detectron2_catalogs()
    if catalogs is None:
        return False
    datasets, metadata_catalog = catalogs
    if name in datasets:
        return False
    datasets.register(name, func)
    metadata_catalog[name] = metadata
    return True
