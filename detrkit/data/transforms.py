"""The DETR augmentations, with detectron2's names, arguments and random sampling, applied to an image and
its boxes together by ``torchvision.transforms.v2``.

Each augmentation draws its parameters from torch's global RNG (which the data loader seeds differently in
every worker, reproducibly given its seed) in :meth:`Augmentation.get_params`, and transforms a
``tv_tensors.Image`` ``(C, H, W)`` and ``tv_tensors.BoundingBoxes`` ``(N, 4)`` XYXY in
:meth:`Augmentation.apply`.
"""

import sys
from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import Any

import torch
from torchvision import tv_tensors
from torchvision.transforms.v2 import InterpolationMode
from torchvision.transforms.v2 import functional as F

__all__ = ["Augmentation", "RandomCrop", "RandomFlip", "ResizeShortestEdge", "apply_augmentations"]


def _uniform() -> float:
    """A float drawn uniformly from ``[0, 1)``."""
    return float(torch.rand(()))


def _randint(low: int, high: int) -> int:
    """An int drawn uniformly from ``[low, high]``."""
    return int(torch.randint(low, high + 1, ()))


class Augmentation(ABC):
    """A random transform of an image and its boxes: ``aug(image, boxes) -> (image, boxes)``."""

    @abstractmethod
    def get_params(self, height: int, width: int) -> Any:
        """Draws the random parameters for an image of ``height x width``."""

    @abstractmethod
    def apply(
        self, image: tv_tensors.Image, boxes: tv_tensors.BoundingBoxes, params: Any
    ) -> tuple[tv_tensors.Image, tv_tensors.BoundingBoxes]:
        """Transforms ``image`` ``(C, H, W)`` and ``boxes`` ``(N, 4)`` with the parameters ``params``."""

    def __call__(
        self, image: tv_tensors.Image, boxes: tv_tensors.BoundingBoxes
    ) -> tuple[tv_tensors.Image, tv_tensors.BoundingBoxes]:
        height, width = image.shape[-2:]
        return self.apply(image, boxes, self.get_params(height, width))

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in vars(self).items())
        return f"{type(self).__name__}({args})"


def apply_augmentations(
    augmentations: Sequence[Augmentation], image: tv_tensors.Image, boxes: tv_tensors.BoundingBoxes
) -> tuple[tv_tensors.Image, tv_tensors.BoundingBoxes]:
    """Applies ``augmentations`` in order."""
    for aug in augmentations:
        image, boxes = aug(image, boxes)
    return image, boxes


class RandomFlip(Augmentation):
    """Flips horizontally (or vertically) with probability ``prob``."""

    def __init__(self, prob: float = 0.5, *, horizontal: bool = True, vertical: bool = False):
        if horizontal == vertical:
            raise ValueError("RandomFlip: set exactly one of horizontal and vertical")
        if not 0.0 <= prob <= 1.0:
            raise ValueError(f"RandomFlip: prob must be in [0, 1], got {prob}")
        self.prob = prob
        self.horizontal = horizontal
        self.vertical = vertical

    def get_params(self, height: int, width: int) -> bool:
        return _uniform() < self.prob

    def apply(self, image, boxes, params: bool):
        if not params:
            return image, boxes
        flip = F.horizontal_flip if self.horizontal else F.vertical_flip
        return flip(image), flip(boxes)


