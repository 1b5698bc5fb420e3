"""Axis-aligned boxes, with detectron2's names and semantics (``Boxes``, ``BoxMode``, ``pairwise_iou``)."""

from enum import IntEnum

import torch
from torch.fx.experimental.symbolic_shapes import guard_or_false

__all__ = ["BoxMode", "Boxes", "known_true", "pairwise_iou"]


def known_true(condition) -> bool:
    """``condition`` as a Python bool, False where it depends on data ``torch.export`` does not know (a
    ``SymBool`` of an unbacked size); other values (bools, a ``torch.jit`` tracer's tensors) as ``bool()``
    reads them."""
    return guard_or_false(condition) if isinstance(condition, torch.SymBool) else bool(condition)


class BoxMode(IntEnum):
    """How a dataset dict's ``bbox`` is written; the integer values are detectron2's, so serialised dataset
    dicts read the same. detrkit converts between the absolute modes."""

    XYXY_ABS = 0  # (x0, y0, x1, y1) in pixels
    XYWH_ABS = 1  # (x0, y0, w, h) in pixels, as in COCO json
    XYXY_REL = 2
    XYWH_REL = 3
    XYWHA_ABS = 4

    @staticmethod
    def convert(box, from_mode: "BoxMode", to_mode: "BoxMode"):
        """Converts one box (list/tuple of 4) or ``(N, 4)`` tensor between XYXY_ABS and XYWH_ABS."""
        from_mode, to_mode = BoxMode(from_mode), BoxMode(to_mode)
        if from_mode == to_mode:
            return box
        supported = (BoxMode.XYXY_ABS, BoxMode.XYWH_ABS)
        if from_mode not in supported or to_mode not in supported:
            raise ValueError(
                f"BoxMode.convert supports XYXY_ABS and XYWH_ABS, got {from_mode.name} -> {to_mode.name}"
            )
        original_type = type(box)
        tensor = torch.as_tensor(box, dtype=torch.float64 if not torch.is_tensor(box) else None).clone()
        flat = tensor.view(-1, 4)
        if to_mode == BoxMode.XYXY_ABS:
            flat[:, 2:] += flat[:, :2]
        else:
            flat[:, 2:] -= flat[:, :2]
        if torch.is_tensor(box):
            return tensor
        return original_type(tensor.flatten().tolist())


class Boxes:
    """``(N, 4)`` boxes ``(x1, y1, x2, y2)`` in absolute coordinates, as ``.tensor``."""

    def __init__(self, tensor: torch.Tensor):
        device = tensor.device if torch.is_tensor(tensor) else torch.device("cpu")
        tensor = torch.as_tensor(tensor, dtype=torch.float32, device=device)
        if known_true(tensor.numel() == 0):  # under torch.export a data-dependent count is not known 0
            tensor = tensor.reshape(0, 4)
        if tensor.dim() != 2 or tensor.size(-1) != 4:
            raise ValueError(f"Boxes needs an (N, 4) tensor, got shape {tuple(tensor.shape)}")
        self.tensor = tensor

    def clone(self) -> "Boxes":
        return Boxes(self.tensor.clone())

    def to(self, device) -> "Boxes":
        return Boxes(self.tensor.to(device=device))

    @property
    def device(self) -> torch.device:
        return self.tensor.device

    def area(self) -> torch.Tensor:
        """``(N,)`` areas."""
        box = self.tensor
        return (box[:, 2] - box[:, 0]) * (box[:, 3] - box[:, 1])

    def clip(self, box_size: tuple[int, int]) -> None:
        """Clips in place to an image of ``box_size = (height, width)``."""
        h, w = box_size
        self.tensor[:, 0].clamp_(min=0, max=w)
        self.tensor[:, 1].clamp_(min=0, max=h)
        self.tensor[:, 2].clamp_(min=0, max=w)
        self.tensor[:, 3].clamp_(min=0, max=h)

    def nonempty(self, threshold: float = 0.0) -> torch.Tensor:
        """``(N,)`` bool: both sides longer than ``threshold``."""
        box = self.tensor
        return ((box[:, 2] - box[:, 0]) > threshold) & ((box[:, 3] - box[:, 1]) > threshold)

    def get_centers(self) -> torch.Tensor:
        """``(N, 2)`` box centres ``(x, y)``."""
        return (self.tensor[:, :2] + self.tensor[:, 2:]) / 2

    def scale(self, scale_x: float, scale_y: float) -> None:
        """Scales in place by ``scale_x`` horizontally and ``scale_y`` vertically."""
        self.tensor[:, 0::2] *= scale_x
        self.tensor[:, 1::2] *= scale_y

    def __getitem__(self, item) -> "Boxes":
        if isinstance(item, int):
            return Boxes(self.tensor[item].view(1, -1))
        return Boxes(self.tensor[item])

    def __len__(self) -> int:
        return self.tensor.shape[0]

    def __repr__(self) -> str:
        return f"Boxes({self.tensor})"

    def __iter__(self):
        yield from self.tensor

    @classmethod
    def cat(cls, boxes_list: list["Boxes"]) -> "Boxes":
        if not boxes_list:
            return cls(torch.empty(0, 4))
        return cls(torch.cat([b.tensor for b in boxes_list], dim=0))


def pairwise_iou(boxes1: Boxes, boxes2: Boxes) -> torch.Tensor:
    """``(N, M)`` IoU between every box of ``boxes1`` and of ``boxes2`` (0 where the union is empty)."""
    a, b = boxes1.tensor, boxes2.tensor
    lt = torch.max(a[:, None, :2], b[None, :, :2])
    rb = torch.min(a[:, None, 2:], b[None, :, 2:])
    inter = (rb - lt).clamp(min=0).prod(dim=2)
    union = boxes1.area()[:, None] + boxes2.area()[None, :] - inter
    return torch.where(
        union > 0, inter / union.clamp(min=torch.finfo(union.dtype).tiny), torch.zeros_like(inter)
    )
