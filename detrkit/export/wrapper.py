"""A detectron2-style detector seen as a function of one image tensor, the form ONNX export needs."""

import torch
from torch import nn

__all__ = ["ImageToDetections"]


class ImageToDetections(nn.Module):
    """Runs ``detector`` (eval mode, detectron2 I/O) on one image tensor and returns its detections as
    tensors: ``image`` ``(1, 3, H, W)`` float pixel values in [0, 255] in the detector's channel order
    (``input_format``) -> ``boxes`` ``(K, 4)`` ``(x1, y1, x2, y2)`` in the image's pixels, ``scores`` ``(K,)``
    and ``labels`` ``(K,)`` int64, by decreasing score (the detector's own normalisation, padding to its
    ``size_divisibility`` and top-k postprocess are part of the function; the whole image is valid).

    Args:
        detector: a model with detectron2's inputs (``[{"image", "height", "width"}]``) and eval outputs
            (``[{"instances": Instances(pred_boxes, scores, pred_classes)}]``).
    """

    def __init__(self, detector: nn.Module):
        super().__init__()
        self.detector = detector.eval()

    def forward(self, image: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        if image.dim() != 4 or image.shape[:2] != (1, 3):
            raise ValueError(f"image must have shape (1, 3, H, W), got {tuple(image.shape)}")
        height, width = image.shape[-2:]
        instances = self.detector([{"image": image[0], "height": height, "width": width}])[0]["instances"]
        return instances.pred_boxes.tensor, instances.scores, instances.pred_classes
