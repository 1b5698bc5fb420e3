"""The StageInteractor detector (Teng et al., ICCV 2023): backbone, channel-mapping neck, AdaMixer's
initial queries and a :class:`StageInteractorDecoder` (no encoder), as a detectron2 model."""

from collections.abc import Sequence

import torch
from torch import nn

from detrkit.modeling.meta_arch.query_detector import QueryDetector
from detrkit.structures.box_ops import box_xyxy_to_cxcywh
from detrkit.structures.instances import Instances

from .stage_head import xyzr_to_xyxy

__all__ = ["StageInteractor"]


class StageInteractor(QueryDetector):
    """StageInteractor: query-based detection by a cascade of AdaMixer stages with cross-stage filter reuse
    and cross-stage label assignment (in the criterion). Every decoder stage owns its class and box heads
    (no shared heads); the neck gets :class:`~detrkit.modeling.meta_arch.QueryDetector`'s Xavier init.

    Input: detectron2's list of dicts (``"image"`` ``(3, H, W)``, ``"height"``, ``"width"``, ``"instances"``
    when training). Training returns the criterion's losses weighted by ``criterion.weight_dict``; inference
    returns ``[{"instances": Instances(pred_boxes, scores, pred_classes)}]`` in original-image pixels: the
    top ``select_box_nums_for_evaluation`` (query, class) sigmoid scores of the last stage.

    The criterion is called as ``criterion(outputs, targets)`` with ``outputs`` holding the last stage's
    ``pred_logits`` ``(B, N, num_classes)`` and ``pred_boxes`` ``(B, N, 4)`` (normalised cxcywh) and
    ``aux_outputs``, the other stages in order.

    Args:
        backbone: image ``(B, 3, H, W)`` -> dict of feature maps.
        neck: backbone features -> list of ``L`` maps ``(B, C, h_l, w_l)``.
        query_generator: image sizes -> initial queries and xyzr boxes
            (:class:`~.query_generator.InitialQueryGenerator`).
        decoder: :class:`~.decoder.StageInteractorDecoder`.
        num_classes: sigmoid classes.
        criterion: ``criterion(outputs, targets)`` -> unweighted losses, with ``weight_dict``.
        feature_strides: the stride of each neck output (4, 8, 16, 32 for ResNet C2-C5).
        pixel_mean, pixel_std: input normalisation.
        select_box_nums_for_evaluation: detections kept per image (100, the number of queries).
        size_divisibility: the padded batch's sides are multiples of it (32).
        input_format: channel order of the input images.
        device: where to put the model; None leaves it on the CPU.
    """

    def __init__(
        self,
        backbone: nn.Module,
        neck: nn.Module,
        query_generator: nn.Module,
        decoder: nn.Module,
        num_classes: int,
        criterion: nn.Module,
        feature_strides: Sequence[int] = (4, 8, 16, 32),
        pixel_mean: Sequence[float] = (123.675, 116.280, 103.530),
        pixel_std: Sequence[float] = (58.395, 57.120, 57.375),
        select_box_nums_for_evaluation: int = 100,
        size_divisibility: int = 32,
        input_format: str | None = "RGB",
        device: str | torch.device | None = None,
    ):
        super().__init__(
            backbone=backbone,
            neck=neck,
            num_classes=num_classes,
            criterion=criterion,
            pixel_mean=list(pixel_mean),
            pixel_std=list(pixel_std),
            select_box_nums_for_evaluation=select_box_nums_for_evaluation,
            size_divisibility=size_divisibility,
        )
        self.query_generator = query_generator
        self.decoder = decoder
        self.feature_strides = tuple(feature_strides)
        self.input_format = input_format
        if device is not None:
            self.to(device)

    def forward(self, batched_inputs: list[dict]) -> dict[str, torch.Tensor] | list[dict[str, Instances]]:
        """Weighted losses in training mode, detectron2 results in eval mode (see the class docstring)."""
        images = self.preprocess_image(batched_inputs)
        features = list(self.neck(self.backbone(images.tensor)))
        if len(features) != len(self.feature_strides):
            raise ValueError(
                f"the neck gives {len(features)} levels but feature_strides is {self.feature_strides}"
            )
        query, xyzr = self.query_generator(images.image_sizes)
        stage_logits, stage_xyzr = self.decoder(features, self.feature_strides, query, xyzr)
        whwh = torch.tensor(
            [[w, h, w, h] for h, w in images.image_sizes], dtype=query.dtype, device=self.device
        )
        stage_boxes = [box_xyxy_to_cxcywh(xyzr_to_xyxy(b) / whwh[:, None]) for b in stage_xyzr]
        output = {"pred_logits": stage_logits[-1], "pred_boxes": stage_boxes[-1]}
        output["aux_outputs"] = [
            {"pred_logits": logits, "pred_boxes": boxes}
            for logits, boxes in zip(stage_logits[:-1], stage_boxes[:-1], strict=True)
        ]
        if self.training:
            targets = self.prepare_targets(batched_inputs, tuple(images.tensor.shape[-2:]))
            return self.weighted_losses(self.criterion(output, targets), self.criterion.weight_dict)
        return self.eval_results(output["pred_logits"], output["pred_boxes"], batched_inputs, images)
