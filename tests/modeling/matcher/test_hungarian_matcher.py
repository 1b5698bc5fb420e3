"""HungarianMatcher: a hand-made case with a known assignment, brute force over all assignments on random
small cases (per-pair cost written out from the formulas), empty ground truth and bad input."""

import itertools
import math

import pytest
import torch
from torchvision.ops import box_convert

from detrkit.modeling.matcher import HungarianMatcher


def pair_cost(logits, box, label, gt_box, matcher: HungarianMatcher) -> float:
    """The matching cost of one prediction and one target, term by term."""
    if matcher.cost_class_type == "focal_loss_cost":
        p = torch.sigmoid(logits[label]).item()
        a, g = matcher.alpha, matcher.gamma
        cls = a * (1 - p) ** g * -math.log(p + 1e-8) - (1 - a) * p**g * -math.log(1 - p + 1e-8)
    else:
        cls = -torch.softmax(logits, -1)[label].item()
    l1 = (box - gt_box).abs().sum().item()
    a, b = box_convert(torch.stack([box, gt_box]), "cxcywh", "xyxy").double()
    giou = giou_by_hand(a, b, matcher.iou_eps)
    return matcher.cost_class * cls + matcher.cost_bbox * l1 - matcher.cost_giou * giou


def giou_by_hand(a: torch.Tensor, b: torch.Tensor, eps: float) -> float:
    """GIoU of two xyxy boxes, with ``eps`` added to the union and to the hull (detrex's box_ops: 1e-6)."""
    inter = max(min(a[2], b[2]) - max(a[0], b[0]), 0) * max(min(a[3], b[3]) - max(a[1], b[1]), 0)
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    hull = (max(a[2], b[2]) - min(a[0], b[0])) * (max(a[3], b[3]) - min(a[1], b[1]))
    return float(inter / (union + eps) - (hull - union) / (hull + eps))


@pytest.mark.parametrize("iou_eps", [1e-6, 0.0])
def test_giou_cost_divides_by_union_and_hull_plus_iou_eps(iou_eps):
    """float64 small boxes, where an eps of 1e-6 moves the GIoU by about 1%."""
    g = torch.Generator().manual_seed(3)
    boxes = torch.cat(
        [torch.rand(4, 2, generator=g) * 0.02 + 0.5, torch.rand(4, 2, generator=g) * 0.01 + 0.005], 1
    )
    gt = torch.cat(
        [torch.rand(3, 2, generator=g) * 0.02 + 0.5, torch.rand(3, 2, generator=g) * 0.01 + 0.005], 1
    )
    matcher = HungarianMatcher(cost_class=0, cost_bbox=0, cost_giou=1, iou_eps=iou_eps)
    cost = matcher.cost_matrix(
        torch.zeros(4, 2, dtype=torch.float64), boxes.double(), torch.zeros(3).long(), gt.double()
    )
    a, b = box_convert(boxes.double(), "cxcywh", "xyxy"), box_convert(gt.double(), "cxcywh", "xyxy")
    expected = torch.tensor(
        [[-giou_by_hand(a[q], b[t], iou_eps) for t in range(3)] for q in range(4)], dtype=torch.float64
    )
    torch.testing.assert_close(cost, expected, rtol=1e-12, atol=1e-15)


def brute_force(logits, boxes, labels, gt_boxes, matcher) -> tuple[float, set]:
    """Minimal total cost over every injective assignment, and its (query, target) pairs."""
    nq, ng = len(boxes), len(gt_boxes)
    cost = [
        [pair_cost(logits[q], boxes[q], labels[t], gt_boxes[t], matcher) for t in range(ng)]
        for q in range(nq)
    ]
    best = (math.inf, set())
    if nq >= ng:
        candidates = ([(perm[t], t) for t in range(ng)] for perm in itertools.permutations(range(nq), ng))
    else:
        candidates = ([(q, perm[q]) for q in range(nq)] for perm in itertools.permutations(range(ng), nq))
    for pairs in candidates:
        total = sum(cost[q][t] for q, t in pairs)
        if total < best[0]:
            best = (total, set(pairs))
    return best


def random_boxes(n: int, g: torch.Generator) -> torch.Tensor:
    return torch.cat(
        [torch.rand(n, 2, generator=g) * 0.6 + 0.2, torch.rand(n, 2, generator=g) * 0.3 + 0.05], 1
    )


