"""The compiled deformable attention kernels against the float64 grid_sample reference."""

import pytest
import torch

from detrkit.layers import multi_scale_deformable_attn, multi_scale_deformable_attn_pytorch

pytestmark = pytest.mark.skipif(
    not hasattr(torch.ops.detrkit, "ms_deform_attn_forward"), reason="detrkit._C is not built"
)

DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


def level_inputs(shapes, batch, queries, heads, channels, points, dtype, device, seed):
    """Random value/locations/weights for the given level sizes; locations reach 0.25 beyond the map on
    every side, and a quarter of them sit exactly on pixel centres, pixel borders or the map's edges."""
    generator = torch.Generator().manual_seed(seed)
    spatial_shapes = torch.tensor(shapes, dtype=torch.int64)
    starts = torch.cat([spatial_shapes.new_zeros(1), spatial_shapes.prod(1).cumsum(0)[:-1]])
    tokens = int(spatial_shapes.prod(1).sum())
    levels = len(shapes)
    value = torch.randn(batch, tokens, heads, channels, generator=generator, dtype=dtype)
    loc = torch.rand(batch, queries, heads, levels, points, 2, generator=generator, dtype=dtype) * 1.5 - 0.25
    # Exact grid positions: k / (2 * size) for integer k covers centres (odd k) and borders (even k),
    # including 0, 1 and the points half a pixel outside (k = -1, 2 * size + 1).
    sizes = spatial_shapes.flip(1).to(dtype)  # (L, 2) as (width, height)
    k = torch.randint(-1, 2 * int(spatial_shapes.max()) + 2, loc.shape, generator=generator).to(dtype)
    exact = k / (2 * sizes[None, None, None, :, None, :])
    pick = torch.rand(loc.shape[:-1], generator=generator) < 0.25
    loc = torch.where(pick[..., None], exact, loc)
    weights = torch.rand(batch, queries, heads, levels, points, generator=generator, dtype=dtype)
    return [t.to(device) for t in (value, spatial_shapes, starts, loc, weights)]


CASES = [
    # shapes, batch, queries, heads, channels, points
    ([(5, 7)], 1, 9, 1, 4, 1),
    ([(6, 4), (3, 2)], 2, 13, 2, 8, 2),
    ([(7, 9), (4, 5), (2, 3)], 3, 17, 3, 5, 4),
    ([(11, 13), (6, 7), (3, 4), (2, 2)], 2, 31, 8, 32, 4),
    ([(9, 10), (5, 5), (3, 3), (2, 1), (1, 1)], 1, 21, 4, 37, 3),
    ([(1, 1)], 2, 3, 2, 64, 2),
]


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("case", range(len(CASES)))
def test_forward_and_backward_match_float64_reference(device, dtype, case):
    shapes, batch, queries, heads, channels, points = CASES[case]
    value, spatial_shapes, starts, loc, weights = level_inputs(
        shapes, batch, queries, heads, channels, points, dtype, device, seed=case
    )
    inputs = [t.requires_grad_() for t in (value, loc, weights)]
    out = multi_scale_deformable_attn(inputs[0], spatial_shapes, starts, inputs[1], inputs[2])
    grad_out = torch.randn_like(out)
    grads = torch.autograd.grad(out, inputs, grad_out)

    ref_inputs = [t.detach().double().requires_grad_() for t in inputs]
    ref = multi_scale_deformable_attn_pytorch(ref_inputs[0], spatial_shapes, ref_inputs[1], ref_inputs[2])
    ref_grads = torch.autograd.grad(ref, ref_inputs, grad_out.double())

    tol = dict(rtol=1e-4, atol=1e-4) if dtype == torch.float32 else dict(rtol=1e-10, atol=1e-10)
    assert out.dtype == dtype and out.shape == (batch, queries, heads * channels)
    torch.testing.assert_close(out.double(), ref, **tol)
    torch.testing.assert_close(grads[0].double(), ref_grads[0], **tol, msg="grad of value")
    torch.testing.assert_close(grads[2].double(), ref_grads[2], **tol, msg="grad of weights")
    # At a pixel centre (integer pixel coordinate) bilinear sampling has a kink and each implementation
    # returns one of the one-sided derivatives, depending on how its arithmetic rounds; compare elsewhere.
    # Location gradients scale with the map size (d/d loc = size * d/d pixel).
    pixel = loc.detach().double() * spatial_shapes.flip(1)[None, None, None, :, None, :] - 0.5
    smooth = (pixel - pixel.round()).abs() > 1e-4
    scale = float(spatial_shapes.max())
    assert smooth.float().mean() > 0.5
    torch.testing.assert_close(
        grads[1].double()[smooth] / scale, ref_grads[1][smooth] / scale, **tol, msg="grad of locations"
    )


