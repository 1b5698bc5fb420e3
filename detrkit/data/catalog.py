"""Global registries of datasets and their metadata, with detectron2's names and semantics.

``DatasetCatalog`` maps a dataset name to a function returning its dataset dicts (``list[dict]``);
``MetadataCatalog`` maps a dataset name to a :class:`Metadata` (class names, id mapping, json file, ...).
"""

import copy
from collections import UserDict
from collections.abc import Callable
from types import SimpleNamespace
from typing import Any

from detrkit.data.detectron2_catalogs import mirror_to_detectron2

__all__ = ["DatasetCatalog", "Metadata", "MetadataCatalog"]


class _DatasetCatalog(UserDict):
    """Dataset name -> a function that takes no argument and returns the dataset dicts."""

    def register(self, name: str, func: Callable[[], list[dict]]) -> None:
        """Registers ``func`` under ``name``; it must return the same dicts every time it is called. With
        detectron2 installed, also in detectron2's catalogs (:mod:`detrkit.data.detectron2_catalogs`)."""
        if not callable(func):
            raise TypeError(
                f"DatasetCatalog.register('{name}', ...) needs a callable, got {type(func).__name__}"
            )
        if name in self:
            raise AssertionError(f"Dataset '{name}' is already registered!")
        self[name] = func
        mirror_to_detectron2(name, func, MetadataCatalog.get(name))

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
    (``AssertionError``, as in detectron2), so every part of a program sees the same metadata.

    Attributes may be lazy (:meth:`set_lazy`): computed on first access, e.g. the class names of a COCO json
    that is read only when someone asks for them."""

    name: str = "N/A"

    def __getattr__(self, key: str) -> Any:
        if self._resolve_lazy(key):
            return self.__dict__[key]
        if len(self._public_keys()) > 1:
            raise AttributeError(
                f"Attribute '{key}' does not exist in the metadata of dataset '{self.name}'. "
                f"Available keys are {self._public_keys()}."
            )
        raise AttributeError(
            f"Attribute '{key}' does not exist in the metadata of dataset '{self.name}': metadata is empty."
        )

    def __setattr__(self, key: str, value: Any) -> None:
        self.__dict__.get(_LAZY, {}).pop(key, None)  # an explicit value replaces a pending lazy one
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
        """A shallow copy of all metadata as a dict (lazy attributes computed)."""
        for key in list(self.__dict__.get(_LAZY, {})):
            self._resolve_lazy(key)
        return {key: copy.copy(self.__dict__[key]) for key in self._public_keys()}

    def set(self, **kwargs: Any) -> "Metadata":
        """Sets several attributes at once; returns ``self``."""
        for key, value in kwargs.items():
            setattr(self, key, value)
        return self

    def get(self, key: str, default: Any = None) -> Any:
        """The attribute ``key``, or ``default`` when it is not set."""
        if key not in self.__dict__:
            self._resolve_lazy(key)
        return self.__dict__.get(key, default)

    def set_lazy(self, keys: tuple[str, ...], loader: Callable[[], dict]) -> "Metadata":
        """Makes ``keys`` (those not set yet) lazy: the first access of any of them calls ``loader()`` once,
        which returns a dict holding all of them, and sets them. Returns ``self``."""
        pending = self.__dict__.setdefault(_LAZY, {})
        for key in keys:
            if key not in self.__dict__:
                pending[key] = loader
        return self

    def _resolve_lazy(self, key: str) -> bool:
        """Computes the lazy attribute ``key`` (and those of the same loader); False if it is not lazy."""
        pending = self.__dict__.get(_LAZY, {})
        loader = pending.get(key)
        if loader is None:
            return False
        values = loader()
        for lazy_key in [k for k, f in pending.items() if f is loader]:
            if lazy_key not in values:
                raise KeyError(f"the metadata loader of dataset '{self.name}' did not return '{lazy_key}'")
            setattr(self, lazy_key, values[lazy_key])
        if not pending:
            del self.__dict__[_LAZY]
        return True

    def _public_keys(self) -> list[str]:
        return [key for key in self.__dict__ if key != _LAZY]


_LAZY = "_lazy_attributes"  # the key, in a Metadata's __dict__, of its pending lazy attributes


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
