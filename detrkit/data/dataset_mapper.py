"""``DetrDatasetMapper``: a dataset dict -> the model's input dict, with the DETR augmentations.

Output per image: ``{"file_name", "image_id", "height", "width"`` (original size), ``"image"``: uint8
``(3, H', W')`` tensor of the augmented image, ``"instances"``: ``Instances((H', W'), gt_boxes=Boxes (N, 4)
XYXY in augmented pixels, gt_classes=(N,) int64)}``. Crowd annotations are ignored, boxes are clipped to the
image and boxes that become empty are dropped; an image with no boxes gets an empty ``Instances``.
"""

import copy
import logging
import os
from collections.abc import Sequence

import numpy as np
import torch
from PIL import Image, ImageOps, UnidentifiedImageError
from torchvision import tv_tensors

from detrkit.data.transforms import Augmentation, apply_augmentations
from detrkit.structures import Boxes, BoxMode, Instances

__all__ = ["CorruptImageError", "DetrDatasetMapper", "check_image_size", "read_image"]

logger = logging.getLogger(__name__)

_MIN_BOX_SIDE = 1e-5  # detectron2's threshold for an empty box


class CorruptImageError(ValueError):
    """An image file that exists but cannot be decoded (unknown format, truncated or corrupt data).

    Attributes:
        file_name: the file.
        reason: why it cannot be read.
    """

    def __init__(self, file_name: str, reason: str):
        super().__init__(f"Cannot read image file {file_name}: {reason}")
        self.file_name = file_name
        self.reason = reason


def read_image(file_name: str, format: str = "RGB") -> torch.Tensor:
    """Reads an image file (EXIF orientation applied) as a uint8 ``(3, H, W)`` tensor in ``format``
    (``"RGB"`` or ``"BGR"``). Raises FileNotFoundError, or CorruptImageError naming the file when it cannot
    be decoded."""
    if format not in ("RGB", "BGR"):
        raise ValueError(f"read_image: format must be 'RGB' or 'BGR', got {format!r}")
    if not os.path.isfile(file_name):
        raise FileNotFoundError(f"Image file not found: {file_name}")
    try:
        with Image.open(file_name) as pil_image:
            array = np.asarray(ImageOps.exif_transpose(pil_image).convert("RGB"))
    except UnidentifiedImageError as e:
        raise CorruptImageError(file_name, "not a recognised image format") from e
    except (OSError, SyntaxError, ValueError) as e:  # PIL's errors for truncated or corrupt data
        raise CorruptImageError(file_name, f"cannot decode it: {e}") from e
    if format == "BGR":
        array = array[:, :, ::-1]
    return torch.from_numpy(np.ascontiguousarray(array.transpose(2, 0, 1)))


def check_image_size(dataset_dict: dict, image: torch.Tensor) -> None:
    """Raises ValueError naming the file if the dict's ``height``/``width`` differ from the ``(C, H, W)``
    image's; fills them in when absent."""
    height, width = image.shape[-2:]
    expected = (dataset_dict.get("height", height), dataset_dict.get("width", width))
    if expected != (height, width):
        raise ValueError(
            f"{dataset_dict['file_name']}: the dataset says height={expected[0]}, width={expected[1]}, "
            f"but the image is height={height}, width={width}"
        )
    dataset_dict["height"], dataset_dict["width"] = height, width


class _CountedLog:
    """Counts a recurring event among the boxes a mapper sees and logs one summary line when the running
    total reaches 1, 10, 100, ... events (a handful of lines per process over a whole training run), with
    the share of boxes it concerns."""

    def __init__(self, level: int, what: str):
        self.level = level
        self.what = what
        self.total = 0
        self.boxes = 0
        self._next_report = 1

    def add(self, count: int, num_boxes: int, file_name: str) -> None:
        """Records ``count`` events among ``num_boxes`` boxes of ``file_name``."""
        self.total += count
        self.boxes += num_boxes
        if count and self.total >= self._next_report:
            while self._next_report <= self.total:
                self._next_report *= 10
            logger.log(
                self.level,
                f"DetrDatasetMapper: {self.total} {self.what} so far (latest in {file_name}): "
                f"{100 * self.total / self.boxes:.1f}% of the {self.boxes} boxes this process mapped; "
                f"next summary at {self._next_report}",
            )


