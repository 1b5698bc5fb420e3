"""Box and image transforms of the augmentations against hand-computed results."""

import pytest
import torch
from torchvision import tv_tensors

from detrkit.data.transforms import RandomCrop, RandomFlip, ResizeShortestEdge, apply_augmentations

H, W = 40, 60


def _inputs():
    image = tv_tensors.Image(
        torch.arange(3 * H * W, dtype=torch.int64).remainder(251).to(torch.uint8).view(3, H, W)
    )
    boxes = tv_tensors.BoundingBoxes(
        torch.tensor([[10.0, 5.0, 30.0, 25.0], [0.0, 0.0, 60.0, 40.0]]), format="XYXY", canvas_size=(H, W)
    )
    return image, boxes


def test_horizontal_flip():
    image, boxes = _inputs()
    out_image, out_boxes = RandomFlip(prob=1.0)(image, boxes)
    # x -> W - x, and x1/x2 swap
    assert torch.equal(out_boxes, torch.tensor([[30.0, 5.0, 50.0, 25.0], [0.0, 0.0, 60.0, 40.0]]))
    assert torch.equal(out_image, image.flip(-1))
    same_image, same_boxes = RandomFlip(prob=0.0)(image, boxes)
    assert torch.equal(same_image, image) and torch.equal(same_boxes, boxes)


def test_vertical_flip():
    image, boxes = _inputs()
    out_image, out_boxes = RandomFlip(prob=1.0, horizontal=False, vertical=True)(image, boxes)
    assert torch.equal(out_boxes[0], torch.tensor([10.0, 15.0, 30.0, 35.0]))
    assert torch.equal(out_image, image.flip(-2))


def test_resize_shortest_edge_boxes_and_size():
    image, boxes = _inputs()
    out_image, out_boxes = ResizeShortestEdge(20)(image, boxes)  # short side 40 -> 20: scale 0.5
    assert out_image.shape == (3, 20, 30)
    assert out_boxes.canvas_size == (20, 30)
    assert torch.allclose(out_boxes, torch.tensor([[5.0, 2.5, 15.0, 12.5], [0.0, 0.0, 30.0, 20.0]]))
    # max_size caps the long side: 40x60 -> short 100 would make long 150 > 90, so scale = 90 / 60 = 1.5
    out_image, out_boxes = ResizeShortestEdge(100, max_size=90)(image, boxes)
    assert out_image.shape == (3, 60, 90)
    assert torch.allclose(out_boxes[0], torch.tensor([15.0, 7.5, 45.0, 37.5]))


@pytest.mark.parametrize(
    ("old", "short", "max_size", "expected"),
    [
        ((480, 640), 800, 1333, (800, 1067)),  # 640 * 800 / 480 = 1066.67, rounded half up
        ((640, 480), 800, 1333, (1067, 800)),
        ((480, 1000), 800, 1333, (640, 1333)),  # 1666.7 > 1333: scale 1333 / 1000, h = 639.84
        ((256, 256), 288, 400, (288, 288)),
    ],
)
def test_resize_output_shape(old, short, max_size, expected):
    assert ResizeShortestEdge.get_output_shape(*old, short, max_size) == expected


def test_resize_sample_styles():
    torch.manual_seed(0)
    choice = ResizeShortestEdge((20, 30, 50), sample_style="choice")
    drawn = {choice.get_params(H, W)[0] for _ in range(60)}
    assert drawn == {20, 30, 50}
    ranged = ResizeShortestEdge((20, 23), sample_style="range")
    assert {ranged.get_params(H, W)[0] for _ in range(60)} == {20, 21, 22, 23}
    with pytest.raises(ValueError, match="sample_style='range' needs \\(min, max\\)"):
        ResizeShortestEdge((1, 2, 3))


def test_random_crop_boxes_against_sampled_window():
    image, boxes = _inputs()
    crop = RandomCrop("absolute_range", (16, 32))
    torch.manual_seed(3)
    top, left, crop_h, crop_w = crop.get_params(H, W)
    torch.manual_seed(3)
    out_image, out_boxes = crop(image, boxes)
    assert 16 <= crop_h <= 32 and 16 <= crop_w <= 32
    assert 0 <= top <= H - crop_h and 0 <= left <= W - crop_w
    assert torch.equal(out_image, image[:, top : top + crop_h, left : left + crop_w])
    expected = []
    for x1, y1, x2, y2 in [(10, 5, 30, 25), (0, 0, 60, 40)]:
        expected.append(
            [
                min(max(x1 - left, 0), crop_w),
                min(max(y1 - top, 0), crop_h),
                min(max(x2 - left, 0), crop_w),
                min(max(y2 - top, 0), crop_h),
            ]
        )
    assert torch.equal(out_boxes, torch.tensor(expected, dtype=torch.float32))
    assert out_boxes.canvas_size == (crop_h, crop_w)


def test_crop_with_fixed_window_moves_and_clips_boxes():
    image, boxes = _inputs()
    crop = RandomCrop("absolute", (20, 20))
    out_image, out_boxes = crop.apply(image, boxes, (10, 15, 20, 20))  # top 10, left 15
    assert torch.equal(out_boxes, torch.tensor([[0.0, 0.0, 15.0, 15.0], [0.0, 0.0, 20.0, 20.0]]))
    assert torch.equal(out_image, image[:, 10:30, 15:35])


def test_crop_sizes_per_type():
    torch.manual_seed(0)
    assert RandomCrop("absolute", (100, 20)).get_crop_size(H, W) == (40, 20)
    assert RandomCrop("relative", (0.5, 0.25)).get_crop_size(H, W) == (20, 15)
    for _ in range(20):
        ch, cw = RandomCrop("relative_range", (0.5, 0.5)).get_crop_size(H, W)
        assert 20 <= ch <= 40 and 30 <= cw <= 60
        ch, cw = RandomCrop("absolute_range", (384, 600)).get_crop_size(H, W)
        assert (ch, cw) == (H, W)  # both bounds capped by the image


def test_crop_rejects_bad_arguments():
    with pytest.raises(ValueError, match="crop_type must be one of"):
        RandomCrop("square", (1, 2))
    with pytest.raises(
        ValueError, match="absolute_range needs crop_size\\[0\\] <= crop_size\\[1\\], got \\(600, 384\\)"
    ):
        RandomCrop("absolute_range", (600, 384))
    with pytest.raises(ValueError, match="needs crop_size in \\(0, 1\\], got \\(0.5, 1.5\\)"):
        RandomCrop("relative", (0.5, 1.5))


def test_flip_then_resize_composes():
    image, boxes = _inputs()
    _, out_boxes = apply_augmentations([RandomFlip(prob=1.0), ResizeShortestEdge(20)], image, boxes)
    assert torch.allclose(out_boxes[0], torch.tensor([15.0, 2.5, 25.0, 12.5]))
