"""Set criterion of two-stage detectors: adds the losses of the encoder proposals (suffix ``_enc``)."""

from collections.abc import Sequence

import torch

from detrkit.modeling.criterion.set_criterion import SetCriterion

__all__ = ["TwoStageCriterion"]


class TwoStageCriterion(SetCriterion):
    """:class:`SetCriterion` plus, when ``outputs["enc_outputs"]`` (``pred_logits``, ``pred_boxes`` of the
    encoder proposals) is present, their losses under keys ``loss_class_enc``, ``loss_bbox_enc``,
    ``loss_giou_enc``.

    Args:
        two_stage_binary_cls: match and classify the proposals as one foreground class (label 0 for every
            target), as Deformable-DETR / H-Deformable-DETR do; DINO uses the real classes (False).
        others: see :class:`SetCriterion`.
    """

    def __init__(
        self,
        num_classes: int,
        matcher,
        weight_dict: dict,
        losses: Sequence[str] = ("class", "boxes"),
        eos_coef: float | None = None,
        loss_class_type: str = "focal_loss",
        alpha: float = 0.25,
        gamma: float = 2.0,
        two_stage_binary_cls: bool = False,
        iou_eps: float = 1e-6,
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
            iou_eps=iou_eps,
        )
        self.two_stage_binary_cls = two_stage_binary_cls

    def matching_losses(self, outputs: dict, targets: list[dict], num_boxes: float) -> dict:
        """Final layer, ``aux_outputs`` (``_i``) and ``enc_outputs`` (``_enc``) losses."""
        losses = super().matching_losses(outputs, targets, num_boxes)
        if "enc_outputs" in outputs:
            if self.two_stage_binary_cls:
                targets = [{**t, "labels": torch.zeros_like(t["labels"])} for t in targets]
            losses.update(self.layer_losses(outputs["enc_outputs"], targets, num_boxes, suffix="_enc"))
        return losses