@pytest.mark.parametrize("device", DEVICES)
def test_gradcheck_float64(device):
    value, spatial_shapes, starts, loc, weights = level_inputs(
        [(4, 5), (2, 3)], 2, 5, 2, 3, 2, torch.float64, device, seed=7
    )
    # Keep locations off pixel centres and borders, where bilinear sampling is not differentiable.
    loc = torch.rand(loc.shape, dtype=torch.float64, generator=torch.Generator().manual_seed(8)) * 1.2 - 0.1
    loc = loc.to(device)
    assert torch.autograd.gradcheck(
        lambda v, xy, w: multi_scale_deformable_attn(v, spatial_shapes, starts, xy, w),
        [t.requires_grad_() for t in (value, loc, weights)],
    )


def test_points_outside_the_map_contribute_nothing():
    value, spatial_shapes, starts, loc, weights = level_inputs(
        [(3, 4)], 1, 6, 2, 4, 2, torch.float64, "cpu", seed=3
    )
    # More than one pixel beyond the map on one side, all four corners outside; NaN too.
    far = torch.tensor([[-0.5, 0.5], [1.5, 0.5], [0.5, -0.4], [0.5, 1.4], [float("nan"), 0.5], [0.5, 1e30]])
    loc = far.view(1, 6, 1, 1, 1, 2).expand(1, 6, 2, 1, 2, 2).double().contiguous().requires_grad_()
    out = multi_scale_deformable_attn(value.requires_grad_(), spatial_shapes, starts, loc, weights)
    assert torch.equal(out, torch.zeros_like(out))
    out.sum().backward()
    assert torch.equal(value.grad, torch.zeros_like(value))
    assert torch.equal(loc.grad, torch.zeros_like(loc))


def test_hand_computed_bilinear_sample():
    # One 2x2 level with values 1, 2 / 3, 4 and one channel; the point (0.5, 0.5) is the map's centre, equally
    # far from the four pixel centres, so it samples their mean, 2.5.
    value = torch.tensor([1.0, 2.0, 3.0, 4.0]).view(1, 4, 1, 1)
    shapes = torch.tensor([[2, 2]])
    starts = torch.tensor([0])
    loc = torch.tensor([0.5, 0.5]).view(1, 1, 1, 1, 1, 2)
    weight = torch.full((1, 1, 1, 1, 1), 2.0)
    assert torch.ops.detrkit.ms_deform_attn_forward(value, shapes, starts, loc, weight, 64).item() == 5.0
    # The pixel centre (0.25, 0.75) of the bottom-left pixel samples exactly 3.
    loc = torch.tensor([0.25, 0.75]).view(1, 1, 1, 1, 1, 2)
    assert torch.ops.detrkit.ms_deform_attn_forward(value, shapes, starts, loc, weight, 64).item() == 6.0
    # On the top edge between the two top pixels, half a pixel above their centres: zero padding halves it.
    loc = torch.tensor([0.5, 0.0]).view(1, 1, 1, 1, 1, 2)
    assert torch.ops.detrkit.ms_deform_attn_forward(value, shapes, starts, loc, weight, 64).item() == 1.5


def test_location_gradient_at_pixel_centres_is_one_sided():
    # One 1x3 level with values 1, 4, 9 (one channel). At the centre of the middle pixel (x = 1) the sample is
    # 4 with left slope 3 and right slope 5 (per pixel); the kernel takes the right one, like grid_sample. At
    # x = -1, the virtual pixel left of the map, the sample is 0 and both kernels give the zero derivative.
    value = torch.tensor([1.0, 4.0, 9.0], dtype=torch.float64).view(1, 3, 1, 1)
    shapes, starts = torch.tensor([[1, 3]]), torch.tensor([0])
    weight = torch.ones(1, 1, 1, 1, 1, dtype=torch.float64)
    for x, sample, slope in [(1.0, 4.0, 5.0), (-1.0, 0.0, 0.0), (0.5, 2.5, 3.0)]:
        loc = torch.tensor([(x + 0.5) / 3, 0.5], dtype=torch.float64).view(1, 1, 1, 1, 1, 2)
        out = torch.ops.detrkit.ms_deform_attn_forward(value, shapes, starts, loc, weight, 64)
        _, grad_loc, _ = torch.ops.detrkit.ms_deform_attn_backward(
            value, shapes, starts, loc, weight, torch.ones_like(out), 64
        )
        assert out.item() == sample
        assert grad_loc[..., 0].item() == pytest.approx(3 * slope)  # d/d loc_x = width * d/dx


