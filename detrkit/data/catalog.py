"""Global registries of datasets and their metadata, with detectron2's names and semantics.

``DatasetCatalog`` maps a dataset name to a function returning its dataset dicts (``list[dict]``);
``MetadataCatalog`` maps a dataset name to a :class:`Metadata` (class names, id mapping, json file, ...).
"""

import copy
from collections import UserDict
from collections.abc import Callable
from types import SimpleNamespace
from typing import Any

__all__ = ["DatasetCatalog", "Metadata", "MetadataCatalog"]


class _DatasetCatalog(UserDict):
    """Dataset name -> a function that takes no argument and returns the dataset dicts."""

    def register(self, name: str, func: Callable[[], list[dict]]) -> None:
        """Registers ``func`` under ``name``; it must return the same dicts every time it is called."""
        if not callable(func):
            raise TypeError(
                f"DatasetCatalog.register('{name}', ...) needs a callable, got {type(func).__name__}"
            )
        if name in self:
            raise AssertionError(f"Dataset '{name}' is already registered!")
        self[name] = func

    def get(self, name: str) -> list[dict]:
        """Calls the function registered under ``name`` and returns its dataset dicts."""
        try:
            func = self[name]
        except KeyError as e:
            raise KeyError(
                f"Dataset '{name}' is not registered! Available datasets are: {', '.join(self.keys())}"
            ) from e
        return func()

    def list(self) -> list[str]:
        """Names of all registered datasets."""
        return list(self.keys())

    def remove(self, name: str) -> None:
        """Unregisters ``name`` (alias of ``pop``)."""
        self.pop(name)

    def __str__(self) -> str:
        return f"DatasetCatalog(registered datasets: {', '.join(self.keys())})"

    __repr__ = __str__


class Metadata(SimpleNamespace):
    """Attributes of one dataset (``thing_classes``, ``thing_dataset_id_to_contiguous_id``, ``json_file``,
    ``image_root``, ``evaluator_type``, ...). An attribute, once set, cannot be changed to a different value
    (``AssertionError``, as in detectron2), so every part of a program sees the same metadata."""

    name: str = "N/A"

    def __getattr__(self, key: str) -> Any:
        if len(self.__dict__) > 1:
            raise AttributeError(
                f"Attribute '{key}' does not exist in the metadata of dataset '{self.name}'. "
                f"Available keys are {list(self.__dict__)}."
            )
        raise AttributeError(
            f"Attribute '{key}' does not exist in the metadata of dataset '{self.name}': metadata is empty."
        )

    def __setattr__(self, key: str, value: Any) -> None:
        if key in self.__dict__:
            old = self.__dict__[key]
            if not _equal(old, value):
                raise AssertionError(
                    f"Attribute '{key}' in the metadata of '{self.name}' cannot be set to a different "
                    f"value!\n{old} != {value}"
                )
            return
        super().__setattr__(key, value)

    def as_dict(self) -> dict:
        """A shallow copy of all metadata as a dict."""
        return copy.copy(self.__dict__)

    def set(self, **kwargs: Any) -> "Metadata":
        """Sets several attributes at once; returns ``self``."""
        for key, value in kwargs.items():
            setattr(self, key, value)
        return self

    def get(self, key: str, default: Any = None) -> Any:
        """The attribute ``key``, or ``default`` when it is not set."""
        return self.__dict__.get(key, default)


def _equal(a: Any, b: Any) -> bool:
    """Equality that also works for values whose ``==`` is element-wise (arrays)."""
    result = a == b
    return bool(result.all()) if hasattr(result, "all") else bool(result)


class _MetadataCatalog(UserDict):
    """Dataset name -> its :class:`Metadata`, created empty on first access and the same object after."""

    def get(self, name: str) -> Metadata:
        """The metadata of ``name`` (created empty if none exists yet)."""
        if not name:
            raise ValueError("MetadataCatalog.get needs a non-empty dataset name")
        metadata = self.data.get(name)
        if metadata is None:
            metadata = self.data[name] = Metadata(name=name)
        return metadata

    def list(self) -> list[str]:
        """Names of all datasets that have metadata."""
        return list(self.keys())

    def remove(self, name: str) -> None:
        """Removes the metadata of ``name`` (alias of ``pop``)."""
        self.pop(name)

    def __str__(self) -> str:
        return f"MetadataCatalog(registered metadata: {', '.join(self.keys())})"

    __repr__ = __str__


DatasetCatalog = _DatasetCatalog()
MetadataCatalog = _MetadataCatalog()
