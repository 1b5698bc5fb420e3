"""DETR's set criterion: Hungarian-match each decoder layer's predictions to the targets, then
classification (focal or cross-entropy), L1 and GIoU losses on the matches (detrex ``SetCriterion``)."""

from collections.abc import Callable, Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F

from detrkit.modeling.losses import giou_loss, l1_loss, sigmoid_focal_loss
from detrkit.structures.box_ops import box_cxcywh_to_xyxy
from detrkit.utils import comm

__all__ = ["SetCriterion", "average_num_boxes"]

Indices = list[tuple[torch.Tensor, torch.Tensor]]


def average_num_boxes(targets: list[dict], device: torch.device) -> float:
    """Number of target boxes per process, averaged over all processes and clamped to at least 1
    (the normaliser of every matching loss)."""
    num_boxes = torch.tensor(float(sum(len(t["labels"]) for t in targets)), device=device)
    return max(comm.average_over_processes(num_boxes), 1.0)


class SetCriterion(nn.Module):
    """Losses of the final decoder layer (keys ``loss_class``, ``loss_bbox``, ``loss_giou``) and of each
    layer in ``outputs["aux_outputs"]`` (same keys with suffix ``_0``, ``_1``, ...), each layer matched
    separately. All are normalised by :func:`average_num_boxes` and returned unweighted.

    Args:
        num_classes: number of object categories (no "no object" class).
        matcher: called as ``matcher(outputs, targets)``, returns per image ``(src_idx, tgt_idx)``.
        weight_dict: weight of every loss key (see :func:`build_weight_dict`); applied by the caller.
        losses: which losses to compute: ``"class"`` and/or ``"boxes"`` (L1 + GIoU).
        eos_coef: weight of the "no object" class in the cross-entropy loss (``"ce_loss"`` only).
        loss_class_type: ``"focal_loss"`` (sigmoid focal, logits ``(bs, nq, C)``) or ``"ce_loss"``
            (softmax cross-entropy, logits ``(bs, nq, C + 1)``).
        alpha, gamma: focal loss parameters.
        l1_box_format: the box form ``loss_bbox`` compares: ``"cxcywh"`` (DETR, detrex) or ``"xyxy"``
            (Sparse R-CNN, AdaMixer, StageInteractor), both normalised by the image size.
        iou_eps: added to the union and to the enclosing area of the GIoU (and of the IoUs subclasses
            compute) before dividing: 1e-6 is detrex's ``box_ops`` (DINO, H-DETR, Focus-DETR, Rank-DETR), 0
            torchvision's (Salience DETR's official code).
    """

    def __init__(
        self,
        num_classes: int,
        matcher: nn.Module,
        weight_dict: dict,
        losses: Sequence[str] = ("class", "boxes"),
        eos_coef: float | None = 0.1,
        loss_class_type: str = "focal_loss",
        alpha: float = 0.25,
        gamma: float = 2.0,
        l1_box_format: str = "cxcywh",
        iou_eps: float = 1e-6,
    ):
        super().__init__()
        if loss_class_type not in ("focal_loss", "ce_loss"):
            raise ValueError(f"loss_class_type must be 'focal_loss' or 'ce_loss', got {loss_class_type!r}")
        if l1_box_format not in ("cxcywh", "xyxy"):
            raise ValueError(f"l1_box_format must be 'cxcywh' or 'xyxy', got {l1_box_format!r}")
        if loss_class_type == "ce_loss" and eos_coef is None:
            raise ValueError("loss_class_type 'ce_loss' needs eos_coef (the 'no object' class weight)")
        unknown = [name for name in losses if name not in self.loss_map]
        if unknown:
            raise ValueError(f"unknown losses {unknown}; available: {sorted(self.loss_map)}")
        self.num_classes = num_classes
        self.matcher = matcher
        self.weight_dict = dict(weight_dict)
        self.losses = list(losses)
        self.eos_coef = eos_coef
        self.loss_class_type = loss_class_type
        self.alpha = alpha
        self.gamma = gamma
        self.l1_box_format = l1_box_format
        self.iou_eps = iou_eps
        if loss_class_type == "ce_loss":
            empty_weight = torch.ones(num_classes + 1)
            empty_weight[-1] = eos_coef
            self.register_buffer("empty_weight", empty_weight)

    @property
    def loss_map(self) -> dict:
        return {"class": self.loss_labels, "boxes": self.loss_boxes}

    @staticmethod
    def _get_src_permutation_idx(indices: Indices) -> tuple[torch.Tensor, torch.Tensor]:
        """(batch index, query index) of every matched prediction."""
        batch_idx = torch.cat([torch.full_like(src, i) for i, (src, _) in enumerate(indices)])
        return batch_idx, torch.cat([src for src, _ in indices])

    @staticmethod
    def _get_tgt_permutation_idx(indices: Indices) -> tuple[torch.Tensor, torch.Tensor]:
        """(batch index, target index) of every matched target."""
        batch_idx = torch.cat([torch.full_like(tgt, i) for i, (_, tgt) in enumerate(indices)])
        return batch_idx, torch.cat([tgt for _, tgt in indices])

    def loss_labels(self, outputs: dict, targets: list[dict], indices: Indices, num_boxes: float) -> dict:
        """``loss_class``: focal loss summed over all queries and classes (target one-hot of the matched
        GT class, zero for unmatched queries) / num_boxes; or the weighted cross-entropy mean."""
        src_logits = outputs["pred_logits"]
        target_classes = torch.full(
            src_logits.shape[:2], self.num_classes, dtype=torch.int64, device=src_logits.device
        )
        target_classes[self._get_src_permutation_idx(indices)] = torch.cat(
            [t["labels"][tgt] for t, (_, tgt) in zip(targets, indices, strict=True)]
        ).to(src_logits.device, torch.int64)
        if self.loss_class_type == "ce_loss":
            loss = F.cross_entropy(src_logits.transpose(1, 2), target_classes, self.empty_weight)
        else:
            onehot = F.one_hot(target_classes, self.num_classes + 1)[..., :-1].to(src_logits.dtype)
            loss = (
                sigmoid_focal_loss(src_logits, onehot, alpha=self.alpha, gamma=self.gamma, reduction="sum")
                / num_boxes
            )
        return {"loss_class": loss}

    def loss_boxes(self, outputs: dict, targets: list[dict], indices: Indices, num_boxes: float) -> dict:
        """``loss_bbox``: L1 of matched normalised boxes (in ``l1_box_format``) / num_boxes; ``loss_giou``:
        (1 - GIoU) of matched boxes / num_boxes."""
        src_boxes = outputs["pred_boxes"][self._get_src_permutation_idx(indices)]
        target_boxes = torch.cat([t["boxes"][tgt] for t, (_, tgt) in zip(targets, indices, strict=True)]).to(
            src_boxes
        )
        src_xyxy, target_xyxy = box_cxcywh_to_xyxy(src_boxes), box_cxcywh_to_xyxy(target_boxes)
        if self.l1_box_format == "xyxy":
            l1 = l1_loss(src_xyxy, target_xyxy, reduction="sum")
        else:
            l1 = l1_loss(src_boxes, target_boxes, reduction="sum")
        return {
            "loss_bbox": l1 / num_boxes,
            "loss_giou": giou_loss(src_xyxy, target_xyxy, eps=self.iou_eps, reduction="sum") / num_boxes,
        }

    def get_loss(
        self, loss: str, outputs: dict, targets: list[dict], indices: Indices, num_boxes: float, **kwargs
    ) -> dict:
        """The losses named ``loss`` (a key of :attr:`loss_map`) for one layer's matches."""
        return self.loss_map[loss](outputs, targets, indices, num_boxes, **kwargs)

    def layer_losses(self, outputs: dict, targets: list[dict], num_boxes: float, suffix: str = "") -> dict:
        """Match one layer's ``outputs`` (``pred_logits``, ``pred_boxes``) and return its losses (by
        :meth:`loss_function`), each key followed by ``suffix``."""
        indices = self.matcher(outputs, targets)
        losses = {}
        for loss in self.losses:
            losses.update(self.loss_function(loss, suffix)(outputs, targets, indices, num_boxes))
        return {k + suffix: v for k, v in losses.items()}

    def loss_function(self, loss: str, suffix: str) -> Callable[..., dict]:
        """The function computing the losses named ``loss`` (a key of :attr:`loss_map`) of the layer whose
        keys take ``suffix`` (e.g. ``"_enc"`` for the encoder proposals); here the same for every layer."""
        return self.loss_map[loss]

    @staticmethod
    def decoder_layers(outputs: dict) -> tuple[list[dict], list[str]]:
        """The decoder layers of ``outputs`` in layer order (``aux_outputs`` then the final layer) and the
        suffix of each one's loss keys (``_0``, ``_1``, ..., and ``""`` for the final layer)."""
        aux = list(outputs.get("aux_outputs", []))
        return [*aux, outputs], [f"_{i}" for i in range(len(aux))] + [""]

    def decoder_losses(self, outputs: dict, targets: list[dict], num_boxes: float) -> dict:
        """Losses of every decoder layer (:meth:`decoder_layers`), each matched separately."""
        losses = {}
        for layer, suffix in zip(*self.decoder_layers(outputs), strict=True):
            losses.update(self.layer_losses(layer, targets, num_boxes, suffix=suffix))
        return losses

    def matching_losses(self, outputs: dict, targets: list[dict], num_boxes: float) -> dict:
        """Losses of the final layer and of every ``aux_outputs`` layer (suffix ``_i``); two-stage criteria
        add the encoder proposals."""
        return self.decoder_losses(outputs, targets, num_boxes)

    def forward(self, outputs: dict, targets: list[dict]) -> dict:
        """Unweighted losses.

        Args:
            outputs: ``"pred_logits"`` ``(bs, nq, C)``, ``"pred_boxes"`` ``(bs, nq, 4)`` (normalised cxcywh)
                and optionally ``"aux_outputs"``: a list of dicts with the same two keys.
            targets: ``bs`` dicts with ``"labels"`` ``(n_i,)`` and ``"boxes"`` ``(n_i, 4)`` normalised cxcywh.

        Returns:
            dict of scalar tensors: ``loss_class``, ``loss_bbox``, ``loss_giou``, and ``<key>_<i>`` per aux
            layer.
        """
        return self.matching_losses(
            outputs, targets, average_num_boxes(targets, outputs["pred_logits"].device)
        )

    def extra_repr(self) -> str:
        return (
            f"num_classes={self.num_classes}, losses={self.losses}, "
            f"loss_class_type={self.loss_class_type!r}, eos_coef={self.eos_coef}, alpha={self.alpha}, "
            f"gamma={self.gamma}, l1_box_format={self.l1_box_format!r}, iou_eps={self.iou_eps}, "
            f"weight_dict={self.weight_dict}"
        )
