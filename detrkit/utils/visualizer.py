"""Pictures of detections: boxes with class names and scores drawn on images, ground truth beside
predictions, several images in one grid."""

import colorsys

import numpy as np
import torch
from PIL import Image, ImageDraw

__all__ = ["class_color", "draw_boxes", "ground_truth_vs_predictions", "image_grid"]


def class_color(class_id: int) -> tuple[int, int, int]:
    """A bright colour per class id, well apart for neighbouring ids (golden-ratio hues)."""
    hue = (class_id * 0.618033988749895) % 1.0
    r, g, b = colorsys.hsv_to_rgb(hue, 0.85, 1.0)
    return int(255 * r), int(255 * g), int(255 * b)


def draw_boxes(
    image: np.ndarray | torch.Tensor,
    boxes: torch.Tensor,
    classes: torch.Tensor,
    class_names: list[str],
    scores: torch.Tensor | None = None,
    score_threshold: float = 0.0,
) -> Image.Image:
    """Draws ``boxes`` ``(N, 4)`` xyxy in pixels with their class name (and score) on a copy of ``image``
    (``(H, W, 3)`` uint8 RGB array, or a ``(3, H, W)`` uint8 tensor); boxes scoring below
    ``score_threshold`` are skipped."""
    if isinstance(image, torch.Tensor):
        image = image.permute(1, 2, 0).cpu().numpy()
    canvas = Image.fromarray(np.ascontiguousarray(image, dtype=np.uint8))
    draw = ImageDraw.Draw(canvas)
    for i, (box, class_id) in enumerate(zip(boxes.tolist(), classes.tolist(), strict=True)):
        if scores is not None and float(scores[i]) < score_threshold:
            continue
        color = class_color(int(class_id))
        draw.rectangle(box, outline=color, width=2)
        label = class_names[int(class_id)] if int(class_id) < len(class_names) else str(class_id)
        if scores is not None:
            label = f"{label} {float(scores[i]):.2f}"
        text_box = draw.textbbox((box[0], box[1]), label)
        draw.rectangle((text_box[0], text_box[1] - 1, text_box[2] + 2, text_box[3] + 1), fill=color)
        draw.text((box[0] + 1, box[1]), label, fill=(0, 0, 0))
    return canvas


def ground_truth_vs_predictions(
    image: np.ndarray,
    gt_boxes: torch.Tensor,
    gt_classes: torch.Tensor,
    pred_boxes: torch.Tensor,
    pred_classes: torch.Tensor,
    pred_scores: torch.Tensor,
    class_names: list[str],
    score_threshold: float = 0.5,
) -> Image.Image:
    """The image twice, side by side: ground truth on the left, predictions above ``score_threshold`` on
    the right (all boxes in the image's pixel coordinates)."""
    left = draw_boxes(image, gt_boxes, gt_classes, class_names)
    right = draw_boxes(image, pred_boxes, pred_classes, class_names, pred_scores, score_threshold)
    pair = Image.new("RGB", (left.width + right.width + 4, left.height), (255, 255, 255))
    pair.paste(left, (0, 0))
    pair.paste(right, (left.width + 4, 0))
    return pair


def image_grid(images: list[Image.Image], columns: int) -> Image.Image:
    """Images in rows of ``columns``, each cell the size of the largest image, white gaps of 4 pixels."""
    if not images:
        raise ValueError("image_grid needs at least one image")
    cell_w = max(im.width for im in images) + 4
    cell_h = max(im.height for im in images) + 4
    rows = (len(images) + columns - 1) // columns
    grid = Image.new("RGB", (cell_w * min(columns, len(images)), cell_h * rows), (255, 255, 255))
    for i, im in enumerate(images):
        grid.paste(im, ((i % columns) * cell_w, (i // columns) * cell_h))
    return grid
