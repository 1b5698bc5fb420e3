"""One-to-one Hungarian matching of queries to ground-truth boxes (DETR), with detrex's signature."""

import torch
import torch.nn as nn
from scipy.optimize import linear_sum_assignment

from detrkit.structures.box_ops import box_cxcywh_to_xyxy, generalized_box_iou

__all__ = ["HungarianMatcher"]

_CLASS_COST_TYPES = ("ce_cost", "focal_loss_cost")


class HungarianMatcher(nn.Module):
    """Assigns each ground-truth box to at most one query by minimising, per image (scipy
    ``linear_sum_assignment``), the cost

        ``cost_class * C_class + cost_bbox * L1(cxcywh) + cost_giou * (-GIoU(xyxy))``

    where ``C_class`` is, for ``"focal_loss_cost"`` with ``p = sigmoid(logit)`` of the GT's class,
    ``alpha (1-p)^gamma (-log p) - (1-alpha) p^gamma (-log(1-p))`` (a positive-minus-negative focal loss),
    and for ``"ce_cost"`` ``-softmax(logits)[GT class]``. Unmatched queries are "no object".

    Args:
        cost_class, cost_bbox, cost_giou: weights of the three terms (not all zero).
        cost_class_type: ``"focal_loss_cost"`` or ``"ce_cost"``.
        alpha, gamma: focal parameters of the focal class cost.
        iou_eps: added to the union and to the enclosing area of the GIoU before dividing: 1e-6 is detrex's
            ``box_ops`` (DINO, H-DETR, Focus-DETR, Rank-DETR), 0 torchvision's (Salience DETR).
    """

    def __init__(
        self,
        cost_class: float = 1,
        cost_bbox: float = 1,
        cost_giou: float = 1,
        cost_class_type: str = "focal_loss_cost",
        alpha: float = 0.25,
        gamma: float = 2.0,
        iou_eps: float = 1e-6,
    ):
        super().__init__()
        if cost_class == 0 and cost_bbox == 0 and cost_giou == 0:
            raise ValueError("HungarianMatcher: cost_class, cost_bbox and cost_giou cannot all be 0")
        if cost_class_type not in _CLASS_COST_TYPES:
            raise ValueError(
                f"HungarianMatcher: cost_class_type must be one of {_CLASS_COST_TYPES}, "
                f"got {cost_class_type!r}"
            )
        self.cost_class = cost_class
        self.cost_bbox = cost_bbox
        self.cost_giou = cost_giou
        self.cost_class_type = cost_class_type
        self.alpha = alpha
        self.gamma = gamma
        self.iou_eps = iou_eps

    def class_cost(self, pred_logits: torch.Tensor, tgt_labels: torch.Tensor) -> torch.Tensor:
        """``(N, M)`` classification cost of ``(N, C)`` logits against ``(M,)`` labels."""
        if self.cost_class_type == "ce_cost":
            return -pred_logits.softmax(-1)[:, tgt_labels]
        prob = pred_logits.sigmoid()[:, tgt_labels]
        pos = self.alpha * (1 - prob) ** self.gamma * -(prob + 1e-8).log()
        neg = (1 - self.alpha) * prob**self.gamma * -(1 - prob + 1e-8).log()
        return pos - neg

    def cost_matrix(
        self,
        pred_logits: torch.Tensor,
        pred_boxes: torch.Tensor,
        tgt_labels: torch.Tensor,
        tgt_boxes: torch.Tensor,
    ) -> torch.Tensor:
        """``(N, M)`` total cost of ``N`` predictions (logits ``(N, C)``, cxcywh boxes ``(N, 4)``) against
        ``M`` targets (labels ``(M,)``, cxcywh boxes ``(M, 4)``)."""
        cost_bbox = torch.cdist(pred_boxes, tgt_boxes, p=1)
        cost_giou = -generalized_box_iou(
            box_cxcywh_to_xyxy(pred_boxes), box_cxcywh_to_xyxy(tgt_boxes), eps=self.iou_eps
        )
        cost_class = self.class_cost(pred_logits, tgt_labels)
        return self.cost_bbox * cost_bbox + self.cost_class * cost_class + self.cost_giou * cost_giou

    @torch.no_grad()
    def forward(self, outputs: dict, targets: list[dict]) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """Match the predictions of a batch to its targets.

        Args:
            outputs: ``"pred_logits"`` ``(bs, num_queries, C)`` and ``"pred_boxes"`` ``(bs, num_queries, 4)``
                normalised cxcywh; other keys are ignored.
            targets: ``bs`` dicts with ``"labels"`` ``(n_i,)`` int64 in ``[0, C)`` and ``"boxes"``
                ``(n_i, 4)`` normalised cxcywh.

        Returns:
            per image, ``(src_idx, tgt_idx)``: two int64 CPU tensors of length ``min(num_queries, n_i)``;
            query ``src_idx[k]`` is matched to target ``tgt_idx[k]`` (src_idx sorted ascending).
        """
        pred_logits, pred_boxes = outputs["pred_logits"], outputs["pred_boxes"]
        bs, num_queries, num_classes = pred_logits.shape
        tgt_labels = torch.cat([t["labels"] for t in targets]).long()
        tgt_boxes = torch.cat([t["boxes"] for t in targets]).float()
        if tgt_labels.numel() and not (0 <= int(tgt_labels.min()) and int(tgt_labels.max()) < num_classes):
            raise ValueError(
                f"HungarianMatcher: target labels must be in [0, {num_classes}) (the logits have "
                f"{num_classes} classes), got labels {sorted(set(tgt_labels.tolist()))}"
            )
        cost = self.cost_matrix(
            pred_logits.flatten(0, 1).float(), pred_boxes.flatten(0, 1).float(), tgt_labels, tgt_boxes
        )
        cost = cost.view(bs, num_queries, -1).cpu()
        if not torch.isfinite(cost).all():
            raise ValueError("HungarianMatcher: the cost matrix has NaN or inf (non-finite predictions?)")
        sizes = [len(t["boxes"]) for t in targets]
        indices = [linear_sum_assignment(c[i].numpy()) for i, c in enumerate(cost.split(sizes, -1))]
        return [
            (torch.as_tensor(i, dtype=torch.int64), torch.as_tensor(j, dtype=torch.int64)) for i, j in indices
        ]

    def __repr__(self, _repr_indent: int = 0) -> str:
        """nn.Module's repr, every line after the first indented by ``_repr_indent`` spaces (detrex's criteria
        print their matcher with ``matcher.__repr__(_repr_indent=8)``)."""
        return super().__repr__().replace("\n", "\n" + " " * _repr_indent)

    def extra_repr(self) -> str:
        return (
            f"cost_class={self.cost_class}, cost_bbox={self.cost_bbox}, cost_giou={self.cost_giou}, "
            f"cost_class_type={self.cost_class_type!r}, alpha={self.alpha}, gamma={self.gamma}, "
            f"iou_eps={self.iou_eps}"
        )
