"""The translations of detrkit's ops for the torch.export-based ONNX exporter (detrkit.export.onnx_dynamo):
onnxruntime (CPU) gives what the compiled kernels give, on other inputs than the exported ones, with the
op (not its reference) in the exported program."""

import onnx
import onnxruntime
import pytest
import torch
from torch import nn

import detrkit
from detrkit.export.onnx_dynamo import CUSTOM_TRANSLATION_TABLE
from detrkit.layers import MultiScaleDeformableAttention, batched_nms

pytestmark = pytest.mark.skipif(not detrkit.ops_info()["cpu"], reason="detrkit._C is not built")


def export_and_session(module: nn.Module, inputs: tuple, path, input_names: list[str]):
    with torch.no_grad():
        program = torch.onnx.export(
            module,
            inputs,
            str(path),
            dynamo=True,
            custom_translation_table=CUSTOM_TRANSLATION_TABLE,
            input_names=input_names,
        )
    targets = {node.target for node in program.exported_program.graph.nodes}
    return (
        targets,
        onnx.load(str(path)),
        onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"]),
    )


class Attention(nn.Module):
    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.attention = MultiScaleDeformableAttention(
            32, 4, num_levels=2, num_points=3, dropout=0.0, batch_first=True
        )
        with torch.no_grad():
            self.attention.sampling_offsets.weight.normal_(0, 0.2)
            self.attention.attention_weights.weight.normal_(0, 0.2)

    def forward(self, query, value, reference_points, spatial_shapes, level_start_index):
        return self.attention(
            query,
            value=value,
            reference_points=reference_points,
            spatial_shapes=spatial_shapes,
            level_start_index=level_start_index,
        )


def test_deformable_attention_op_becomes_grid_sample(tmp_path):
    def inputs(seed):
        g = torch.Generator().manual_seed(seed)
        return (
            torch.randn(1, 10, 32, generator=g),
            torch.randn(1, 60, 32, generator=g),
            torch.rand(1, 10, 2, 2, generator=g),
        )

    attention = Attention().eval()
    shapes, starts = torch.tensor([[6, 8], [3, 4]]), torch.tensor([0, 48])
    names = ["query", "value", "refs", "shapes", "starts"]
    targets, graph, session = export_and_session(
        attention, (*inputs(0), shapes, starts), tmp_path / "a.onnx", names
    )
    assert torch.ops.detrkit.ms_deform_attn_forward.default in targets
    assert "GridSample" in {node.op_type for node in graph.graph.node}
    # The level sizes are graph inputs: other ones with the same token count give the kernel's result too.
    for seed, level_shapes in [(1, [[6, 8], [3, 4]]), (2, [[4, 12], [2, 6]])]:
        query, value, refs = inputs(seed)
        level_shapes = torch.tensor(level_shapes)
        feeds = dict(zip(names, (query, value, refs, level_shapes, starts), strict=True))
        (output,) = session.run(None, {name: t.numpy() for name, t in feeds.items()})
        with torch.no_grad():
            expected = attention(query, value, refs, level_shapes, starts)
        # float32 bilinear sampling and sums of ~100 products: rounding differences well below 1e-5.
        torch.testing.assert_close(torch.from_numpy(output), expected, rtol=0, atol=1e-5)


class GroupedNMS(nn.Module):
    def forward(self, boxes, scores, groups):
        return batched_nms(boxes, scores, groups, 0.3)


def test_batched_nms_op_becomes_non_max_suppression(tmp_path):
    def grid_boxes(seed, count=60):
        # 2x2 boxes on distinct cells of a 12x12 grid per group (Salience DETR's redundancy removal), ties.
        g = torch.Generator().manual_seed(seed)
        cells = torch.stack([torch.randperm(144, generator=g)[: count // 3] for _ in range(3)])
        x, y = (cells % 12).float(), torch.div(cells, 12, rounding_mode="floor").float()
        boxes = torch.stack([x - 1, y - 1, x + 1, y + 1], -1).reshape(-1, 4)
        scores = (torch.rand(len(boxes), generator=g) * 8).floor() / 8
        return boxes, scores, torch.arange(3)[:, None].expand_as(cells).reshape(-1)

    targets, graph, session = export_and_session(
        GroupedNMS(), grid_boxes(0), tmp_path / "n.onnx", ["b", "s", "g"]
    )
    assert torch.ops.detrkit.batched_nms.default in targets
    assert "NonMaxSuppression" in {node.op_type for node in graph.graph.node}
    kept_counts = set()
    for seed in range(1, 4):
        boxes, scores, groups = grid_boxes(seed)
        (kept,) = session.run(None, {"b": boxes.numpy(), "s": scores.numpy(), "g": groups.numpy()})
        expected = batched_nms(boxes, scores, groups, 0.3)
        assert torch.equal(torch.from_numpy(kept), expected)
        kept_counts.add(len(expected))
    assert len(kept_counts) > 1, "the inputs should keep different numbers of boxes"
