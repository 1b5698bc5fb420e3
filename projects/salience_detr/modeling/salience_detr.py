"""Salience DETR as a detectron2 model: DINO with salience-guided filtering and its loss."""

import torch
from torch import nn

from detrkit.modeling.meta_arch import DINO

__all__ = ["SalienceDETR"]


class SalienceDETR(DINO):
    """:class:`DINO` with a :class:`~detrkit_projects.salience_detr.modeling.SalienceDETRTransformer`.

    The two-stage encoder class head (``class_embed[-1]``) is also the class head of the object-token
    score in every encoder layer (``encoder_class_heads``, the same module ``num_layers`` times, as in the
    official code). Images are padded to a multiple of ``size_divisibility`` (official code: 32). The
    criterion's outputs gain the transformer's token scores as ``"salience_logits"`` and ``"spatial_shapes"``;
    the targets
    carry ``"boxes_xyxy"`` in input pixels and ``"input_size"``, the padded batch's ``(H, W)`` (the strides
    of the salience targets).

    Args:
        *args, **kwargs: those of :class:`DINO`.
        size_divisibility: padding multiple of the input batch. Default 32.
    """

    def __init__(self, *args, size_divisibility: int = 32, **kwargs):
        super().__init__(*args, **kwargs)
        self.size_divisibility = size_divisibility
        num_encoder_layers = self.transformer.encoder.num_layers
        self.encoder_class_heads = nn.ModuleList([self.class_embed[-1]] * num_encoder_layers)
        self.transformer.encoder.class_heads = self.encoder_class_heads

    def prepare_targets(
        self, batched_inputs: list[dict], input_size: tuple[int, int]
    ) -> list[dict[str, torch.Tensor]]:
        """:meth:`DINO.prepare_targets` plus ``"boxes_xyxy"`` ``(n, 4)`` (input pixels) and
        ``"input_size"``, the padded batch's ``(H, W)``."""
        targets = super().prepare_targets(batched_inputs, input_size)
        for target, x in zip(targets, batched_inputs, strict=True):
            target["boxes_xyxy"] = x["instances"].gt_boxes.tensor.to(self.device)
            target["input_size"] = input_size
        return targets
