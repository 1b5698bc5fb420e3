"""Cascade dynamic mixing: the adapters (eq. 3) at initialisation and on random gates, the static
channel-spatial mixing (Code 1), and a whole mixing with reused filters against an einsum reference."""

import pytest
import torch
import torch.nn.functional as F

from detrkit_projects.stage_interactor.modeling.dynamic_mixing import (
    CascadeDynamicMixing,
    DynamicFilters,
    FilterAdapter,
    StaticMixing,
    adapt_filter,
)


def test_adapter_at_initialisation_weights_the_reused_filter_by_a_quarter():
    adapter = FilterAdapter(embed_dim=16, num_groups=2, rows=3, cols=5)
    query = torch.randn(2, 4, 16)
    reused, current = torch.randn(16, 3, 5), torch.randn(16, 3, 5)
    # w1 = w2 = sigmoid(0) = 0.5, so w1 w2^T = 0.25 everywhere
    assert torch.allclose(adapter(query, reused, current), 0.25 * reused + 0.75 * current)


def test_adapter_is_eq_3_with_the_outer_product_of_its_gates():
    torch.manual_seed(0)
    reused, current = torch.randn(6, 4, 7, dtype=torch.float64), torch.randn(6, 4, 7, dtype=torch.float64)
    w1, w2 = torch.rand(6, 4, dtype=torch.float64), torch.rand(6, 7, dtype=torch.float64)
    gate = torch.einsum("mr,mq->mrq", w1, w2)
    assert torch.allclose(adapt_filter(reused, current, w1, w2), gate * reused + (1 - gate) * current)
    # the official code applies the two gates one after the other: the same filter
    step = reused * w1[..., None] + current * (1 - w1[..., None])
    step = step * w2[:, None] + current * (1 - w2[:, None])
    assert torch.allclose(adapt_filter(reused, current, w1, w2), step)


def test_learned_adapter_gates_come_from_the_query_per_group():
    torch.manual_seed(0)
    adapter = FilterAdapter(embed_dim=8, num_groups=2, rows=3, cols=4)
    torch.nn.init.normal_(adapter.gates.weight)
    query = torch.randn(1, 1, 8)
    reused, current = torch.randn(2, 3, 4), torch.randn(2, 3, 4)
    gates = adapter.gates(query).sigmoid().view(2, 7)
    expected = adapt_filter(reused, current, gates[:, :3], gates[:, 3:])
    assert torch.allclose(adapter(query, reused, current), expected)


def test_static_channel_spatial_mixing_is_code_1():
    torch.manual_seed(0)
    points, subpoints, channels = 3, 2, 4
    mixing = StaticMixing(points, subpoints, channels, "channel_spatial")
    for p in mixing.parameters():
        torch.nn.init.normal_(p)
    x = torch.randn(5, points * subpoints, channels)
    grid = x.view(5, points, subpoints, channels)
    within = mixing.point_mixing
    across = mixing.subpoint_mixing
    expected = torch.empty_like(grid)
    for p in range(points):
        for k in range(subpoints):
            a = (grid[:, p].reshape(5, -1) @ within.weight.T + within.bias).view(5, subpoints, channels)[:, k]
            b = (grid[:, :, k].reshape(5, -1) @ across.weight.T + across.bias).view(5, points, channels)[:, p]
            expected[:, p, k] = a + b
    assert torch.allclose(mixing(x), expected.view_as(x), atol=1e-5)


@pytest.mark.parametrize("kind", ["channel_spatial", "spatial", "channel"])
def test_static_mixing_starts_at_zero(kind):
    mixing = StaticMixing(2, 3, 4, kind)
    assert not mixing(torch.randn(7, 6, 4)).any()


def test_static_mixing_rejects_an_unknown_kind():
    with pytest.raises(ValueError, match="'dense'"):
        StaticMixing(2, 3, 4, "dense")


def _reference(mixing, x, query, bank):
    """The official cascade written with einsum over (image, query, group)."""
    b, n, g, pk, c = x.shape
    out_new = mixing.new_out_points
    params = mixing.filter_generator(query).view(b, n, g, -1)
    m = params[..., : c * c].reshape(b, n, g, c, c)
    s = params[..., c * c :].reshape(b, n, g, out_new, pk)
    bias = mixing.mixing_bias(query).view(b, n, g, -1)

    def norm_relu(t):
        return F.relu(F.layer_norm(t, t.shape[-2:]))

    y = norm_relu(torch.einsum("bngpc,bngcd->bngpd", x, m) + bias[..., None, :c])
    residual = x
    reused = bank[len(bank) - mixing.num_reused_filters :]
    rbias = mixing.reused_bias(query).view(b, n, g, -1, c) if reused else None
    for k, filters in enumerate(reused):
        residual = mixing.static_mixings[k](y.reshape(-1, pk, c)).view_as(x) + residual
        gates = mixing.channel_adapters[k].gates(query).sigmoid().view(b, n, g, 2 * c)
        gate = gates[..., :c, None] * gates[..., None, c:]
        m_adapted = gate * filters.channel.view(b, n, g, c, c) + (1 - gate) * m
        y = norm_relu(torch.einsum("bngpc,bngcd->bngpd", residual, m_adapted) + rbias[..., k, None, :])
    if mixing.reuse_spatial:
        gates = mixing.spatial_adapter.gates(query).sigmoid().view(b, n, g, out_new + pk)
        gate = gates[..., :out_new, None] * gates[..., None, out_new:]
        previous = bank[-1].spatial[:, :out_new, :pk].reshape(b, n, g, out_new, pk)
        s = torch.cat([s, gate * previous + (1 - gate) * s], dim=3)
    z = norm_relu(torch.einsum("bngop,bngpc->bngoc", s, y) + bias[..., c:, None])
    return mixing.norm(query + mixing.output_proj(z.reshape(b, n, -1)))


def test_cascade_mixing_with_reused_filters_matches_an_einsum_reference():
    torch.manual_seed(0)
    b, n, g, points, subpoints, c, out = 2, 3, 2, 2, 3, 4, 6
    mixing = CascadeDynamicMixing(
        g * c, g, points, subpoints, out, num_reused_filters=2, reuse_spatial=True, adapters=True
    ).double()
    for p in mixing.parameters():
        torch.nn.init.normal_(p, std=0.3)
    x = torch.randn(b, n, g, points * subpoints, c, dtype=torch.float64)
    query = torch.randn(b, n, g * c, dtype=torch.float64)
    rows = b * n * g
    bank = [
        DynamicFilters(
            torch.randn(rows, c, c, dtype=torch.float64),
            torch.randn(rows, out, points * subpoints + 2, dtype=torch.float64),
        )
        for _ in range(3)
    ]
    updated, own = mixing(x, query, bank)
    assert torch.allclose(updated, _reference(mixing, x, query, bank))
    assert own.channel.shape == (rows, c, c) and own.spatial.shape == (rows, out // 2, points * subpoints)


def test_cascade_mixing_needs_the_filters_it_reuses():
    mixing = CascadeDynamicMixing(8, 2, 2, 2, 4, num_reused_filters=2, reuse_spatial=True)
    rows = 1 * 1 * 2
    bank = [DynamicFilters(torch.zeros(rows, 4, 4), torch.zeros(rows, 4, 4))]
    with pytest.raises(ValueError, match="reuses 2 filters but the filter bank holds 1"):
        mixing(torch.zeros(1, 1, 2, 4, 4), torch.zeros(1, 1, 8), bank)
