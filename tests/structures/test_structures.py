"""Boxes, Instances, ImageList and box ops on hand-computed cases."""

import pytest
import torch

from detrkit.structures import (
    Boxes,
    BoxMode,
    ImageList,
    Instances,
    box_cxcywh_to_xyxy,
    box_iou,
    box_xyxy_to_cxcywh,
    generalized_box_iou,
    paired_box_iou,
    pairwise_iou,
)


def test_box_mode_conversion():
    assert BoxMode.convert([10, 20, 5, 8], BoxMode.XYWH_ABS, BoxMode.XYXY_ABS) == [10, 20, 15, 28]
    t = torch.tensor([[10.0, 20, 15, 28]])
    assert torch.equal(
        BoxMode.convert(t, BoxMode.XYXY_ABS, BoxMode.XYWH_ABS), torch.tensor([[10.0, 20, 5, 8]])
    )
    assert BoxMode.convert((1, 2, 3, 4), 1, 1) == (1, 2, 3, 4)
    with pytest.raises(ValueError, match="XYXY_REL"):
        BoxMode.convert([0, 0, 1, 1], BoxMode.XYXY_REL, BoxMode.XYXY_ABS)


def test_boxes_area_clip_nonempty_and_indexing():
    boxes = Boxes(torch.tensor([[0.0, 0, 10, 5], [-5, -5, 20, 30], [3, 3, 3, 9]]))
    assert boxes.area().tolist() == [50, 875, 0]
    assert boxes.nonempty().tolist() == [True, True, False]
    boxes.clip((20, 15))
    assert boxes.tensor[1].tolist() == [0, 0, 15, 20]
    assert len(boxes[[0, 2]]) == 2 and boxes[1].tensor.shape == (1, 4)
    assert Boxes(torch.zeros(0)).tensor.shape == (0, 4)
    assert len(Boxes.cat([boxes, boxes])) == 6
    with pytest.raises(ValueError, match=r"\(N, 4\)"):
        Boxes(torch.zeros(3, 5))


def test_pairwise_iou_hand_computed():
    a = Boxes(torch.tensor([[0.0, 0, 2, 2], [0, 0, 0, 0]]))
    b = Boxes(torch.tensor([[1.0, 1, 3, 3], [0, 0, 2, 2]]))
    expected = torch.tensor([[1 / 7, 1.0], [0.0, 0.0]])
    torch.testing.assert_close(pairwise_iou(a, b), expected)


def test_paired_box_iou_hand_computed():
    a = torch.tensor([[[0.0, 0, 2, 2], [0, 0, 2, 2], [1, 1, 1, 1]]])
    b = torch.tensor([[[1.0, 1, 3, 3], [0, 0, 2, 2], [1, 1, 1, 1]]])
    # overlap 1 of union 7; identical boxes; two empty boxes (empty union: 0)
    torch.testing.assert_close(paired_box_iou(a, b), torch.tensor([[1 / 7, 1.0, 0.0]]))


def test_box_ops_hand_computed():
    xyxy = torch.tensor([[0.0, 0, 4, 2]])
    assert box_xyxy_to_cxcywh(xyxy).tolist() == [[2, 1, 4, 2]]
    assert box_cxcywh_to_xyxy(box_xyxy_to_cxcywh(xyxy)).tolist() == xyxy.tolist()
    a, b = torch.tensor([[0.0, 0, 2, 2]]), torch.tensor([[3.0, 0, 5, 2]])
    iou, union = box_iou(a, b)
    assert iou.item() == 0 and union.item() == 8
    # Hull is 5 x 2 = 10, union 8: GIoU = 0 - 2 / 10.
    assert generalized_box_iou(a, b).item() == pytest.approx(-0.2)
    with pytest.raises(ValueError, match="x2 >= x1"):
        generalized_box_iou(torch.tensor([[2.0, 0, 0, 2]]), b)


@pytest.mark.parametrize("eps", [0.0, 1e-6])
def test_box_iou_ops_add_eps_to_union_and_hull(eps):
    """The formula written out per pair in float64: IoU = inter / (union + eps) (eps 0: torchvision's; 1e-6:
    detrex's box_ops), GIoU = IoU - (hull - union) / (hull + eps); small boxes, where 1e-6 is ~1% of a box."""
    g = torch.Generator().manual_seed(0)
    xy = torch.rand(5, 2, generator=g, dtype=torch.float64) * 0.02
    a = torch.cat([xy[:3], xy[:3] + 0.005 + torch.rand(3, 2, generator=g, dtype=torch.float64) * 0.01], 1)
    b = torch.cat([xy[3:], xy[3:] + 0.005 + torch.rand(2, 2, generator=g, dtype=torch.float64) * 0.01], 1)
    iou, giou = torch.empty(3, 2, dtype=torch.float64), torch.empty(3, 2, dtype=torch.float64)
    for i in range(3):
        for j in range(2):
            (ax1, ay1, ax2, ay2), (bx1, by1, bx2, by2) = a[i].tolist(), b[j].tolist()
            inter = max(min(ax2, bx2) - max(ax1, bx1), 0) * max(min(ay2, by2) - max(ay1, by1), 0)
            union = (ax2 - ax1) * (ay2 - ay1) + (bx2 - bx1) * (by2 - by1) - inter
            hull = (max(ax2, bx2) - min(ax1, bx1)) * (max(ay2, by2) - min(ay1, by1))
            iou[i, j] = inter / (union + eps)
            giou[i, j] = inter / (union + eps) - (hull - union) / (hull + eps)
    assert (iou > 0).any()
    ours, _ = box_iou(a, b, eps=eps)
    torch.testing.assert_close(ours, iou, rtol=1e-12, atol=1e-15)
    torch.testing.assert_close(generalized_box_iou(a, b, eps=eps), giou, rtol=1e-12, atol=1e-15)
    torch.testing.assert_close(paired_box_iou(a[:2], b, eps=eps), iou.diagonal(), rtol=1e-12, atol=1e-15)
    if eps:  # the eps matters at this size: not the eps-free values
        assert not torch.allclose(generalized_box_iou(a, b), giou, rtol=1e-4, atol=0)


def test_instances_fields_indexing_and_cat():
    inst = Instances((20, 30), gt_classes=torch.tensor([1, 2, 3]))
    inst.gt_boxes = Boxes(torch.rand(3, 4))
    assert len(inst) == 3 and inst.has("gt_boxes") and inst.image_size == (20, 30)
    sub = inst[torch.tensor([True, False, True])]
    assert sub.gt_classes.tolist() == [1, 3] and len(sub.gt_boxes) == 2
    assert inst[-1].gt_classes.tolist() == [3]
    both = Instances.cat([inst, sub])
    assert both.gt_classes.tolist() == [1, 2, 3, 1, 3] and len(both.gt_boxes) == 5
    with pytest.raises(ValueError, match="length 2"):
        inst.scores = torch.zeros(2)
    with pytest.raises(AttributeError, match="pred_boxes"):
        _ = inst.pred_boxes


def test_image_list_pads_to_a_multiple():
    images = [torch.ones(3, 5, 7), torch.ones(3, 8, 4)]
    batch = ImageList.from_tensors(images, size_divisibility=4, pad_value=-1)
    assert batch.tensor.shape == (2, 3, 8, 8) and batch.image_sizes == [(5, 7), (8, 4)]
    assert batch.tensor[0, :, 5:].eq(-1).all() and batch.tensor[0, :, :5, :7].eq(1).all()
    assert batch[1].shape == (3, 8, 4)
