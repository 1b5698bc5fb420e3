"""Running a trained detector on image files, whole or in overlapping tiles (for images larger than the
training size), with the tiles' detections merged into one set in the image's pixel coordinates."""

from collections.abc import Sequence

import torch
from torchvision import tv_tensors

from detrkit.checkpoint import DetectionCheckpointer
from detrkit.config import instantiate
from detrkit.data.transforms import Augmentation, apply_augmentations
from detrkit.layers import batched_nms

__all__ = ["drop_cut_boxes", "load_model", "merge_tile_detections", "predict_image", "tile_starts"]

EDGE_MARGIN = 1.0  # pixels: a box this close to a tile's inner edge is cut by it


def load_model(cfg, checkpoint: str) -> torch.nn.Module:
    """The config's model with ``checkpoint``'s weights, on ``cfg.train.device``, in eval mode."""
    model = instantiate(cfg.model).to(cfg.train.device)
    DetectionCheckpointer(model).load(checkpoint)
    return model.eval()


def tile_starts(length: int, size: int, overlap: int) -> list[int]:
    """Start offsets of tiles of ``size`` pixels covering ``[0, length)``, consecutive tiles sharing at
    least ``overlap`` pixels; the last tile ends at ``length``. One tile at 0 when ``length <= size``."""
    if not 0 <= overlap < size:
        raise ValueError(f"tile_starts: need 0 <= overlap < size, got overlap={overlap}, size={size}")
    if length <= size:
        return [0]
    starts = list(range(0, length - size, size - overlap))
    return starts + [length - size]


def drop_cut_boxes(
    boxes: torch.Tensor, tile: tuple[int, int, int, int], image_size: tuple[int, int]
) -> torch.Tensor:
    """``(N,)`` bool: which of ``boxes`` ``(N, 4)`` xyxy (image pixels) found in ``tile`` ``(x0, y0, x1,
    y1)`` to keep: those that do not reach an edge of the tile that lies inside the image (within
    :data:`EDGE_MARGIN` pixels). Such a box is an object cut by the tile; the overlapping tile sees it whole
    when it is smaller than the overlap."""
    height, width = image_size
    x0, y0, x1, y1 = tile
    cut = torch.zeros(len(boxes), dtype=torch.bool, device=boxes.device)
    if x0 > 0:
        cut |= boxes[:, 0] <= x0 + EDGE_MARGIN
    if y0 > 0:
        cut |= boxes[:, 1] <= y0 + EDGE_MARGIN
    if x1 < width:
        cut |= boxes[:, 2] >= x1 - EDGE_MARGIN
    if y1 < height:
        cut |= boxes[:, 3] >= y1 - EDGE_MARGIN
    return ~cut


def merge_tile_detections(
    boxes: torch.Tensor, scores: torch.Tensor, classes: torch.Tensor, iou_threshold: float
) -> torch.Tensor:
    """Indices of the detections kept when merging tiles: per class, greedy NMS (:func:`batched_nms`) over
    ``boxes`` ``(N, 4)`` xyxy, ``scores`` ``(N,)``, ``classes`` ``(N,)``; by score, descending."""
    return batched_nms(boxes.float(), scores.float(), classes, iou_threshold)


def _run(model, image: torch.Tensor, augmentations: Sequence[Augmentation]) -> tuple[torch.Tensor, ...]:
    """The model's boxes ``(K, 4)`` xyxy in ``image``'s pixels, scores ``(K,)`` and classes ``(K,)`` for
    one ``(3, H, W)`` uint8 image, resized by ``augmentations`` as the test loader does."""
    height, width = image.shape[-2:]
    empty = tv_tensors.BoundingBoxes(torch.zeros(0, 4), format="XYXY", canvas_size=(height, width))
    resized, _ = apply_augmentations(augmentations, tv_tensors.Image(image), empty)
    inputs = {"image": resized.as_subclass(torch.Tensor).contiguous(), "height": height, "width": width}
    with torch.no_grad():
        instances = model([inputs])[0]["instances"].to("cpu")
    return instances.pred_boxes.tensor, instances.scores, instances.pred_classes


def predict_image(
    model: torch.nn.Module,
    image: torch.Tensor,
    augmentations: Sequence[Augmentation],
    score_threshold: float,
    tile: int | None = None,
    overlap: int = 0,
    nms_threshold: float = 0.5,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Detections of ``model`` on one ``(3, H, W)`` uint8 image (the model's channel order).

    Args:
        augmentations: the test loader's (deterministic) resize, applied to the image or to each tile.
        score_threshold: detections scoring below it are left out.
        tile: None: the whole image at once. Else tiles of ``tile`` x ``tile`` pixels (:func:`tile_starts`,
            ``overlap`` pixels shared), each run alone; boxes cut by a tile's inner edge are dropped
            (:func:`drop_cut_boxes`) and the rest merged by :func:`merge_tile_detections`.
        nms_threshold: IoU above which a detection of a tile suppresses a lower-scored one of its class.

    Returns:
        boxes ``(K, 4)`` xyxy in the image's pixels, scores ``(K,)`` and classes ``(K,)``, by score
        descending.
    """
    height, width = image.shape[-2:]
    if tile is None:
        boxes, scores, classes = _run(model, image, augmentations)
        keep = (scores >= score_threshold).nonzero().flatten()
        keep = keep[scores[keep].sort(descending=True, stable=True)[1]]
        return boxes[keep], scores[keep], classes[keep]
    parts = []
    for y0 in tile_starts(height, tile, overlap):
        for x0 in tile_starts(width, tile, overlap):
            x1, y1 = min(x0 + tile, width), min(y0 + tile, height)
            boxes, scores, classes = _run(model, image[:, y0:y1, x0:x1], augmentations)
            boxes = boxes + torch.tensor([x0, y0, x0, y0], dtype=boxes.dtype)
            keep = (scores >= score_threshold) & drop_cut_boxes(boxes, (x0, y0, x1, y1), (height, width))
            parts.append((boxes[keep], scores[keep], classes[keep]))
    boxes, scores, classes = (torch.cat(values) for values in zip(*parts, strict=True))
    keep = merge_tile_detections(boxes, scores, classes, nms_threshold)
    return boxes[keep], scores[keep], classes[keep]
