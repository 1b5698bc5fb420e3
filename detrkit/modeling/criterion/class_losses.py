"""Classification losses of the set criteria: the slot that decides what each matched and unmatched query
should score, and how that is penalised.

A class loss is a module called once per decoder layer (and for the encoder proposals and the denoising
queries) as::

    class_loss(outputs, targets, indices, num_boxes, iou_eps=..., stages=None) -> scalar loss_class

with ``outputs`` the layer's ``pred_logits`` ``(bs, nq, C)`` and ``pred_boxes`` ``(bs, nq, 4)``, ``targets``
the images' ``labels``/``boxes``, ``indices`` the layer's matches, ``num_boxes`` the normaliser, ``iou_eps``
the criterion's IoU eps (for losses whose target is a box overlap) and ``stages`` the matches of every decoder
layer (:class:`StageMatches`, for losses that look across layers; None for the encoder proposals and the
denoising queries). The papers' variants (IoU-aware, GIoU-aware, cross-stage) live in their projects and
take the same call.
"""

from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from detrkit.modeling.losses import sigmoid_focal_loss

__all__ = [
    "CrossEntropyClassLoss",
    "FocalClassLoss",
    "MatchedTargets",
    "StageMatches",
    "class_loss_from_detrex_keywords",
    "matched_targets",
]

Indices = list[tuple[torch.Tensor, torch.Tensor]]


class MatchedTargets(NamedTuple):
    """Every matched (query, target) pair of a layer, flattened over the batch.

    Attributes:
        batch_idx, query_idx: ``(M,)`` int64, the image and query index of each pair.
        labels: ``(M,)`` int64 target classes.
        boxes: ``(M, 4)`` target boxes, normalised cxcywh.
    """

    batch_idx: torch.Tensor
    query_idx: torch.Tensor
    labels: torch.Tensor
    boxes: torch.Tensor

    def onehot(self, logits: torch.Tensor) -> torch.Tensor:
        """``(bs, nq, C)`` 0/1 targets of ``logits`` ``(bs, nq, C)``: 1 at each matched query's class."""
        onehot = torch.zeros_like(logits)
        onehot[self.batch_idx, self.query_idx, self.labels] = 1
        return onehot


def matched_targets(targets: list[dict], indices: Indices, device: torch.device) -> MatchedTargets:
    """The :class:`MatchedTargets` of per-image ``indices`` ``[(query indices, target indices)]`` into
    ``targets`` (``"labels"`` ``(n,)``, ``"boxes"`` ``(n, 4)``), on ``device``."""
    batch_idx = torch.cat([torch.full_like(src, i) for i, (src, _) in enumerate(indices)])
    query_idx = torch.cat([src for src, _ in indices])
    labels = torch.cat([t["labels"][tgt] for t, (_, tgt) in zip(targets, indices, strict=True)])
    boxes = torch.cat([t["boxes"][tgt] for t, (_, tgt) in zip(targets, indices, strict=True)])
    return MatchedTargets(
        batch_idx.to(device), query_idx.to(device), labels.to(device, torch.int64), boxes.to(device)
    )


class StageMatches(NamedTuple):
    """The matches of every decoder layer, seen from one of them.

    Attributes:
        boxes: per layer ``(bs, nq, 4)`` predicted boxes, normalised cxcywh, query ``q`` the same query in
            every layer.
        indices: per layer, per image ``(query indices, target indices)``.
        stage: the layer whose loss is computed.
    """

    boxes: list[torch.Tensor]
    indices: list[Indices]
    stage: int


class FocalClassLoss(nn.Module):
    """DETR's focal class loss (detrex ``loss_class_type="focal_loss"``): the sigmoid focal loss of the
    ``(bs, nq, C)`` logits against one-hot targets (the matched target's class, all zeros for unmatched
    queries), summed over queries and classes and divided by ``num_boxes``. The papers' focal-family class
    losses subclass it: they keep ``alpha``/``gamma`` and change the targets in :meth:`forward`.

    Args:
        alpha, gamma: focal loss parameters. Default 0.25, 2.0.
    """

    def __init__(self, alpha: float = 0.25, gamma: float = 2.0):
        super().__init__()
        self.alpha = alpha
        self.gamma = gamma

    def forward(
        self,
        outputs: dict,
        targets: list[dict],
        indices: Indices,
        num_boxes: float,
        iou_eps: float = 0.0,
        stages: StageMatches | None = None,
    ) -> torch.Tensor:
        """Scalar ``loss_class`` of one layer (arguments: see the module docstring)."""
        logits = outputs["pred_logits"]
        onehot = matched_targets(targets, indices, logits.device).onehot(logits)
        return (
            sigmoid_focal_loss(logits, onehot, alpha=self.alpha, gamma=self.gamma, reduction="sum")
            / num_boxes
        )

    def extra_repr(self) -> str:
        return f"alpha={self.alpha}, gamma={self.gamma}"


