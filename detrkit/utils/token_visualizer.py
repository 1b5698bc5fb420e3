"""Pictures of what a DETR's encoder side picks: token scores as heat maps over the image, the tokens a
selective encoder keeps, and the boxes of the proposals chosen as decoder queries (PIL and numpy only).

Token maps are ``(h, w)`` grids of one feature level, cropped to the level's unpadded region, so that they
stretch over the whole (unpadded) image."""

import numpy as np
import torch
from PIL import Image, ImageDraw

from detrkit.utils.visualizer import CAPTION_HEIGHT, captioned, class_color, image_grid

__all__ = [
    "CAPTION_HEIGHT",
    "captioned",
    "heat_colors",
    "kept_tokens_panel",
    "level_grids",
    "panel_row",
    "query_boxes_panel",
    "token_map_panel",
]


def heat_colors(values: np.ndarray) -> np.ndarray:
    """``(...)`` values in [0, 1] -> ``(..., 3)`` uint8 colours from black through red and yellow to white;
    the sum of the three channels is ``765 * value`` (up to rounding), so brighter means higher."""
    if values.size and (np.nanmin(values) < 0.0 or np.nanmax(values) > 1.0):
        raise ValueError(f"heat_colors needs values in [0, 1], got [{values.min()}, {values.max()}]")
    ramp = np.stack([3.0 * values, 3.0 * values - 1.0, 3.0 * values - 2.0], -1)
    return np.round(255.0 * np.clip(ramp, 0.0, 1.0)).astype(np.uint8)


def level_grids(
    values: torch.Tensor, padding_mask: torch.Tensor, spatial_shapes: torch.Tensor
) -> list[np.ndarray]:
    """One ``(h_valid, w_valid)`` float array per level of one image's flattened ``(S,)`` token ``values``
    (levels of ``spatial_shapes`` ``(L, 2)`` in order, ``padding_mask`` ``(S,)`` True at padding), each
    cropped to the level's unpadded top-left region."""
    if values.shape != padding_mask.shape or values.dim() != 1:
        raise ValueError(
            f"level_grids needs (S,) values and mask, got {tuple(values.shape)} and "
            f"{tuple(padding_mask.shape)}"
        )
    sizes = [int(h) * int(w) for h, w in spatial_shapes.tolist()]
    if sum(sizes) != values.numel():
        raise ValueError(
            f"spatial_shapes {spatial_shapes.tolist()} give {sum(sizes)} tokens, not {values.numel()}"
        )
    grids = []
    for (h, w), level_values, level_mask in zip(
        spatial_shapes.tolist(), values.split(sizes), padding_mask.split(sizes), strict=True
    ):
        valid = ~level_mask.reshape(h, w)
        valid_h, valid_w = int(valid[:, 0].sum()), int(valid[0].sum())
        grids.append(level_values.reshape(h, w)[:valid_h, :valid_w].detach().double().cpu().numpy())
    return grids


def _stretch(grid: np.ndarray, width: int, height: int) -> np.ndarray:
    """Nearest-neighbour upsampling of an ``(h, w)`` grid to ``(height, width)``: each token covers its own
    rectangle of the image."""
    rows = np.minimum((np.arange(height) * grid.shape[0]) // height, grid.shape[0] - 1)
    cols = np.minimum((np.arange(width) * grid.shape[1]) // width, grid.shape[1] - 1)
    return grid[rows[:, None], cols[None, :]]


def token_map_panel(image: np.ndarray, grid: np.ndarray, opacity: float = 0.65) -> Image.Image:
    """The ``(H, W, 3)`` uint8 image under the :func:`heat_colors` of an ``(h, w)`` grid of values in [0, 1]
    (nearest-neighbour stretched to the image), blended ``opacity * heat + (1 - opacity) * image``."""
    if not 0.0 <= opacity <= 1.0:
        raise ValueError(f"opacity={opacity} must be in [0, 1]")
    heat = heat_colors(_stretch(grid, image.shape[1], image.shape[0])).astype(np.float64)
    blended = opacity * heat + (1.0 - opacity) * image.astype(np.float64)
    return Image.fromarray(np.round(blended).astype(np.uint8))


def kept_tokens_panel(image: np.ndarray, kept: np.ndarray, dropped_brightness: float = 0.25) -> Image.Image:
    """The ``(H, W, 3)`` uint8 image with the areas of the tokens not in the ``(h, w)`` bool grid ``kept``
    darkened to ``dropped_brightness``."""
    gain = np.where(_stretch(kept, image.shape[1], image.shape[0]), 1.0, dropped_brightness)
    return Image.fromarray(np.round(image * gain[..., None]).astype(np.uint8))


def query_boxes_panel(image: np.ndarray, boxes: torch.Tensor, classes: torch.Tensor) -> Image.Image:
    """The ``(H, W, 3)`` uint8 image with ``(K, 4)`` xyxy pixel boxes outlined (1 px, a colour per class of
    ``classes`` ``(K,)``) and their centres dotted; no labels, as queries are many."""
    canvas = Image.fromarray(np.ascontiguousarray(image, dtype=np.uint8))
    draw = ImageDraw.Draw(canvas)
    for box, class_id in zip(boxes.tolist(), classes.tolist(), strict=True):
        color = class_color(int(class_id))
        draw.rectangle(box, outline=color, width=1)
        cx, cy = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
        draw.ellipse((cx - 1.5, cy - 1.5, cx + 1.5, cy + 1.5), fill=color)
    return canvas


def panel_row(panels: list[Image.Image]) -> Image.Image:
    """The panels side by side (:func:`~detrkit.utils.visualizer.image_grid` with one row)."""
    return image_grid(panels, columns=len(panels))
