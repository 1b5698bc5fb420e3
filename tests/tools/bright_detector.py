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


def image_with_squares(height: int, width: int, squares: list[tuple[int, int, int, int]]) -> torch.Tensor:
    """``(3, H, W)`` uint8: grey 100 with squares ``(x0, y0, side, value)`` painted in grey ``value``."""
    image = torch.full((3, height, width), 100, dtype=torch.uint8)
    for x0, y0, side, value in squares:
        image[:, y0 : y0 + side, x0 : x0 + side] = value
    return image


# The "bright" dataset (80 x 120 images, category ids 5 "bright" and 9 "whole"): file -> squares, of which
# the annotated ones. b.png also holds a dark annotated square that BrightDetector cannot find.
BRIGHT_IMAGES = {
    "a.png": [(10, 20, 30, 255)],
    "b.png": [(60, 40, 20, 255), (5, 5, 30, 30)],
    "c.png": [],
}


def write_bright_dataset(root: str) -> str:
    """Writes ``root/bright/images/{a,b,c}.png`` and ``root/bright/annotations.json`` (the folder that
    ``tests/tools/configs/bright_squares.py`` registers under ``$DETRKIT_DATASETS``); returns the folder."""
    import json
    import os

    from PIL import Image

    folder = os.path.join(root, "bright")
    os.makedirs(os.path.join(folder, "images"), exist_ok=True)
    images, annotations = [], []
    for image_id, (name, squares) in enumerate(BRIGHT_IMAGES.items(), start=1):
        pixels = image_with_squares(80, 120, squares).permute(1, 2, 0).numpy()
        Image.fromarray(pixels).save(os.path.join(folder, "images", name))
        images.append({"id": image_id, "file_name": name, "height": 80, "width": 120})
        for x0, y0, side, _ in squares:
            annotations.append(
                {"id": len(annotations) + 1, "image_id": image_id, "category_id": 5,
                 "bbox": [x0, y0, side, side], "area": side * side, "iscrowd": 0}
            )  # fmt: skip
    categories = [{"id": 5, "name": "bright"}, {"id": 9, "name": "whole"}]
    with open(os.path.join(folder, "annotations.json"), "w") as f:
        json.dump({"images": images, "annotations": annotations, "categories": categories}, f)
    return folder
