"""The high-order matching cost (Rank-DETR sec. 3.2, eq. 6), switched on late in training."""

import torch

from detrkit.modeling.matcher import HungarianMatcher
from detrkit.structures.box_ops import box_cxcywh_to_xyxy, box_iou
from detrkit.utils.events import current_training_iteration

__all__ = ["HighOrderMatcher"]


class HighOrderMatcher(HungarianMatcher):
    """:class:`HungarianMatcher` whose cost becomes, from training iteration ``matcher_change_iter`` on,

        C = -p[c] * IoU(pred, gt)^alpha        (eq. 6, alpha = ``iou_order_alpha``)

    with ``p`` the predicted probability of the target's class (sigmoid; softmax for ``"ce_cost"``) and the
    plain IoU. Before that iteration it is the standard cost. The iteration is the running step's, read from
    the trainer's event storage (:func:`~detrkit.utils.events.current_training_iteration`: detrkit's and
    detectron2's/detrex's trainers both keep one); matching outside a trainer's storage is an error.

    Args:
        cost_class, cost_bbox, cost_giou, cost_class_type, alpha, gamma: the standard cost (see
            :class:`HungarianMatcher`).
        iou_order_alpha: the IoU exponent. Default 4.
        matcher_change_iter: first iteration of the high-order cost (12 epochs: 67,500 of 90,000).
        iou_eps: added to the IoU's union and the GIoU's enclosing area (the official fork's detrex
            ``box_ops``: 1e-6).
    """

    def __init__(
        self,
        cost_class: float = 1,
        cost_bbox: float = 1,
        cost_giou: float = 1,
        cost_class_type: str = "focal_loss_cost",
        alpha: float = 0.25,
        gamma: float = 2.0,
        iou_order_alpha: float = 4.0,
        matcher_change_iter: int = 67500,
        iou_eps: float = 1e-6,
    ):
        super().__init__(cost_class, cost_bbox, cost_giou, cost_class_type, alpha, gamma, iou_eps)
        self.iou_order_alpha = iou_order_alpha
        self.matcher_change_iter = matcher_change_iter

    def high_order(self) -> bool:
        """Whether the running training step uses the high-order cost."""
        iteration = current_training_iteration()
        if iteration is None:
            raise RuntimeError(
                "HighOrderMatcher needs the training iteration, read from the trainer's EventStorage "
                "(detrkit's or detectron2's trainer); outside a trainer, match inside "
                "`with detrkit.utils.events.EventStorage(iteration):`"
            )
        return iteration >= self.matcher_change_iter

    def cost_matrix(
        self,
        pred_logits: torch.Tensor,
        pred_boxes: torch.Tensor,
        tgt_labels: torch.Tensor,
        tgt_boxes: torch.Tensor,
    ) -> torch.Tensor:
        """``(N, M)`` cost: the standard one before ``matcher_change_iter``, then eq. 6."""
        if not self.high_order():
            return super().cost_matrix(pred_logits, pred_boxes, tgt_labels, tgt_boxes)
        prob = pred_logits.softmax(-1) if self.cost_class_type == "ce_cost" else pred_logits.sigmoid()
        iou, _ = box_iou(box_cxcywh_to_xyxy(pred_boxes), box_cxcywh_to_xyxy(tgt_boxes), eps=self.iou_eps)
        return -prob[:, tgt_labels] * iou**self.iou_order_alpha

    def extra_repr(self) -> str:
        return (
            f"{super().extra_repr()}, iou_order_alpha={self.iou_order_alpha}, "
            f"matcher_change_iter={self.matcher_change_iter}"
        )
