"""DETR's set criterion: Hungarian-match each decoder layer's predictions to the targets, then the
classification loss of the ``class_loss`` slot, L1 and GIoU losses on the matches, and any extra losses
(detrex ``SetCriterion``)."""

from collections.abc import Sequence

import torch
import torch.nn as nn

from detrkit.modeling.criterion.class_losses import (
    Indices,
    StageMatches,
    class_loss_from_detrex_keywords,
    matched_targets,
)
from detrkit.modeling.losses import giou_loss, l1_loss
from detrkit.structures.box_ops import box_cxcywh_to_xyxy
from detrkit.utils import comm

__all__ = ["SetCriterion", "average_num_boxes"]


def average_num_boxes(targets: list[dict], device: torch.device) -> float:
    """Number of target boxes per process, averaged over all processes and clamped to at least 1
    (the normaliser of every matching loss)."""
    num_boxes = torch.tensor(float(sum(len(t["labels"]) for t in targets)), device=device)
    return max(comm.average_over_processes(num_boxes), 1.0)


class SetCriterion(nn.Module):
    """Losses of the final decoder layer (keys ``loss_class``, ``loss_bbox``, ``loss_giou``) and of each
    layer in ``outputs["aux_outputs"]`` (same keys with suffix ``_0``, ``_1``, ...), each layer matched
    separately, plus the ``extra_losses``. All are normalised by :func:`average_num_boxes` (the class loss
    as it says) and returned unweighted.

    Args:
        num_classes: number of object categories (no "no object" class).
        matcher: called as ``matcher(outputs, targets)``, returns per image ``(src_idx, tgt_idx)``.
        weight_dict: weight of every loss key (see :func:`build_weight_dict`); applied by the caller.
        losses: which losses to compute: ``"class"`` and/or ``"boxes"`` (L1 + GIoU).
        class_loss: the ``loss_class`` module (see :mod:`detrkit.modeling.criterion.class_losses`: one-hot
            focal, cross-entropy; the projects add IoU-aware, GIoU-aware and cross-stage ones). None builds it
            from detrex's keywords ``loss_class_type``, ``alpha``, ``gamma``, ``eos_coef``
            (:func:`class_loss_from_detrex_keywords`; default the focal loss with alpha 0.25, gamma 2), which
            must then not be given with it.
        extra_losses: modules called as ``loss(outputs, targets)`` returning a dict of further unweighted
            losses (Focus-DETR's ``loss_select``, Salience DETR's ``loss_salience``).
        l1_box_format: the box form ``loss_bbox`` compares: ``"cxcywh"`` (DETR, detrex) or ``"xyxy"``
            (Sparse R-CNN, AdaMixer, StageInteractor), both normalised by the image size.
        iou_eps: added to the union and to the enclosing area of the GIoU (and of the IoUs a class loss
            computes) before dividing: 1e-6 is detrex's ``box_ops`` (DINO, H-DETR, Focus-DETR, Rank-DETR), 0
            torchvision's (Salience DETR's official code).
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
        l1_box_format: str = "cxcywh",
        iou_eps: float = 1e-6,
        class_loss: nn.Module | None = None,
        extra_losses: Sequence[nn.Module] = (),
    ):
        super().__init__()
        if l1_box_format not in ("cxcywh", "xyxy"):
            raise ValueError(f"l1_box_format must be 'cxcywh' or 'xyxy', got {l1_box_format!r}")
        unknown = [name for name in losses if name not in ("class", "boxes")]
        if unknown:
            raise ValueError(f"unknown losses {unknown}; available: ['boxes', 'class']")
        self.num_classes = num_classes
        self.matcher = matcher
        self.weight_dict = dict(weight_dict)
        self.losses = list(losses)
        self.class_loss = class_loss_from_detrex_keywords(
            num_classes, class_loss, loss_class_type, alpha, gamma, eos_coef
        )
        self.extra_losses = nn.ModuleList(extra_losses)
        self.l1_box_format = l1_box_format
        self.iou_eps = iou_eps

    def loss_labels(
        self,
        outputs: dict,
        targets: list[dict],
        indices: Indices,
        num_boxes: float,
        class_loss: nn.Module | None = None,
        stages: StageMatches | None = None,
    ) -> dict:
        """``loss_class``: ``class_loss`` (default :attr:`class_loss`) of one layer's ``outputs`` and
        matches ``indices``; ``stages`` the matches of every decoder layer, for cross-layer class losses."""
        class_loss = self.class_loss if class_loss is None else class_loss
        return {
            "loss_class": class_loss(
                outputs, targets, indices, num_boxes, iou_eps=self.iou_eps, stages=stages
            )
        }

    def loss_boxes(self, outputs: dict, targets: list[dict], indices: Indices, num_boxes: float) -> dict:
        """``loss_bbox``: L1 of matched normalised boxes (in ``l1_box_format``) / num_boxes; ``loss_giou``:
        (1 - GIoU) of matched boxes / num_boxes."""
        matched = matched_targets(targets, indices, outputs["pred_boxes"].device)
        src_boxes = outputs["pred_boxes"][matched.batch_idx, matched.query_idx]
        target_boxes = matched.boxes.to(src_boxes)
        src_xyxy, target_xyxy = box_cxcywh_to_xyxy(src_boxes), box_cxcywh_to_xyxy(target_boxes)
        if self.l1_box_format == "xyxy":
            l1 = l1_loss(src_xyxy, target_xyxy, reduction="sum")
        else:
            l1 = l1_loss(src_boxes, target_boxes, reduction="sum")
        return {
            "loss_bbox": l1 / num_boxes,
            "loss_giou": giou_loss(src_xyxy, target_xyxy, eps=self.iou_eps, reduction="sum") / num_boxes,
        }

    def layer_losses(
        self,
        outputs: dict,
        targets: list[dict],
        indices: Indices,
        num_boxes: float,
        suffix: str = "",
        class_loss: nn.Module | None = None,
        stages: StageMatches | None = None,
    ) -> dict:
        """The losses of one layer's ``outputs`` (``pred_logits``, ``pred_boxes``) and matches ``indices``,
        each key followed by ``suffix`` (``class_loss`` and ``stages``: see :meth:`loss_labels`)."""
        losses = {}
        if "class" in self.losses:
            losses.update(self.loss_labels(outputs, targets, indices, num_boxes, class_loss, stages))
        if "boxes" in self.losses:
            losses.update(self.loss_boxes(outputs, targets, indices, num_boxes))
        return {k + suffix: v for k, v in losses.items()}

    @staticmethod
    def decoder_layers(outputs: dict) -> tuple[list[dict], list[str]]:
        """The decoder layers of ``outputs`` in layer order (``aux_outputs`` then the final layer) and the
        suffix of each one's loss keys (``_0``, ``_1``, ..., and ``""`` for the final layer)."""
        aux = list(outputs.get("aux_outputs", []))
        return [*aux, outputs], [f"_{i}" for i in range(len(aux))] + [""]

    def decoder_losses(self, outputs: dict, targets: list[dict], num_boxes: float) -> dict:
        """Losses of every decoder layer (:meth:`decoder_layers`), each matched separately; the class loss
        of layer ``i`` also sees every layer's matches (:class:`StageMatches`)."""
        layers, suffixes = self.decoder_layers(outputs)
        indices = [self.matcher(layer, targets) for layer in layers]
        boxes = [layer["pred_boxes"] for layer in layers]
        losses = {}
        for stage, (layer, suffix) in enumerate(zip(layers, suffixes, strict=True)):
            stages = StageMatches(boxes, indices, stage)
            losses.update(self.layer_losses(layer, targets, indices[stage], num_boxes, suffix, stages=stages))
        return losses

    def matching_losses(self, outputs: dict, targets: list[dict], num_boxes: float) -> dict:
        """Losses of the final layer and of every ``aux_outputs`` layer (suffix ``_i``); two-stage criteria
        add the encoder proposals."""
        return self.decoder_losses(outputs, targets, num_boxes)

    def extra_losses_of(self, outputs: dict, targets: list[dict]) -> dict:
        """The losses of every module in :attr:`extra_losses`; a key given twice is an error."""
        losses = {}
        for loss in self.extra_losses:
            new = loss(outputs, targets)
            clash = sorted(set(new) & set(losses))
            if clash:
                raise ValueError(f"extra loss {type(loss).__name__} returns {clash}, already computed")
            losses.update(new)
        return losses

    def forward(self, outputs: dict, targets: list[dict]) -> dict:
        """Unweighted losses.

        Args:
            outputs: ``"pred_logits"`` ``(bs, nq, C)``, ``"pred_boxes"`` ``(bs, nq, 4)`` (normalised cxcywh)
                and optionally ``"aux_outputs"``: a list of dicts with the same two keys.
            targets: ``bs`` dicts with ``"labels"`` ``(n_i,)`` and ``"boxes"`` ``(n_i, 4)`` normalised cxcywh.

        Returns:
            dict of scalar tensors: ``loss_class``, ``loss_bbox``, ``loss_giou``, ``<key>_<i>`` per aux layer,
            and the extra losses'.
        """
        num_boxes = average_num_boxes(targets, outputs["pred_logits"].device)
        return {**self.matching_losses(outputs, targets, num_boxes), **self.extra_losses_of(outputs, targets)}

    def extra_repr(self) -> str:
        return (
            f"num_classes={self.num_classes}, losses={self.losses}, l1_box_format={self.l1_box_format!r}, "
            f"iou_eps={self.iou_eps}, weight_dict={self.weight_dict}"
        )
