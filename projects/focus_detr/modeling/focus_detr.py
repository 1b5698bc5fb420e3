"""Focus-DETR as a detectron2 model: DINO with the foreground token selector and its loss."""

import torch
from torch import nn

from detrkit.modeling.meta_arch import DINO

__all__ = ["FocusDETR"]


class FocusDETR(DINO):
    """:class:`DINO` with a :class:`~detrkit_projects.focus_detr.modeling.FocusDETRTransformer`.

    The two-stage encoder class head (``class_embed[-1]``) is also the multi-category score head of every
    encoder layer (``encoder_class_heads``, the same module ``num_layers`` times, assigned to
    ``transformer.encoder.class_heads`` as in the official code). The transformer's token
    scores become ``"foreground_logits"`` ``(bs, S)`` and ``"spatial_shapes"`` ``(L, 2)`` in the criterion's
    outputs; the targets carry ``"boxes_xyxy"`` in input-image pixels for the label assignment.

    Args: those of :class:`DINO`.
    """

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        num_encoder_layers = self.transformer.encoder.num_layers
        self.encoder_class_heads = nn.ModuleList([self.class_embed[-1]] * num_encoder_layers)
        self.transformer.encoder.class_heads = self.encoder_class_heads

    def prepare_targets(
        self, batched_inputs: list[dict], input_size: tuple[int, int]
    ) -> list[dict[str, torch.Tensor]]:
        """:meth:`DINO.prepare_targets` plus ``"boxes_xyxy"`` ``(n, 4)``, the boxes in input pixels."""
        targets = super().prepare_targets(batched_inputs, input_size)
        for target, x in zip(targets, batched_inputs, strict=True):
            target["boxes_xyxy"] = x["instances"].gt_boxes.tensor.to(self.device)
        return targets
