"""Cross-stage label assignment on a hand-made 3-stage case (StageInteractor sec. 3.2): labels gathered from
stages [i - 1, L], a stage-i match below IoU 0.5 becoming a negative, a label from stage i + 1, multi-label
targets, and the plain one-to-one targets for scope [i, i] without the IoU check."""

import pytest
import torch

from detrkit_projects.stage_interactor.modeling.cross_stage_label_assignment import (
    candidate_stages,
    cross_stage_labels,
)

# Boxes of side 0.2 (normalised cxcywh); two such boxes shifted by dx along x overlap with
# IoU = (0.2 - dx) / (0.2 + dx): 0.6 for dx = 0.05, 1/3 for dx = 0.1.
A = [0.25, 0.25, 0.2, 0.2]
B = [0.75, 0.75, 0.2, 0.2]
A_SHIFT = [0.30, 0.25, 0.2, 0.2]  # IoU(A, A_SHIFT) = 0.6
B_SHIFT = [0.85, 0.75, 0.2, 0.2]  # IoU(B, B_SHIFT) = 1/3

# g0: class 1 at A, g1: class 0 at B, g2: class 2 at A_SHIFT
TARGETS = [{"labels": torch.tensor([1, 0, 2]), "boxes": torch.tensor([A, B, A_SHIFT])}]

# stage 1's boxes of queries q0..q3
STAGE1_BOXES = torch.tensor([[A, B_SHIFT, B_SHIFT, A_SHIFT]])


def match(pairs):
    src, tgt = zip(*pairs, strict=True)
    return [(torch.tensor(src), torch.tensor(tgt))]


STAGE_INDICES = [
    match([(0, 0), (1, 1)]),  # stage 0: q0 -> g0, q1 -> g1
    match([(0, 0), (2, 1)]),  # stage 1: q0 -> g0, q2 -> g1 (its box overlaps g1 by 1/3)
    match([(3, 0), (1, 1), (0, 2)]),  # stage 2: q3 -> g0, q1 -> g1, q0 -> g2
]


def stage1_labels(scope, threshold):
    boxes = [torch.rand(1, 4, 4), STAGE1_BOXES, torch.rand(1, 4, 4)]  # only stage 1's boxes matter
    return cross_stage_labels(boxes, STAGE_INDICES, TARGETS, num_classes=3, stage=1, scope=scope)


def test_candidate_stages_follow_the_scope():
    assert candidate_stages(0, 6) == [0, 1, 2, 3, 4, 5]
    assert candidate_stages(3, 6) == [2, 3, 4, 5]
    assert candidate_stages(3, 6, scope=(0, 0)) == [3]
    assert candidate_stages(3, 6, scope=(-2, 1)) == [1, 2, 3, 4]
    with pytest.raises(ValueError, match="offset 0"):
        candidate_stages(3, 6, scope=(1, None))
    with pytest.raises(ValueError, match="not one of the 6 stages"):
        candidate_stages(6, 6)


def test_paper_rule_on_a_hand_made_case():
    assignment = stage1_labels(scope=(-1, None), threshold=0.5)
    expected_iou = torch.tensor(
        [
            [0.0, 1.0, 0.6],  # q0: g0 (stages 0, 1) and g2 (stage 2) both overlap its box A
            [1 / 3, 0.0, 0.0],  # q1: g1 from stages 0 and 2, its box overlaps g1 by 1/3
            [1 / 3, 0.0, 0.0],  # q2: its own stage-1 match g1, overlap 1/3
            [0.0, 0.6, 0.0],  # q3: g0 from stage 2 only
        ]
    )
    torch.testing.assert_close(assignment.iou[0], expected_iou)
    expected_labels = torch.tensor(
        [
            [0.0, 1.0, 1.0],  # multi-label: class 1 and class 2
            [0.0, 0.0, 0.0],  # gathered match below 0.5: negative
            [0.0, 0.0, 0.0],  # stage 1's own match below 0.5: negative
            [0.0, 1.0, 0.0],  # label gathered from stage i + 1
        ]
    )
    torch.testing.assert_close(assignment.labels(0.5)[0], expected_labels)
    # without the threshold every gathered class is a label
    torch.testing.assert_close(assignment.labels(None)[0], (expected_iou > 0).float())


def test_scope_limits_the_gathered_stages():
    # stages 1 and 2 only: q1's stage-0 match still comes from stage 2; nothing else changes here
    torch.testing.assert_close(
        stage1_labels(scope=(0, None), threshold=0.5).iou, stage1_labels((-1, None), 0.5).iou
    )
    # stages 0 and 1: q0 loses g2 and q3 loses its stage-2 label
    low = stage1_labels(scope=(-1, 0), threshold=0.5).labels(0.5)[0]
    torch.testing.assert_close(low, torch.tensor([[0.0, 1, 0], [0, 0, 0], [0, 0, 0], [0, 0, 0]]))


def test_own_scope_without_threshold_is_the_one_to_one_target():
    labels = stage1_labels(scope=(0, 0), threshold=None).labels(None)[0]
    one_to_one = torch.zeros(4, 3)
    one_to_one[0, 1] = 1  # q0 -> g0 (class 1)
    one_to_one[2, 0] = 1  # q2 -> g1 (class 0)
    torch.testing.assert_close(labels, one_to_one)


def test_batched_images_do_not_mix():
    targets = TARGETS + [{"labels": torch.tensor([2]), "boxes": torch.tensor([B])}]
    indices = [idx + [(torch.tensor([1]), torch.tensor([0]))] for idx in STAGE_INDICES]
    boxes = [torch.cat([STAGE1_BOXES, STAGE1_BOXES])] * 3
    assignment = cross_stage_labels(boxes, indices, targets, num_classes=3, stage=1)
    torch.testing.assert_close(assignment.iou[0], stage1_labels((-1, None), 0.5).iou[0])
    expected = torch.zeros(4, 3)
    expected[1, 2] = 1 / 3  # image 1: q1 -> its only target (class 2 at B) in every stage
    torch.testing.assert_close(assignment.iou[1], expected)


def test_mismatched_stage_lists_are_rejected():
    with pytest.raises(ValueError, match="3 stages of boxes but 2 stages of matches"):
        cross_stage_labels([STAGE1_BOXES] * 3, STAGE_INDICES[:2], TARGETS, num_classes=3, stage=1)