class ResizeShortestEdge(Augmentation):
    """Resizes so that the shorter side is a sampled ``short_edge_length`` and the longer one at most
    ``max_size`` (aspect ratio kept).

    Args:
        short_edge_length: with ``sample_style="range"`` a ``(min, max)`` pair (a size is drawn uniformly
            from ``[min, max]``) or one int; with ``"choice"`` the sizes to choose from.
        max_size: upper bound of the longer side.
        sample_style: ``"range"`` or ``"choice"``.
        interp: interpolation of the image (a ``torchvision`` ``InterpolationMode`` or a PIL constant).
    """

    def __init__(
        self,
        short_edge_length: int | Sequence[int],
        max_size: int = sys.maxsize,
        sample_style: str = "range",
        interp: InterpolationMode | int = InterpolationMode.BILINEAR,
    ):
        if sample_style not in ("range", "choice"):
            raise ValueError(
                f"ResizeShortestEdge: sample_style must be 'range' or 'choice', got {sample_style!r}"
            )
        if isinstance(short_edge_length, int):
            short_edge_length = (short_edge_length, short_edge_length)
        short_edge_length = tuple(int(s) for s in short_edge_length)
        if sample_style == "range" and len(short_edge_length) != 2:
            raise ValueError(
                "ResizeShortestEdge: sample_style='range' needs (min, max), "
                f"got short_edge_length={short_edge_length}"
            )
        if not short_edge_length or min(short_edge_length) < 0:
            raise ValueError(f"ResizeShortestEdge: invalid short_edge_length={short_edge_length}")
        self.short_edge_length = short_edge_length
        self.max_size = max_size
        self.sample_style = sample_style
        self.interp = interp

    @staticmethod
    def get_output_shape(oldh: int, oldw: int, short_edge_length: int, max_size: int) -> tuple[int, int]:
        """``(newh, neww)``: the shorter side scaled to ``short_edge_length``, then both scaled down if the
        longer side exceeds ``max_size``; rounded half up, as detectron2, but at least 1 pixel (an extreme
        aspect ratio such as 1 x 3000 would otherwise give a 0-pixel side that no resize accepts)."""
        scale = short_edge_length / min(oldh, oldw)
        newh, neww = oldh * scale, oldw * scale
        if max(newh, neww) > max_size:
            shrink = max_size / max(newh, neww)
            newh, neww = newh * shrink, neww * shrink
        return max(1, int(newh + 0.5)), max(1, int(neww + 0.5))

    def get_params(self, height: int, width: int) -> tuple[int, int] | None:
        if self.sample_style == "range":
            size = _randint(*self.short_edge_length)
        else:
            size = self.short_edge_length[_randint(0, len(self.short_edge_length) - 1)]
        if size == 0:
            return None
        return self.get_output_shape(height, width, size, self.max_size)

    def apply(self, image, boxes, params: tuple[int, int] | None):
        if params is None:
            return image, boxes
        size = list(params)
        return F.resize(image, size, interpolation=self.interp, antialias=True), F.resize(boxes, size)


_CROP_TYPES = ("relative_range", "relative", "absolute", "absolute_range")


class RandomCrop(Augmentation):
    """Crops a random window whose size depends on ``crop_type``:

    - ``"relative"``: ``(H * crop_size[0], W * crop_size[1])``;
    - ``"relative_range"``: uniform in ``[crop_size[i], 1]`` times the image size;
    - ``"absolute"``: ``crop_size`` (capped by the image size);
    - ``"absolute_range"``: height and width drawn from ``[crop_size[0], crop_size[1]]`` (capped by the
      image).

    Boxes are shifted and clipped to the window; boxes outside it become empty (the mapper drops them).
    """

    def __init__(self, crop_type: str, crop_size: Sequence[float]):
        if crop_type not in _CROP_TYPES:
            raise ValueError(f"RandomCrop: crop_type must be one of {_CROP_TYPES}, got {crop_type!r}")
        crop_size = tuple(crop_size)
        if len(crop_size) != 2:
            raise ValueError(f"RandomCrop: crop_size must have 2 values, got {crop_size}")
        if crop_type.startswith("relative") and not all(0 < v <= 1 for v in crop_size):
            raise ValueError(
                f"RandomCrop: crop_type={crop_type!r} needs crop_size in (0, 1], got {crop_size}"
            )
        if crop_type.startswith("absolute") and not all(v > 0 for v in crop_size):
            raise ValueError(f"RandomCrop: crop_type={crop_type!r} needs positive crop_size, got {crop_size}")
        if crop_type == "absolute_range" and crop_size[0] > crop_size[1]:
            raise ValueError(
                f"RandomCrop: absolute_range needs crop_size[0] <= crop_size[1], got {crop_size}"
            )
        self.crop_type = crop_type
        self.crop_size = crop_size

    def get_crop_size(self, height: int, width: int) -> tuple[int, int]:
        """``(crop_height, crop_width)`` drawn for an image of ``height x width``."""
        lo, hi = self.crop_size
        if self.crop_type == "relative":
            return int(height * lo + 0.5), int(width * hi + 0.5)
        if self.crop_type == "relative_range":
            ch, cw = (v + _uniform() * (1 - v) for v in self.crop_size)
            return int(height * ch + 0.5), int(width * cw + 0.5)
        if self.crop_type == "absolute":
            return min(int(lo), height), min(int(hi), width)
        crop_h = _randint(min(height, int(lo)), min(height, int(hi)))
        crop_w = _randint(min(width, int(lo)), min(width, int(hi)))
        return crop_h, crop_w

    def get_params(self, height: int, width: int) -> tuple[int, int, int, int]:
        """``(top, left, crop_height, crop_width)``."""
        crop_h, crop_w = self.get_crop_size(height, width)
        return _randint(0, height - crop_h), _randint(0, width - crop_w), crop_h, crop_w

    def apply(self, image, boxes, params: tuple[int, int, int, int]):
        top, left, crop_h, crop_w = params
        return F.crop(image, top, left, crop_h, crop_w), F.crop(boxes, top, left, crop_h, crop_w)