def test_half_precision_inputs_are_computed_in_float32():
    value, spatial_shapes, starts, loc, weights = level_inputs(
        [(6, 5), (3, 3)], 2, 7, 2, 8, 2, torch.float32, "cpu", seed=5
    )
    for dtype in (torch.float16, torch.bfloat16):
        out = multi_scale_deformable_attn(
            value.to(dtype), spatial_shapes, starts, loc.to(dtype), weights.to(dtype)
        )
        ref = multi_scale_deformable_attn(
            value.to(dtype).float(), spatial_shapes, starts, loc.to(dtype).float(), weights.to(dtype).float()
        )
        assert out.dtype == dtype
        torch.testing.assert_close(out, ref.to(dtype))


@pytest.mark.parametrize(
    "mutate, message",
    [
        (lambda a: a.update(value=a["value"][0]), "value must have shape"),
        (lambda a: a.update(spatial_shapes=a["spatial_shapes"].int()), "must be int64"),
        (
            lambda a: a.update(level_start_index=a["level_start_index"] + 1),
            r"level_start_index\[0\] must be 0",
        ),
        (
            lambda a: a.update(spatial_shapes=a["spatial_shapes"] * 2),
            r"spatial_shapes\[0\] = \(10, 12\) holds more tokens than the 39 of value",
        ),
        (
            lambda a: a["spatial_shapes"][1].mul_(2),
            r"spatial_shapes\[1\] = \(6, 6\) holds more tokens than the 9 .* level_start_index\[1\] = 30",
        ),
        (lambda a: a["spatial_shapes"][1].sub_(1), "levels hold 34 tokens .* but value has 39"),
        (
            lambda a: a.update(level_start_index=a["level_start_index"] * 2),
            r"level_start_index\[1\] must be 30",
        ),
        (lambda a: a["spatial_shapes"][0].neg_(), r"spatial_shapes\[0\] must be positive, got \(-5, -6\)"),
        # H * W = 2**64 wraps to 0 in int64: the old check let the levels pass as 0 + 4 tokens.
        (
            lambda a: a.update(
                value=a["value"][:, :4],
                spatial_shapes=torch.tensor([[2**32, 2**32], [2, 2]]),
                level_start_index=torch.tensor([0, 0]),
            ),
            r"spatial_shapes\[0\] = \(4294967296, 4294967296\) holds more tokens than the 4 of value",
        ),
        (lambda a: a.update(sampling_loc=a["sampling_loc"].double()), "must share one dtype"),
        (
            lambda a: a.update(attn_weight=a["attn_weight"][..., :1]),
            r"attn_weight.size\(4\) must equal points",
        ),
        (
            lambda a: a.update(sampling_loc=a["sampling_loc"][:, :, :1]),
            r"sampling_loc.size\(2\) must equal heads",
        ),
        (lambda a: a.update(im2col_step=0), "im2col_step must be positive"),
        (lambda a: a.update(value=a["value"].long()), "value must be float32 or float64"),
    ],
)
def test_bad_arguments_are_named(mutate, message):
    value, spatial_shapes, starts, loc, weights = level_inputs(
        [(5, 6), (3, 3)], 1, 4, 2, 4, 2, torch.float32, "cpu", seed=0
    )
    args = dict(
        value=value,
        spatial_shapes=spatial_shapes,
        level_start_index=starts,
        sampling_loc=loc,
        attn_weight=weights,
        im2col_step=64,
    )
    mutate(args)
    with pytest.raises(RuntimeError, match=message):
        torch.ops.detrkit.ms_deform_attn_forward(*args.values())


def test_backward_rejects_a_wrong_grad_output():
    value, spatial_shapes, starts, loc, weights = level_inputs(
        [(3, 3)], 1, 4, 2, 4, 2, torch.float32, "cpu", 0
    )
    with pytest.raises(RuntimeError, match="grad_output must have shape"):
        torch.ops.detrkit.ms_deform_attn_backward(
            value, spatial_shapes, starts, loc, weights, torch.zeros(1, 4, 7), 64
        )


def test_double_backward_raises():
    value, spatial_shapes, starts, loc, weights = level_inputs(
        [(4, 5)], 1, 3, 1, 2, 2, torch.float64, "cpu", seed=0
    )
    inputs = [t.requires_grad_() for t in (value, loc, weights)]
    out = multi_scale_deformable_attn(inputs[0], spatial_shapes, starts, inputs[1], inputs[2])
    grads = torch.autograd.grad(out.sum(), inputs, create_graph=True)
    with pytest.raises(RuntimeError, match="double backward .* not supported"):
        torch.autograd.grad(grads[2].square().sum(), inputs)
