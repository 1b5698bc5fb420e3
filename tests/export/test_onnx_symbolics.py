"""The ONNX translations of detrkit's ops: onnxruntime (CPU) gives what the compiled kernels give, on inputs
other than the ones the graph was traced with."""

import onnx
import onnxruntime
import pytest
import torch
from torch import nn

from detrkit import _extension
from detrkit.export import register_onnx_symbolics
from detrkit.export.onnx_symbolics import DEFAULT_OPSET
from detrkit.layers import MultiScaleDeformableAttention, batched_nms, batched_nms_pytorch


def export_and_session(module: nn.Module, inputs: tuple, path, input_names: list[str]):
    register_onnx_symbolics()
    with torch.no_grad():
        torch.onnx.export(
            module, inputs, str(path), dynamo=False, opset_version=DEFAULT_OPSET, input_names=input_names
        )
    return onnx.load(str(path)), onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])


class GroupedNMS(nn.Module):
    def __init__(self, iou_threshold: float):
        super().__init__()
        self.iou_threshold = iou_threshold

    def forward(self, boxes, scores, groups):
        return batched_nms(boxes, scores, groups, self.iou_threshold)


def grid_boxes(generator: torch.Generator, count: int, levels: int = 3):
    """Salience DETR's redundancy-removal boxes: 2x2 boxes centred on distinct cells of a 12x12 grid per
    level, one group per level, random scores."""
    cells = torch.stack([torch.randperm(144, generator=generator)[: count // levels] for _ in range(levels)])
    x, y = (cells % 12).float(), torch.div(cells, 12, rounding_mode="floor").float()
    boxes = torch.stack([x - 1, y - 1, x + 1, y + 1], -1).reshape(-1, 4)
    groups = torch.arange(levels)[:, None].expand_as(cells).reshape(-1)
    return boxes, torch.rand(len(boxes), generator=generator), groups


def tied_grid_boxes(generator: torch.Generator, count: int):
    """:func:`grid_boxes` with scores in {0, 0.25, 0.5, 0.75}: many ties, kept in index order."""
    boxes, scores, groups = grid_boxes(generator, count)
    return boxes, (scores * 4).floor() / 4, groups


def random_boxes(generator: torch.Generator, count: int, groups: int = 4):
    corner = torch.rand(count, 2, generator=generator) * 50
    size = torch.rand(count, 2, generator=generator) * 20 + 1
    boxes = torch.cat([corner, corner + size], -1)
    return (
        boxes,
        torch.rand(count, generator=generator),
        torch.randint(0, groups, (count,), generator=generator),
    )


@pytest.mark.parametrize(
    "make_boxes, iou_threshold", [(grid_boxes, 0.3), (tied_grid_boxes, 0.3), (random_boxes, 0.5)]
)
def test_batched_nms_becomes_non_max_suppression(tmp_path, make_boxes, iou_threshold):
    generator = torch.Generator().manual_seed(0)
    traced = make_boxes(generator, 120)
    graph, session = export_and_session(
        GroupedNMS(iou_threshold), traced, tmp_path / "nms.onnx", ["boxes", "scores", "groups"]
    )
    assert "NonMaxSuppression" in {node.op_type for node in graph.graph.node}
    kept_counts = set()
    for _ in range(3):
        boxes, scores, groups = make_boxes(generator, 120)
        (kept,) = session.run(
            None, {"boxes": boxes.numpy(), "scores": scores.numpy(), "groups": groups.numpy()}
        )
        expected = batched_nms_pytorch(boxes, scores, groups, iou_threshold)
        assert torch.equal(torch.from_numpy(kept), expected)
        if _extension.has_kernel("batched_nms", "cpu"):
            assert torch.equal(batched_nms(boxes, scores, groups, iou_threshold), expected)
        kept_counts.add(len(expected))
    assert len(kept_counts) > 1, "the inputs should keep different numbers of boxes"


class StableSort(nn.Module):
    def __init__(self, descending: bool):
        super().__init__()
        self.descending = descending

    def forward(self, x):
        return x.sort(dim=1, descending=self.descending, stable=True).indices


@pytest.mark.parametrize("descending", [True, False])
def test_stable_sort_keeps_ties_in_index_order(tmp_path, descending):
    generator = torch.Generator().manual_seed(0)
    traced = torch.randint(0, 4, (2, 30), generator=generator).float()
    _, session = export_and_session(StableSort(descending), (traced,), tmp_path / "sort.onnx", ["x"])
    x = torch.randint(0, 4, (2, 30), generator=generator).float()  # many ties
    (indices,) = session.run(None, {"x": x.numpy()})
    assert torch.equal(torch.from_numpy(indices), x.sort(dim=1, descending=descending, stable=True).indices)


def test_deformable_attention_exports_through_grid_sample(tmp_path):
    torch.manual_seed(0)
    module = MultiScaleDeformableAttention(32, 4, num_levels=2, num_points=3, dropout=0.0, batch_first=True)
    with torch.no_grad():
        module.sampling_offsets.weight.normal_(0, 0.2)
        module.attention_weights.weight.normal_(0, 0.2)
    shapes = torch.tensor([[6, 8], [3, 4]])
    starts = torch.tensor([0, 48])

    class Attention(nn.Module):
        def __init__(self):
            super().__init__()
            self.attention = module

        def forward(self, query, value, reference_points):
            return self.attention(
                query,
                value=value,
                reference_points=reference_points,
                spatial_shapes=shapes,
                level_start_index=starts,
            )

    def inputs(seed):
        g = torch.Generator().manual_seed(seed)
        return (
            torch.randn(1, 10, 32, generator=g),
            torch.randn(1, 60, 32, generator=g),
            torch.rand(1, 10, 2, 2, generator=g),
        )

    attention = Attention().eval()
    graph, session = export_and_session(
        attention, inputs(0), tmp_path / "msda.onnx", ["query", "value", "refs"]
    )
    op_types = {node.op_type for node in graph.graph.node}
    assert "GridSample" in op_types
    assert all(node.domain in ("", "ai.onnx") for node in graph.graph.node)
    query, value, refs = inputs(1)
    (output,) = session.run(None, {"query": query.numpy(), "value": value.numpy(), "refs": refs.numpy()})
    with torch.no_grad():
        expected = attention(query, value, refs)  # outside the export: the compiled kernel where built
    # float32 bilinear sampling and sums of ~100 products: rounding differences well below 1e-5.
    torch.testing.assert_close(torch.from_numpy(output), expected, rtol=0, atol=1e-5)
