"""Pictures of detections: boxes with class names and scores drawn on images, ground truth beside
predictions (found and missed objects in their own colours, low-score detections faint, titled panels),
several images in one grid."""

import colorsys

import numpy as np
import torch
from PIL import Image, ImageDraw

from detrkit.utils.detection_matching import match_detections

__all__ = [
    "CAPTION_HEIGHT",
    "GT_FOUND_COLOR",
    "GT_MISSED_COLOR",
    "captioned",
    "class_color",
    "draw_boxes",
    "draw_faint_boxes",
    "ground_truth_vs_predictions",
    "image_grid",
]

CAPTION_HEIGHT = 14
GT_FOUND_COLOR = (40, 220, 40)  # ground truth that a shown detection matches
GT_MISSED_COLOR = (255, 40, 40)  # ground truth that no shown detection matches
FAINT_OPACITY = 0.45


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
    colors: list[tuple[int, int, int]] | None = None,
    width: int = 2,
) -> Image.Image:
    """Draws ``boxes`` ``(N, 4)`` xyxy in pixels with their class name (and score) on a copy of ``image``
    (``(H, W, 3)`` uint8 RGB array, or a ``(3, H, W)`` uint8 tensor, or a PIL image); boxes scoring below
    ``score_threshold`` are skipped. Each box takes its class colour, or ``colors[i]`` when given, in an
    outline ``width`` pixels wide (inwards from the box's edges)."""
    canvas = _canvas(image)
    draw = ImageDraw.Draw(canvas)
    for i, (box, class_id) in enumerate(zip(boxes.tolist(), classes.tolist(), strict=True)):
        if scores is not None and float(scores[i]) < score_threshold:
            continue
        color = class_color(int(class_id)) if colors is None else colors[i]
        draw.rectangle(box, outline=color, width=width)
        label = class_names[int(class_id)] if int(class_id) < len(class_names) else str(class_id)
        if scores is not None:
            label = f"{label} {float(scores[i]):.2f}"
        text_box = draw.textbbox((box[0], box[1]), label)
        draw.rectangle((text_box[0], text_box[1] - 1, text_box[2] + 2, text_box[3] + 1), fill=color)
        draw.text((box[0] + 1, box[1]), label, fill=(0, 0, 0))
    return canvas


def _canvas(image: np.ndarray | torch.Tensor | Image.Image) -> Image.Image:
    """An RGB PIL copy of an ``(H, W, 3)`` uint8 array, a ``(3, H, W)`` uint8 tensor or a PIL image."""
    if isinstance(image, Image.Image):
        return image.convert("RGB")
    if isinstance(image, torch.Tensor):
        image = image.permute(1, 2, 0).cpu().numpy()
    return Image.fromarray(np.ascontiguousarray(image, dtype=np.uint8))


def draw_faint_boxes(
    image: np.ndarray | torch.Tensor | Image.Image,
    boxes: torch.Tensor,
    classes: torch.Tensor,
    opacity: float = FAINT_OPACITY,
) -> Image.Image:
    """A copy of ``image`` with ``boxes`` ``(N, 4)`` xyxy outlined 1 px in their class colour at
    ``opacity`` (blended with the pixels below), without labels: detections shown as uncertain."""
    canvas = _canvas(image).convert("RGBA")
    overlay = Image.new("RGBA", canvas.size, (0, 0, 0, 0))
    draw = ImageDraw.Draw(overlay)
    alpha = round(255 * opacity)
    for box, class_id in zip(boxes.tolist(), classes.tolist(), strict=True):
        draw.rectangle(box, outline=(*class_color(int(class_id)), alpha), width=1)
    return Image.alpha_composite(canvas, overlay).convert("RGB")


def captioned(panel: Image.Image, caption: str) -> Image.Image:
    """``panel`` below a white strip of ``CAPTION_HEIGHT`` pixels holding ``caption``."""
    out = Image.new("RGB", (panel.width, panel.height + CAPTION_HEIGHT), (255, 255, 255))
    ImageDraw.Draw(out).text((2, 1), caption, fill=(0, 0, 0))
    out.paste(panel, (0, CAPTION_HEIGHT))
    return out


def ground_truth_vs_predictions(
    image: np.ndarray,
    gt_boxes: torch.Tensor,
    gt_classes: torch.Tensor,
    pred_boxes: torch.Tensor,
    pred_classes: torch.Tensor,
    pred_scores: torch.Tensor,
    class_names: list[str],
    score_threshold: float = 0.5,
    faint_threshold: float | None = None,
    iou_threshold: float = 0.5,
) -> Image.Image:
    """The image twice, side by side, titled (all boxes ``(N, 4)`` xyxy in the image's pixels):

    - left, the ground truth, 3-px outlines: green (:data:`GT_FOUND_COLOR`) where a detection scoring at least
      ``score_threshold`` matches it (same class, IoU >= ``iou_threshold``, :func:`match_detections`), red
      (:data:`GT_MISSED_COLOR`) where none does;
    - right, the detections scoring at least ``score_threshold`` in their class colours with their scores,
      and those scoring in ``[faint_threshold, score_threshold)`` faint (none when ``faint_threshold`` is
      None).
    """
    shown = pred_scores >= score_threshold
    pred_match, gt_match = match_detections(
        pred_boxes[shown], pred_scores[shown], pred_classes[shown], gt_boxes, gt_classes, iou_threshold
    )
    found = (gt_match >= 0).tolist()
    left = draw_boxes(
        image,
        gt_boxes,
        gt_classes,
        class_names,
        colors=[GT_FOUND_COLOR if f else GT_MISSED_COLOR for f in found],
        width=3,  # thicker than the detections' outlines, whose class colours may be green or red too
    )
    right = image
    title = f"score>={score_threshold:.2f}: {int(shown.sum())} ({int((pred_match >= 0).sum())} right)"
    if faint_threshold is not None:
        faint = (pred_scores >= faint_threshold) & ~shown
        right = draw_faint_boxes(image, pred_boxes[faint], pred_classes[faint])
        title += f", faint>={faint_threshold:.2f}"
    right = draw_boxes(right, pred_boxes[shown], pred_classes[shown], class_names, pred_scores[shown])
    left = captioned(left, f"ground truth: {len(found)} ({sum(found)} found)")
    right = captioned(right, title)
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
