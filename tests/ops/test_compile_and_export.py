"""The ops under the compiler stack: ``torch.compile(fullgraph=True)`` of the deformable attention module, of
a deformable encoder layer and of batched NMS traces through the ops' fake kernels and registered autograd
with no graph break and computes the eager result, forward and backward; ``torch.export`` captures the
encoder with the op in its graph.

Kept short: tiny sizes, float64, the ``aot_eager`` backend (AOTAutograd's traced forward and backward graphs,
run without generating code) and one inductor test of the forward; ``torch._dynamo.reset()`` around each."""

import pytest
import torch
from torch._dynamo.testing import CompileCounterWithBackend

import detrkit
from detrkit.layers import MultiScaleDeformableAttention, batched_nms
from detrkit.modeling.transformer.encoder import DeformableTransformerEncoder

pytestmark = pytest.mark.skipif(not detrkit.ops_info()["cpu"], reason="detrkit._C is not built")

SHAPES = torch.tensor([[4, 5], [2, 3]])
STARTS = torch.tensor([0, 20])
TOKENS = 26
DIM = 16


@pytest.fixture(autouse=True)
def fresh_dynamo():
    torch._dynamo.reset()
    yield
    torch._dynamo.reset()


def perturbed(module: torch.nn.Module) -> torch.nn.Module:
    """float64 ``module`` with its zero-initialised offsets and attention weights made to matter."""
    torch.manual_seed(0)
    with torch.no_grad():
        for parameter in module.parameters():
            parameter.add_(torch.randn(parameter.shape) * 0.2)
    return module.double()


def attention_module() -> MultiScaleDeformableAttention:
    torch.manual_seed(0)
    return perturbed(
        MultiScaleDeformableAttention(DIM, 2, num_levels=2, num_points=2, dropout=0.0, batch_first=True)
    )


def encoder_layer() -> DeformableTransformerEncoder:
    torch.manual_seed(0)
    encoder = DeformableTransformerEncoder(
        embed_dim=DIM,
        num_heads=2,
        feedforward_dim=32,
        attn_dropout=0.0,
        ffn_dropout=0.0,
        num_layers=1,
        num_feature_levels=2,
    )
    return perturbed(encoder)


def random(*shape, seed):
    return torch.rand(*shape, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


def forward_and_grads(fn, inputs, module):
    inputs = [t.detach().requires_grad_() for t in inputs]
    out = fn(*inputs)
    return out.detach(), torch.autograd.grad(out.square().sum(), [*inputs, *module.parameters()])


def assert_compiled_like_eager(fn, inputs, module):
    """``fn`` compiled in one graph (which calls the compiled op) gives eager's output and gradients."""
    counter = CompileCounterWithBackend("aot_eager")
    compiled_fn = torch.compile(fn, backend=counter, fullgraph=True)
    out, grads = forward_and_grads(compiled_fn, inputs, module)
    expected_out, expected_grads = forward_and_grads(fn, inputs, module)
    assert counter.frame_count == 1
    assert "detrkit.ms_deform_attn_forward" in counter.graphs[0].code
    torch.testing.assert_close(out, expected_out, rtol=1e-12, atol=1e-12)
    for grad, expected in zip(grads, expected_grads, strict=True):
        torch.testing.assert_close(grad, expected, rtol=1e-12, atol=1e-12)


def test_attention_module_compiles_in_one_graph():
    module = attention_module()
    reference = random(2, 7, 2, 2, seed=2)

    def attend(query, value):
        return module(
            query, value=value, reference_points=reference, spatial_shapes=SHAPES, level_start_index=STARTS
        )

    assert_compiled_like_eager(attend, [random(2, 7, DIM, seed=0), random(2, TOKENS, DIM, seed=1)], module)


def encoder_inputs():
    return (
        random(2, TOKENS, DIM, seed=0) - 0.5,
        random(2, TOKENS, DIM, seed=1),
        random(2, TOKENS, 2, 2, seed=2),
    )


def test_encoder_layer_compiles_in_one_graph():
    encoder = encoder_layer()
    mask = torch.zeros(2, TOKENS, dtype=torch.bool)
    mask[1, 17:20] = True

    def encode(query, pos, reference):
        return encoder(
            query,
            None,
            None,
            query_pos=pos,
            key_padding_mask=mask,
            reference_points=reference,
            spatial_shapes=SHAPES,
            level_start_index=STARTS,
        )

    assert_compiled_like_eager(encode, encoder_inputs(), encoder)


def test_inductor_compiles_the_attention_forward():
    module = attention_module().eval()
    query, value = random(2, 7, DIM, seed=0), random(2, TOKENS, DIM, seed=1)
    reference = random(2, 7, 2, 2, seed=2)

    def attend(query, value):
        return module(
            query, value=value, reference_points=reference, spatial_shapes=SHAPES, level_start_index=STARTS
        )

    with torch.no_grad():
        torch.testing.assert_close(
            torch.compile(attend, fullgraph=True)(query, value), attend(query, value), rtol=1e-12, atol=1e-12
        )


def test_batched_nms_compiles_with_a_data_dependent_output_size():
    def keep_boxes(boxes, scores, groups):
        return boxes[batched_nms(boxes, scores, groups, 0.5)]

    compiled = torch.compile(keep_boxes, backend="aot_eager", fullgraph=True)
    for seed in range(3):  # different numbers of kept boxes through the same graph
        corner = random(30, 2, seed=seed) * 20
        boxes = torch.cat([corner, corner + random(30, 2, seed=seed + 10) * 10 + 1], 1)
        scores, groups = random(30, seed=seed + 20), torch.arange(30) % 3
        torch.testing.assert_close(
            compiled(boxes, scores, groups), keep_boxes(boxes, scores, groups), rtol=0, atol=0
        )


def test_torch_export_captures_the_encoder():
    encoder = encoder_layer().eval()

    class Encode(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.encoder = encoder

        def forward(self, query, pos, reference, spatial_shapes, level_start_index):
            return self.encoder(
                query,
                None,
                None,
                query_pos=pos,
                reference_points=reference,
                spatial_shapes=spatial_shapes,
                level_start_index=level_start_index,
            )

    query, pos, reference = encoder_inputs()
    program = torch.export.export(Encode(), (query, pos, reference, SHAPES, STARTS))
    targets = {node.target for node in program.graph.nodes}
    assert torch.ops.detrkit.ms_deform_attn_forward.default in targets
    # Other inputs than the traced ones, same sizes.
    query, pos, reference = (t.flip(1) for t in encoder_inputs())
    with torch.no_grad():
        expected = Encode()(query, pos, reference, SHAPES, STARTS)
    torch.testing.assert_close(
        program.module()(query, pos, reference, SHAPES, STARTS), expected, rtol=1e-12, atol=1e-12
    )
