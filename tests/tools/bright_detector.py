"""A stand-in detector for the tools/predict.py tests (imported by name: the tests put this folder on
PYTHONPATH): it "detects" the bright pixels of its input, so the right answer of every case is known by
hand."""

import torch
from torch import nn

from detrkit.structures import Boxes, Instances

BRIGHT = 200


class BrightDetector(nn.Module):
    """Eval-mode detectron2 model I/O. Per image, one detection: the box around the pixels whose channels
    are all above 200 (in the original image's pixels: the input's ``height``/``width``), class 0, score
    0.9; and a second, class 1 at score 0.1, on the whole image. Nothing when no pixel is bright."""

    num_classes = 2

    def __init__(self):
        super().__init__()
        self.dummy = nn.Parameter(torch.zeros(1))  # something for the checkpointer to load

    def forward(self, batched_inputs: list[dict]) -> list[dict]:
        results = []
        for item in batched_inputs:
            image = item["image"]
            resized_h, resized_w = image.shape[-2:]
            height, width = item.get("height", resized_h), item.get("width", resized_w)
            ys, xs = torch.nonzero((image > BRIGHT).all(dim=0), as_tuple=True)
            instances = Instances((height, width))
            if len(xs) == 0:
                boxes, scores, classes = torch.zeros(0, 4), torch.zeros(0), torch.zeros(0, dtype=torch.long)
            else:
                scale = torch.tensor([width / resized_w, height / resized_h] * 2)
                bright = torch.tensor([xs.min(), ys.min(), xs.max() + 1, ys.max() + 1], dtype=torch.float32)
                whole = torch.tensor([0.0, 0.0, resized_w, resized_h])
                boxes = torch.stack([bright, whole]) * scale
                scores, classes = torch.tensor([0.9, 0.1]), torch.tensor([0, 1])
            instances.pred_boxes, instances.scores, instances.pred_classes = Boxes(boxes), scores, classes
            results.append({"instances": instances})
        return results
