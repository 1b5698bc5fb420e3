"""MultiScaleDeformableAttention: detrex's interface and initialisation, kernel and reference paths agree."""

import math
import warnings

import pytest
import torch

from detrkit import _extension
from detrkit.layers import MultiScaleDeformableAttention, multi_scale_deformable_attn_pytorch
from detrkit.layers import multi_scale_deform_attn as msda_module

SHAPES = torch.tensor([[8, 10], [4, 5], [2, 3], [1, 2]])
STARTS = torch.cat([SHAPES.new_zeros(1), SHAPES.prod(1).cumsum(0)[:-1]])
TOKENS = int(SHAPES.prod(1).sum())


def encoder_inputs(batch=2, queries=TOKENS, dim=64, box_references=False, seed=0, dtype=torch.float64):
    g = torch.Generator().manual_seed(seed)
    query = torch.randn(queries, batch, dim, generator=g, dtype=dtype)
    value = torch.randn(TOKENS, batch, dim, generator=g, dtype=dtype)
    pos = torch.randn(queries, batch, dim, generator=g, dtype=dtype)
    last = 4 if box_references else 2
    reference = torch.rand(batch, queries, len(SHAPES), last, generator=g, dtype=dtype)
    return query, value, pos, reference


def make_module(dim=64, heads=4, seed=0, **kwargs):
    torch.manual_seed(seed)
    module = MultiScaleDeformableAttention(dim, heads, num_levels=4, num_points=3, dropout=0.0, **kwargs)
    # Trained-looking weights so that offsets and attention differ per query.
    with torch.no_grad():
        module.sampling_offsets.weight.normal_(0, 0.05)
        module.attention_weights.weight.normal_(0, 0.1)
    return module.double()


@pytest.fixture
def reference_only(monkeypatch):
    """Forces the pure-PyTorch path, as on a device without a compiled kernel."""
    monkeypatch.setattr(msda_module, "has_kernel", lambda op, device_type: False)
    _extension.warn_reference_fallback.cache_clear()
    yield
    _extension.warn_reference_fallback.cache_clear()


def run(module, query, value, pos, reference, mask=None):
    return module(
        query,
        value=value,
        query_pos=pos,
        key_padding_mask=mask,
        reference_points=reference,
        spatial_shapes=SHAPES,
        level_start_index=STARTS,
    )


@pytest.mark.skipif(not _extension.ops_info()["cpu"], reason="detrkit._C is not built")
@pytest.mark.parametrize("box_references", [False, True])
def test_kernel_and_reference_paths_compute_the_same_function(box_references, request):
    module = make_module()
    inputs = encoder_inputs(box_references=box_references)
    out_kernel = run(module, *inputs)
    grads_kernel = torch.autograd.grad(out_kernel.square().sum(), list(module.parameters()))

    request.getfixturevalue("reference_only")
    with pytest.warns(UserWarning, match="pure-PyTorch reference"):
        out_reference = run(module, *inputs)
    grads_reference = torch.autograd.grad(out_reference.square().sum(), list(module.parameters()))

    torch.testing.assert_close(out_kernel, out_reference, rtol=1e-10, atol=1e-10)
    for g_kernel, g_reference in zip(grads_kernel, grads_reference, strict=True):
        torch.testing.assert_close(g_kernel, g_reference, rtol=1e-9, atol=1e-9)


def test_reference_fallback_warns_once(reference_only):
    module = make_module()
    inputs = encoder_inputs(queries=5)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        run(module, *inputs)
        run(module, *inputs)
    assert [str(w.message) for w in caught].count(str(caught[0].message)) == 1
    assert "no compiled ms_deform_attn kernel for cpu" in str(caught[0].message)


def test_detrex_parameter_names_and_initialisation():
    module = MultiScaleDeformableAttention(embed_dim=256, num_heads=8, num_levels=4, num_points=4)
    assert {name for name, _ in module.named_parameters()} == {
        f"{layer}.{kind}"
        for layer in ("sampling_offsets", "attention_weights", "value_proj", "output_proj")
        for kind in ("weight", "bias")
    }
    assert module.sampling_offsets.weight.shape == (8 * 4 * 4 * 2, 256)
    assert torch.equal(module.sampling_offsets.weight, torch.zeros_like(module.sampling_offsets.weight))
    assert torch.equal(module.attention_weights.weight, torch.zeros_like(module.attention_weights.weight))
    bias = module.sampling_offsets.bias.view(8, 4, 4, 2)
    # Head h points along angle 2*pi*h/8, scaled so the larger coordinate is 1; point p lies p + 1 cells out.
    for h in range(8):
        angle = 2 * math.pi * h / 8
        direction = torch.tensor([math.cos(angle), math.sin(angle)])
        direction = direction / direction.abs().max()
        for p in range(4):
            torch.testing.assert_close(bias[h, :, p], (p + 1) * direction.expand(4, 2))
    assert torch.equal(module.value_proj.bias, torch.zeros(256))


