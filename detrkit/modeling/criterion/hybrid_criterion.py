"""Hybrid matching (H-Deformable-DETR): a one-to-many branch of extra queries trained against the ground
truth repeated ``k`` times, wrapped around any :class:`SetCriterion`."""

import torch.nn as nn

from detrkit.modeling.criterion.set_criterion import SetCriterion, average_num_boxes

__all__ = ["HybridMatchingCriterion", "repeat_targets"]


def repeat_targets(targets: list[dict], k: int) -> list[dict]:
    """Each target dict with its ``labels`` ``(n,)`` and ``boxes`` ``(n, 4)`` repeated ``k`` times
    (``(k * n,)``, ``(k * n, 4)``: the whole set, k times over)."""
    return [{**t, "labels": t["labels"].repeat(k), "boxes": t["boxes"].repeat(k, 1)} for t in targets]


class HybridMatchingCriterion(nn.Module):
    """One-to-one losses from ``criterion`` plus one-to-many losses, as H-Deformable-DETR computes them.

    The one-to-many branch (``outputs["pred_logits_one2many"]``, ``"pred_boxes_one2many"`` and the list
    ``"aux_outputs_one2many"``) is Hungarian-matched to :func:`repeat_targets` ``(targets, k_one2many)``,
    normalised by the repeated box count, and its losses (final and aux layers) are multiplied by
    ``lambda_one2many`` and returned with the suffix ``_one2many`` (``loss_class_one2many``,
    ``loss_bbox_0_one2many``, ...). Losses are unweighted; ``weight_dict`` is the wrapped criterion's, which
    needs the ``_one2many`` keys (:func:`build_weight_dict` with ``one2many=True``).

    Args:
        criterion: the one-to-one criterion; its matcher and losses are reused for the one-to-many branch.
        k_one2many: how many times the ground truth is repeated (H-DETR: 6).
        lambda_one2many: factor of the one-to-many losses (H-DETR: 1.0).
    """

    def __init__(self, criterion: SetCriterion, k_one2many: int = 6, lambda_one2many: float = 1.0):
        super().__init__()
        if k_one2many < 1:
            raise ValueError(f"k_one2many must be >= 1, got {k_one2many}")
        self.criterion = criterion
        self.k_one2many = k_one2many
        self.lambda_one2many = lambda_one2many

    @property
    def weight_dict(self) -> dict:
        return self.criterion.weight_dict

    def forward(self, outputs: dict, targets: list[dict], dn_metas: dict | None = None) -> dict:
        """Unweighted one-to-one losses (``dn_metas`` is passed on when given) and ``_one2many`` losses.

        Args:
            outputs: the one-to-one outputs the wrapped criterion reads, plus ``"pred_logits_one2many"``
                ``(bs, nq_one2many, C)``, ``"pred_boxes_one2many"`` ``(bs, nq_one2many, 4)`` and optionally
                ``"aux_outputs_one2many"`` (list of dicts with ``pred_logits``, ``pred_boxes``).
            targets: as for :meth:`SetCriterion.forward`.
        """
        if dn_metas is None:
            losses = self.criterion(outputs, targets)
        else:
            losses = self.criterion(outputs, targets, dn_metas)
        missing = [k for k in ("pred_logits_one2many", "pred_boxes_one2many") if k not in outputs]
        if missing:
            raise ValueError(f"HybridMatchingCriterion: outputs lack {missing} (the one-to-many branch)")
        one2many_outputs = {
            "pred_logits": outputs["pred_logits_one2many"],
            "pred_boxes": outputs["pred_boxes_one2many"],
            "aux_outputs": outputs.get("aux_outputs_one2many", []),
        }
        repeated = repeat_targets(targets, self.k_one2many)
        num_boxes = average_num_boxes(repeated, one2many_outputs["pred_logits"].device)
        one2many = self.criterion.matching_losses(one2many_outputs, repeated, num_boxes)
        losses.update({k + "_one2many": v * self.lambda_one2many for k, v in one2many.items()})
        return losses
