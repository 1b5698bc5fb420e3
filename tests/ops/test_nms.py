"""The compiled batched NMS against torchvision and against hand-made cases."""

import pytest
import torch
import torchvision
from torchvision.ops.boxes import _batched_nms_vanilla

from detrkit.layers import batched_nms, batched_nms_pytorch

pytestmark = pytest.mark.skipif(
    not hasattr(torch.ops.detrkit, "batched_nms"), reason="detrkit._C is not built"
)

DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


def random_case(n, groups, tied_scores, seed, dtype=torch.float32):
    """Boxes on a half-pixel lattice (so torchvision's coordinate offsets per group are exact), many overlaps;
    scores either continuous or from 4 values (many ties)."""
    g = torch.Generator().manual_seed(seed)
    xy = torch.randint(0, 120, (n, 2), generator=g) / 2
    wh = torch.randint(1, 50, (n, 2), generator=g) / 2
    boxes = torch.cat([xy, xy + wh], 1).to(dtype)
    if tied_scores:
        scores = torch.randint(0, 4, (n,), generator=g).to(dtype)
    else:
        scores = torch.rand(n, generator=g, dtype=dtype)
    group_ids = torch.randint(0, groups, (n,), generator=g) * 7 - 3  # arbitrary, negative ids too
    return boxes, scores, group_ids


def stable_by_score(indices, scores):
    """The indices by score, descending, equal scores by ascending index."""
    indices = indices.sort()[0]
    return indices[scores[indices].sort(descending=True, stable=True)[1]]


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("n", [0, 1, 2, 57, 400, 999, 2500])
@pytest.mark.parametrize("tied_scores", [False, True])
@pytest.mark.parametrize("threshold", [0.0, 0.3, 0.5, 0.9])
def test_same_indices_as_torchvision(device, n, tied_scores, threshold):
    boxes, scores, groups = random_case(n, groups=5, tied_scores=tied_scores, seed=n)
    expected = torchvision.ops.batched_nms(boxes, scores, groups, threshold)
    if n * 4 > 4000:
        # torchvision's per-group path ends with an unstable sort: among kept boxes of exactly equal score its
        # order is arbitrary. Same boxes and scores; detrkit orders ties by index.
        assert torch.equal(expected, _batched_nms_vanilla(boxes, scores, groups, threshold))
        expected = stable_by_score(expected, scores)
    kept = batched_nms(boxes.to(device), scores.to(device), groups.to(device), threshold)
    assert kept.dtype == torch.int64 and kept.device.type == device
    assert torch.equal(kept.cpu(), expected)
    assert torch.equal(batched_nms_pytorch(boxes, scores, groups, threshold), expected)


@pytest.mark.parametrize("device", DEVICES)
def test_float64_and_int32_groups(device):
    boxes, scores, groups = random_case(300, groups=3, tied_scores=False, seed=1, dtype=torch.float64)
    expected = torchvision.ops.batched_nms(boxes, scores, groups, 0.4)
    kept = batched_nms(boxes.to(device), scores.to(device), groups.int().to(device), 0.4)
    assert torch.equal(kept.cpu(), expected)


def grid_cell_boxes(height, width):
    """Salience DETR's redundancy-removal boxes: each cell (x, y) becomes [x - 1, y - 1, x + 1, y + 1]."""
    y, x = torch.meshgrid(torch.arange(height).float(), torch.arange(width).float(), indexing="ij")
    return torch.stack([x - 1, y - 1, x + 1, y + 1], -1).view(-1, 4)


def test_four_neighbours_suppressed_diagonals_kept():
    # 3x3 grid, the centre scores highest: its 4-neighbours overlap it with IoU 2/6 = 1/3 > 0.3 and go, the
    # diagonal cells overlap with IoU 1/7 and stay.
    boxes = grid_cell_boxes(3, 3)
    scores = torch.tensor([0.1, 0.2, 0.3, 0.4, 0.9, 0.5, 0.6, 0.7, 0.8])
    kept = batched_nms(boxes, scores, torch.zeros(9, dtype=torch.long), 0.3)
    assert kept.tolist() == [4, 8, 6, 2, 0]


