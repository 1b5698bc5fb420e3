"""The high-order matcher: the standard cost before the switch, -p * IoU^4 after it, and the iteration
from the trainer's event storage (detrkit's trainer here; detectron2's in tests/integration)."""

import math

import pytest
import torch
from torch import nn

from detrkit.engine import SimpleTrainer
from detrkit.modeling.matcher import HungarianMatcher
from detrkit.utils.events import EventStorage
from detrkit_projects.rank_detr.modeling import HighOrderMatcher

COSTS = dict(cost_class=2.0, cost_bbox=5.0, cost_giou=2.0)


def _random_batch():
    g = torch.Generator().manual_seed(0)
    outputs = {
        "pred_logits": torch.randn(2, 12, 5, generator=g),
        "pred_boxes": torch.rand(2, 12, 4, generator=g) * 0.4 + 0.3,
    }
    targets = [
        {"labels": torch.tensor([0, 3, 4]), "boxes": torch.rand(3, 4, generator=g) * 0.4 + 0.3},
        {"labels": torch.tensor([2]), "boxes": torch.rand(1, 4, generator=g) * 0.4 + 0.3},
    ]
    return outputs, targets


def _same(a, b):
    return all(torch.equal(x, y) for pa, pb in zip(a, b, strict=True) for x, y in zip(pa, pb, strict=True))


def test_before_the_switch_it_is_the_hungarian_matcher():
    outputs, targets = _random_batch()
    reference = HungarianMatcher(**COSTS)(outputs, targets)
    matcher = HighOrderMatcher(**COSTS, matcher_change_iter=100)
    with EventStorage(99):
        assert _same(matcher(outputs, targets), reference)
        cost = matcher.cost_matrix(
            outputs["pred_logits"][0], outputs["pred_boxes"][0], targets[0]["labels"], targets[0]["boxes"]
        )
    torch.testing.assert_close(
        cost,
        HungarianMatcher(**COSTS).cost_matrix(
            outputs["pred_logits"][0], outputs["pred_boxes"][0], targets[0]["labels"], targets[0]["boxes"]
        ),
    )


def test_after_the_switch_the_higher_iou_prediction_wins():
    # query 0: p = 0.9, IoU 0.5 with the target; query 1: p = 0.5, IoU 0.9. Standard cost (2/5/2):
    # query 0 = -2.80, query 1 = -1.77, so query 0; high-order: -0.9 * 0.5^4 = -0.056 vs -0.5 * 0.9^4 = -0.33.
    outputs = {
        "pred_logits": torch.tensor([[[math_logit(0.9)], [0.0]]]),
        "pred_boxes": torch.tensor([[[0.5, 0.5, 0.2, 0.4], [0.5, 0.5, 0.36, 0.4]]]),
    }
    targets = [{"labels": torch.tensor([0]), "boxes": torch.tensor([[0.5, 0.5, 0.4, 0.4]])}]
    matcher = HighOrderMatcher(**COSTS, matcher_change_iter=100)
    with EventStorage(99):
        assert matcher(outputs, targets)[0][0].tolist() == [0]
    with EventStorage(100):
        assert matcher(outputs, targets)[0][0].tolist() == [1]
        cost = matcher.cost_matrix(
            outputs["pred_logits"][0], outputs["pred_boxes"][0], torch.tensor([0]), targets[0]["boxes"]
        )
    torch.testing.assert_close(cost, torch.tensor([[-0.9 * 0.5**4], [-0.5 * 0.9**4]]))


@pytest.mark.parametrize("iou_eps", [1e-6, 0.0])
def test_high_order_cost_uses_the_iou_with_iou_eps(iou_eps):
    """float64 boxes of side ~0.01, where detrex's 1e-6 (the official fork's box_iou) moves the IoU by ~1%:
    cost = -p * (inter / (union + eps))^4, written out per pair."""
    pred = torch.tensor([[0.5, 0.5, 0.010, 0.012], [0.503, 0.498, 0.011, 0.009]], dtype=torch.float64)
    gt = torch.tensor([[0.502, 0.501, 0.012, 0.010]], dtype=torch.float64)
    logits = torch.tensor([[0.3], [-0.4]], dtype=torch.float64)
    matcher = HighOrderMatcher(**COSTS, matcher_change_iter=0, iou_eps=iou_eps)
    with EventStorage(0):
        cost = matcher.cost_matrix(logits, pred, torch.tensor([0]), gt)
    expected = []
    for (px, py, pw, ph), logit in zip(pred.tolist(), logits[:, 0].tolist(), strict=True):
        gx, gy, gw, gh = gt[0].tolist()
        iw = min(px + pw / 2, gx + gw / 2) - max(px - pw / 2, gx - gw / 2)
        ih = min(py + ph / 2, gy + gh / 2) - max(py - ph / 2, gy - gh / 2)
        inter = max(iw, 0) * max(ih, 0)
        iou = inter / (pw * ph + gw * gh - inter + iou_eps)
        expected.append([-(1 / (1 + math.exp(-logit))) * iou**4])
    torch.testing.assert_close(cost, torch.tensor(expected, dtype=torch.float64), rtol=1e-12, atol=1e-15)


def math_logit(p: float) -> float:
    return float(torch.logit(torch.tensor(p, dtype=torch.float64)))


def test_matching_outside_a_trainer_is_an_error():
    outputs, targets = _random_batch()
    with pytest.raises(RuntimeError, match="HighOrderMatcher needs the training iteration"):
        HighOrderMatcher(**COSTS)(outputs, targets)


class _MatchingModel(nn.Module):
    """Matches a fixed batch every step and records whether the matcher used the high-order cost; its loss
    is a dummy (the matcher is what is under test)."""

    def __init__(self, matcher: HighOrderMatcher):
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(()))
        self.criterion = nn.Module()
        self.criterion.matcher = matcher
        self.high_order_per_step: list[bool] = []

    def forward(self, batch):
        outputs, targets = _random_batch()
        self.criterion.matcher(outputs, targets)
        self.high_order_per_step.append(self.criterion.matcher.high_order())
        return {"loss": self.weight**2}


def test_the_trainer_step_switches_the_cost_at_matcher_change_iter():
    model = _MatchingModel(HighOrderMatcher(**COSTS, matcher_change_iter=3))
    loader = iter(lambda: [None], object())
    trainer = SimpleTrainer(model, loader, torch.optim.SGD(model.parameters(), lr=0.1))
    trainer.train(0, 5)
    assert model.high_order_per_step == [False, False, False, True, True]
