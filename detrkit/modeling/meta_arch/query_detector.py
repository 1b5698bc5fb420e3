"""What every query-based detector here shares: detectron2 model I/O (image normalisation, GT conversion,
eval results in original-image pixels), the backbone and neck, the criterion with its finite-prediction
check, and loss weighting."""

from collections.abc import Iterator

import torch
from torch import nn

from detrkit.modeling.criterion.weight_dict import weight_losses
from detrkit.modeling.postprocessing import detector_postprocess, topk_detections
from detrkit.structures.box_ops import box_xyxy_to_cxcywh
from detrkit.structures.image_list import ImageList
from detrkit.structures.instances import Instances

__all__ = ["QueryDetector"]


class QueryDetector(nn.Module):
    """Base of the query-based detectors (:class:`TwoStageDETR`, StageInteractor); subclasses write
    ``forward`` and place the model on their ``device``.

    The neck's convolutions get Xavier-uniform weights and zero biases. Before every
    criterion call the predictions (its first argument) are checked: a NaN/inf one raises
    ``FloatingPointError`` naming it (e.g. ``outputs["aux_outputs"][0]["pred_boxes"]``) instead of reaching
    the matcher, whose box costs cannot handle it. The model's ``device`` is that of its buffers.

    Args:
        backbone: image ``(bs, 3, H, W)`` -> dict of feature maps.
        neck: backbone features -> list of ``L`` maps ``(bs, C, h_l, w_l)``.
        num_classes: object classes (no background class: sigmoid scores).
        criterion: ``criterion(outputs, targets, ...)`` -> dict of unweighted losses, with ``weight_dict``.
        pixel_mean, pixel_std: per-channel normalisation of the input images (in the input's channel order).
        select_box_nums_for_evaluation: detections kept per image at inference.
        size_divisibility: the padded batch's sides are multiples of it (0: no rounding, as detrex's DETRs;
            the official Salience DETR and StageInteractor pad to 32).

    Raises:
        ValueError: ``pixel_mean`` and ``pixel_std`` differ in length.
    """

    def __init__(
        self,
        backbone: nn.Module,
        neck: nn.Module,
        num_classes: int,
        criterion: nn.Module,
        pixel_mean: list[float],
        pixel_std: list[float],
        select_box_nums_for_evaluation: int,
        size_divisibility: int = 0,
    ):
        super().__init__()
        self.backbone = backbone
        self.size_divisibility = size_divisibility
        self.neck = neck
        self.num_classes = num_classes
        self.criterion = criterion
        criterion.register_forward_pre_hook(_check_finite_predictions)
        self.select_box_nums_for_evaluation = select_box_nums_for_evaluation
        if len(pixel_mean) != len(pixel_std):
            raise ValueError(f"pixel_mean {pixel_mean} and pixel_std {pixel_std} differ in length")
        self.register_buffer("pixel_mean", torch.tensor(pixel_mean).view(-1, 1, 1), persistent=False)
        self.register_buffer("pixel_std", torch.tensor(pixel_std).view(-1, 1, 1), persistent=False)
        for module in self.neck.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.xavier_uniform_(module.weight, gain=1)
                if module.bias is not None:
                    nn.init.constant_(module.bias, 0)

    @property
    def device(self) -> torch.device:
        return self.pixel_mean.device

    def preprocess_image(self, batched_inputs: list[dict]) -> ImageList:
        """Normalised images ``(image - pixel_mean) / pixel_std`` padded into one ``ImageList`` (sides
        multiples of ``size_divisibility``)."""
        images = [(x["image"].to(self.device) - self.pixel_mean) / self.pixel_std for x in batched_inputs]
        return ImageList.from_tensors(images, size_divisibility=self.size_divisibility)

    def prepare_targets(
        self, batched_inputs: list[dict], input_size: tuple[int, int]
    ) -> list[dict[str, torch.Tensor]]:
        """Per image ``{"labels": (n,) int64, "boxes": (n, 4) (cx, cy, w, h) normalised by the image size,
        "boxes_xyxy": (n, 4) the same boxes in input pixels, "input_size": input_size}`` from
        ``batched_inputs[i]["instances"]`` (``gt_classes``, ``gt_boxes`` in xyxy pixels), with ``input_size``
        the padded batch's ``(H, W)`` (the token losses, Focus-DETR's and Salience DETR's, label feature-map
        cells from the pixel boxes and the padded size). A class id outside ``0 .. num_classes - 1`` raises
        ValueError naming it and the image."""
        targets = []
        for index, x in enumerate(batched_inputs):
            if "instances" not in x:
                raise ValueError(f"training needs batched_inputs[{index}]['instances'] (the ground truth)")
            classes = x["instances"].gt_classes
            if len(classes) and not (0 <= int(classes.min()) and int(classes.max()) < self.num_classes):
                image = x.get("file_name", f"batched_inputs[{index}]")
                raise ValueError(
                    f"{image} has ground-truth class ids {sorted(set(classes.tolist()))}, but the model has "
                    f"num_classes={self.num_classes} (ids 0..{self.num_classes - 1}): set model.num_classes "
                    "to the dataset's number of classes (len(thing_classes))"
                )
            instances = x["instances"].to(self.device)
            height, width = instances.image_size
            scale = torch.as_tensor([width, height, width, height], dtype=torch.float, device=self.device)
            boxes_xyxy = instances.gt_boxes.tensor
            targets.append(
                {
                    "labels": instances.gt_classes,
                    "boxes": box_xyxy_to_cxcywh(boxes_xyxy / scale),
                    "boxes_xyxy": boxes_xyxy,
                    "input_size": input_size,
                }
            )
        return targets

    def weighted_losses(
        self, loss_dict: dict[str, torch.Tensor], weight_dict: dict[str, float]
    ) -> dict[str, torch.Tensor]:
        """Each loss times its weight in ``weight_dict`` (:func:`detrkit.modeling.criterion.weight_losses`).

        A loss key without a weight is an error (a ``KeyError`` naming the unweighted keys and the keys of
        ``weight_dict``), where detrex keeps such a loss at weight 1: a config must weight every loss its
        criterion returns, and weight 0 keeps a loss for logging only."""
        return weight_losses(loss_dict, weight_dict)

    def inference(
        self, box_cls: torch.Tensor, box_pred: torch.Tensor, image_sizes: list[tuple[int, int]]
    ) -> list[Instances]:
        """Top-``select_box_nums_for_evaluation`` detections over query x class scores of ``box_cls``
        ``(bs, nq, num_classes)`` logits and ``box_pred`` ``(bs, nq, 4)`` normalised cxcywh (see
        :func:`~detrkit.modeling.postprocessing.topk_detections`)."""
        return topk_detections(box_cls, box_pred, image_sizes, self.select_box_nums_for_evaluation)

    def eval_results(
        self, box_cls: torch.Tensor, box_pred: torch.Tensor, batched_inputs: list[dict], images: ImageList
    ) -> list[dict[str, Instances]]:
        """``[{"instances": Instances}]`` rescaled to each input's ``"height"``/``"width"`` (default: the
        size the model saw)."""
        processed = []
        for result, x, (h, w) in zip(
            self.inference(box_cls, box_pred, images.image_sizes),
            batched_inputs,
            images.image_sizes,
            strict=True,
        ):
            processed.append(
                {"instances": detector_postprocess(result, x.get("height", h), x.get("width", w))}
            )
        return processed


