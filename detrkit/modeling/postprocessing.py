"""From raw DETR outputs to detectron2 results: top-K detections over all query x class scores, and
``detector_postprocess`` (detectron2's function of that name) to rescale them to the original image."""

import torch

from detrkit.structures.box_ops import box_cxcywh_to_xyxy
from detrkit.structures.boxes import Boxes
from detrkit.structures.instances import Instances

__all__ = ["detector_postprocess", "topk_detections"]


def topk_detections(
    box_cls: torch.Tensor, box_pred: torch.Tensor, image_sizes: list[tuple[int, int]], num_select: int
) -> list[Instances]:
    """The ``num_select`` highest sigmoid scores over all (query, class) pairs of each image (a query may
    appear once per class), as detectron2 ``Instances`` in the input image's pixels.

    Args:
        box_cls: ``(bs, nq, num_classes)`` class logits.
        box_pred: ``(bs, nq, 4)`` boxes ``(cx, cy, w, h)`` normalised to the unpadded image.
        image_sizes: ``bs`` input sizes ``(h, w)`` (without padding).
        num_select: detections per image (at most ``nq * num_classes`` are returned).

    Returns:
        Per image ``Instances(image_size, pred_boxes=Boxes (k, 4) xyxy, scores (k,), pred_classes (k,))``,
        sorted by decreasing score.
    """
    if len(box_cls) != len(image_sizes):
        raise ValueError(f"{len(box_cls)} predictions but {len(image_sizes)} image sizes")
    batch, num_queries, num_classes = box_cls.shape
    scores, indices = torch.topk(
        box_cls.sigmoid().view(batch, -1), min(num_select, num_queries * num_classes), dim=1
    )
    query_index = torch.div(indices, num_classes, rounding_mode="floor")
    labels = indices % num_classes
    boxes = torch.gather(box_pred, 1, query_index[..., None].expand(-1, -1, 4))
    results = []
    for scores_i, labels_i, boxes_i, (height, width) in zip(scores, labels, boxes, image_sizes, strict=True):
        result = Instances((height, width))
        result.pred_boxes = Boxes(
            box_cxcywh_to_xyxy(boxes_i) * boxes_i.new_tensor([width, height, width, height])
        )
        result.scores = scores_i
        result.pred_classes = labels_i
        results.append(result)
    return results


def detector_postprocess(results: Instances, output_height: int, output_width: int) -> Instances:
    """Rescales detections from the size the detector saw (``results.image_size``) to
    ``(output_height, output_width)``, clips the boxes to it and drops empty ones (detectron2 semantics;
    ``results.pred_boxes`` is scaled in place).

    Args:
        results: ``Instances`` with ``pred_boxes`` (or ``proposal_boxes``) in input-image pixels.
        output_height, output_width: the original image size.

    Returns:
        ``Instances`` of size ``(output_height, output_width)`` with the same fields, boxes rescaled.
    """
    scale_x = output_width / results.image_size[1]
    scale_y = output_height / results.image_size[0]
    results = Instances((output_height, output_width), **results.get_fields())
    if results.has("pred_boxes"):
        boxes = results.pred_boxes
    elif results.has("proposal_boxes"):
        boxes = results.proposal_boxes
    else:
        raise ValueError("detector_postprocess: the results have neither pred_boxes nor proposal_boxes")
    boxes.scale(scale_x, scale_y)
    boxes.clip(results.image_size)
    return results[boxes.nonempty()]
