"""``ShapeSpec``: the shape of a feature map without the tensor (detectron2's ``detectron2.layers.ShapeSpec``,
same fields), used by backbones' ``output_shape()`` and by necks' ``input_shapes``."""

from dataclasses import dataclass

__all__ = ["ShapeSpec"]


@dataclass
class ShapeSpec:
    """Channels, spatial size and stride (w.r.t. the input image) of a feature map; any may be unknown."""

    channels: int | None = None
    height: int | None = None
    width: int | None = None
    stride: int | None = None