def _named_float_tensors(value, name: str) -> Iterator[tuple[str, torch.Tensor]]:
    """``(path, tensor)`` of every floating-point tensor in nested dicts, lists and tuples, with paths such as
    ``outputs["aux_outputs"][0]["pred_boxes"]``."""
    if isinstance(value, torch.Tensor):
        if value.is_floating_point():
            yield name, value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from _named_float_tensors(item, f"{name}[{key!r}]")
    elif isinstance(value, list | tuple):
        for index, item in enumerate(value):
            yield from _named_float_tensors(item, f"{name}[{index}]")


def _check_finite_predictions(criterion: nn.Module, args: tuple) -> None:
    """Forward pre-hook of the criterion: FloatingPointError naming every prediction in ``args[0]`` (the
    outputs dict) that holds a NaN or inf. One device synchronisation per call."""
    if not args:
        return
    named = list(_named_float_tensors(args[0], "outputs"))
    if not named:
        return
    finite = torch.stack([torch.isfinite(tensor).all() for _, tensor in named]).tolist()
    bad = [name for (name, _), ok in zip(named, finite, strict=True) if not ok]
    if bad:
        raise FloatingPointError(
            f"Model outputs are not finite (NaN or inf) before {type(criterion).__name__}: {', '.join(bad)}"
        )
