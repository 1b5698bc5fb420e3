"""Which detections are correct at an IoU threshold, and the score threshold that shows a detector best: the
one with the highest F1 over a dataset, used by ``tools/visualize.py`` to pick what to draw."""

import torch

from detrkit.structures import Boxes, pairwise_iou

__all__ = ["best_f1_threshold", "match_detections"]


def match_detections(
    pred_boxes: torch.Tensor,
    pred_scores: torch.Tensor,
    pred_classes: torch.Tensor,
    gt_boxes: torch.Tensor,
    gt_classes: torch.Tensor,
    iou_threshold: float = 0.5,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Greedy matching of one image's detections to its ground truth, as COCO's evaluation does: in
    descending score order (equal scores by index), each detection takes the unmatched ground-truth box of its
    class with the highest IoU, if that IoU is at least ``iou_threshold``.

    Args:
        pred_boxes: ``(P, 4)`` xyxy; pred_scores: ``(P,)``; pred_classes: ``(P,)``.
        gt_boxes: ``(G, 4)`` xyxy; gt_classes: ``(G,)``.

    Returns:
        ``pred_match`` ``(P,)`` int64: the index of the ground-truth box each detection matched, -1 for a
        false positive; ``gt_match`` ``(G,)`` int64: the detection that matched each ground-truth box, -1 for
        a missed one. A detection matched at score s is also matched for every threshold <= s.
    """
    num_preds, num_gts = len(pred_boxes), len(gt_boxes)
    pred_match = torch.full((num_preds,), -1, dtype=torch.int64)
    gt_match = torch.full((num_gts,), -1, dtype=torch.int64)
    if num_preds == 0 or num_gts == 0:
        return pred_match, gt_match
    iou = pairwise_iou(Boxes(pred_boxes.float().cpu()), Boxes(gt_boxes.float().cpu()))
    iou[pred_classes.cpu()[:, None] != gt_classes.cpu()[None, :]] = -1.0
    for p in pred_scores.cpu().sort(descending=True, stable=True)[1].tolist():
        candidates = iou[p].masked_fill(gt_match >= 0, -1.0)
        best = int(candidates.argmax())
        if candidates[best] >= iou_threshold:
            pred_match[p], gt_match[best] = best, p
    return pred_match, gt_match


def best_f1_threshold(
    scores: torch.Tensor, is_true_positive: torch.Tensor, num_ground_truth: int
) -> tuple[float, float]:
    """The score threshold with the highest F1 = 2 TP / (2 TP + FP + FN) when the detections scoring at
    least it are kept.

    Args:
        scores: ``(N,)`` scores of all detections of a dataset.
        is_true_positive: ``(N,)`` bool, from :func:`match_detections` (``pred_match >= 0``).
        num_ground_truth: number of ground-truth boxes of the dataset (TP + FN at any threshold).

    Returns:
        ``(threshold, f1)``: the threshold is one of ``scores`` (the lowest kept), the lowest one among
        equal F1; ``(1.0, 0.0)`` when nothing is detected correctly.
    """
    if len(scores) != len(is_true_positive):
        raise ValueError(f"best_f1_threshold: {len(scores)} scores but {len(is_true_positive)} flags")
    if len(scores) == 0 or not bool(is_true_positive.any()):
        return 1.0, 0.0
    order = scores.double().sort(descending=True, stable=True)[1]
    sorted_scores = scores.double()[order]
    tp = is_true_positive[order].double().cumsum(0)
    fp = (~is_true_positive[order]).double().cumsum(0)
    # only the last of equal scores is a threshold: keeping a score keeps all of its ties
    last_of_ties = torch.ones_like(sorted_scores, dtype=torch.bool)
    last_of_ties[:-1] = sorted_scores[1:] != sorted_scores[:-1]
    f1 = 2 * tp / (2 * tp + fp + (num_ground_truth - tp))
    f1[~last_of_ties] = -1.0
    best = int(torch.nonzero(f1 == f1.max()).max())  # the lowest threshold among equal F1
    return float(sorted_scores[best]), float(f1[best])