def test_batch_first_is_the_transposed_computation():
    seq_first = make_module()
    batch_first = make_module(batch_first=True)
    batch_first.load_state_dict(seq_first.state_dict())
    query, value, pos, reference = encoder_inputs(queries=7)
    expected = run(seq_first, query, value, pos, reference)
    got = run(batch_first, query.transpose(0, 1), value.transpose(0, 1), pos.transpose(0, 1), reference)
    torch.testing.assert_close(got.transpose(0, 1), expected)


def test_identity_defaults_to_the_query_without_its_position():
    module = make_module()
    with torch.no_grad():
        module.output_proj.weight.zero_()
        module.output_proj.bias.zero_()
    query, value, pos, reference = encoder_inputs(queries=6)
    torch.testing.assert_close(run(module, query, value, pos, reference), query)


def test_padded_value_tokens_are_ignored():
    module = make_module()
    query, value, pos, reference = encoder_inputs(queries=9)
    mask = torch.zeros(2, TOKENS, dtype=torch.bool)
    mask[1, 50:] = True  # image 1 is padded in its last tokens
    changed = value.clone()
    changed[50:, 1] = 1e3
    torch.testing.assert_close(
        run(module, query, value, pos, reference, mask), run(module, query, changed, pos, reference, mask)
    )


def test_output_matches_a_direct_evaluation_of_eq_3():
    """Sampling locations built by hand from eq. 3's offsets, fed to the reference sampler."""
    module = make_module()
    query, value, pos, reference = encoder_inputs(queries=5)
    out = run(module, query, value, pos, reference)
    q = (query + pos).transpose(0, 1)
    v = module.value_proj(value.transpose(0, 1)).view(2, TOKENS, 4, 16)
    offsets = module.sampling_offsets(q).view(2, 5, 4, 4, 3, 2)
    weights = module.attention_weights(q).view(2, 5, 4, 12).softmax(-1).view(2, 5, 4, 4, 3)
    normalizer = SHAPES.flip(1).double()  # (width, height) per level
    locations = reference[:, :, None, :, None, :] + offsets / normalizer[None, None, None, :, None, :]
    sampled = multi_scale_deformable_attn_pytorch(v, SHAPES, locations, weights)
    expected = module.output_proj(sampled).transpose(0, 1) + query
    torch.testing.assert_close(out, expected)


@pytest.mark.parametrize(
    "change, error",
    [
        (dict(reference=torch.rand(2, 5, 4, 3, dtype=torch.float64)), "must end in 2 .* or 4"),
        (
            dict(value=torch.randn(TOKENS + 1, 2, 64, dtype=torch.float64)),
            f"cover {TOKENS} tokens .* has {TOKENS + 1}",
        ),
    ],
)
def test_bad_inputs_are_named(change, error):
    module = make_module()
    query, value, pos, reference = encoder_inputs(queries=5)
    value = change.get("value", value)
    reference = change.get("reference", reference)
    with pytest.raises(ValueError, match=error):
        run(module, query, value, pos, reference)
    with pytest.raises(ValueError, match="divisible"):
        MultiScaleDeformableAttention(embed_dim=100, num_heads=8)


def test_level_sizes_are_summed_without_overflow():
    # In int64, 2**32 * 2**32 wraps to 0 and the levels would seem to cover the 4 tokens of value.
    module = make_module()
    query, _, pos, _ = encoder_inputs(queries=5)
    shapes = torch.tensor([[2**32, 2**32], [2, 2], [1, 0], [1, 0]])
    with pytest.raises(ValueError, match=r"spatial_shapes must be positive"):
        module(query, value=torch.randn(4, 2, 64, dtype=torch.float64), spatial_shapes=shapes)
    shapes = torch.tensor([[2**32, 2**32], [2, 2], [1, 1], [1, 1]])
    with pytest.raises(ValueError, match=f"cover {2**64 + 6} tokens .* value has 6"):
        module(
            query,
            value=torch.randn(6, 2, 64, dtype=torch.float64),
            query_pos=pos,
            reference_points=torch.rand(2, 5, 4, 2, dtype=torch.float64),
            spatial_shapes=shapes,
            level_start_index=torch.tensor([0, 0, 4, 5]),
        )