def test_known_assignment():
    # Query 2 sits on GT 0 and query 0 on GT 1; query 1 is far from both.
    matcher = HungarianMatcher(cost_class=2.0, cost_bbox=5.0, cost_giou=2.0)
    outputs = {
        "pred_logits": torch.tensor([[[-3.0, 3.0], [0.0, 0.0], [3.0, -3.0]]]),
        "pred_boxes": torch.tensor([[[0.7, 0.7, 0.2, 0.2], [0.1, 0.9, 0.05, 0.05], [0.3, 0.3, 0.2, 0.2]]]),
    }
    targets = [
        {
            "labels": torch.tensor([0, 1]),
            "boxes": torch.tensor([[0.31, 0.3, 0.2, 0.2], [0.7, 0.7, 0.2, 0.21]]),
        }
    ]
    ((src, tgt),) = matcher(outputs, targets)
    assert src.dtype == tgt.dtype == torch.int64 and src.device.type == "cpu"
    assert src.tolist() == [0, 2] and tgt.tolist() == [1, 0]


@pytest.mark.parametrize("cost_class_type", ["focal_loss_cost", "ce_cost"])
def test_equals_brute_force_on_random_cases(cost_class_type):
    g = torch.Generator().manual_seed(0)
    matcher = HungarianMatcher(2.0, 5.0, 2.0, cost_class_type=cost_class_type, alpha=0.3, gamma=1.5)
    for num_queries, sizes in [(4, [2, 4]), (5, [3, 0]), (3, [5, 1]), (5, [5, 2])]:
        num_classes = 3
        outputs = {
            "pred_logits": torch.randn(len(sizes), num_queries, num_classes, generator=g) * 2,
            "pred_boxes": torch.stack([random_boxes(num_queries, g) for _ in sizes]),
        }
        targets = [
            {"labels": torch.randint(num_classes, (n,), generator=g), "boxes": random_boxes(n, g)}
            for n in sizes
        ]
        indices = matcher(outputs, targets)
        for b, ((src, tgt), t) in enumerate(zip(indices, targets, strict=True)):
            logits, boxes = outputs["pred_logits"][b], outputs["pred_boxes"][b]
            best_cost, best_pairs = brute_force(logits, boxes, t["labels"], t["boxes"], matcher)
            assert len(src) == len(tgt) == min(num_queries, len(t["labels"]))
            assert set(zip(src.tolist(), tgt.tolist(), strict=True)) == best_pairs
            ours = sum(
                pair_cost(logits[q], boxes[q], t["labels"][j], t["boxes"][j], matcher)
                for q, j in zip(src.tolist(), tgt.tolist(), strict=True)
            )
            assert ours == pytest.approx(best_cost, abs=1e-5)


def test_empty_ground_truth():
    matcher = HungarianMatcher()
    outputs = {"pred_logits": torch.randn(2, 3, 4), "pred_boxes": torch.rand(2, 3, 4) * 0.5 + 0.1}
    targets = [
        {"labels": torch.zeros(0, dtype=torch.int64), "boxes": torch.zeros(0, 4)},
        {"labels": torch.tensor([2]), "boxes": torch.tensor([[0.5, 0.5, 0.2, 0.2]])},
    ]
    (src0, tgt0), (src1, tgt1) = matcher(outputs, targets)
    assert src0.numel() == tgt0.numel() == 0 and src0.dtype == torch.int64
    assert len(src1) == 1 and tgt1.tolist() == [0]
    empty = matcher(outputs, [targets[0], targets[0]])
    assert all(s.numel() == 0 and t.numel() == 0 for s, t in empty)


def test_bad_input():
    with pytest.raises(ValueError, match="cannot all be 0"):
        HungarianMatcher(0, 0, 0)
    with pytest.raises(ValueError, match="cost_class_type"):
        HungarianMatcher(cost_class_type="l2")
    matcher = HungarianMatcher()
    outputs = {"pred_logits": torch.randn(1, 3, 2), "pred_boxes": torch.rand(1, 3, 4) * 0.5 + 0.1}
    with pytest.raises(ValueError, match=r"labels must be in \[0, 2\).*\[5\]"):
        matcher(outputs, [{"labels": torch.tensor([5]), "boxes": torch.tensor([[0.5, 0.5, 0.2, 0.2]])}])
    outputs["pred_logits"][0, 1, 1] = float("nan")
    with pytest.raises(ValueError, match="NaN"):
        matcher(outputs, [{"labels": torch.tensor([1]), "boxes": torch.tensor([[0.5, 0.5, 0.2, 0.2]])}])


def test_repr_takes_detrex_s_indent_keyword():
    matcher = HungarianMatcher(cost_class=2.0, cost_bbox=5.0, cost_giou=2.0)
    plain = repr(matcher)
    assert plain.startswith("HungarianMatcher(cost_class=2.0, cost_bbox=5.0, cost_giou=2.0")
    holder = torch.nn.Module()
    holder.matcher = matcher
    assert "\n" in repr(holder)  # nested: the module tree still prints through __repr__()
    assert matcher.__repr__(_repr_indent=8) == plain.replace("\n", "\n" + " " * 8)