class DetrDatasetMapper:
    """Reads the image of a dataset dict and augments image and boxes together, as detrex's mapper.

    Args:
        augmentation: the augmentations of the plain branch.
        augmentation_with_crop: the augmentations of the crop branch, or None. In training, each image takes
            the plain branch with probability 0.5 and the crop branch otherwise.
        is_train: False for evaluation: only ``augmentation`` is used (never a random crop); annotations, when
            the dict has them, still become ``instances``.
        mask_on: must be False (detrkit handles boxes only).
        img_format: ``"RGB"`` or ``"BGR"``: channel order of ``"image"``.
        skip_corrupt_images: in training, an image file that cannot be decoded is skipped (the mapper returns
            None and the loader takes another image) with a warning naming it and counting the skipped ones;
            by default it raises CorruptImageError naming the file. Evaluation never skips (the metrics
            would silently cover fewer images).
    """

    def __init__(
        self,
        augmentation: Sequence[Augmentation],
        augmentation_with_crop: Sequence[Augmentation] | None,
        is_train: bool = True,
        mask_on: bool = False,
        img_format: str = "RGB",
        skip_corrupt_images: bool = False,
    ):
        if mask_on:
            raise ValueError("DetrDatasetMapper: mask_on=True is not supported, detrkit handles boxes only")
        if img_format not in ("RGB", "BGR"):
            raise ValueError(f"DetrDatasetMapper: img_format must be 'RGB' or 'BGR', got {img_format!r}")
        if skip_corrupt_images and not is_train:
            raise ValueError(
                "DetrDatasetMapper: skip_corrupt_images is for training; evaluation must read every image"
            )
        self.augmentation = list(augmentation)
        self.augmentation_with_crop = None if augmentation_with_crop is None else list(augmentation_with_crop)
        self.is_train = is_train
        self.mask_on = mask_on
        self.img_format = img_format
        self.skip_corrupt_images = skip_corrupt_images
        self._num_skipped = 0
        self._clipped = _CountedLog(logging.WARNING, "annotation boxes outside their image were clipped")
        self._dropped = _CountedLog(logging.INFO, "boxes empty after augmentation/clipping were dropped")
        logger.info(
            f"DetrDatasetMapper(is_train={is_train}): augmentation {self.augmentation}, "
            f"crop: {self.augmentation_with_crop}"
        )

    def _choose_augmentations(self) -> list[Augmentation]:
        if self.augmentation_with_crop is None or not self.is_train:
            return self.augmentation
        return self.augmentation if float(torch.rand(())) > 0.5 else self.augmentation_with_crop

    def __call__(self, dataset_dict: dict) -> dict | None:
        """Maps one dataset dict (see the module docstring for the output); None for a skipped corrupt
        image."""
        dataset_dict = copy.deepcopy(dataset_dict)
        file_name = dataset_dict["file_name"]
        try:
            image = read_image(file_name, self.img_format)
        except CorruptImageError as error:
            if not self.skip_corrupt_images:
                raise
            self._num_skipped += 1
            logger.warning(f"DetrDatasetMapper: skipped ({self._num_skipped} corrupt images so far): {error}")
            return None
        check_image_size(dataset_dict, image)
        annotations = dataset_dict.pop("annotations", None)
        boxes, classes = self._input_boxes(annotations or [], image.shape[-2:], file_name)

        augmentations = self._choose_augmentations()
        try:
            image, boxes = apply_augmentations(augmentations, tv_tensors.Image(image), boxes)
        except (RuntimeError, ValueError) as error:
            height, width = image.shape[-2:]
            raise ValueError(
                f"{file_name} (height={height}, width={width}): the augmentations {augmentations} "
                f"failed: {error}"
            ) from error
        dataset_dict["image"] = image.as_subclass(torch.Tensor).contiguous()
        if annotations is not None:
            dataset_dict["instances"] = self._instances(boxes, classes, file_name)
        return dataset_dict

    def _input_boxes(
        self, annotations: list[dict], image_size: tuple[int, int], file_name: str
    ) -> tuple[tv_tensors.BoundingBoxes, torch.Tensor]:
        """Non-crowd boxes ``(N, 4)`` XYXY clipped to the image (counted when clipping changed them) and
        their classes ``(N,)``."""
        annotations = [ann for ann in annotations if ann.get("iscrowd", 0) == 0]
        xyxy = torch.tensor(
            [BoxMode.convert(list(ann["bbox"]), ann["bbox_mode"], BoxMode.XYXY_ABS) for ann in annotations],
            dtype=torch.float32,
        ).reshape(-1, 4)
        height, width = image_size
        limits = torch.tensor([width, height, width, height], dtype=torch.float32)
        clipped = torch.minimum(xyxy.clamp(min=0), limits)
        self._clipped.add(int((clipped != xyxy).any(dim=1).sum()), len(xyxy), file_name)
        classes = torch.tensor([int(ann["category_id"]) for ann in annotations], dtype=torch.int64)
        boxes = tv_tensors.BoundingBoxes(clipped, format="XYXY", canvas_size=(height, width))
        return boxes, classes

    def _instances(self, boxes: tv_tensors.BoundingBoxes, classes: torch.Tensor, file_name: str) -> Instances:
        """Clips ``boxes`` to their canvas, drops the empty ones (counted) and wraps them in Instances."""
        height, width = boxes.canvas_size
        gt_boxes = Boxes(boxes.as_subclass(torch.Tensor).clone())
        gt_boxes.clip((height, width))
        keep = gt_boxes.nonempty(threshold=_MIN_BOX_SIDE)
        self._dropped.add(int((~keep).sum()), len(keep), file_name)
        return Instances((height, width), gt_boxes=gt_boxes[keep], gt_classes=classes[keep])