class CrossEntropyClassLoss(nn.Module):
    """DETR's softmax class loss (detrex ``loss_class_type="ce_loss"``): the cross-entropy of the
    ``(bs, nq, C + 1)`` logits against the matched class (``C``, "no object", for unmatched queries), class
    ``C`` weighted ``eos_coef``, averaged over the weighted queries.

    Args:
        num_classes: ``C``.
        eos_coef: weight of the "no object" class. Default 0.1.
    """

    def __init__(self, num_classes: int, eos_coef: float = 0.1):
        super().__init__()
        self.num_classes = num_classes
        self.eos_coef = eos_coef
        empty_weight = torch.ones(num_classes + 1)
        empty_weight[-1] = eos_coef
        self.register_buffer("empty_weight", empty_weight)

    def forward(
        self,
        outputs: dict,
        targets: list[dict],
        indices: Indices,
        num_boxes: float,
        iou_eps: float = 0.0,
        stages: StageMatches | None = None,
    ) -> torch.Tensor:
        """Scalar ``loss_class`` of one layer (arguments: see the module docstring; ``num_boxes`` unused)."""
        logits = outputs["pred_logits"]
        if logits.shape[-1] != self.num_classes + 1:
            raise ValueError(
                f"CrossEntropyClassLoss: logits of {logits.shape[-1]} classes, expected num_classes + 1 = "
                f"{self.num_classes + 1} (the last is 'no object')"
            )
        matched = matched_targets(targets, indices, logits.device)
        classes = torch.full(logits.shape[:2], self.num_classes, dtype=torch.int64, device=logits.device)
        classes[matched.batch_idx, matched.query_idx] = matched.labels
        return F.cross_entropy(logits.transpose(1, 2), classes, self.empty_weight)

    def extra_repr(self) -> str:
        return f"num_classes={self.num_classes}, eos_coef={self.eos_coef}"


def class_loss_from_detrex_keywords(
    num_classes: int,
    class_loss: nn.Module | None,
    loss_class_type: str | None,
    alpha: float | None,
    gamma: float | None,
    eos_coef: float | None,
) -> nn.Module:
    """The class loss, said one way: ``class_loss`` itself, or, from detrex's criterion keywords (as
    detrex's configs pass them), :class:`FocalClassLoss` (``loss_class_type`` None or ``"focal_loss"``, with
    ``alpha``/``gamma`` where given) or :class:`CrossEntropyClassLoss` (``"ce_loss"``, with ``eos_coef``);
    as in detrex, the keywords of the other type are accepted and unused.

    Raises:
        ValueError: an unknown ``loss_class_type``, or ``class_loss``
            given together with any of detrex's keywords (they could disagree).
    """
    given = {
        name: value
        for name, value in (
            ("loss_class_type", loss_class_type),
            ("alpha", alpha),
            ("gamma", gamma),
            ("eos_coef", eos_coef),
        )
        if value is not None
    }
    if class_loss is not None:
        if given:
            raise ValueError(
                f"{sorted(given)} given with a class_loss module ({type(class_loss).__name__}); state the "
                "class loss once: its parameters on the module, or detrex's keywords alone"
            )
        return class_loss
    if loss_class_type in (None, "focal_loss"):
        focal = {k: v for k, v in (("alpha", alpha), ("gamma", gamma)) if v is not None}
        return FocalClassLoss(**focal)
    if loss_class_type == "ce_loss":
        return CrossEntropyClassLoss(num_classes, 0.1 if eos_coef is None else eos_coef)
    raise ValueError(f"loss_class_type must be 'focal_loss' or 'ce_loss', got {loss_class_type!r}")
