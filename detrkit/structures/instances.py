"""Per-image instance annotations or predictions, with detectron2's ``Instances`` semantics."""

import itertools
from typing import Any

import torch

from detrkit.structures.boxes import known_true

__all__ = ["Instances"]


class Instances:
    """A list of instances of one image: fields (``gt_boxes``, ``gt_classes``, ``pred_boxes``, ``scores``,
    ...) that all have the same length, read and written as attributes.

    Args:
        image_size: ``(height, width)`` of the image.
        **kwargs: initial fields.
    """

    def __init__(self, image_size: tuple[int, int], **kwargs: Any):
        self._image_size = image_size
        self._fields: dict[str, Any] = {}
        for name, value in kwargs.items():
            self.set(name, value)

    @property
    def image_size(self) -> tuple[int, int]:
        return self._image_size

    def __setattr__(self, name: str, value: Any) -> None:
        if name.startswith("_"):
            super().__setattr__(name, value)
        else:
            self.set(name, value)

    def __getattr__(self, name: str) -> Any:
        if name == "_fields" or name not in self._fields:
            raise AttributeError(f"Cannot find field '{name}' in the given Instances!")
        return self._fields[name]

    def set(self, name: str, value: Any) -> None:
        if self._fields:
            # a length that depends on data (under torch.export) is checked at run time, not in Python
            length, expected = _length(value), self.__len__()
            if known_true(length != expected):
                raise ValueError(
                    f"Adding a field '{name}' of length {length} to Instances of length {expected}"
                )
            if isinstance(length, torch.SymInt) or isinstance(expected, torch.SymInt):
                torch._check(length == expected)
        self._fields[name] = value

    def has(self, name: str) -> bool:
        return name in self._fields

    def remove(self, name: str) -> None:
        del self._fields[name]

    def get(self, name: str) -> Any:
        return self._fields[name]

    def get_fields(self) -> dict[str, Any]:
        return self._fields

    def to(self, *args: Any, **kwargs: Any) -> "Instances":
        """A copy with every field that has ``.to`` moved/cast."""
        result = Instances(self._image_size)
        for name, value in self._fields.items():
            result.set(name, value.to(*args, **kwargs) if hasattr(value, "to") else value)
        return result

    def __getitem__(self, item) -> "Instances":
        if isinstance(item, int):
            if item >= len(self) or item < -len(self):
                raise IndexError("Instances index out of range!")
            item = slice(item, None, len(self)) if item == -1 else slice(item, item + 1)
        result = Instances(self._image_size)
        for name, value in self._fields.items():
            result.set(name, value[item])
        return result

    def __len__(self) -> int:
        for value in self._fields.values():
            return _length(value)
        raise NotImplementedError("Empty Instances does not support __len__!")

    def __iter__(self):
        raise NotImplementedError("`Instances` object is not iterable!")

    @staticmethod
    def cat(instance_lists: list["Instances"]) -> "Instances":
        """Concatenates instances of one image size field by field."""
        if not instance_lists:
            raise ValueError("Instances.cat needs at least one Instances")
        if len(instance_lists) == 1:
            return instance_lists[0]
        image_size = instance_lists[0].image_size
        if any(i.image_size != image_size for i in instance_lists):
            raise ValueError("Instances.cat: all Instances must have the same image_size")
        result = Instances(image_size)
        for name in instance_lists[0]._fields:
            values = [i.get(name) for i in instance_lists]
            first = values[0]
            if isinstance(first, torch.Tensor):
                value = torch.cat(values, dim=0)
            elif isinstance(first, list):
                value = list(itertools.chain(*values))
            elif hasattr(type(first), "cat"):
                value = type(first).cat(values)
            else:
                raise ValueError(f"Instances.cat: unsupported field type {type(first)} for '{name}'")
            result.set(name, value)
        return result

    def __repr__(self) -> str:
        fields = ", ".join(f"{k}: {v}" for k, v in self._fields.items())
        count = len(self) if self._fields else 0
        height, width = self._image_size
        return (
            f"Instances(num_instances={count}, image_height={height}, image_width={width}, fields=[{fields}])"
        )


def _length(value: Any) -> int:
    """``len(value)`` as ``value.__len__()`` returns it: a tensor's (or ``Boxes``') first size stays symbolic
    under ``torch.export``, where ``len`` would have to make it a Python int."""
    return value.__len__()
