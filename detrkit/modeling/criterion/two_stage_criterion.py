"""Set criterion of two-stage detectors: adds the losses of the encoder proposals (suffix ``_enc``)."""

from collections.abc import Sequence

import torch
from torch import nn

from detrkit.modeling.criterion.set_criterion import SetCriterion

__all__ = ["TwoStageCriterion"]


class TwoStageCriterion(SetCriterion):
    """:class:`SetCriterion` plus, when ``outputs["enc_outputs"]`` (``pred_logits``, ``pred_boxes`` of the
    encoder proposals) is present, their losses under keys ``loss_class_enc``, ``loss_bbox_enc``,
    ``loss_giou_enc``.

    Args:
        two_stage_binary_cls: match and classify the proposals as one foreground class (label 0 for every
            target), as Deformable-DETR / H-Deformable-DETR do; DINO uses the real classes (False).
        enc_class_loss: the encoder proposals' class loss; None: ``class_loss`` (Rank-DETR's official code
            keeps the focal loss here while the decoder layers use the GIoU-aware one).
        others: see :class:`SetCriterion`.
    """

    def __init__(
        self,
        num_classes: int,
        matcher: nn.Module,
        weight_dict: dict,
        losses: Sequence[str] = ("class", "boxes"),
        eos_coef: float | None = None,
        loss_class_type: str | None = None,
        alpha: float | None = None,
        gamma: float | None = None,
        two_stage_binary_cls: bool = False,
        l1_box_format: str = "cxcywh",
        iou_eps: float = 1e-6,
        class_loss: nn.Module | None = None,
        extra_losses: Sequence[nn.Module] = (),
        enc_class_loss: nn.Module | None = None,
    ):
        super().__init__(
            num_classes,
            matcher,
            weight_dict,
            losses,
            eos_coef,
            loss_class_type,
            alpha,
            gamma,
            l1_box_format,
            iou_eps,
            class_loss,
            extra_losses,
        )
        self.two_stage_binary_cls = two_stage_binary_cls
        self.enc_class_loss = enc_class_loss

    def matching_losses(self, outputs: dict, targets: list[dict], num_boxes: float) -> dict:
        """Final layer, ``aux_outputs`` (``_i``) and ``enc_outputs`` (``_enc``) losses."""
        losses = super().matching_losses(outputs, targets, num_boxes)
        if "enc_outputs" in outputs:
            if self.two_stage_binary_cls:
                targets = [{**t, "labels": torch.zeros_like(t["labels"])} for t in targets]
            enc = outputs["enc_outputs"]
            indices = self.matcher(enc, targets)
            losses.update(
                self.layer_losses(enc, targets, indices, num_boxes, "_enc", class_loss=self.enc_class_loss)
            )
        return losses
