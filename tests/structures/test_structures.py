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