def test_groups_never_suppress_each_other():
    # The same box twice in each of three groups: one survivor per group, the higher-scored one.
    boxes = torch.tensor([[0.0, 0.0, 10.0, 10.0]]).repeat(6, 1)
    scores = torch.tensor([0.5, 0.9, 0.8, 0.1, 0.3, 0.7])
    groups = torch.tensor([0, 0, 1, 1, 2, 2])
    assert batched_nms(boxes, scores, groups, 0.5).tolist() == [1, 2, 5]


def test_ties_keep_the_lower_index():
    boxes = torch.tensor([[0.0, 0.0, 10.0, 10.0]]).repeat(4, 1)
    scores = torch.ones(4)
    assert batched_nms(boxes, scores, torch.zeros(4, dtype=torch.long), 0.5).tolist() == [0]
    # Non-overlapping boxes with equal scores come back in index order.
    boxes = torch.tensor([[0.0, 0, 1, 1], [2, 2, 3, 3], [4, 4, 5, 5]])
    assert batched_nms(boxes, torch.ones(3), torch.zeros(3, dtype=torch.long), 0.5).tolist() == [0, 1, 2]


def test_degenerate_boxes_suppress_nothing():
    # Zero-area boxes give IoU 0/0 (NaN), which is never above the threshold, as in torchvision.
    boxes = torch.tensor([[1.0, 1, 1, 1], [1, 1, 1, 1], [0, 0, 0, 5], [0, 0, 4, 4], [0, 0, 4, 4]])
    scores = torch.tensor([0.9, 0.8, 0.7, 0.6, 0.5])
    groups = torch.zeros(5, dtype=torch.long)
    kept = batched_nms(boxes, scores, groups, 0.5)
    assert kept.tolist() == [0, 1, 2, 3]
    assert torch.equal(kept, torchvision.ops.batched_nms(boxes, scores, groups, 0.5))


def test_salience_redundancy_removal_across_levels_and_images():
    boxes, scores, groups = [], [], []
    g = torch.Generator().manual_seed(0)
    for image in range(2):
        for level, (h, w) in enumerate([(12, 15), (6, 8), (3, 4)]):
            cells = grid_cell_boxes(h, w)
            boxes.append(cells)
            scores.append(torch.rand(len(cells), generator=g))
            groups.append(torch.full((len(cells),), image * 3 + level))
    boxes, scores, groups = torch.cat(boxes), torch.cat(scores), torch.cat(groups)
    kept = batched_nms(boxes, scores, groups, 0.3)
    assert torch.equal(kept, _batched_nms_vanilla(boxes, scores, groups, 0.3))
    # Identical boxes in different groups all survive when each is the best of its group.
    assert set(groups[kept].tolist()) == set(range(6))


@pytest.mark.parametrize(
    "args, message",
    [
        (
            (torch.zeros(3, 5), torch.zeros(3), torch.zeros(3, dtype=torch.long)),
            r"boxes must have shape \(N, 4\)",
        ),
        (
            (torch.zeros(3, 4), torch.zeros(2), torch.zeros(3, dtype=torch.long)),
            r"scores must have shape \(3,\)",
        ),
        (
            (torch.zeros(3, 4), torch.zeros(3), torch.zeros(4, dtype=torch.long)),
            r"groups must have shape \(3,\)",
        ),
        ((torch.zeros(3, 4), torch.zeros(3).double(), torch.zeros(3, dtype=torch.long)), "dtype of boxes"),
        ((torch.zeros(3, 4), torch.zeros(3), torch.zeros(3)), "groups must be an integer tensor"),
        ((torch.zeros(3, 4).long(), torch.zeros(3).long(), torch.zeros(3).long()), "float32 or float64"),
    ],
)
def test_bad_arguments_are_named(args, message):
    with pytest.raises(RuntimeError, match=message):
        torch.ops.detrkit.batched_nms(*args, 0.5)
    with pytest.raises(RuntimeError, match="iou_threshold must be a number"):
        torch.ops.detrkit.batched_nms(torch.zeros(1, 4), torch.zeros(1), torch.zeros(1).long(), float("nan"))
