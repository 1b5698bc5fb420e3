"""The translations of detrkit's ops for the torch.export-based ONNX exporter (detrkit.export.onnx_dynamo):
onnxruntime (CPU) gives what the compiled kernels give, on other inputs than the exported ones, with the
op (not its reference) in the exported program; export_detector_onnx(exporter="dynamo") on a small
detector built on the compiled attention."""

import onnx
import onnxruntime
import pytest
import torch
from torch import nn

import detrkit
from detrkit.export import compare_with_onnxruntime, export_detector_onnx
from detrkit.export.onnx_dynamo import CUSTOM_TRANSLATION_TABLE
from detrkit.layers import MultiScaleDeformableAttention, batched_nms
from detrkit.modeling.transformer.encoder import DeformableTransformerEncoder
from detrkit.structures.boxes import Boxes
from detrkit.structures.instances import Instances

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
        GroupedNMS().eval(), grid_boxes(0), tmp_path / "n.onnx", ["b", "s", "g"]
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


class TinyDeformableDetector(nn.Module):
    """A detectron2-I/O detector on the compiled deformable attention: two conv levels, one deformable
    encoder layer, per-token class and box heads, top-10 postprocess into ``Instances``."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.stem = nn.Conv2d(3, 16, 4, stride=4)
        self.down = nn.Conv2d(16, 16, 2, stride=2)
        self.encoder = DeformableTransformerEncoder(
            embed_dim=16, num_heads=2, feedforward_dim=32, num_layers=1, num_feature_levels=2
        )
        self.classes = nn.Linear(16, 3)
        self.boxes = nn.Linear(16, 4)
        with torch.no_grad():
            for parameter in self.encoder.parameters():
                parameter.add_(torch.randn(parameter.shape) * 0.1)

    def forward(self, batched_inputs):
        image = batched_inputs[0]["image"][None] / 255
        height, width = image.shape[-2:]
        levels = [self.stem(image)]
        levels.append(self.down(levels[0]))
        sizes = [tuple(level.shape[-2:]) for level in levels]
        tokens = torch.cat([level.flatten(2).transpose(1, 2) for level in levels], 1)
        centres = [
            torch.stack(
                torch.meshgrid((torch.arange(h) + 0.5) / h, (torch.arange(w) + 0.5) / w, indexing="ij")
            )
            .flip(0)
            .flatten(1)
            .T
            for h, w in sizes
        ]
        reference = torch.cat(centres)[None, :, None, :].expand(1, -1, 2, 2)
        spatial_shapes = torch.tensor(sizes)
        starts = torch.cat([spatial_shapes.new_zeros(1), spatial_shapes.prod(1).cumsum(0)[:-1]])
        memory = self.encoder(
            tokens,
            None,
            None,
            reference_points=reference,
            spatial_shapes=spatial_shapes,
            level_start_index=starts,
        )[0]
        scores, index = self.classes(memory).sigmoid().flatten().topk(10)
        cx, cy, w, h = self.boxes(memory).sigmoid()[torch.div(index, 3, rounding_mode="floor")].unbind(-1)
        result = Instances((height, width))
        result.pred_boxes = Boxes(torch.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], -1) * width)
        result.scores = scores
        result.pred_classes = index % 3
        return [{"instances": result}]


def test_export_detector_onnx_with_the_dynamo_exporter(tmp_path):
    detector = TinyDeformableDetector().eval()
    image = torch.randint(0, 256, (1, 3, 64, 64), generator=torch.Generator().manual_seed(0)).float()
    export_detector_onnx(detector, tmp_path / "d.onnx", image, exporter="dynamo")
    for seed in (0, 1):
        other = torch.randint(0, 256, (1, 3, 64, 64), generator=torch.Generator().manual_seed(seed)).float()
        check = compare_with_onnxruntime(detector, tmp_path / "d.onnx", other)
        assert check["detections"] == 10 and check["labels_equal"], check
        assert check["max_abs_diff_boxes"] < 1e-4 and check["max_abs_diff_scores"] < 1e-5, check


def test_export_detector_onnx_checks_the_exporter_and_opset(tmp_path):
    with pytest.raises(ValueError, match="exporter must be one of"):
        export_detector_onnx(
            TinyDeformableDetector(), tmp_path / "d.onnx", torch.zeros(1, 3, 64, 64), exporter="x"
        )
    with pytest.raises(ValueError, match="opset 17 < 18"):
        export_detector_onnx(
            TinyDeformableDetector(),
            tmp_path / "d.onnx",
            torch.zeros(1, 3, 64, 64),
            opset=17,
            exporter="dynamo",
        )
